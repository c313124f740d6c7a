// The SOC overview: each panel is an SRQL search drawn as a chart, with a
// link to open it in Search.

import { useEffect, useMemo, useState } from 'react';
import type { ChartConfiguration } from 'chart.js';
import { errorMessage, searchAll, type SearchResult } from '../api';
import { ChartCanvas, seriesColor } from '../components/ChartCanvas';
import { timechartConfig } from '../components/ResultChart';
import { pivot } from '../router';
import { fmtBytes, fmtNumber } from '../format';

interface PanelDef {
  id: string;
  title: string;
  query: string;
  draw: 'timechart' | 'bars' | 'number';
  /** The label and value columns, for bars. */
  label?: string;
  value?: string;
  bytes?: boolean;
  wide?: boolean;
  pivotField?: string;
}

export const PANELS: PanelDef[] = [
  { id: 'events-total', title: 'Events, last 24 h', query: 'time:last_24h | stats count() as n', draw: 'number', value: 'n' },
  { id: 'alerts-open', title: 'Open alerts', query: 'in:alerts status:open time:last_30d | stats count() as n', draw: 'number', value: 'n' },
  { id: 'high-events', title: 'High+ events, last 24 h', query: 'time:last_24h severity:>=high | stats count() as n', draw: 'number', value: 'n' },
  { id: 'running-vulns', title: 'Running vulnerabilities', query: 'in:vulns status:running | stats count() as n', draw: 'number', value: 'n' },
  { id: 'events-by-severity', title: 'Events over time by severity (24 h)', query: 'time:last_24h | timechart count() by severity', draw: 'timechart', wide: true },
  { id: 'alerts-by-severity', title: 'Alerts over time by severity (7 d)', query: 'in:alerts time:last_7d | timechart span:6h count() by severity', draw: 'timechart', wide: true },
  { id: 'top-hosts', title: 'Top hosts by events (24 h)', query: 'time:last_24h | stats count() as n by host | sort -n | head 10', draw: 'bars', label: 'host', value: 'n', pivotField: 'host' },
  { id: 'top-talkers', title: 'Top talkers by bytes sent', query: 'in:connections time:last_24h | stats sum(bytes) as bytes by src_host | sort -bytes | head 10', draw: 'bars', label: 'src_host', value: 'bytes', bytes: true, pivotField: 'host' },
  { id: 'vulnerable-hosts', title: 'Hosts running vulnerable software', query: 'in:vulns status:running | stats count() as n by host | sort -n | head 10', draw: 'bars', label: 'host', value: 'n', pivotField: 'host' },
  { id: 'top-alert-rules', title: 'Top alert rules (7 d)', query: 'in:alerts time:last_7d | stats count() as n by rule | sort -n | head 10', draw: 'bars', label: 'rule', value: 'n' },
];

export function OverviewPage() {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((x) => x + 1), 60000);
    return () => clearInterval(t);
  }, []);
  return (
    <div className="page overview-page">
      <div className="toolbar">
        <h2>SOC overview</h2>
        <span className="dim">refreshes every minute</span>
        <span className="spacer" />
        <button className="btn small" onClick={() => setTick((x) => x + 1)}>
          Refresh
        </button>
      </div>
      <div className="overview-grid">
        {PANELS.map((p) => (
          <Panel key={p.id} def={p} tick={tick} />
        ))}
      </div>
    </div>
  );
}

function Panel({ def, tick }: { def: PanelDef; tick: number }) {
  const [result, setResult] = useState<SearchResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    searchAll(def.query, {}, ctl.signal).then(
      (r) => (setResult(r), setError(null)),
      (e: unknown) => {
        if (!(e instanceof DOMException && e.name === 'AbortError')) setError(errorMessage(e));
      },
    );
    return () => ctl.abort();
  }, [def.query, tick]);

  const config = useMemo<ChartConfiguration | null>(() => {
    if (!result) return null;
    if (def.draw === 'timechart') return timechartConfig(result, 'bar');
    if (def.draw === 'bars' && def.label && def.value) {
      const rows = result.rows;
      return {
        type: 'bar',
        data: {
          labels: rows.map((r) => String(r[def.label!] ?? '∅')),
          datasets: [{ label: def.value, data: rows.map((r) => Number(r[def.value!] ?? 0)), backgroundColor: seriesColor(def.id, def.id.length), maxBarThickness: 22 }],
        },
        options: {
          indexAxis: 'y',
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: (c) => (def.bytes ? fmtBytes(Number(c.raw)) : fmtNumber(Number(c.raw))) } },
          },
          scales: { x: { ticks: { callback: (v) => (def.bytes ? fmtBytes(Number(v)) : fmtNumber(Number(v))) } }, y: { ticks: { autoSkip: false } } },
        },
      };
    }
    return null;
  }, [result, def]);

  const number = def.draw === 'number' && result ? Number(result.rows[0]?.[def.value ?? 'n'] ?? 0) : null;

  return (
    <section className={`panel overview-panel ${def.wide ? 'wide' : ''} ${def.draw === 'number' ? 'number-panel' : ''}`} data-testid={`panel-${def.id}`}>
      <header>
        <h3>{def.title}</h3>
        <button className="link small" onClick={() => pivot(def.query)} title={def.query}>
          open in search ↗
        </button>
      </header>
      {error && <div className="error-box small">{error}</div>}
      {!result && !error && <div className="dim pad">loading…</div>}
      {number !== null && (
        <div className="big-number" data-testid="panel-ready">
          <div className="value">{fmtNumber(number)}</div>
        </div>
      )}
      {config && result && result.rows.length > 0 && (
        <div data-testid="panel-ready">
          <ChartCanvas
            config={config}
            height={def.draw === 'timechart' ? 220 : 240}
            onClickIndex={
              def.pivotField && def.label
                ? (i) => {
                    const v = result.rows[i]?.[def.label!];
                    if (typeof v === 'string') pivot(`${def.pivotField}:${v}`);
                  }
                : undefined
            }
          />
        </div>
      )}
      {result && result.rows.length === 0 && def.draw !== 'number' && (
        <div className="dim pad" data-testid="panel-ready">
          No data.
        </div>
      )}
    </section>
  );
}
