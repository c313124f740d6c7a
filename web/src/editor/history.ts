// Query history in localStorage: newest first, no duplicates, at most 100.

const KEY = 'vigil.history';
const MAX = 100;

export function loadHistory(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function pushHistory(query: string): string[] {
  const q = query.trim();
  if (!q) return loadHistory();
  const h = [q, ...loadHistory().filter((x) => x !== q)].slice(0, MAX);
  localStorage.setItem(KEY, JSON.stringify(h));
  return h;
}

export function clearHistory(): void {
  localStorage.removeItem(KEY);
}
