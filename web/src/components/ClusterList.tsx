// `| cluster` results: one group per pattern with its count; expand to see
// the distinct texts and the example event.

import { useState } from 'react';
import type { Row, SearchResult } from '../api';
import { pivot } from '../router';
import { cellText, fmtTime } from '../format';

function pick(row: Row, names: string[]): unknown {
  for (const n of names) if (row[n] !== undefined) return row[n];
  return undefined;
}

export function ClusterList({ result }: { result: SearchResult }) {
  const [open, setOpen] = useState<number | null>(null);
  const max = Math.max(1, ...result.rows.map((r) => Number(pick(r, ['count', 'events', 'n']) ?? 0)));
  return (
    <div className="clusters" data-testid="cluster-list">
      {result.rows.map((r, i) => {
        const count = Number(pick(r, ['count', 'events', 'n']) ?? 0);
        const text = cellText(pick(r, ['representative', 'text', 'pattern', 'message']) ?? JSON.stringify(r));
        return (
          <div key={i} className={`cluster ${open === i ? 'open' : ''}`} data-testid="cluster-row">
            <button className="cluster-head" onClick={() => setOpen(open === i ? null : i)}>
              <span className="cluster-count">
                <span className="count-bar" style={{ width: `${(count / max) * 100}%` }} />
                <span>{count.toLocaleString()}</span>
              </span>
              <span className="cluster-text">{text}</span>
              <span className="dim small">
                {fmtTime(pick(r, ['first_seen', 'first']))} → {fmtTime(pick(r, ['last_seen', 'last']))}
              </span>
            </button>
            {open === i && (
              <div className="cluster-detail">
                {typeof r.example_event_id === 'string' && (
                  <button className="btn small" onClick={() => pivot(`event_id:${r.example_event_id as string}`)}>
                    Open the example event
                  </button>
                )}
                <pre className="json">{JSON.stringify(r, null, 2)}</pre>
              </div>
            )}
          </div>
        );
      })}
    </div>
  );
}
