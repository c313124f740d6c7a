// Hunt and alert `meta`: any JSON object; hunts imported from Sigma rules
// carry `{"sigma": {id, title, level, status, tags, references, author}}`.
// Alerts copy their hunt's `meta` (plus `correlation` for correlation hunts).

export interface SigmaMeta {
  id: string | null;
  title: string | null;
  level: string | null;
  status: string | null;
  author: string | null;
  tags: string[];
  references: string[];
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() ? v : typeof v === 'number' ? String(v) : null;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return v.trim() ? [v] : [];
  return Array.isArray(v) ? v.map(str).filter((x): x is string => x !== null) : [];
}

/** The Sigma metadata of a hunt's or alert's `meta`, or null. */
export function sigmaOf(meta: unknown): SigmaMeta | null {
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return null;
  const s = (meta as Record<string, unknown>).sigma;
  if (!s || typeof s !== 'object' || Array.isArray(s)) return null;
  const o = s as Record<string, unknown>;
  return {
    id: str(o.id),
    title: str(o.title),
    level: str(o.level),
    status: str(o.status),
    author: str(o.author),
    tags: strings(o.tags),
    references: strings(o.references),
  };
}

/** The other keys of `meta` (not `sigma`), for a generic view. */
export function otherMeta(meta: unknown, skip: string[] = []): [string, unknown][] {
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return [];
  return Object.entries(meta as Record<string, unknown>).filter(([k, v]) => k !== 'sigma' && !skip.includes(k) && v !== null && v !== undefined);
}

/** A reference that may be shown as a link: http(s) only (no javascript:, data:, …). */
export function safeLink(ref: string): string | null {
  try {
    const u = new URL(ref.trim());
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString() : null;
  } catch {
    return null;
  }
}

/** An ATT&CK technique id from a Sigma tag (`attack.t1059.001` → `T1059.001`), or null. */
export function attackTechnique(tag: string): string | null {
  const m = /^attack\.(t\d{4}(?:\.\d{3})?)$/i.exec(tag.trim());
  return m ? m[1].toUpperCase() : null;
}

/** The webhook URLs among a hunt's actions. */
export function webhookUrls(actions: unknown[] | undefined): string[] {
  return (actions ?? [])
    .filter((a): a is { type: string; url: unknown } => !!a && typeof a === 'object' && (a as { type?: unknown }).type === 'webhook')
    .map((a) => (typeof a.url === 'string' ? a.url : ''))
    .filter(Boolean);
}

/** The actions with their webhooks replaced by `urls` (blank ones dropped); other actions (AWX) stay, first. */
export function withWebhooks<A>(actions: A[] | undefined, urls: string[]): (A | { type: 'webhook'; url: string })[] {
  const others = (actions ?? []).filter((a) => !(a && typeof a === 'object' && (a as { type?: unknown }).type === 'webhook'));
  return [...others, ...urls.map((u) => u.trim()).filter(Boolean).map((url) => ({ type: 'webhook' as const, url }))];
}
