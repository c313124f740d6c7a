// SRQL completion from `GET /api/v1/fields`: entities after `in:`, fields of
// the query's entity, enum values after `field:`, time windows, pipe names
// after `|`, aggregates and fields inside pipes.

import type { Completion, CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import type { EntityDef, FieldsResponse } from '../api';
import { entityOf } from '../srql';

const DIRECTIVES: Completion[] = [
  { label: 'in:', type: 'keyword', detail: 'entity', boost: 3 },
  { label: 'time:', type: 'keyword', detail: 'window', boost: 3 },
  { label: 'sort:', type: 'keyword', detail: 'order' },
  { label: 'limit:', type: 'keyword', detail: 'rows' },
];
const BOOL: Completion[] = ['AND', 'OR', 'NOT'].map((w) => ({ label: w, type: 'keyword', boost: -2 }));
const TIMES: Completion[] = ['last_15m', 'last_1h', 'last_6h', 'last_24h', 'last_7d', 'last_30d', 'today', 'yesterday'].map(
  (w) => ({ label: w, type: 'constant' }),
);
const AGGREGATES = ['count()', 'count_distinct(', 'dc(', 'sum(', 'avg(', 'min(', 'max(', 'median(', 'p90(', 'p95(', 'p99('];
const PIPE_TEMPLATES: Record<string, string> = {
  stats: 'stats count() by ',
  timechart: 'timechart count() by ',
  SIMILAR_TO: 'SIMILAR_TO("',
  sort: 'sort -',
  head: 'head 10',
  where: 'where ',
  dedup: 'dedup ',
  fields: 'fields ',
  cluster: 'cluster',
  blast_radius: 'blast_radius hops:2',
};

function findEntity(fields: FieldsResponse, name: string): EntityDef | undefined {
  const n = name.toLowerCase();
  return fields.entities.find((e) => e.name === n || e.aliases.includes(n)) ?? fields.entities.find((e) => e.name === 'events');
}

function fieldCompletions(entity: EntityDef | undefined, suffix: string): Completion[] {
  if (!entity) return [];
  return entity.fields.map((f) => ({
    label: f.name + suffix,
    type: 'property',
    detail: f.type,
    info: [f.description, f.aliases.length ? `aliases: ${f.aliases.join(', ')}` : ''].filter(Boolean).join('\n'),
  }));
}

/** A completion source reading the registry through `get` (it may load later). */
export function srqlCompletion(get: () => FieldsResponse | null) {
  return (ctx: CompletionContext): CompletionResult | null => {
    const fields = get();
    if (!fields) return null;
    const doc = ctx.state.doc.toString();
    const before = doc.slice(0, ctx.pos);
    const entity = findEntity(fields, entityOf(doc));

    // `in:<entity>`
    let m = /(^|[\s(])in:([\w]*)$/i.exec(before);
    if (m) {
      const opts: Completion[] = [];
      for (const e of fields.entities) {
        opts.push({ label: e.name, type: 'class', detail: 'entity', info: e.description, boost: 2 });
        for (const a of e.aliases) opts.push({ label: a, type: 'class', detail: `→ ${e.name}`, boost: -1 });
      }
      return { from: ctx.pos - m[2].length, options: opts, validFor: /^\w*$/ };
    }

    // `field:<value>`
    // (a comparison such as `>=` may lead the value: `severity:>=h`)
    m = /(?:^|[\s(!-])([A-Za-z_@][\w.@]*):((?:[<>]=?|=)?[\w\-.*]*)$/.exec(before);
    if (m) {
      const name = m[1].toLowerCase();
      const partial = m[2];
      const from = ctx.pos - partial.length;
      if (name === 'time' || name === 'timestamp') return { from, options: TIMES, validFor: /^[\w-]*$/ };
      if (name === 'sort') return { from, options: fieldCompletions(entity, ''), validFor: /^[\w.]*$/ };
      const f = entity?.fields.find((x) => x.name === name || x.aliases.includes(name));
      if (f && 'labels' in f) {
        const opts: Completion[] = f.labels.map(([label, id]) => ({ label, type: 'enum', detail: String(id) }));
        if (f.name === 'severity') opts.push(...['>=medium', '>=high', '>=critical'].map((l) => ({ label: l, type: 'enum' })));
        return { from, options: opts, validFor: /^[\w>=<]*$/ };
      }
      if (f?.name === 'kind') {
        const kinds = ['process', 'network', 'auth', 'alert', 'metric', 'vuln', 'log', 'package'];
        return { from, options: kinds.map((k) => ({ label: k, type: 'enum' })), validFor: /^\w*$/ };
      }
      if (f?.name === 'status' && entity?.name === 'alerts')
        return { from, options: ['open', 'acknowledged', 'closed'].map((k) => ({ label: k, type: 'enum' })), validFor: /^\w*$/ };
      if (f?.name === 'status' && entity?.name === 'vulnerabilities')
        return { from, options: ['running', 'dormant', 'fixed'].map((k) => ({ label: k, type: 'enum' })), validFor: /^\w*$/ };
      return null;
    }

    // `| <pipe>`
    m = /\|\s*([\w]*)$/.exec(before);
    if (m) {
      const opts = fields.pipes.map((p) => ({ label: p, type: 'function', apply: PIPE_TEMPLATES[p] ?? p, detail: 'pipe' }));
      return { from: ctx.pos - m[1].length, options: opts, validFor: /^\w*$/ };
    }

    const word = ctx.matchBefore(/[\w.@]*/);
    if (!word || (word.from === word.to && !ctx.explicit)) return null;
    const lastPipe = before.lastIndexOf('|');
    if (lastPipe >= 0) {
      const stage = before.slice(lastPipe + 1).trimStart();
      if (/^(stats|timechart)\b/i.test(stage) && !/\bby\b/i.test(stage)) {
        return {
          from: word.from,
          options: [
            ...AGGREGATES.map((a) => ({ label: a, type: 'function' })),
            { label: 'by', type: 'keyword' },
            { label: 'as', type: 'keyword' },
            ...fieldCompletions(entity, ''),
          ],
          validFor: /^[\w.]*$/,
        };
      }
      if (/^where\b/i.test(stage)) return { from: word.from, options: [...fieldCompletions(entity, ':'), ...BOOL], validFor: /^[\w.]*$/ };
      return { from: word.from, options: fieldCompletions(entity, ''), validFor: /^[\w.]*$/ };
    }
    return {
      from: word.from,
      options: [...DIRECTIVES, ...fieldCompletions(entity, ':'), ...BOOL],
      validFor: /^[\w.@]*$/,
    };
  };
}
