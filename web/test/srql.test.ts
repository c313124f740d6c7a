import { describe, expect, it } from 'vitest';
import {
  addFilter,
  bucketRange,
  byteToIndex,
  entityOf,
  firstPipe,
  histogramQuery,
  isAggregate,
  pipeStages,
  searchPart,
  setTimeWindow,
  spanToRange,
  srqlValue,
  withoutTime,
} from '../src/srql';

describe('firstPipe / searchPart / pipeStages', () => {
  const cases: [string, number, string, string[]][] = [
    ['kind:process', -1, 'kind:process', []],
    ['kind:process | head 5', 13, 'kind:process', ['head 5']],
    ['| stats count() by host', 0, '', ['stats count() by host']],
    ['a | stats count() by host | sort -count | head 5', 2, 'a', ['stats count() by host', 'sort -count', 'head 5']],
    // A pipe inside quotes, a regex, brackets or parentheses is not a stage.
    ['message:"a | b" | head 1', 16, 'message:"a | b"', ['head 1']],
    ['message:"say \\"x | y\\"" | head 1', 24, 'message:"say \\"x | y\\""', ['head 1']],
    ['cmd:/a|b/ | head 1', 10, 'cmd:/a|b/', ['head 1']],
    ['host:[a|b] | head 1', 11, 'host:[a|b]', ['head 1']],
    ['(a | b) | head 1', 8, '(a | b)', ['head 1']],
    ['kind:auth | SIMILAR_TO("failed | password", k:5)', 10, 'kind:auth', ['SIMILAR_TO("failed | password", k:5)']],
    ['x |  where  user:root ', 2, 'x', ['where  user:root']],
  ];
  it.each(cases)('%j', (q, pipe, search, stages) => {
    expect(firstPipe(q)).toBe(pipe);
    expect(searchPart(q)).toBe(search);
    expect(pipeStages(q)).toEqual(stages);
  });
});

describe('withoutTime', () => {
  it.each([
    ['kind:auth time:last_24h', 'kind:auth'],
    ['time:last_1h kind:auth', 'kind:auth'],
    ['kind:auth time:[2026-01-01T00:00:00Z, 2026-01-02T00:00:00Z] host:a', 'kind:auth host:a'],
    ['kind:auth timestamp:"2026-01-01" x', 'kind:auth x'],
    ['timeframe:today', ''],
    ['kind:auth runtime:5', 'kind:auth runtime:5'],
  ])('%j → %j', (q, want) => expect(withoutTime(q)).toBe(want));
});

describe('setTimeWindow', () => {
  const from = new Date('2026-03-01T10:00:00.000Z');
  const to = new Date('2026-03-01T11:30:00.000Z');
  const win = 'time:[2026-03-01T10:00:00Z, 2026-03-01T11:30:00Z]';
  it.each([
    ['kind:auth', `kind:auth ${win}`],
    ['', win],
    ['kind:auth time:last_24h', `kind:auth ${win}`],
    ['kind:auth time:[2020-01-01T00:00:00Z, 2020-01-02T00:00:00Z] | head 5', `kind:auth ${win} | head 5`],
    ['| stats count() by host', `${win} | stats count() by host`],
    ['kind:auth time:last_1h | where user:root | head 3', `kind:auth ${win} | where user:root | head 3`],
  ])('%j', (q, want) => expect(setTimeWindow(q, from, to)).toBe(want));

  it('is idempotent on its own output', () => {
    const once = setTimeWindow('host:a | head 1', from, to);
    expect(setTimeWindow(once, from, to)).toBe(once);
  });
});

describe('histogramQuery', () => {
  it.each([
    ['kind:process', 'kind:process | timechart count()'],
    ['kind:process limit:50 sort:-time', 'kind:process | timechart count()'],
    ['kind:auth | where user:root | head 5', 'kind:auth | where user:root | timechart count()'],
    ['kind:auth | SIMILAR_TO("x")', 'kind:auth | timechart count()'],
  ])('%j', (q, want) => expect(histogramQuery(q)).toBe(want));
});

describe('isAggregate', () => {
  it.each([
    ['kind:process | head 5', false],
    ['kind:auth | where user:root', false],
    ['| stats count() by host', true],
    ['x | timechart count()', true],
    ['kind:auth | cluster 0.8', true],
    ['host:a | blast_radius hops:2', true],
    ['kind:auth | SIMILAR_TO("failed password")', true],
    ['kind:auth stats:count', true],
    ['message:"a | stats count()"', false],
  ])('%j → %s', (q, want) => expect(isAggregate(q)).toBe(want));
});

