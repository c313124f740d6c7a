// Display helpers.

export function fmtNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? n.toLocaleString() : n.toFixed(2);
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A bucket label: HH:MM within a day, else MM-DD HH:MM (UTC). */
export function fmtBucket(iso: string, spanMs: number): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = d.toISOString();
  if (spanMs >= 86400000) return s.slice(0, 10);
  if (spanMs >= 3600000) return `${s.slice(5, 10)} ${s.slice(11, 16)}`;
  return s.slice(11, 16);
}

export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string') return String(iso ?? '');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function severityName(v: unknown): string {
  const names = ['unknown', 'info', 'low', 'medium', 'high', 'critical', 'fatal'];
  if (typeof v === 'number') return names[v] ?? String(v);
  return String(v ?? '');
}

/** Capabilities as short words: `{"ebpf": true, "xdp": false}` → ["ebpf"]. */
export function capabilityList(c: unknown): string[] {
  if (Array.isArray(c)) return c.map(String);
  if (c && typeof c === 'object')
    return Object.entries(c as Record<string, unknown>)
      .filter(([, v]) => v !== false && v !== null && v !== undefined && v !== '')
      .map(([k, v]) => (v === true ? k : `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`));
  return [];
}
