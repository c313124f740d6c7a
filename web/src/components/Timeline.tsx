// The timeline histogram over a search's window: the query's filters counted
// per bucket (`| timechart count()`); clicking a bar zooms the query to it,
// dragging across bars (a brush) zooms to the buckets selected.

import { useEffect, useMemo, useState } from 'react';
import type { ChartConfiguration } from 'chart.js';
import { searchAll, type SearchResult } from '../api';
import { bucketRange, histogramQuery } from '../srql';
import { fmtBucket } from '../format';
import { ChartCanvas } from './ChartCanvas';
import { bucketSpan } from './ResultChart';

export function Timeline({ query, now, onZoom }: { query: string; now: string; onZoom: (from: Date, to: Date) => void }) {
  const [data, setData] = useState<SearchResult | null>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    const ctl = new AbortController();
    setFailed(false);
    searchAll(histogramQuery(query), { now }, ctl.signal).then(setData, (e: unknown) => {
      if (!(e instanceof DOMException && e.name === 'AbortError')) setFailed(true);
    });
    return () => ctl.abort();
  }, [query, now]);

  const model = useMemo(() => {
    if (!data || data.rows.length === 0) return null;
    const buckets = data.rows.map((r) => String(r.bucket)).sort();
    const counts = new Map<string, number>();
    for (const r of data.rows) counts.set(String(r.bucket), (counts.get(String(r.bucket)) ?? 0) + Number(r.count ?? 0));
    const uniq = [...new Set(buckets)];
    const span = bucketSpan(uniq);
    const config: ChartConfiguration = {
      type: 'bar',
      data: {
        labels: uniq.map((b) => fmtBucket(b, span)),
        datasets: [{ label: 'events', data: uniq.map((b) => counts.get(b) ?? 0), backgroundColor: '#4f9dff', barPercentage: 1, categoryPercentage: 0.95 }],
      },
      options: {
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxRotation: 0, autoSkipPadding: 24 }, grid: { display: false } }, y: { beginAtZero: true, ticks: { maxTicksLimit: 3 } } },
      },
    };
    return { config, uniq, span };
  }, [data]);

  if (failed || !model) return null;
  return (
    <div className="timeline" data-testid="timeline" data-span-ms={model.span} data-buckets={model.uniq.length} title="Click a bar to zoom to it, or drag across bars to zoom to a range">
      <ChartCanvas
        config={model.config}
        height={90}
        onClickIndex={(i) => {
          const r = bucketRange(model.uniq, model.span, i, i);
          if (r) onZoom(r.from, r.to);
        }}
        onBrush={(a, b) => {
          const r = bucketRange(model.uniq, model.span, a, b);
          if (r) onZoom(r.from, r.to);
        }}
      />
    </div>
  );
}
