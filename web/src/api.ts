// The Vigil REST client: same-origin `/api/v1/...` calls with the bearer
// token, and the shapes the UI reads (docs/api.md, docs/graph.md, docs/hunts.md).

export type Permission =
  | 'search'
  | 'tail'
  | 'graph'
  | 'alerts:read'
  | 'alerts:write'
  | 'hunts:read'
  | 'hunts:write'
  | 'agents:command'
  | 'inventory'
  | 'ingest'
  | 'admin';

export interface Session {
  id: string;
  name: string;
  role: string;
  permissions: Permission[];
}

export interface ApiErrorBody {
  code: string;
  message: string;
  span?: { start: number; end: number };
  expected?: string[];
  suggestions?: string[];
  rendered?: string;
  field?: string;
}

/** A non-2xx answer, with the API's `{"error": {...}}` body when it had one. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: ApiErrorBody;
  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.status = status;
    this.body = body;
  }
}

export interface Column {
  name: string;
  type: string;
}

export type Row = Record<string, unknown>;

export type Visualization = 'table' | 'stats' | 'timechart' | 'similarity' | 'cluster' | 'graph';

export interface SearchResult {
  columns: Column[];
  rows: Row[];
  total: number;
  total_relation: 'eq' | 'gte';
  took_ms: number;
  visualization: Visualization;
  plan: string[];
  warnings: string[];
  partial: boolean;
  next_cursor: string | null;
  now: string;
}

export interface FieldDef {
  name: string;
  aliases: string[];
  column: string;
  type: string;
  labels?: [string, number][];
  description: string;
}

export interface EntityDef {
  name: string;
  aliases: string[];
  time_field: string | null;
  default_window: boolean;
  similarity: boolean;
  description: string;
  fields: FieldDef[];
}

export interface FieldsResponse {
  entities: EntityDef[];
  pipes: string[];
  limits: Record<string, number>;
}

export interface RiskFacts {
  critical_cves: number;
  high_cves: number;
  recent_alerts: number;
  running_vulnerable: number;
}
export interface Risk {
  facts: RiskFacts;
  base: number;
  score: number;
}
export interface Hop {
  from: string;
  from_host: string | null;
  to: string;
  to_host: string | null;
  reversed: boolean;
  dst_port: number;
  protocol: string;
  src_process: string;
}
export interface Reached {
  ip: string;
  host: string | null;
  hops: number;
  path: Hop[];
  risk: Risk;
}
export interface BlastRadiusResponse {
  from: string;
  hops: number;
  direction: string;
  took_ms: number;
  graph: { nodes: number; flows: number; window_hours: number };
  result: { starts: Reached[]; reached: Reached[]; total_reached: number; truncated: boolean };
}
export interface PathsResponse {
  from: string;
  to: string;
  took_ms: number;
  paths: { nodes: { ip: string; host: string | null }[]; hops: Hop[] }[];
}
export interface NeighbourhoodResponse {
  node: string;
  result: {
    nodes: { id: string; ip: string; host: string | null; hops: number; risk: Risk }[];
    edges: {
      source: string;
      target: string;
      ports: number[];
      protocols: string[];
      processes: string[];
      flows: number;
      count: number;
      bytes: number;
    }[];
    truncated: boolean;
  };
}

export interface Hunt {
  id: string;
  name: string;
  description?: string | null;
  query: string;
  schedule: string;
  severity: string;
  group_by: string[];
  suppression_s: number;
  actions: unknown[];
  enabled: boolean;
  meta?: unknown;
  correlation?: unknown;
  next_run?: string | null;
  watermark?: string;
  created_by?: string | null;
  created_at?: string;
}
export interface HuntInput {
  name: string;
  description?: string;
  query: string;
  schedule: string;
  severity: string;
  group_by: string[];
  suppression: string | number;
  enabled: boolean;
  actions?: unknown[];
  meta?: unknown;
  correlation?: unknown;
}
export interface HuntRun {
  id?: number;
  slot: string;
  slots: number;
  manual?: boolean;
  window_start: string;
  window_end: string;
  started_at?: string;
  finished_at?: string;
  matches: number;
  alerts_created: number;
  alerts_updated: number;
  truncated: boolean;
  error: string | null;
  skipped?: boolean;
}
export interface Alert {
  id: string;
  time: string;
  rule: string;
  title: string;
  severity: string | number;
  status: string;
  host: string | null;
  assignee: string | null;
  count?: number;
  [k: string]: unknown;
}

const TOKEN_KEY = 'vigil.token';

/** The token: this tab's (sessionStorage), else a remembered one (localStorage). */
export function loadToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string, remember: boolean): void {
  sessionStorage.setItem(TOKEN_KEY, token);
  if (remember) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
}

