// Hunts: the scheduled SRQL hunts, a form to create one (from the current
// query), enable/disable, run now, and each hunt's runs.

import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, errorMessage, type ApiErrorBody, type Hunt, type HuntInput, type HuntRun } from '../api';
import { SrqlEditor } from '../editor/SrqlEditor';
import { useApp } from '../session';
import { href, pivot } from '../router';
import { fmtTime } from '../format';
import { MetaView, SigmaBadge } from '../components/MetaView';
import { webhookUrls, withWebhooks } from '../meta';

const SCHEDULES: [string, string][] = [
  ['*/5 * * * *', 'every 5 minutes'],
  ['*/15 * * * *', 'every 15 minutes'],
  ['@hourly', 'hourly'],
  ['0 */6 * * *', 'every 6 hours'],
  ['@daily', 'daily (00:00 UTC)'],
];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical', 'fatal'];

function specOf(h: Hunt, patch: Partial<HuntInput> = {}): HuntInput {
  return {
    name: h.name,
    description: h.description ?? '',
    query: h.query,
    schedule: h.schedule,
    severity: h.severity,
    group_by: h.group_by,
    suppression: h.suppression_s,
    enabled: h.enabled,
    actions: h.actions,
    meta: h.meta ?? undefined,
    ...(h.correlation ? { correlation: h.correlation } : {}),
    ...patch,
  };
}

