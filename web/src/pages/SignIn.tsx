import { useState, type FormEvent } from 'react';
import { api, errorMessage, saveToken, type Session } from '../api';
import { canUseUi } from '../nav';

export function SignIn({ onSignedIn, initialError }: { onSignedIn: (s: Session) => void; initialError: string | null }) {
  const [token, setToken] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<string | null>(initialError);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    try {
      const s = await api.session(t);
      if (!canUseUi(s)) {
        setError(`This is ${s.role === 'ingest' ? 'an ingest' : `a ${s.role}`} token: it can only send events, not use the analyst UI. Sign in with a viewer, analyst or admin token.`);
        return;
      }
      saveToken(t, remember);
      onSignedIn(s);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="signin">
      <form className="signin-card" onSubmit={submit} data-testid="signin-form">
        <h1>
          <span className="brand-mark">◆</span> Vigil
        </h1>
        <p className="dim">Sign in with an API token (<code>vigil token create --role analyst</code>).</p>
        <label className="field">
          <span>Token</span>
          <input
            type="password"
            autoFocus
            autoComplete="off"
            value={token}
            placeholder="vgl_…"
            onChange={(e) => setToken(e.target.value)}
            data-testid="token-input"
          />
        </label>
        <label className="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} /> Remember on this browser
        </label>
        {error && (
          <div className="error-box" data-testid="signin-error">
            {error}
          </div>
        )}
        <button className="btn primary" type="submit" disabled={busy || !token.trim()} data-testid="signin-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
