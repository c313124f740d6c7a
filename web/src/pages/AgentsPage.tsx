// Agents and vulnerabilities: `GET /api/v1/agents` (known from their
// heartbeats: host, version, capabilities, last heartbeat, online within
// 90 s) and `GET /api/v1/vulnerabilities` (vulnerable packages per host,
// running ones first). Read-only; pivots open the host in Search or Graph.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage, type Agent, type Vulnerability } from '../api';
import { capabilityList, fmtTime, severityName } from '../format';
import { href, pivot } from '../router';

const VULN_STATUSES = ['', 'running', 'dormant', 'fixed'];

export function AgentsPage() {
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [vulns, setVulns] = useState<Vulnerability[] | null>(null);
  const [days, setDays] = useState(7);
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);

  const loadAgents = useCallback(async () => {
    try {
      setAgents((await api.agents(days)).agents);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [days]);
  // Only the latest filter's answer is shown (a slower, older one must not win).
  const vulnSeq = useRef(0);
  const loadVulns = useCallback(async () => {
    const mine = ++vulnSeq.current;
    try {
      const r = await api.vulnerabilities({ status: status || undefined, limit: 500 });
      if (mine !== vulnSeq.current) return;
      setVulns(r.vulnerabilities);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [status]);
  useEffect(() => void loadAgents(), [loadAgents]);
  useEffect(() => void loadVulns(), [loadVulns]);

  const online = agents?.filter((a) => a.online).length ?? 0;

  return (
    <div className="page agents-page">
      <div className="toolbar">
        <h2>Agents</h2>
        <span className="dim" data-testid="agents-summary">
          {agents ? `${agents.length} agent(s), ${online} online` : 'loading…'}
        </span>
        <span className="spacer" />
        <label className="dim small">
          heard from within{' '}
          <select value={days} onChange={(e) => setDays(Number(e.target.value))} data-testid="agents-days">
            {[1, 7, 30, 90].map((d) => (
              <option key={d} value={d}>
                {d} day{d > 1 ? 's' : ''}
              </option>
            ))}
          </select>
        </label>
        <button className="btn small" onClick={() => (void loadAgents(), void loadVulns())}>
          Refresh
        </button>
      </div>
      {error && <div className="error-box">{error}</div>}
      <table className="results" data-testid="agents-table">
        <thead>
          <tr>
            <th>host</th>
            <th>agent</th>
            <th>version</th>
            <th>online</th>
            <th>last heartbeat</th>
            <th>capabilities</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {agents?.map((a) => (
            <tr key={a.agent_id ?? a.host ?? a.last_heartbeat} data-testid="agent-row">
              <td className="strong">{a.host ?? '—'}</td>
              <td className="mono">{a.agent_id ?? '—'}</td>
              <td className="mono">{a.version ?? '—'}</td>
              <td data-testid="agent-online">
                <span className={`dot ${a.online ? 'ok' : 'off'}`} /> {a.online ? 'online' : 'offline'}
              </td>
              <td className="nowrap">{fmtTime(a.last_heartbeat)}</td>
              <td className="small">
                {capabilityList(a.capabilities).map((c) => (
                  <span key={c} className="tag">
                    {c}
                  </span>
                ))}
              </td>
              <td className="nowrap">
                {a.host && (
                  <>
                    <button className="btn small" onClick={() => pivot(`host:${a.host}`)}>
                      Events
                    </button>
                    <a className="btn small" href={href('graph', { from: a.host })}>
                      Graph
                    </a>
                  </>
                )}
              </td>
            </tr>
          ))}
          {agents?.length === 0 && (
            <tr>
              <td colSpan={7} className="dim">
                No agent heartbeat in the last {days} day(s).
              </td>
            </tr>
          )}
        </tbody>
      </table>

      <div className="toolbar">
        <h3>Vulnerabilities</h3>
        <span className="dim">{vulns ? `${vulns.length} finding(s)` : 'loading…'}</span>
        <span className="spacer" />
        <div className="segmented" role="group" aria-label="status">
          {VULN_STATUSES.map((s) => (
            <button key={s || 'all'} className={`btn small ${status === s ? 'active' : ''}`} onClick={() => setStatus(s)} data-testid={`vuln-status-${s || 'all'}`}>
              {s || 'all'}
            </button>
          ))}
        </div>
      </div>
      <table className="results" data-testid="vulns-table">
        <thead>
          <tr>
            <th>host</th>
            <th>cve</th>
            <th>package</th>
            <th>installed</th>
            <th>fixed in</th>
            <th>severity</th>
            <th>status</th>
            <th>last seen</th>
          </tr>
        </thead>
        <tbody>
          {vulns?.map((v) => (
            <tr key={`${v.host}/${v.cve}/${v.package}`} data-testid="vuln-row">
              <td className="strong">{v.host}</td>
              <td className="mono">{v.cve}</td>
              <td className="mono">{v.package}</td>
              <td className="mono">{v.installed_version ?? ''}</td>
              <td className="mono">{v.fixed_version ?? ''}</td>
              <td className={`sev sev-${severityName(v.severity_id)}`}>{severityName(v.severity_id)}</td>
              <td className={v.status === 'running' ? 'danger-text' : ''}>{v.status}</td>
              <td className="nowrap">{fmtTime(v.last_seen)}</td>
            </tr>
          ))}
          {vulns?.length === 0 && (
            <tr>
              <td colSpan={8} className="dim">
                No vulnerable packages{status ? ` with status ${status}` : ''}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
