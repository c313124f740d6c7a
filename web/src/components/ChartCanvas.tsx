// A chart.js chart in a React component; only the pieces used are registered
// so the bundle stays small.

import { useEffect, useRef, useState, type MouseEvent as ReactMouseEvent } from 'react';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend, Filler);
Chart.defaults.color = '#9aa4b2';
Chart.defaults.borderColor = 'rgba(140, 150, 170, 0.15)';
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif';
Chart.defaults.font.size = 11;
Chart.defaults.animation = false;

export interface ChartCanvasProps {
  config: ChartConfiguration;
  height?: number;
  /** Called with the clicked x index (bar or point). */
  onClickIndex?: (index: number) => void;
  testId?: string;
  /** Drag across the chart to select x indices `from`..`to` (a brush); a click still calls `onClickIndex`. */
  onBrush?: (from: number, to: number) => void;
}

/** Pixels the pointer must move before a press becomes a drag. */
const BRUSH_MIN_PX = 6;

export function ChartCanvas({ config, height = 220, onClickIndex, testId, onBrush }: ChartCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chartRef = useRef<Chart | null>(null);
  const click = useRef(onClickIndex);
  click.current = onClickIndex;
  const brush = useRef(onBrush);
  brush.current = onBrush;
  // The brush being dragged, in CSS pixels from the canvas' left edge.
  const [sel, setSel] = useState<{ x0: number; x1: number } | null>(null);
  const suppressClickUntil = useRef(0);

  useEffect(() => {
    if (!canvas.current) return undefined;
    const chart = new Chart(canvas.current, {
      ...config,
      options: {
        ...config.options,
        responsive: true,
        maintainAspectRatio: false,
        onClick: (_evt, elements, c) => {
          if (performance.now() < suppressClickUntil.current) return;
          if (!click.current) return;
          if (elements.length > 0) click.current(elements[0].index);
          else {
            // A click between bars: take the nearest x index.
            const e = _evt as unknown as { x: number };
            const x = c.scales.x?.getValueForPixel(e.x);
            if (typeof x === 'number' && x >= 0) click.current(Math.round(x));
          }
        },
        onHover: (evt, elements) => {
          const t = evt.native?.target as HTMLElement | undefined;
          if (t) t.style.cursor = click.current && elements.length ? 'zoom-in' : 'default';
        },
      },
    } as ChartConfiguration);
    chartRef.current = chart;
    return () => {
      chart.destroy();
      chartRef.current = null;
    };
  }, [config]);

  const onMouseDown = (e: ReactMouseEvent<HTMLDivElement>) => {
    if (!brush.current || e.button !== 0 || !canvas.current) return;
    const left = canvas.current.getBoundingClientRect().left;
    const x0 = e.clientX - left;
    let x1 = x0;
    e.preventDefault(); // no text selection while dragging
    const move = (m: MouseEvent) => {
      x1 = m.clientX - left;
      if (Math.abs(x1 - x0) >= BRUSH_MIN_PX) setSel({ x0, x1 });
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      setSel(null);
      const chart = chartRef.current;
      const scale = chart?.scales.x;
      if (!scale || Math.abs(x1 - x0) < BRUSH_MIN_PX) return;
      // The mouseup ends in a click on the canvas (chart.js sees it on the
      // next animation frame): that is not a bar click.
      suppressClickUntil.current = performance.now() + 400;
      const a = scale.getValueForPixel(Math.max(scale.left, Math.min(scale.right, x0)));
      const b = scale.getValueForPixel(Math.max(scale.left, Math.min(scale.right, x1)));
      if (typeof a === 'number' && typeof b === 'number') brush.current?.(Math.round(Math.min(a, b)), Math.round(Math.max(a, b)));
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  };

  return (
    <div className={`chart-box${onBrush ? ' brushable' : ''}`} style={{ height }} data-testid={testId} onMouseDown={onBrush ? onMouseDown : undefined}>
      <canvas ref={canvas} />
      {sel && <div className="brush-sel" data-testid="brush-selection" style={{ left: Math.min(sel.x0, sel.x1), width: Math.abs(sel.x1 - sel.x0) }} />}
    </div>
  );
}

export const SEVERITY_COLORS: Record<string, string> = {
  unknown: '#6b7280',
  info: '#3b82f6',
  low: '#14b8a6',
  medium: '#eab308',
  high: '#f97316',
  critical: '#ef4444',
  fatal: '#a855f7',
};

const PALETTE = ['#4f9dff', '#f97316', '#22c55e', '#eab308', '#a855f7', '#ef4444', '#14b8a6', '#ec4899', '#8b5cf6', '#84cc16', '#06b6d4', '#f43f5e'];

export function seriesColor(name: string, i: number): string {
  return SEVERITY_COLORS[name.toLowerCase()] ?? PALETTE[i % PALETTE.length];
}
