// A chart.js chart in a React component; only the pieces used are registered
// so the bundle stays small.

import { useEffect, useRef } from 'react';
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
}

export function ChartCanvas({ config, height = 220, onClickIndex, testId }: ChartCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const click = useRef(onClickIndex);
  click.current = onClickIndex;

  useEffect(() => {
    if (!canvas.current) return undefined;
    const chart = new Chart(canvas.current, {
      ...config,
      options: {
        ...config.options,
        responsive: true,
        maintainAspectRatio: false,
        onClick: (_evt, elements, c) => {
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
    return () => chart.destroy();
  }, [config]);

  return (
    <div className="chart-box" style={{ height }} data-testid={testId}>
      <canvas ref={canvas} />
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
