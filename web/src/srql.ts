// Small text helpers over SRQL queries: where the pipes start, the time
// window, quoting values, byte offsets. The server parses; these only edit.

/** Scans `q`, calling `visit(i)` for each index outside quotes, regexes and brackets. */
function scanTopLevel(q: string, visit: (i: number, depth: number) => boolean | void): void {
  let depth = 0;
  let i = 0;
  while (i < q.length) {
    const c = q[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < q.length && q[i] !== '"') i += q[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (c === '/' && i > 0 && q[i - 1] === ':') {
      const end = findRegexEnd(q, i + 1);
      if (end > 0) {
        i = end + 1;
        continue;
      }
    }
    if (c === '(' || c === '[') depth++;
    else if ((c === ')' || c === ']') && depth > 0) depth--;
    if (visit(i, depth) === true) return;
    i++;
  }
}

function findRegexEnd(q: string, from: number): number {
  for (let j = from; j < q.length; j++) {
    if (q[j] === '\\') j++;
    else if (q[j] === '/') return j;
    else if (q[j] === ' ') return -1;
  }
  return -1;
}

/** The index of the first top-level `|`, or -1. */
export function firstPipe(q: string): number {
  let at = -1;
  scanTopLevel(q, (i, depth) => {
    if (depth === 0 && q[i] === '|') {
      at = i;
      return true;
    }
    return false;
  });
  return at;
}

/** The search part of a query (before the first pipe), trimmed. */
export function searchPart(q: string): string {
  const p = firstPipe(q);
  return (p < 0 ? q : q.slice(0, p)).trim();
}

/** The pipe stages, e.g. ["stats count() by host", "head 5"]. */
export function pipeStages(q: string): string[] {
  const out: string[] = [];
  let last = -1;
  scanTopLevel(q, (i, depth) => {
    if (depth === 0 && q[i] === '|') {
      if (last >= 0) out.push(q.slice(last + 1, i).trim());
      last = i;
    }
  });
  if (last >= 0) out.push(q.slice(last + 1).trim());
  return out;
}

const TIME_DIRECTIVE = /(^|\s)(time|timestamp|timeframe):("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)/gi;
const LIMIT_DIRECTIVE = /(^|\s)limit:\S+/gi;
const SORT_DIRECTIVE = /(^|\s)sort:\S+/gi;

/** The search part without `time:` directives. */
export function withoutTime(search: string): string {
  return search.replace(TIME_DIRECTIVE, '$1').replace(/\s+/g, ' ').trim();
}

/** The query with its time window replaced by `[from, to)`. */
export function setTimeWindow(q: string, from: Date, to: Date): string {
  const p = firstPipe(q);
  const search = p < 0 ? q : q.slice(0, p);
  const rest = p < 0 ? '' : q.slice(p);
  const win = `time:[${iso(from)}, ${iso(to)}]`;
  const base = withoutTime(search);
  return `${base ? `${base} ` : ''}${win}${rest ? ` ${rest.trim()}` : ''}`;
}

/** The histogram query for a search: its filters (no sort/limit), counted per bucket. */
export function histogramQuery(q: string): string {
  const base = searchPart(q).replace(LIMIT_DIRECTIVE, '$1').replace(SORT_DIRECTIVE, '$1').replace(/\s+/g, ' ').trim();
  const stages = pipeStages(q);
  // `| where` stages only narrow the rows; keep them so the histogram matches.
  const wheres = stages.filter((s) => /^where\s/i.test(s)).map((s) => ` | ${s}`).join('');
  return `${base}${wheres} | timechart count()`;
}

/** Whether a query's pipes reshape the rows (no histogram of raw events then). */
export function isAggregate(q: string): boolean {
  return pipeStages(q).some((s) => /^(stats|timechart|cluster|blast_radius|similar_to)\b/i.test(s)) || /(^|\s)(stats|bucket):/i.test(searchPart(q));
}

/** The entity a query searches (`in:x`, the last one wins), lower-cased; default events. */
export function entityOf(q: string): string {
  const re = /(^|[\s(])in:([A-Za-z_]+)/gi;
  let m: RegExpExecArray | null;
  let e = 'events';
  const s = searchPart(q);
  while ((m = re.exec(s))) e = m[2].toLowerCase();
  return e;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A value as SRQL writes it: bare when safe, else quoted with escapes. */
export function srqlValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  if (/^[A-Za-z0-9_.\-@]+$/.test(s) && !/^(and|or|not|to)$/i.test(s)) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Adds `field:value` (or its negation) to the search part of `q`. */
export function addFilter(q: string, field: string, value: unknown, negate = false): string {
  const term = `${negate ? '-' : ''}${field}:${srqlValue(value)}`;
  const p = firstPipe(q);
  if (p < 0) return `${q.trim()} ${term}`.trim();
  return `${q.slice(0, p).trim()} ${term} ${q.slice(p)}`.trim();
}

/** UTF-8 byte offset → UTF-16 index into `s` (the API's spans are bytes). */
export function byteToIndex(s: string, byte: number): number {
  let bytes = 0;
  let i = 0;
  while (i < s.length && bytes < byte) {
    const cp = s.codePointAt(i) ?? 0;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return i;
}

/**
 * The editor range [from, to) (UTF-16 indices) of the API's byte span in
 * `text`, clamped to the text; an empty span is widened to one character so
 * an underline shows (the next one, or the last one at the end).
 */
export function spanToRange(text: string, span: { start: number; end: number }): { from: number; to: number } {
  let from = Math.min(byteToIndex(text, span.start), text.length);
  let to = Math.min(Math.max(byteToIndex(text, span.end), from), text.length);
  if (from === to) {
    if (to < text.length) to += 1;
    else if (from > 0) from -= 1;
  }
  return { from, to };
}

/**
 * The time window covered by the histogram buckets `a`..`b` (indices into the
 * sorted bucket starts, either order, clamped): from the first bucket's start
 * to the last one's start plus one bucket span. Null when there are no buckets.
 */
export function bucketRange(buckets: string[], spanMs: number, a: number, b: number): { from: Date; to: Date } | null {
  if (buckets.length === 0) return null;
  const clamp = (i: number) => Math.max(0, Math.min(buckets.length - 1, Math.round(i)));
  const lo = clamp(Math.min(a, b));
  const hi = clamp(Math.max(a, b));
  const from = new Date(buckets[lo]);
  const to = new Date(new Date(buckets[hi]).getTime() + spanMs);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return null;
  return { from, to };
}
