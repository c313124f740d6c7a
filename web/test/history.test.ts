import { beforeEach, describe, expect, it, vi } from 'vitest';
import { clearHistory, loadHistory, pushHistory } from '../src/editor/history';

/** A Map-backed localStorage (node has none). */
function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => void m.delete(k),
    setItem: (k, v) => void m.set(k, String(v)),
  };
}

describe('query history', () => {
  beforeEach(() => vi.stubGlobal('localStorage', memoryStorage()));

  it('starts empty', () => expect(loadHistory()).toEqual([]));

  it('keeps the newest first, trimmed, without duplicates', () => {
    pushHistory('a');
    pushHistory('  b  ');
    pushHistory('c');
    expect(pushHistory('a')).toEqual(['a', 'c', 'b']);
    expect(loadHistory()).toEqual(['a', 'c', 'b']);
  });

  it('ignores blank queries', () => {
    pushHistory('x');
    expect(pushHistory('   ')).toEqual(['x']);
    expect(loadHistory()).toEqual(['x']);
  });

  it('keeps at most 100', () => {
    for (let i = 0; i < 120; i++) pushHistory(`q${i}`);
    const h = loadHistory();
    expect(h).toHaveLength(100);
    expect(h[0]).toBe('q119');
    expect(h[99]).toBe('q20');
  });

  it.each([['not json'], ['{"a":1}'], ['"str"'], ['[1, "ok", null]']])('survives a stored %s', (stored) => {
    localStorage.setItem('vigil.history', stored);
    expect(loadHistory()).toEqual(stored.includes('"ok"') ? ['ok'] : []);
  });

  it('clears', () => {
    pushHistory('a');
    clearHistory();
    expect(loadHistory()).toEqual([]);
  });
});
