// Live tail: new events matching an SRQL filter, streamed over SSE (fetch +
// a stream parser, so the token goes in the Authorization header).

import { Fragment, useEffect, useRef, useState } from 'react';
import { openSse } from '../sse';
import { useApp } from '../session';
import { SrqlEditor } from '../editor/SrqlEditor';
import { fmtTime, severityName } from '../format';
import { pivot } from '../router';

const MAX_ROWS = 1000;

interface TailRow {
  key: string;
  event: Record<string, unknown>;
}

export function TailPage({ params }: { params: URLSearchParams }) {
  const { fields } = useApp();
  const [query, setQuery] = useState(params.get('q') ?? '');
  const [active, setActive] = useState<string | null>(null);
  const [rows, setRows] = useState<TailRow[]>([]);
  const [status, setStatus] = useState<'idle' | 'connecting' | 'live' | 'error'>('idle');
  const [notes, setNotes] = useState<string[]>([]);
  const [paused, setPaused] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const buffer = useRef<TailRow[]>([]);
  const seq = useRef(0);

  useEffect(() => {
    if (active === null) return undefined;
    setStatus('connecting');
    setRows([]);
    setNotes([]);
    const note = (n: string) => setNotes((x) => [`${new Date().toISOString().slice(11, 19)} ${n}`, ...x].slice(0, 5));
    const stop = openSse(`/api/v1/tail?query=${encodeURIComponent(active)}`, {
      onOpen: () => setStatus('live'),
      onMessage: (m) => {
        if (m.event === 'row') {
          try {
            buffer.current.push({ key: `${m.id ?? ''}-${seq.current++}`, event: JSON.parse(m.data) as Record<string, unknown> });
          } catch {
            /* a malformed row is skipped */
          }
        } else if (m.event === 'warning' || m.event === 'error') note(`${m.event}: ${m.data}`);
      },
      onError: (msg, fatal) => {
        setStatus(fatal ? 'error' : 'connecting');
        note(msg);
        if (fatal) setActive(null);
      },
    });
    // Batch rows into the view a few times a second.
    const flush = setInterval(() => {
      if (pausedRef.current || buffer.current.length === 0) return;
      const incoming = buffer.current.reverse();
      buffer.current = [];
      setRows((r) => [...incoming, ...r].slice(0, MAX_ROWS));
    }, 250);
    return () => {
      stop();
      clearInterval(flush);
      buffer.current = [];
    };
  }, [active]);

  const start = () => setActive(query.trim());

  return (
    <div className="page tail-page">
      <div className="query-bar">
        <SrqlEditor value={query} onChange={setQuery} onRun={start} fields={fields} error={null} placeholder="filter, e.g. kind:auth status:failure (empty: everything)" testId="tail-editor" />
        <div className="query-actions">
          {active === null ? (
            <button className="btn primary" onClick={start} data-testid="tail-start">
              Start
            </button>
          ) : (
            <button className="btn danger" onClick={() => (setActive(null), setStatus('idle'))} data-testid="tail-stop">
              Stop
            </button>
          )}
          <button className={`btn ${paused ? 'active' : ''}`} onClick={() => setPaused((p) => !p)} disabled={active === null}>
            {paused ? 'Resume' : 'Pause'}
          </button>
          <button className="btn ghost" onClick={() => setRows([])}>
            Clear
          </button>
        </div>
      </div>
      <div className="status-line">
        <span className={`dot dot-${status}`} data-testid="tail-status" data-status={status} />
        <span>{status === 'live' ? `live: ${active || 'all events'}` : status}</span>
        <span className="dim">{rows.length} event(s) shown</span>
        {notes.map((n) => (
          <span key={n} className="warn-text small">
            {n}
          </span>
        ))}
      </div>
      <div className="table-scroll">
        <table className="results compact tail-table" data-testid="tail-table">
          <thead>
            <tr>
              <th>time</th>
              <th>host</th>
              <th>kind</th>
              <th>severity</th>
              <th>message</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => {
              const e = r.event;
              const sev = severityName(e.severity);
              return (
                <Fragment key={r.key}>
                  <tr className="clickable" onClick={() => setOpen(open === r.key ? null : r.key)} data-testid="tail-row">
                    <td className="nowrap">{fmtTime(e.time)}</td>
                    <td>
                      {typeof e.host === 'string' && (
                        <button className="link" onClick={(ev) => (ev.stopPropagation(), pivot(`host:${e.host as string}`))}>
                          {e.host}
                        </button>
                      )}
                    </td>
                    <td>{String(e.kind ?? '')}</td>
                    <td className={`sev sev-${sev}`}>{sev}</td>
                    <td className="ellipsis">{String(e.message ?? e.cmdline ?? '')}</td>
                  </tr>
                  {open === r.key && (
                    <tr className="row-detail">
                      <td colSpan={5}>
                        <pre className="json">{JSON.stringify(e, null, 2)}</pre>
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
        {active !== null && rows.length === 0 && <div className="empty dim">Waiting for new events that match…</div>}
      </div>
    </div>
  );
}