export function HuntsPage({ params }: { params: URLSearchParams }) {
  const { can } = useApp();
  const writer = can('hunts:write');
  const [hunts, setHunts] = useState<Hunt[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(params.get('id'));
  const [creating, setCreating] = useState(writer && params.get('new') === '1');
  const [editing, setEditing] = useState<Hunt | null>(null);

  const reload = useCallback(async () => {
    try {
      const r = await api.hunts();
      setHunts(r.hunts);
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, []);
  useEffect(() => void reload(), [reload]);

  const current = hunts?.find((h) => h.id === selected) ?? null;

  return (
    <div className="page hunts-page">
      <div className="toolbar">
        <h2>Hunts</h2>
        <span className="dim">{hunts ? `${hunts.length} hunt(s)` : 'loading…'}</span>
        <span className="spacer" />
        {writer && !creating && (
          <button className="btn primary" onClick={() => setCreating(true)} data-testid="new-hunt">
            New hunt
          </button>
        )}
      </div>
      {error && <div className="error-box">{error}</div>}
      {(creating || editing) && writer && (
        <HuntForm
          key={editing?.id ?? 'new'}
          existing={editing}
          initialQuery={params.get('q') ?? ''}
          onCancel={() => (setCreating(false), setEditing(null))}
          onCreated={(h) => {
            setCreating(false);
            setEditing(null);
            setSelected(h.id);
            window.history.replaceState(null, '', href('hunts', { id: h.id }));
            void reload();
          }}
        />
      )}
      <div className="split">
        <table className="results hunts-table" data-testid="hunts-table">
          <thead>
            <tr>
              <th>name</th>
              <th>query</th>
              <th>schedule</th>
              <th>severity</th>
              <th>next run</th>
              <th>enabled</th>
            </tr>
          </thead>
          <tbody>
            {hunts?.map((h) => (
              <tr key={h.id} className={`clickable ${h.id === selected ? 'selected' : ''}`} onClick={() => setSelected(h.id)} data-testid="hunt-row">
                <td className="strong">
                  {h.name}
                  <SigmaBadge meta={h.meta} />
                </td>
                <td className="mono ellipsis" title={h.query}>
                  {h.query}
                </td>
                <td className="mono nowrap">{h.schedule}</td>
                <td className={`sev sev-${h.severity}`}>{h.severity}</td>
                <td className="nowrap">{h.enabled ? fmtTime(h.next_run) : '—'}</td>
                <td>{h.enabled ? 'yes' : 'no'}</td>
              </tr>
            ))}
            {hunts?.length === 0 && (
              <tr>
                <td colSpan={6} className="dim">
                  No hunts yet.{writer ? ' Create one from a query on the Search page.' : ''}
                </td>
              </tr>
            )}
          </tbody>
        </table>
        {current && <HuntDetail hunt={current} writer={writer} onChanged={reload} onEdit={() => (setCreating(false), setEditing(current))} onDeleted={() => (setSelected(null), void reload())} />}
      </div>
    </div>
  );
}

function HuntForm({ existing, initialQuery, onCancel, onCreated }: { existing: Hunt | null; initialQuery: string; onCancel: () => void; onCreated: (h: Hunt) => void }) {
  const { fields } = useApp();
  const [name, setName] = useState(existing?.name ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [query, setQuery] = useState(existing?.query ?? initialQuery);
  const [schedule, setSchedule] = useState(existing?.schedule ?? '*/5 * * * *');
  const [severity, setSeverity] = useState(existing?.severity ?? 'medium');
  const [groupBy, setGroupBy] = useState(existing ? existing.group_by.join(', ') : 'host');
  const [suppression, setSuppression] = useState(existing ? `${existing.suppression_s}s` : '1h');
  const [webhooks, setWebhooks] = useState<string[]>(() => webhookUrls(existing?.actions));
  const [error, setError] = useState<ApiErrorBody | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const spec = {
        name: name.trim(),
        description,
        query,
        schedule,
        severity,
        group_by: groupBy.split(',').map((s) => s.trim()).filter(Boolean),
        suppression: /^\d+s$/.test(suppression) ? Number(suppression.slice(0, -1)) : suppression,
        // Webhooks are edited here; other actions (AWX) are kept as they are.
        actions: withWebhooks(existing?.actions, webhooks),
      };
      const h = existing ? await api.updateHunt(existing.id, specOf(existing, spec)) : await api.createHunt({ ...spec, enabled: true });
      onCreated(h);
    } catch (err) {
      setError(err instanceof ApiError ? err.body : { code: 'network', message: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  const srqlError = error?.span ? error : null;

  return (
    <form className="panel hunt-form" onSubmit={submit} data-testid="hunt-form">
      <div className="form-grid">
        <label className="field">
          <span>Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} placeholder="root ssh logins" data-testid="hunt-name" />
        </label>
        <label className="field">
          <span>Description</span>
          <input value={description} onChange={(e) => setDescription(e.target.value)} placeholder="why this matters" />
        </label>
        <div className="field wide">
          <span>Query (events only: filters, where, sort, head, dedup)</span>
          <SrqlEditor value={query} onChange={setQuery} onRun={() => void submit()} fields={fields} error={srqlError} testId="hunt-query" />
        </div>
        <label className="field">
          <span>Schedule (cron, UTC)</span>
          <input value={schedule} onChange={(e) => setSchedule(e.target.value)} list="schedules" className="mono" data-testid="hunt-schedule" />
          <datalist id="schedules">
            {SCHEDULES.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </datalist>
        </label>
        <label className="field">
          <span>Severity</span>
          <select value={severity} onChange={(e) => setSeverity(e.target.value)} data-testid="hunt-severity">
            {SEVERITIES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Group by (comma-separated)</span>
          <input value={groupBy} onChange={(e) => setGroupBy(e.target.value)} className="mono" />
        </label>
        <label className="field">
          <span>Suppression</span>
          <input value={suppression} onChange={(e) => setSuppression(e.target.value)} className="mono" />
        </label>
        <div className="field wide" data-testid="hunt-webhooks">
          <span>Webhooks (POSTed for each new alert; http(s) URLs)</span>
          <div className="webhooks">
            {webhooks.map((u, i) => (
              <div className="webhook-row" key={i}>
                <input
                  value={u}
                  onChange={(e) => setWebhooks((w) => w.map((x, j) => (j === i ? e.target.value : x)))}
                  className={`mono${error?.field === 'actions' ? ' invalid' : ''}`}
                  placeholder="https://chat.example/hooks/soc"
                  aria-label={`Webhook URL ${i + 1}`}
                  data-testid="hunt-webhook-url"
                />
                <button className="btn small ghost" type="button" onClick={() => setWebhooks((w) => w.filter((_, j) => j !== i))} aria-label="Remove this webhook" data-testid="hunt-webhook-remove">
                  ✕
                </button>
              </div>
            ))}
            <div>
              <button className="btn small" type="button" onClick={() => setWebhooks((w) => [...w, ''])} data-testid="hunt-webhook-add">
                + Add webhook
              </button>
            </div>
          </div>
        </div>
      </div>
      {error && (
        <div className="error-box" data-testid="hunt-error">
          <span className="code">{error.code}</span> {error.message}
          {error.rendered && <pre className="caret">{error.rendered}</pre>}
        </div>
      )}
      <div className="form-actions">
        <button className="btn primary" type="submit" disabled={busy || !name.trim() || !query.trim()} data-testid="hunt-save">
          {busy ? 'Saving…' : existing ? 'Save hunt' : 'Create hunt'}
        </button>
        <button className="btn ghost" type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function HuntDetail({ hunt, writer, onChanged, onEdit, onDeleted }: { hunt: Hunt; writer: boolean; onChanged: () => void; onEdit: () => void; onDeleted: () => void }) {
  const [runs, setRuns] = useState<HuntRun[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const loadRuns = useCallback(async () => {
    try {
      setRuns((await api.huntRuns(hunt.id, 50)).runs);
    } catch (e) {
      setMessage(errorMessage(e));
    }
  }, [hunt.id]);
  useEffect(() => {
    setRuns(null);
    setMessage(null);
    void loadRuns();
  }, [loadRuns]);

  const act = async (f: () => Promise<string>) => {
    setBusy(true);
    try {
      setMessage(await f());
    } catch (e) {
      setMessage(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="panel hunt-detail" data-testid="hunt-detail">
      <div className="toolbar">
        <h3>{hunt.name}</h3>
        <span className={`sev sev-${hunt.severity}`}>{hunt.severity}</span>
        <span className="spacer" />
        <button className="btn small" onClick={() => pivot(hunt.query)}>
          Open in search
        </button>
        <a className="btn small" href={href('alerts', { hunt: hunt.id })}>
          Its alerts
        </a>
        {writer && (
          <>
            <button
              className="btn small primary"
              disabled={busy}
              data-testid="hunt-run-now"
              onClick={() =>
                void act(async () => {
                  const r = await api.runHunt(hunt.id);
                  await loadRuns();
                  onChanged();
                  return r.error ? `Run failed: ${r.error}` : r.skipped ? 'Nothing new to search since the last run.' : `Ran: ${r.matches} match(es), ${r.alerts_created} new alert(s), ${r.alerts_updated} updated.`;
                })
              }
            >
              Run now
            </button>
            <button className="btn small" disabled={busy} onClick={onEdit} data-testid="hunt-edit">
              Edit
            </button>
            <button
              className="btn small"
              disabled={busy}
              data-testid="hunt-toggle"
              onClick={() =>
                void act(async () => {
                  await api.updateHunt(hunt.id, specOf(hunt, { enabled: !hunt.enabled }));
                  onChanged();
                  return hunt.enabled ? 'Disabled.' : 'Enabled.';
                })
              }
            >
              {hunt.enabled ? 'Disable' : 'Enable'}
            </button>
            <button
              className="btn small danger"
              disabled={busy}
              onClick={() => {
                if (!window.confirm(`Delete the hunt “${hunt.name}”? Its alerts stay.`)) return;
                void act(async () => {
                  await api.deleteHunt(hunt.id);
                  onDeleted();
                  return 'Deleted.';
                });
              }}
            >
              Delete
            </button>
          </>
        )}
      </div>
      {hunt.description && <p className="dim">{hunt.description}</p>}
      <pre className="mono query-view">{hunt.query}</pre>
      <div className="dim small">
        schedule <code>{hunt.schedule}</code> · group by {hunt.group_by.join(', ') || '—'} · suppression {hunt.suppression_s}s · searched up to {fmtTime(hunt.watermark)}
      </div>
      {hunt.actions.length > 0 && (
        <div className="small hunt-actions" data-testid="hunt-actions">
          <span className="dim">actions:</span>{' '}
          {hunt.actions.map((a, i) => (
            <span key={i} className="tag mono" data-testid="hunt-action">
              {actionText(a)}
            </span>
          ))}
        </div>
      )}
      <MetaView meta={hunt.meta} testId="hunt-meta" />
      {message && (
        <div className="info-box" data-testid="hunt-message">
          {message}
        </div>
      )}
      <h4>Runs</h4>
      <table className="results compact" data-testid="hunt-runs">
        <thead>
          <tr>
            <th>slot</th>
            <th>window</th>
            <th>matches</th>
            <th>new alerts</th>
            <th>updated</th>
            <th>note</th>
          </tr>
        </thead>
        <tbody>
          {runs?.map((r, i) => (
            <tr key={r.id ?? i} data-testid="hunt-run-row">
              <td>{fmtTime(r.slot)}</td>
              <td className="small">
                {fmtTime(r.window_start)} → {fmtTime(r.window_end)}
              </td>
              <td>{r.matches}</td>
              <td>{r.alerts_created}</td>
              <td>{r.alerts_updated}</td>
              <td className={r.error ? 'danger-text' : 'dim'}>{r.error ?? [r.manual ? 'manual' : '', r.truncated ? 'truncated' : '', r.slots > 1 ? `${r.slots} slots` : ''].filter(Boolean).join(', ')}</td>
            </tr>
          ))}
          {runs?.length === 0 && (
            <tr>
              <td colSpan={6} className="dim">
                No runs yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** One action, as text: `webhook https://…`, `awx job 42`. */
function actionText(a: unknown): string {
  if (!a || typeof a !== 'object') return JSON.stringify(a);
  const o = a as Record<string, unknown>;
  if (o.type === 'webhook') return `webhook ${String(o.url ?? '')}`;
  if (o.type === 'awx') return `awx job ${String(o.job_template_id ?? '?')}${o.base_url ? ` @ ${String(o.base_url)}` : ''}`;
  return JSON.stringify(a);
}
