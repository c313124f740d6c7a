// Search: the SRQL editor, inline errors, results as a table / chart /
// clusters, the timeline histogram with click-to-zoom, paging.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, completeRows, errorMessage, type ApiErrorBody, type Column, type Explanation, type Row, type SearchResult } from '../api';
import { SrqlEditor } from '../editor/SrqlEditor';
import { clearHistory, loadHistory, pushHistory } from '../editor/history';
import { ResultsTable } from '../components/ResultsTable';
import { ResultChart, isNumericColumn } from '../components/ResultChart';
import { Timeline } from '../components/Timeline';
import { ClusterList } from '../components/ClusterList';
import { useApp } from '../session';
import { href, navigate } from '../router';
import { addFilter, byteToIndex, entityOf, isAggregate, searchPart, setTimeWindow } from '../srql';
import { fmtNumber } from '../format';

const LAST_QUERY = 'vigil.lastQuery';
const EXAMPLES = [
  'kind:process | head 50',
  'kind:auth status:failure | stats count() as n by host, user | sort -n | head 20',
  'severity:>=high | timechart count() by severity',
  'in:connections | stats sum(bytes) as bytes by src_host, dst_host | sort -bytes | head 20',
  'in:vulns status:running',
  'in:alerts status:open',
];

export function SearchPage({ params }: { params: URLSearchParams }) {
  const { fields, can } = useApp();
  const [query, setQuery] = useState(() => params.get('q') ?? sessionStorage.getItem(LAST_QUERY) ?? 'kind:process | head 50');
  const [result, setResult] = useState<SearchResult | null>(null);
  const [ran, setRan] = useState<string>('');
  const [error, setError] = useState<ApiErrorBody | null>(null);
  const [loading, setLoading] = useState(false);
  const [more, setMore] = useState(false);
  const [history, setHistory] = useState<string[]>(loadHistory);
  const [showHistory, setShowHistory] = useState(false);
  const [explained, setExplained] = useState<Explanation | null>(null);
  const abort = useRef<AbortController | null>(null);
  const queryRef = useRef(query);
  queryRef.current = query;

  const run = useCallback(async (q?: string) => {
    const text = (q ?? queryRef.current).trim();
    if (!text) return;
    abort.current?.abort();
    const ctl = new AbortController();
    abort.current = ctl;
    setLoading(true);
    setError(null);
    setExplained(null);
    setHistory(pushHistory(text));
    sessionStorage.setItem(LAST_QUERY, text);
    window.history.replaceState(null, '', href('search', { q: text }));
    try {
      let r = await api.search(text, { limit: 100 }, ctl.signal);
      // A chart needs every bucket/group, not the first page.
      if ((r.visualization === 'timechart' || r.visualization === 'stats') && r.next_cursor) r = await completeRows(text, r, 10000, ctl.signal);
      setResult(r);
      setRan(text);
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') return;
      setResult(null);
      setError(e instanceof ApiError ? e.body : { code: 'network', message: errorMessage(e) });
    } finally {
      if (abort.current === ctl) setLoading(false);
    }
  }, []);

  // A pivot (#/search?q=…&run=…) or a link with a query runs it.
  const runParam = params.get('run');
  const qParam = params.get('q');
  useEffect(() => {
    if (qParam !== null && qParam !== queryRef.current) setQuery(qParam);
    if (runParam || qParam) void run(qParam ?? undefined);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runParam, qParam]);

  const explain = async () => {
    setError(null);
    try {
      setExplained(await api.explain(queryRef.current));
    } catch (e) {
      setExplained(null);
      setError(e instanceof ApiError ? e.body : { code: 'network', message: errorMessage(e) });
    }
  };

  // `/` focuses the editor, as in most search UIs.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      const editor = document.querySelector<HTMLElement>('[data-testid=srql-editor] .cm-content');
      if (editor) {
        e.preventDefault();
        editor.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const loadMore = async () => {
    if (!result?.next_cursor) return;
    setMore(true);
    try {
      const r = await api.search(ran, { limit: 100, cursor: result.next_cursor });
      setResult({ ...r, rows: [...result.rows, ...r.rows] });
    } catch (e) {
      setError(e instanceof ApiError ? e.body : { code: 'network', message: errorMessage(e) });
    } finally {
      setMore(false);
    }
  };

  const filter = (field: string, value: unknown, negate: boolean) => {
    const q = addFilter(ran || query, field, value, negate);
    setQuery(q);
    void run(q);
  };

  const zoom = (from: Date, to: Date) => {
    const q = setTimeWindow(ran || query, from, to);
    setQuery(q);
    void run(q);
  };

  const applySuggestion = (s: string) => {
    if (!error?.span) return;
    const from = byteToIndex(query, error.span.start);
    const to = byteToIndex(query, error.span.end);
    const q = query.slice(0, from) + s + query.slice(to);
    setQuery(q);
    void run(q);
  };

  const entity = fields?.entities.find((e) => e.name === entityOf(ran) || e.aliases.includes(entityOf(ran)));
  const showTimeline = result && entity?.time_field && !isAggregate(ran) && (result.visualization === 'table' || result.visualization === 'similarity');
  const vis = result?.visualization;
  const graphStart = result && vis === 'graph' ? firstHost(result.rows) : null;

  return (
    <div className="page search-page">
      <div className="query-bar">
        <SrqlEditor value={query} onChange={setQuery} onRun={() => void run()} fields={fields} error={error} />
        <div className="query-actions">
          <button className="btn primary" onClick={() => void run()} disabled={loading} data-testid="run-query" title="Run (Ctrl/Cmd+Enter)">
            {loading ? 'Running…' : 'Run'}
          </button>
          <div className="dropdown">
            <button className="btn" onClick={() => setShowHistory((s) => !s)} data-testid="history-button" title="History (↑/↓ in the editor)">
              History
            </button>
            {showHistory && (
              <div className="dropdown-menu" data-testid="history-menu">
                {history.length === 0 && <div className="dim pad">No queries yet.</div>}
                {history.slice(0, 30).map((h) => (
                  <button
                    key={h}
                    className="dropdown-item mono"
                    onClick={() => {
                      setShowHistory(false);
                      setQuery(h);
                      void run(h);
                    }}
                  >
                    {h}
                  </button>
                ))}
                {history.length > 0 && (
                  <button className="dropdown-item dim" onClick={() => (clearHistory(), setHistory([]))}>
                    Clear history
                  </button>
                )}
              </div>
            )}
          </div>
          <button className="btn" onClick={() => void explain()} data-testid="explain-button" title="Show the plan and the SQL without running">
            Explain
          </button>
          {can('hunts:write') && (
            <button className="btn" onClick={() => navigate('hunts', { new: '1', q: query })} data-testid="create-hunt-from-query" title="Create a scheduled hunt from this query">
              Create hunt
            </button>
          )}
        </div>
      </div>

      {error && (
        <div className="error-box query-error" data-testid="query-error">
          <div>
            <span className="code">{error.code}</span> {error.message}
          </div>
          {error.rendered && <pre className="caret">{error.rendered}</pre>}
          {error.suggestions && error.suggestions.length > 0 && (
            <div className="suggestions">
              Did you mean{' '}
              {error.suggestions.map((s) => (
                <button key={s} className="btn small" onClick={() => applySuggestion(s)} data-testid="suggestion">
                  {s}
                </button>
              ))}
              ?
            </div>
          )}
          {error.expected && error.expected.length > 0 && !error.rendered && <div className="dim">expected {error.expected.join(', ')}</div>}
        </div>
      )}

      {explained && (
        <div className="panel explain" data-testid="explain-panel">
          <div className="toolbar">
            <h3>Plan</h3>
            <span className="tag">{explained.entity}</span>
            <span className="tag">{explained.visualization}</span>
            <span className="spacer" />
            <button className="btn small ghost" onClick={() => setExplained(null)}>
              ✕
            </button>
          </div>
          <ol className="plan">
            {explained.plan.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ol>
          <h4>SQL</h4>
          <pre className="query-view">{explained.sql}</pre>
          <h4>Parameters</h4>
          <pre className="query-view">{explained.params.map((p, i) => `$${i + 1} = ${p}`).join('\n')}</pre>
        </div>
      )}

      {!result && !error && !loading && (
        <div className="empty">
          <p>Type SRQL and press <kbd>Ctrl</kbd>+<kbd>Enter</kbd>. Examples:</p>
          <ul>
            {EXAMPLES.map((e) => (
              <li key={e}>
                <button className="link mono" onClick={() => (setQuery(e), void run(e))}>
                  {e}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}

      {result && (
        <>
          <div className="status-line" data-testid="result-status">
            <span data-testid="result-total">
              {fmtNumber(result.total)}
              {result.total_relation === 'gte' ? '+' : ''} {result.total === 1 ? 'row' : 'rows'}
            </span>
            <span className="dim">{result.took_ms} ms</span>
            <span className="tag">{result.visualization}</span>
            {result.partial && <span className="tag warn">partial</span>}
            {result.warnings.map((w) => (
              <span key={w} className="warn-text">
                ⚠ {w}
              </span>
            ))}
            {graphStart && (
              <a className="btn small" href={href('graph', { from: graphStart, hops: /\bhops:(\d)/.exec(ran)?.[1] ?? '2' })} data-testid="open-in-graph">
                Open in graph
              </a>
            )}
          </div>
          {showTimeline && <Timeline query={ran} now={result.now} onZoom={zoom} />}
          {(vis === 'stats' || vis === 'timechart') && (
            <ResultChart
              result={result}
              onZoom={zoom}
              onPick={(row: Row) => {
                const group = result.columns.find((c) => !isNumericColumn(c, result.rows));
                if (group && row[group.name] !== null) filterFromStats(ran, group.name, row[group.name]);
              }}
            />
          )}
          {vis === 'cluster' ? (
            <ClusterList result={result} />
          ) : (
            <ResultsTable columns={vis === 'similarity' ? scoreFirst(result.columns) : result.columns} rows={result.rows} onFilter={vis === 'table' || vis === 'similarity' ? filter : undefined} keyboard />
          )}
          {result.next_cursor && (
            <button className="btn load-more" onClick={() => void loadMore()} disabled={more} data-testid="load-more">
              {more ? 'Loading…' : `Load more (${result.rows.length} of ${fmtNumber(result.total)})`}
            </button>
          )}
        </>
      )}
    </div>
  );
}

/** Clicking a stats bar searches the events of that group. */
function filterFromStats(query: string, field: string, value: unknown) {
  navigate('search', { q: addFilter(searchPart(query), field, value), run: String(Date.now()) });
}

function firstHost(rows: Row[]): string | null {
  for (const r of rows) {
    const h = r.start ?? r.host ?? r.ip;
    if (typeof h === 'string' && h) return h;
  }
  return null;
}

/** The similarity score leads a SIMILAR_TO result. */
function scoreFirst(columns: Column[]): Column[] {
  const score = columns.find((c) => c.name === 'score');
  return score ? [score, ...columns.filter((c) => c !== score)] : columns;
}