let unauthorizedHandler: (() => void) | null = null;
/** Called when a request answers 401 (a revoked or expired token). */
export function onUnauthorized(handler: () => void): void {
  unauthorizedHandler = handler;
}

export function authHeaders(token = loadToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function request<T>(method: string, path: string, body?: unknown, token?: string, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(token ?? loadToken()) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  const text = await res.text();
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    const err = (json as { error?: ApiErrorBody } | null)?.error ?? {
      code: `http_${res.status}`,
      message: text || res.statusText || `HTTP ${res.status}`,
    };
    if (res.status === 401 && token === undefined) unauthorizedHandler?.();
    throw new ApiError(res.status, err);
  }
  return json as T;
}

function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

export const api = {
  session: (token?: string) => request<Session>('GET', '/api/v1/session', undefined, token),
  fields: () => request<FieldsResponse>('GET', '/api/v1/fields'),
  search: (query: string, opts: { limit?: number; cursor?: string; now?: string } = {}, signal?: AbortSignal) =>
    request<SearchResult>('POST', '/api/v1/search', { query, ...opts }, undefined, signal),
  explain: (query: string) => request<Record<string, unknown>>('POST', '/api/v1/search/explain', { query }),

  blastRadius: (p: { from: string; hops?: number; direction?: string; ports?: string; protocols?: string; limit?: number }) =>
    request<BlastRadiusResponse>('GET', `/api/v1/graph/blast-radius${qs(p)}`),
  paths: (p: { from: string; to: string; k?: number; max_hops?: number; direction?: string }) =>
    request<PathsResponse>('GET', `/api/v1/graph/paths${qs(p)}`),
  neighbourhood: (p: { node: string; hops?: number; limit?: number }) =>
    request<NeighbourhoodResponse>('GET', `/api/v1/graph/neighbourhood${qs(p)}`),

  hunts: () => request<{ hunts: Hunt[] }>('GET', '/api/v1/hunts'),
  hunt: (id: string) => request<Hunt>('GET', `/api/v1/hunts/${enc(id)}`),
  createHunt: (h: HuntInput) => request<Hunt>('POST', '/api/v1/hunts', h),
  updateHunt: (id: string, h: HuntInput) => request<Hunt>('PUT', `/api/v1/hunts/${enc(id)}`, h),
  deleteHunt: (id: string) => request<null>('DELETE', `/api/v1/hunts/${enc(id)}`),
  huntRuns: (id: string, limit = 20) => request<{ runs: HuntRun[] }>('GET', `/api/v1/hunts/${enc(id)}/runs${qs({ limit })}`),
  runHunt: (id: string) => request<HuntRun>('POST', `/api/v1/hunts/${enc(id)}/run`),

  alerts: (f: { status?: string; severity?: string; hunt?: string; assignee?: string; since?: string; limit?: number; cursor?: string }) =>
    request<{ alerts: Alert[]; next_cursor: string | null }>('GET', `/api/v1/alerts${qs(f)}`),
  alert: (id: string) => request<Alert>('GET', `/api/v1/alerts/${enc(id)}`),
  acknowledge: (id: string) => request<Alert>('POST', `/api/v1/alerts/${enc(id)}/acknowledge`),
  assign: (id: string, assignee: string) => request<Alert>('POST', `/api/v1/alerts/${enc(id)}/assign`, { assignee }),
  close: (id: string, reason: string) => request<Alert>('POST', `/api/v1/alerts/${enc(id)}/close`, { reason }),

  agents: (days?: number) => request<Record<string, unknown>>('GET', `/api/v1/agents${qs({ days })}`),
  vulnerabilities: (p: { status?: string; host?: string; limit?: number }) =>
    request<Record<string, unknown>>('GET', `/api/v1/vulnerabilities${qs(p)}`),
};

/** Follows `next_cursor` until every row (up to `maxRows`) is in; charts need them all. */
export async function searchAll(query: string, opts: { now?: string; maxRows?: number } = {}, signal?: AbortSignal): Promise<SearchResult> {
  const max = opts.maxRows ?? 10000;
  const first = await api.search(query, { limit: 1000, now: opts.now }, signal);
  return completeRows(query, first, max, signal);
}

/** Fetches the pages after `first` (same query) until `maxRows` rows. */
export async function completeRows(query: string, first: SearchResult, maxRows = 10000, signal?: AbortSignal): Promise<SearchResult> {
  const rows = [...first.rows];
  let cursor = first.next_cursor;
  let last = first;
  while (cursor && rows.length < maxRows) {
    last = await api.search(query, { limit: 1000, cursor }, signal);
    rows.push(...last.rows);
    cursor = last.next_cursor;
  }
  return { ...first, rows, next_cursor: cursor, warnings: [...new Set([...first.warnings, ...last.warnings])] };
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.body.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
