// Hash routes: #/search?q=..., #/graph?from=..., #/alerts, #/hunts, #/overview, #/tail.
import { useEffect, useState } from 'react';

export interface Route {
  page: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const page = (q < 0 ? h : h.slice(0, q)) || 'search';
  return { page, params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)) };
}

export function href(page: string, params: Record<string, string> = {}): string {
  const p = new URLSearchParams(params).toString();
  return `#/${page}${p ? `?${p}` : ''}`;
}

export function navigate(page: string, params: Record<string, string> = {}): void {
  window.location.hash = href(page, params);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Opens the search page with `query` and runs it. */
export function pivot(query: string): void {
  navigate('search', { q: query, run: String(Date.now()) });
}
