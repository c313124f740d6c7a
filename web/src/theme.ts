// Dark by default; a light theme on the toggle, remembered in localStorage.

export type Theme = 'dark' | 'light';
const KEY = 'vigil.theme';

export function loadTheme(): Theme {
  return localStorage.getItem(KEY) === 'light' ? 'light' : 'dark';
}

export function applyTheme(t: Theme): void {
  document.documentElement.dataset.theme = t;
  localStorage.setItem(KEY, t);
}
