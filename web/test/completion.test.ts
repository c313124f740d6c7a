import { describe, expect, it } from 'vitest';
import { CompletionContext, type CompletionResult } from '@codemirror/autocomplete';
import { EditorState } from '@codemirror/state';
import type { FieldDef, FieldsResponse } from '../src/api';
import { srqlCompletion } from '../src/editor/completion';

const field = (name: string): FieldDef => ({ name, aliases: [], column: name, type: 'text', description: `${name} field` });
const enumField = (name: string, labels: [string, number][]): FieldDef => ({ name, aliases: [], column: name, type: 'enum', labels, description: `${name} field` });

/** A small registry in the shape of `GET /api/v1/fields`. */
const FIELDS: FieldsResponse = {
  entities: [
    {
      name: 'events',
      aliases: ['event'],
      time_field: 'time',
      default_window: true,
      similarity: true,
      description: 'events',
      fields: [
        field('host'),
        field('user'),
        field('kind'),
        enumField('severity', [['info', 1], ['medium', 3], ['high', 4]]),
        field('message'),
      ],
    },
    {
      name: 'alerts',
      aliases: [],
      time_field: 'time',
      default_window: false,
      similarity: false,
      description: 'alerts',
      fields: [field('status'), field('rule'), field('assignee')],
    },
    {
      name: 'vulnerabilities',
      aliases: ['vulns'],
      time_field: null,
      default_window: false,
      similarity: false,
      description: 'vulnerable packages',
      fields: [field('status'), field('cve')],
    },
  ],
  pipes: ['stats', 'timechart', 'where', 'head', 'SIMILAR_TO', 'cluster'],
  limits: { default_window_s: 86400, max_span_s: 2592000, default_limit: 100, max_rows: 10000, statement_timeout_ms: 30000, max_page: 1000 },
};

/** Completes at `|` in `doc` (the marker is removed); explicit = Ctrl+Space. */
function complete(doc: string, explicit = false, fields: FieldsResponse | null = FIELDS): CompletionResult | null {
  const pos = doc.indexOf('¦');
  const text = doc.replace('¦', '');
  const state = EditorState.create({ doc: text });
  const at = pos < 0 ? text.length : pos;
  return srqlCompletion(() => fields)(new CompletionContext(state, at, explicit)) as CompletionResult | null;
}
const labels = (r: CompletionResult | null) => (r ? r.options.map((o) => o.label) : null);

describe('completion context detection', () => {
  // [doc (¦ marks the cursor, default the end), explicit, from, labels it must include, labels it must not]
  const cases: [string, boolean, number | null, string[], string[]][] = [
    ['in:', false, 3, ['events', 'alerts', 'vulnerabilities', 'vulns', 'event'], ['host:']],
    ['kind:auth in:al', false, 13, ['alerts'], []],
    ['(in:', false, 4, ['events'], []],
    ['ho', false, 0, ['host:', 'in:', 'time:', 'AND'], ['status:']],
    ['in:alerts st', false, 10, ['status:', 'rule:'], ['host:']],
    ['in:vulns c', false, 9, ['cve:', 'status:'], ['host:']],
    ['severity:', false, 9, ['info', 'medium', 'high', '>=high'], []],
    ['severity:>=h', false, 9, ['>=high', 'high'], []],
    ['severity:>', false, 9, ['>=high', '>=medium'], []],
    ['kind:', false, 5, ['process', 'auth', 'network'], []],
    ['-kind:au', false, 6, ['auth'], []],
    ['in:alerts status:', false, 17, ['open', 'acknowledged', 'closed'], ['running']],
    ['in:vulns status:', false, 16, ['running', 'dormant', 'fixed'], ['open']],
    ['time:', false, 5, ['last_24h', 'last_15m', 'today'], []],
    ['timestamp:la', false, 10, ['last_1h'], []],
    ['sort:', false, 5, ['host', 'user'], ['host:']],
    ['kind:auth | ', false, 12, ['stats', 'timechart', 'SIMILAR_TO', 'cluster'], ['host']],
    ['kind:auth |st', false, 11, ['stats'], []],
    ['| stats co', false, 8, ['count()', 'by', 'host'], []],
    ['| stats count() by ho', false, 19, ['host'], ['count()', 'host:']],
    ['| where us', false, 8, ['user:', 'AND'], ['count()']],
    ['in:alerts | where as', false, 18, ['assignee:'], ['user:']],
    ['kind:auth | head 5 | ', false, 21, ['stats'], []],
  ];
  it.each(cases)('%j', (doc, explicit, from, include, exclude) => {
    const r = complete(doc, explicit);
    expect(r).not.toBeNull();
    if (from !== null) expect(r!.from).toBe(from);
    const got = labels(r)!;
    for (const l of include) expect(got).toContain(l);
    for (const l of exclude) expect(got).not.toContain(l);
  });

  it('applies pipe templates', () => {
    const r = complete('x | ');
    const sim = r!.options.find((o) => o.label === 'SIMILAR_TO');
    expect(sim?.apply).toBe('SIMILAR_TO("');
    expect(r!.options.find((o) => o.label === 'stats')?.apply).toBe('stats count() by ');
  });

  it('offers nothing on an empty word unless asked, nor for fields without values', () => {
    expect(complete('kind:auth ')).toBeNull();
    expect(labels(complete('kind:auth ', true))).toContain('host:');
    expect(complete('host:')).toBeNull(); // free text values: nothing to offer
    expect(complete('in:alerts ¦ host:x')).toBeNull();
  });

  it('waits for the registry', () => expect(complete('ho', false, null)).toBeNull());

  it('completes in the middle of the text, by the query\'s entity', () => {
    const r = complete('st¦ in:alerts');
    expect(r!.from).toBe(0);
    expect(labels(r)).toContain('status:');
  });
});