describe('entityOf', () => {
  it.each([
    ['kind:process', 'events'],
    ['in:alerts status:open', 'alerts'],
    ['in:Connections | stats count()', 'connections'],
    ['in:alerts in:vulns', 'vulns'],
    ['kind:auth | where in:alerts', 'events'],
    ['(in:vulns)', 'vulns'],
    ['login:x', 'events'],
  ])('%j → %s', (q, want) => expect(entityOf(q)).toBe(want));
});

describe('srqlValue and addFilter', () => {
  it.each<[unknown, string]>([
    ['web-01', 'web-01'],
    ['a.b@c_d', 'a.b@c_d'],
    [42, '42'],
    [true, 'true'],
    ['two words', '"two words"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['C:\\Windows', '"C:\\\\Windows"'],
    ['and', '"and"'],
    ['OR', '"OR"'],
    ['', '""'],
  ])('srqlValue(%j) = %s', (v, want) => expect(srqlValue(v)).toBe(want));

  it.each<[string, string, unknown, boolean, string]>([
    ['kind:process', 'host', 'web-01', false, 'kind:process host:web-01'],
    ['kind:process', 'host', 'web-01', true, 'kind:process -host:web-01'],
    ['', 'user', 'root', false, 'user:root'],
    ['kind:process | head 5', 'user', 'a b', false, 'kind:process user:"a b" | head 5'],
    ['| stats count() by host', 'host', 'x', false, 'host:x | stats count() by host'],
  ])('addFilter(%j, %s, %j, %s)', (q, f, v, neg, want) => expect(addFilter(q, f, v, neg)).toBe(want));
});

describe('byte spans → editor positions', () => {
  it.each<[string, number, number]>([
    ['abc', 0, 0],
    ['abc', 2, 2],
    ['abc', 3, 3],
    ['abc', 99, 3],
    ['é=x', 2, 1], // é is 2 bytes, 1 UTF-16 unit
    ['é=x', 3, 2],
    ['日本 x', 3, 1], // 3 bytes each
    ['日本 x', 6, 2],
    ['😀 x', 4, 2], // 4 bytes, a surrogate pair
    ['😀 x', 5, 3],
  ])('byteToIndex(%j, %i) = %i', (s, byte, want) => expect(byteToIndex(s, byte)).toBe(want));

  it.each<[string, { start: number; end: number }, { from: number; to: number }]>([
    ['hots:web-01', { start: 0, end: 4 }, { from: 0, to: 4 }],
    ['user:"é" hots:x', { start: 10, end: 14 }, { from: 9, to: 13 }],
    ['😀 hots:x', { start: 5, end: 9 }, { from: 3, to: 7 }],
    // An empty span marks the next character, or the last one at the end.
    ['kind:', { start: 2, end: 2 }, { from: 2, to: 3 }],
    ['kind:', { start: 5, end: 5 }, { from: 4, to: 5 }],
    // Out of range: clamped to the text.
    ['abc', { start: 10, end: 20 }, { from: 2, to: 3 }],
    ['abc', { start: 2, end: 1 }, { from: 2, to: 3 }],
    ['', { start: 0, end: 0 }, { from: 0, to: 0 }],
  ])('spanToRange(%j, %j)', (text, span, want) => expect(spanToRange(text, span)).toEqual(want));
});

describe('bucketRange (timeline zoom)', () => {
  const buckets = ['2026-03-01T10:00:00Z', '2026-03-01T10:05:00Z', '2026-03-01T10:10:00Z', '2026-03-01T10:20:00Z'];
  const span = 300000;
  const iso = (r: { from: Date; to: Date } | null) => r && [r.from.toISOString(), r.to.toISOString()];
  it.each<[number, number, string[] | null]>([
    [0, 0, ['2026-03-01T10:00:00.000Z', '2026-03-01T10:05:00.000Z']],
    [1, 2, ['2026-03-01T10:05:00.000Z', '2026-03-01T10:15:00.000Z']],
    [2, 1, ['2026-03-01T10:05:00.000Z', '2026-03-01T10:15:00.000Z']],
    [0, 3, ['2026-03-01T10:00:00.000Z', '2026-03-01T10:25:00.000Z']],
    [-4, 99, ['2026-03-01T10:00:00.000Z', '2026-03-01T10:25:00.000Z']],
    [1.4, 2.6, ['2026-03-01T10:05:00.000Z', '2026-03-01T10:25:00.000Z']],
  ])('%s..%s', (a, b, want) => expect(iso(bucketRange(buckets, span, a, b))).toEqual(want));

  it('is null without buckets or with bad ones', () => {
    expect(bucketRange([], span, 0, 1)).toBeNull();
    expect(bucketRange(['nope'], span, 0, 0)).toBeNull();
  });
});
