// The shell: sign-in gate, navigation, and the page for the hash route.
// Pages and actions the session's role may not use are not offered.

import { Suspense, lazy, useCallback, useEffect, useMemo, useState } from 'react';
import { api, clearToken, errorMessage, loadToken, onUnauthorized, type FieldsResponse, type Session } from './api';
import { SessionContext, makeCan, useApp as useContextStrict, type AppContext } from './session';
import { href, useRoute } from './router';
import { NAV, canUseUi } from './nav';
import { applyTheme, loadTheme, type Theme } from './theme';
import { SignIn } from './pages/SignIn';
import { SearchPage } from './pages/SearchPage';
import { AlertsPage } from './pages/AlertsPage';
import { HuntsPage } from './pages/HuntsPage';
import { OverviewPage } from './pages/OverviewPage';
import { TailPage } from './pages/TailPage';
import { AgentsPage } from './pages/AgentsPage';

// The graph page carries cytoscape; it loads when first opened.
const GraphPage = lazy(() => import('./pages/GraphPage').then((m) => ({ default: m.GraphPage })));

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(() => loadToken() !== null);
  const [fields, setFields] = useState<FieldsResponse | null>(null);
  const [bootError, setBootError] = useState<string | null>(null);

  const signOut = useCallback(() => {
    clearToken();
    setSession(null);
    setFields(null);
  }, []);

  useEffect(() => onUnauthorized(signOut), [signOut]);

  // A remembered token signs in by itself.
  useEffect(() => {
    if (!loadToken()) return;
    api
      .session()
      .then((s) => (canUseUi(s) ? setSession(s) : signOut()))
      .catch((e) => {
        setBootError(errorMessage(e));
        clearToken();
      })
      .finally(() => setChecking(false));
  }, [signOut]);

  useEffect(() => {
    if (!session) return;
    if (!makeCan(session)('search')) return;
    api.fields().then(setFields, () => setFields(null));
  }, [session]);

  const ctx = useMemo<AppContext | null>(
    () => (session ? { session, fields, can: makeCan(session), signOut } : null),
    [session, fields, signOut],
  );

  if (checking) return <div className="boot">Signing in…</div>;
  if (!ctx) return <SignIn onSignedIn={setSession} initialError={bootError} />;
  return (
    <SessionContext.Provider value={ctx}>
      <Shell />
    </SessionContext.Provider>
  );
}

function Shell() {
  const route = useRoute();
  const { session, can, signOut } = useContextStrict();
  const items = NAV.filter((n) => can(n.needs));
  const current = items.find((n) => n.page === route.page) ?? items[0];
  const [theme, setTheme] = useState<Theme>(loadTheme);
  const toggleTheme = () => {
    const t = theme === 'dark' ? 'light' : 'dark';
    applyTheme(t);
    setTheme(t);
  };
  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href={href('search')}>
          <span className="brand-mark">◆</span> Vigil
        </a>
        <nav className="nav" data-testid="nav">
          {items.map((n) => (
            <a
              key={n.page}
              href={href(n.page)}
              className={n.page === current.page ? 'active' : ''}
              data-testid={`nav-${n.page}`}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <div className="whoami" data-testid="whoami">
          <span>{session.name}</span>
          <span className={`role role-${session.role}`} data-testid="role">
            {session.role}
          </span>
          <button className="btn ghost small" onClick={toggleTheme} title={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`} data-testid="theme-toggle">
            {theme === 'dark' ? '☀' : '☾'}
          </button>
          <button className="btn ghost small" onClick={signOut} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main className="main">
        <Page page={current.page} params={route.params} />
      </main>
    </div>
  );
}

function Page({ page, params }: { page: string; params: URLSearchParams }) {
  switch (page) {
    case 'graph':
      return (
        <Suspense fallback={<div className="empty">Loading the graph…</div>}>
          <GraphPage params={params} />
        </Suspense>
      );
    case 'alerts':
      return <AlertsPage params={params} />;
    case 'hunts':
      return <HuntsPage params={params} />;
    case 'overview':
      return <OverviewPage />;
    case 'tail':
      return <TailPage params={params} />;
    case 'agents':
      return <AgentsPage />;
    default:
      return <SearchPage params={params} />;
  }
}
