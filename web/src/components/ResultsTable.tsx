// The results table: choose columns, expand a row to its JSON, click a value
// to filter on it (or out), similarity scores drawn as bars. With `keyboard`,
// j/k move a row cursor and Enter (or o) expands the row, as in mail readers.

import { Fragment, useEffect, useMemo, useRef, useState } from 'react';
import type { Column, Row } from '../api';
import { cellText, fmtTime } from '../format';

export interface ResultsTableProps {
  columns: Column[];
  rows: Row[];
  onFilter?: (field: string, value: unknown, negate: boolean) => void;
  /** Columns hidden by default (wide or redundant ones). */
  defaultHidden?: string[];
  /** j/k/Enter navigation while the focus is not in a text field. */
  keyboard?: boolean;
}

/** Whether a key event belongs to a text field (the editor, an input). */
function inTextField(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

const HIDE_BY_DEFAULT = new Set(['raw', 'tenant', 'severity_id', 'status_id', 'ingested_at', 'class_uid', 'category_uid', 'activity_id', 'event_id', 'tags', 'embedding']);

export function ResultsTable({ columns, rows, onFilter, defaultHidden, keyboard }: ResultsTableProps) {
  const key = columns.map((c) => c.name).join(',');
  const [hidden, setHidden] = useState<Set<string>>(() => initialHidden(columns, defaultHidden));
  const [expanded, setExpanded] = useState<Set<number>>(new Set());
  const [picker, setPicker] = useState(false);
  const [cap, setCap] = useState(500);
  const [cursor, setCursor] = useState(-1);
  const body = useRef<HTMLTableSectionElement>(null);

  useEffect(() => {
    setHidden(initialHidden(columns, defaultHidden));
    setExpanded(new Set());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  useEffect(() => {
    setExpanded(new Set());
    setCursor(-1);
  }, [rows]);

  const visible = useMemo(() => columns.filter((c) => !hidden.has(c.name)), [columns, hidden]);
  const maxScore = useMemo(() => Math.max(1e-9, ...rows.map((r) => (typeof r.score === 'number' ? r.score : 0))), [rows]);

  const toggle = (i: number) =>
    setExpanded((s) => {
      const n = new Set(s);
      if (n.has(i)) n.delete(i);
      else n.add(i);
      return n;
    });

  // j/k/Enter, read through refs so the listener is registered once.
  const nav = useRef({ cursor, count: Math.min(rows.length, cap), toggle });
  nav.current = { cursor, count: Math.min(rows.length, cap), toggle };
  useEffect(() => {
    if (!keyboard) return undefined;
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || inTextField(e.target)) return;
      const { cursor: c, count, toggle: t } = nav.current;
      if (count === 0) return;
      let next = c;
      if (e.key === 'j') next = Math.min(count - 1, c + 1);
      else if (e.key === 'k') next = Math.max(0, c - 1);
      else if ((e.key === 'Enter' || e.key === 'o') && c >= 0) {
        // Enter on a focused button (▸, +, −) keeps its own meaning.
        if ((e.target as HTMLElement | null)?.tagName === 'BUTTON') return;
        e.preventDefault();
        t(c);
        return;
      } else return;
      e.preventDefault();
      setCursor(next);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [keyboard]);
  useEffect(() => {
    if (cursor < 0) return;
    body.current?.querySelector<HTMLElement>(`tr[data-row="${cursor}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [cursor]);

  return (
    <div className="results-table-wrap">
      <div className="table-tools">
        <button className="btn small" onClick={() => setPicker((p) => !p)} data-testid="columns-button">
          Columns ({visible.length}/{columns.length})
        </button>
        {picker && (
          <div className="column-picker" data-testid="column-picker">
            {columns.map((c) => (
              <label key={c.name} className="check">
                <input
                  type="checkbox"
                  checked={!hidden.has(c.name)}
                  onChange={() =>
                    setHidden((h) => {
                      const n = new Set(h);
                      if (n.has(c.name)) n.delete(c.name);
                      else n.add(c.name);
                      return n;
                    })
                  }
                />
                {c.name} <span className="dim">{c.type}</span>
              </label>
            ))}
          </div>
        )}
      </div>
      <div className="table-scroll">
        <table className="results" data-testid="results-table">
          <thead>
            <tr>
              <th className="toggle-col" />
              {visible.map((c) => (
                <th key={c.name} title={c.type}>
                  {c.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody ref={body}>
            {rows.slice(0, cap).map((r, i) => (
              <Fragment key={i}>
                <tr
                  className={`result-row ${expanded.has(i) ? 'open' : ''}${cursor === i ? ' cursor' : ''}`}
                  data-testid="result-row"
                  data-row={i}
                  aria-selected={keyboard ? cursor === i : undefined}
                  onDoubleClick={() => toggle(i)}
                  onClick={keyboard ? () => setCursor(i) : undefined}
                >
                  <td className="toggle-col">
                    <button className="row-toggle" onClick={() => toggle(i)} aria-label="Show the row as JSON" data-testid="row-toggle">
                      {expanded.has(i) ? '▾' : '▸'}
                    </button>
                  </td>
                  {visible.map((c) => (
                    <Cell key={c.name} column={c} value={r[c.name]} maxScore={maxScore} onFilter={onFilter} />
                  ))}
                </tr>
                {expanded.has(i) && (
                  <tr className="row-detail">
                    <td colSpan={visible.length + 1}>
                      <pre className="json" data-testid="row-json">
                        {JSON.stringify(r, null, 2)}
                      </pre>
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length > cap && (
        <button className="btn small load-more" onClick={() => setCap(rows.length)}>
          Show all {rows.length} rows ({rows.length - cap} more)
        </button>
      )}
    </div>
  );
}

function initialHidden(columns: Column[], extra?: string[]): Set<string> {
  const h = new Set<string>();
  for (const c of columns) if (HIDE_BY_DEFAULT.has(c.name) || extra?.includes(c.name)) h.add(c.name);
  // Never hide everything.
  if (h.size >= columns.length) h.clear();
  return h;
}

function Cell({
  column,
  value,
  maxScore,
  onFilter,
}: {
  column: Column;
  value: unknown;
  maxScore: number;
  onFilter?: (field: string, value: unknown, negate: boolean) => void;
}) {
  if (column.name === 'score' && typeof value === 'number') {
    return (
      <td className="score-cell" data-testid="score-cell">
        <span className="score-bar" style={{ width: `${Math.max(2, (value / maxScore) * 60)}px` }} />
        {value.toFixed(3)}
      </td>
    );
  }
  const text = column.type === 'timestamp' || column.type === 'time' ? fmtTime(value) : cellText(value);
  const sev = column.name === 'severity' ? ` sev sev-${String(value).toLowerCase()}` : '';
  const filterable = onFilter && value !== null && value !== undefined && typeof value !== 'object' && column.name !== 'time';
  return (
    <td className={`cell${sev}`} title={text.length > 80 ? text : undefined}>
      <span className="cell-text">{text}</span>
      {filterable && (
        <span className="cell-actions">
          <button title={`Filter on ${column.name}:${text}`} onClick={() => onFilter(column.name, value, false)} data-testid="filter-in">
            +
          </button>
          <button title={`Filter out ${column.name}:${text}`} onClick={() => onFilter(column.name, value, true)}>
            −
          </button>
        </span>
      )}
    </td>
  );
}
