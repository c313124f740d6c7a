// Alerts inbox: filter by status, severity, assignee, hunt; acknowledge,
// assign and close (only for roles that may); open one for its details.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage, type Alert, type AlertDetail } from '../api';
import { useApp } from '../session';
import { pivot } from '../router';
import { fmtTime, severityName } from '../format';
import { MetaView, SigmaBadge } from '../components/MetaView';

const STATUSES = ['open', 'acknowledged', 'closed', ''];
const SEVERITIES = ['', 'low', 'medium', 'high', 'critical'];

export function AlertsPage({ params }: { params: URLSearchParams }) {
  const { can, session } = useApp();
  const writer = can('alerts:write');
  const [status, setStatus] = useState(params.get('status') ?? 'open');
  const [severity, setSeverity] = useState(params.get('severity') ?? '');
  const [assignee, setAssignee] = useState('');
  const [hunt, setHunt] = useState(params.get('hunt') ?? '');
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [openId, setOpenId] = useState<string | null>(null);

  // Filters change faster than answers come back: only the latest request's
  // answer is shown (an older, slower one must not overwrite it).
  const seq = useRef(0);
  const load = useCallback(
    async (append: string | null = null) => {
      const mine = ++seq.current;
      try {
        const r = await api.alerts({ status: status || undefined, severity: severity || undefined, assignee: assignee || undefined, hunt: hunt || undefined, limit: 100, cursor: append ?? undefined });
        if (mine !== seq.current) return;
        setAlerts((a) => (append && a ? [...a, ...r.alerts] : r.alerts));
        setCursor(r.next_cursor);
        setError(null);
      } catch (e) {
        if (mine === seq.current) setError(errorMessage(e));
      }
    },
    [status, severity, assignee, hunt],
  );
  useEffect(() => void load(), [load]);

  const replace = (a: Alert) => setAlerts((list) => list?.map((x) => (x.id === a.id ? { ...x, ...a } : x)) ?? null);

  return (
    <div className="page alerts-page">
      <div className="toolbar" data-testid="alert-filters">
        <h2>Alerts</h2>
        <div className="segmented" role="group" aria-label="status">
          {STATUSES.map((s) => (
            <button key={s || 'all'} className={`btn small ${status === s ? 'active' : ''}`} onClick={() => setStatus(s)} data-testid={`status-${s || 'all'}`}>
              {s || 'all'}
            </button>
          ))}
        </div>
        <label className="inline">
          severity ≥
          <select value={severity} onChange={(e) => setSeverity(e.target.value)} data-testid="alert-severity">
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <input placeholder="assignee" value={assignee} onChange={(e) => setAssignee(e.target.value)} className="narrow-2" data-testid="alert-assignee-filter" />
        {hunt && (
          <button className="btn small" onClick={() => setHunt('')} title="Clear the hunt filter">
            hunt {hunt.slice(0, 8)}… ✕
          </button>
        )}
        <span className="spacer" />
        <span className="dim" data-testid="alert-count">
          {alerts ? `${alerts.length}${cursor ? '+' : ''} alert(s)` : 'loading…'}
        </span>
        <button className="btn small" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      {error && <div className="error-box">{error}</div>}
      <table className="results alerts-table" data-testid="alerts-table">
        <thead>
          <tr>
            <th>time</th>
            <th>severity</th>
            <th>title</th>
            <th>host</th>
            <th>rule</th>
            <th>count</th>
            <th>status</th>
            <th>assignee</th>
            {writer && <th>actions</th>}
          </tr>
        </thead>
        <tbody>
          {alerts?.map((a) => (
            <AlertRow key={a.id} alert={a} writer={writer} me={session.name} open={openId === a.id} onToggle={() => setOpenId(openId === a.id ? null : a.id)} onChanged={replace} />
          ))}
          {alerts?.length === 0 && (
            <tr>
              <td colSpan={writer ? 9 : 8} className="dim">
                No alerts match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {cursor && (
        <button className="btn load-more" onClick={() => void load(cursor)}>
          Load more
        </button>
      )}
    </div>
  );
}

function AlertRow({ alert, writer, me, open, onToggle, onChanged }: { alert: Alert; writer: boolean; me: string; open: boolean; onToggle: () => void; onChanged: (a: Alert) => void }) {
  const [mode, setMode] = useState<'assign' | 'close' | null>(null);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [detail, setDetail] = useState<AlertDetail | null>(null);
  const closed = alert.status === 'closed';
  const sev = severityName(alert.severity);

  useEffect(() => {
    if (open && !detail) api.alert(alert.id).then(setDetail, (e) => setError(errorMessage(e)));
  }, [open, detail, alert.id]);

  const act = async (f: () => Promise<Alert>) => {
    setError(null);
    try {
      const a = await f();
      onChanged(a);
      setDetail(null);
      setMode(null);
      setText('');
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  return (
    <>
      <tr className={`clickable alert-row status-${alert.status}`} data-testid="alert-row" onClick={onToggle}>
        <td className="nowrap">{fmtTime(alert.time)}</td>
        <td className={`sev sev-${sev}`}>{sev}</td>
        <td className="strong">
          {alert.title}
          <SigmaBadge meta={alert.meta} />
        </td>
        <td>{alert.host ?? ''}</td>
        <td className="dim">{alert.rule}</td>
        <td>{alert.count ?? ''}</td>
        <td data-testid="alert-status">{alert.status}</td>
        <td>{alert.assignee ?? ''}</td>
        {writer && (
          <td className="nowrap" onClick={(e) => e.stopPropagation()}>
            {!closed && (
              <>
                {alert.status !== 'acknowledged' && (
                  <button className="btn small" onClick={() => void act(() => api.acknowledge(alert.id))} data-testid="alert-ack">
                    Ack
                  </button>
                )}
                <button className="btn small" onClick={() => (setMode(mode === 'assign' ? null : 'assign'), setText(me))} data-testid="alert-assign">
                  Assign
                </button>
                <button className="btn small" onClick={() => (setMode(mode === 'close' ? null : 'close'), setText(''))} data-testid="alert-close">
                  Close
                </button>
              </>
            )}
          </td>
        )}
      </tr>
      {(mode || error) && (
        <tr className="row-detail">
          <td colSpan={writer ? 9 : 8}>
            {mode && (
              <form
                className="inline-form"
                onSubmit={(e) => {
                  e.preventDefault();
                  if (!text.trim()) return;
                  void act(() => (mode === 'assign' ? api.assign(alert.id, text.trim()) : api.close(alert.id, text.trim())));
                }}
              >
                <input autoFocus value={text} onChange={(e) => setText(e.target.value)} placeholder={mode === 'assign' ? 'assignee' : 'reason for closing'} data-testid={`alert-${mode}-input`} />
                <button className="btn small primary" type="submit" data-testid={`alert-${mode}-submit`}>
                  {mode === 'assign' ? 'Assign' : 'Close alert'}
                </button>
                <button className="btn small ghost" type="button" onClick={() => setMode(null)}>
                  Cancel
                </button>
              </form>
            )}
            {error && <div className="error-box">{error}</div>}
          </td>
        </tr>
      )}
      {open && (
        <tr className="row-detail">
          <td colSpan={writer ? 9 : 8}>
            <div className="alert-detail" data-testid="alert-detail">
              <div className="toolbar">
                {alert.host && (
                  <button className="btn small" onClick={() => pivot(`host:${alert.host}`)}>
                    Search host:{alert.host}
                  </button>
                )}
                {alert.host && (
                  <a className="btn small" href={`#/graph?from=${encodeURIComponent(alert.host)}`}>
                    Blast radius
                  </a>
                )}
                {eventsQuery(detail) && (
                  <button className="btn small primary" onClick={() => pivot(eventsQuery(detail)!)} data-testid="alert-events">
                    Its events
                  </button>
                )}
                {alert.rule && (
                  <button className="btn small" onClick={() => pivot(`in:alerts rule:"${alert.rule.replace(/"/g, '\\"')}"`)}>
                    Same rule
                  </button>
                )}
              </div>
              <MetaView meta={(detail ?? alert).meta} skip={[]} testId="alert-meta" />
              <pre className="json">{JSON.stringify(detail ?? alert, null, 2)}</pre>
            </div>
          </td>
        </tr>
      )}
    </>
  );
}

/** The SRQL that finds an alert's linked events (ids, within its first/last seen). */
function eventsQuery(a: AlertDetail | null): string | null {
  const ids = a?.event_ids;
  if (!a || !Array.isArray(ids) || ids.length === 0) return null;
  const first = typeof a.first_seen === 'string' ? new Date(a.first_seen) : null;
  const last = typeof a.last_seen === 'string' ? new Date(a.last_seen) : null;
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const win = first && last ? ` time:[${iso(new Date(first.getTime() - 1000))}, ${iso(new Date(last.getTime() + 1000))}]` : '';
  return `event_id:(${ids.slice(0, 100).join(',')})${win}`;
}
