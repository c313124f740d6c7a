// The timeline histogram over a search's window: the query's filters counted
// per bucket (`| timechart count()`); clicking a bar zooms the query to it.

import { useEffect, useMemo, useState } from 'react';
import type { ChartConfiguration } from 'chart.js';
import { searchAll, type SearchResult } from '../api';
import { histogramQuery } from '../srql';
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
    <div className="timeline" data-testid="timeline" title="Click a bar to zoom to it">
      <ChartCanvas
        config={model.config}
        height={90}
        onClickIndex={(i) => {
          const b = model.uniq[i];
          if (!b) return;
          const from = new Date(b);
          onZoom(from, new Date(from.getTime() + model.span));
        }}
      />
    </div>
  );
}
