// The Vigil REST client: same-origin `/api/v1/...` calls with the bearer
// token, and the shapes the UI reads (docs/api.md, docs/graph.md, docs/hunts.md).

import type { components, paths } from './api/schema';

// Every shape below comes from the server's OpenAPI document
// (src/api/openapi.json, kept current by a test in the Rust API), through the
// types `npm run gen:api` generates from it (src/api/schema.ts). A field the
// server renames or drops breaks `tsc` here, not the page at run time.

type Schemas = components['schemas'];

export type Permission = Schemas['Permission'];
export type Session = Schemas['Session'];
/** The `error` object of every 4xx/5xx answer. */
export type ApiErrorBody = Schemas['ErrorObject'];

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

export type Column = Schemas['ResultColumn'];
export type SearchResult = Schemas['SearchPage'];
export type Row = SearchResult['rows'][number];
export type Visualization = Schemas['Visualization'];
export type Explanation = Schemas['Explanation'];

export type FieldDef = Schemas['FieldDef'];
export type EntityDef = Schemas['EntityDef'];
export type FieldsResponse = Schemas['FieldRegistry'];

export type RiskFacts = Schemas['RiskFacts'];
export type Risk = Schemas['Risk'];
export type Hop = Schemas['Hop'];
export type Reached = Schemas['Reached'];
export type BlastRadiusResponse = Schemas['BlastRadiusResponse'];
export type PathsResponse = Schemas['PathsResponse'];
export type NeighbourhoodResponse = Schemas['NeighbourhoodResponse'];

export type Hunt = Schemas['Hunt'];
/** A hunt as the UI writes it (`POST /api/v1/hunts`, `PUT /api/v1/hunts/{id}`). */
export type HuntInput = Schemas['HuntSpec'];
/** A recorded run (`GET /api/v1/hunts/{id}/runs`). */
export type HuntRun = Schemas['HuntRun'];
/** What a run now did (`POST /api/v1/hunts/{id}/run`). */
export type RunReport = Schemas['RunReport'];
export type Alert = Schemas['Alert'];
export type AlertDetail = Schemas['AlertDetail'];

export type Agent = Schemas['AgentInfo'];
export type Vulnerability = Schemas['Vulnerability'];

type Method = 'get' | 'post' | 'put' | 'delete';
type Operation<P extends keyof paths, M extends Method> = M extends keyof paths[P] ? paths[P][M] : never;
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : null;
/** The JSON of an operation's success (200, else 201; null for 204). */
type Answer<O> = O extends { responses: infer R } ? (200 extends keyof R ? JsonOf<R[200]> : 201 extends keyof R ? JsonOf<R[201]> : null) : never;
/** An operation's JSON request body. */
type Body<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
/** An operation's path parameters (`{id}`). */
type PathParams<O> = O extends { parameters: { path: infer T } } ? T : never;
/** An operation's query parameters. */
type Query<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

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

function qs(params: object): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

/**
 * `method path` of the OpenAPI document, with `{name}` path parameters filled
 * from `params`: the answer's type is the document's for that operation.
 */
function call<P extends keyof paths, M extends Method>(
  method: M,
  path: P,
  opts: { params?: PathParams<Operation<P, M>>; query?: Query<Operation<P, M>>; body?: Body<Operation<P, M>>; token?: string; signal?: AbortSignal } = {},
): Promise<Answer<Operation<P, M>>> {
  const params: Record<string, unknown> = opts.params ?? {};
  const url = (path as string).replace(/\{(\w+)\}/g, (_, k: string) => enc(String(params[k] ?? ''))) + (opts.query ? qs(opts.query) : '');
  return request(method.toUpperCase(), url, opts.body, opts.token, opts.signal);
}

export const api = {
  session: (token?: string) => call('get', '/api/v1/session', { token }),
  fields: () => call('get', '/api/v1/fields'),
  search: (query: string, opts: { limit?: number; cursor?: string; now?: string } = {}, signal?: AbortSignal) =>
    call('post', '/api/v1/search', { body: { query, ...opts }, signal }),
  explain: (query: string) => call('post', '/api/v1/search/explain', { body: { query } }),

  blastRadius: (p: Query<Operation<'/api/v1/graph/blast-radius', 'get'>>) => call('get', '/api/v1/graph/blast-radius', { query: p }),
  paths: (p: Query<Operation<'/api/v1/graph/paths', 'get'>>) => call('get', '/api/v1/graph/paths', { query: p }),
  neighbourhood: (p: Query<Operation<'/api/v1/graph/neighbourhood', 'get'>>) => call('get', '/api/v1/graph/neighbourhood', { query: p }),

  hunts: () => call('get', '/api/v1/hunts'),
  hunt: (id: string) => call('get', '/api/v1/hunts/{id}', { params: { id } }),
  createHunt: (h: HuntInput) => call('post', '/api/v1/hunts', { body: h }),
  updateHunt: (id: string, h: HuntInput) => call('put', '/api/v1/hunts/{id}', { params: { id }, body: h }),
  deleteHunt: (id: string) => call('delete', '/api/v1/hunts/{id}', { params: { id } }),
  huntRuns: (id: string, limit = 20) => call('get', '/api/v1/hunts/{id}/runs', { params: { id }, query: { limit } }),
  runHunt: (id: string) => call('post', '/api/v1/hunts/{id}/run', { params: { id } }),

  alerts: (f: Query<Operation<'/api/v1/alerts', 'get'>>) => call('get', '/api/v1/alerts', { query: f }),
  alert: (id: string) => call('get', '/api/v1/alerts/{id}', { params: { id } }),
  acknowledge: (id: string) => call('post', '/api/v1/alerts/{id}/acknowledge', { params: { id } }),
  assign: (id: string, assignee: string) => call('post', '/api/v1/alerts/{id}/assign', { params: { id }, body: { assignee } }),
  close: (id: string, reason: string) => call('post', '/api/v1/alerts/{id}/close', { params: { id }, body: { reason } }),

  agents: (days?: number) => call('get', '/api/v1/agents', { query: { days } }),
  vulnerabilities: (p: Query<Operation<'/api/v1/vulnerabilities', 'get'>>) => call('get', '/api/v1/vulnerabilities', { query: p }),
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
