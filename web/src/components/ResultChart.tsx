// Charts for `| stats` (bars per group) and `| timechart` (series over buckets).

import { useMemo, useState } from 'react';
import type { ChartConfiguration } from 'chart.js';
import type { Column, Row, SearchResult } from '../api';
import { cellText, fmtBucket, fmtNumber } from '../format';
import { ChartCanvas, seriesColor } from './ChartCanvas';

const SEVERITY_ORDER = ['unknown', 'info', 'low', 'medium', 'high', 'critical', 'fatal'];
const NUMERIC = /^(int|integer|bigint|float|double|number|numeric|real|smallint|int4|int8|float8)$/i;

export function isNumericColumn(c: Column, rows: Row[]): boolean {
  if (NUMERIC.test(c.type)) return true;
  return rows.length > 0 && rows.every((r) => typeof r[c.name] === 'number' || r[c.name] === null);
}

/** Milliseconds between consecutive distinct buckets (the smallest gap). */
export function bucketSpan(buckets: string[]): number {
  const ts = [...new Set(buckets)].map((b) => new Date(b).getTime()).sort((a, b) => a - b);
  let span = Infinity;
  for (let i = 1; i < ts.length; i++) span = Math.min(span, ts[i] - ts[i - 1]);
  return Number.isFinite(span) && span > 0 ? span : 300000;
}

export function timechartConfig(result: SearchResult, kind: 'bar' | 'line', stacked = true): ChartConfiguration {
  const cols = result.columns;
  const bucketCol = cols.find((c) => c.name === 'bucket') ?? cols[0];
  const aggCols = cols.filter((c) => c !== bucketCol && isNumericColumn(c, result.rows));
  const seriesCols = cols.filter((c) => c !== bucketCol && !aggCols.includes(c));
  const buckets = [...new Set(result.rows.map((r) => String(r[bucketCol.name])))].sort();
  const span = bucketSpan(buckets);
  const index = new Map(buckets.map((b, i) => [b, i]));
  const sets = new Map<string, number[]>();
  for (const r of result.rows) {
    const series = seriesCols.map((c) => cellText(r[c.name]) || '∅').join(' · ');
    for (const a of aggCols) {
      const key = [aggCols.length > 1 || !series ? a.name : '', series].filter(Boolean).join(' · ');
      let data = sets.get(key);
      if (!data) {
        data = new Array<number>(buckets.length).fill(0);
        sets.set(key, data);
      }
      data[index.get(String(r[bucketCol.name])) ?? 0] += Number(r[a.name] ?? 0);
    }
  }
  // Severity series stack in severity order (info at the bottom).
  const rank = (k: string) => {
    const i = SEVERITY_ORDER.indexOf(k.toLowerCase());
    return i < 0 ? 99 : i;
  };
  const datasets = [...sets.entries()].sort((a, b) => rank(a[0]) - rank(b[0])).map(([label, data], i) => ({
    label,
    data,
    backgroundColor: seriesColor(label, i),
    borderColor: seriesColor(label, i),
    borderWidth: kind === 'line' ? 1.5 : 0,
    pointRadius: 0,
    fill: false,
    maxBarThickness: 48,
  }));
  return {
    type: kind,
    data: { labels: buckets.map((b) => fmtBucket(b, span)), datasets },
    options: {
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { display: datasets.length > 1, position: 'bottom', labels: { boxWidth: 10 } } },
      scales: {
        x: { stacked: kind === 'bar' && stacked, ticks: { maxRotation: 0, autoSkipPadding: 16 } },
        y: { stacked: kind === 'bar' && stacked, beginAtZero: true },
      },
    },
  };
}

export function statsConfig(result: SearchResult, max = 50): ChartConfiguration | null {
  const aggCols = result.columns.filter((c) => isNumericColumn(c, result.rows));
  const groupCols = result.columns.filter((c) => !aggCols.includes(c));
  if (aggCols.length === 0 || groupCols.length === 0) return null;
  const rows = result.rows.slice(0, max);
  return {
    type: 'bar',
    data: {
      labels: rows.map((r) => groupCols.map((c) => cellText(r[c.name]) || '∅').join(' · ')),
      datasets: aggCols.map((a, i) => ({
        label: a.name,
        data: rows.map((r) => Number(r[a.name] ?? 0)),
        backgroundColor: seriesColor(a.name === 'count' ? '_' : a.name, i),
        maxBarThickness: 28,
      })),
    },
    options: {
      indexAxis: rows.length > 12 ? 'y' : 'x',
      plugins: { legend: { display: aggCols.length > 1, position: 'bottom' } },
      scales: { x: { ticks: { autoSkip: false } }, y: { ticks: { autoSkip: false } } },
    },
  };
}

export function ResultChart({ result, onPick, onZoom }: { result: SearchResult; onPick?: (row: Row) => void; onZoom?: (from: Date, to: Date) => void }) {
  const [kind, setKind] = useState<'bar' | 'line'>('bar');
  const config = useMemo(
    () => (result.visualization === 'timechart' ? timechartConfig(result, kind) : statsConfig(result)),
    [result, kind],
  );
  if (result.visualization === 'stats' && result.columns.length > 0 && !config) {
    // `| stats count()` with no `by`: one big number per aggregate.
    const r = result.rows[0] ?? {};
    return (
      <div className="big-numbers" data-testid="result-chart">
        {result.columns.map((c) => (
          <div key={c.name} className="big-number">
            <div className="value">{typeof r[c.name] === 'number' ? fmtNumber(r[c.name] as number) : cellText(r[c.name])}</div>
            <div className="label">{c.name}</div>
          </div>
        ))}
      </div>
    );
  }
  if (!config) return null;
  const height = result.visualization === 'stats' ? Math.max(220, Math.min(600, 18 * Math.min(result.rows.length, 50))) : 260;
  return (
    <div className="panel chart-panel">
      {result.visualization === 'timechart' && (
        <div className="panel-tools">
          <button className={`btn small ${kind === 'bar' ? 'active' : ''}`} onClick={() => setKind('bar')}>
            Bars
          </button>
          <button className={`btn small ${kind === 'line' ? 'active' : ''}`} onClick={() => setKind('line')}>
            Lines
          </button>
        </div>
      )}
      <ChartCanvas
        config={config}
        height={height}
        testId="result-chart"
        onClickIndex={
          result.visualization === 'stats' && onPick
            ? (i) => result.rows[i] && onPick(result.rows[i])
            : result.visualization === 'timechart' && onZoom
              ? (i) => {
                  // Zoom the query's window to the clicked bucket.
                  const buckets = [...new Set(result.rows.map((r) => String(r.bucket)))].sort();
                  const b = buckets[i];
                  if (!b) return;
                  const from = new Date(b);
                  onZoom(from, new Date(from.getTime() + bucketSpan(buckets)));
                }
              : undefined
        }
      />
    </div>
  );
}
