import { describe, expect, it } from 'vitest';
import { attackTechnique, otherMeta, safeLink, sigmaOf, webhookUrls, withWebhooks } from '../src/meta';
import { capabilityList } from '../src/format';

describe('sigmaOf', () => {
  it('reads the Sigma block of a hunt or alert meta', () => {
    const meta = {
      sigma: {
        id: 'abc-123',
        title: 'Suspicious root login',
        level: 'high',
        status: 'test',
        author: 'someone',
        tags: ['attack.t1110.001', 'attack.credential_access', 7, null],
        references: ['https://example.com/a', ''],
      },
      correlation: { count: 3 },
    };
    expect(sigmaOf(meta)).toEqual({
      id: 'abc-123',
      title: 'Suspicious root login',
      level: 'high',
      status: 'test',
      author: 'someone',
      tags: ['attack.t1110.001', 'attack.credential_access', '7'],
      references: ['https://example.com/a'],
    });
  });

  it.each<[unknown]>([[null], [undefined], [[]], ['sigma'], [{}], [{ sigma: null }], [{ sigma: ['x'] }], [{ other: 1 }]])('is null for %j', (meta) =>
    expect(sigmaOf(meta)).toBeNull(),
  );

  it('takes a single string as a one-element list, and missing fields as empty', () =>
    expect(sigmaOf({ sigma: { tags: 'attack.t1059', id: 42 } })).toEqual({
      id: '42',
      title: null,
      level: null,
      status: null,
      author: null,
      tags: ['attack.t1059'],
      references: [],
    }));
});

describe('otherMeta', () => {
  it.each<[unknown, string[], [string, unknown][]]>([
    [{ sigma: {}, correlation: { n: 1 }, owner: 'soc' }, [], [['correlation', { n: 1 }], ['owner', 'soc']]],
    [{ sigma: {}, correlation: { n: 1 } }, ['correlation'], []],
    [{ a: null, b: 0 }, [], [['b', 0]]],
    [null, [], []],
    [[1, 2], [], []],
  ])('%j skip %j', (meta, skip, want) => expect(otherMeta(meta, skip)).toEqual(want));
});

describe('safeLink', () => {
  it.each<[string, string | null]>([
    ['https://attack.mitre.org/techniques/T1059/', 'https://attack.mitre.org/techniques/T1059/'],
    ['http://example.com', 'http://example.com/'],
    ['  https://example.com/x  ', 'https://example.com/x'],
    ['javascript:alert(1)', null],
    ['data:text/html,<b>x</b>', null],
    ['ftp://example.com/x', null],
    ['internal wiki page 42', null],
    ['//example.com', null],
  ])('%j → %j', (ref, want) => expect(safeLink(ref)).toBe(want));
});

describe('attackTechnique', () => {
  it.each<[string, string | null]>([
    ['attack.t1059', 'T1059'],
    ['attack.t1059.001', 'T1059.001'],
    ['ATTACK.T1110', 'T1110'],
    ['attack.execution', null],
    ['attack.g0016', null],
    ['car.2013-05-004', null],
    ['t1059', null],
  ])('%j → %j', (tag, want) => expect(attackTechnique(tag)).toBe(want));
});

describe('webhook actions', () => {
  const awx = { type: 'awx', job_template_id: 42 };
  const hook = (url: string) => ({ type: 'webhook', url });
  it.each<[unknown[] | undefined, string[]]>([
    [undefined, []],
    [[], []],
    [[awx, hook('https://a.example/x'), hook('https://b.example/y')], ['https://a.example/x', 'https://b.example/y']],
    [[{ type: 'webhook' }, null, 'x'], []],
  ])('webhookUrls(%j)', (actions, want) => expect(webhookUrls(actions)).toEqual(want));

  it.each<[unknown[] | undefined, string[], unknown[]]>([
    [undefined, ['https://a.example'], [hook('https://a.example')]],
    [[awx, hook('https://old.example')], ['https://new.example', '  ', ' https://b.example '], [awx, hook('https://new.example'), hook('https://b.example')]],
    [[hook('https://old.example')], [], []],
    [[awx], [], [awx]],
    // Not validated here: the API refuses bad URLs (`bad_action`).
    [[], ['not a url'], [hook('not a url')]],
  ])('withWebhooks(%j, %j)', (actions, urls, want) => expect(withWebhooks(actions, urls)).toEqual(want));
});

describe('capabilityList', () => {
  it.each<[unknown, string[]]>([
    [{ ebpf: true, xdp: false, process_source: 'proc', none: null }, ['ebpf', 'process_source: proc']],
    [['ebpf', 'xdp'], ['ebpf', 'xdp']],
    [{ nested: { a: 1 } }, ['nested: {"a":1}']],
    [null, []],
    ['x', []],
  ])('%j', (c, want) => expect(capabilityList(c)).toEqual(want));
});
