import { useState, type FormEvent } from 'react';
import { ApiClient, ApiError, describeError } from '../api/client';
import type { SignInView } from '@upshift/api';
import { Notice } from '../components/Notice';
import { ThemeToggle } from '../components/ThemeToggle';
import { useTitle } from '../lib/live';
import type { ThemeChoice } from '../lib/theme';

/**
 * Sign-in with an API token: the token is posted once to `POST /api/v1/session`, which
 * answers with an httpOnly session cookie and a CSRF token. The API token is then
 * forgotten (the field is cleared); only the CSRF token and who signed in are kept.
 */
export function SignInPage({
  onSignIn,
  reason,
  theme,
  onTheme,
}: {
  onSignIn: (session: SignInView) => void;
  reason: string | undefined;
  theme: ThemeChoice;
  onTheme: (t: ThemeChoice) => void;
}) {
  useTitle('Sign in');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError('Enter an API token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const session = await new ApiClient(null).signIn(value);
      setToken('');
      onSignIn(session);
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 401
          ? 'The server does not know this token (or it expired or was revoked). Check it and try again.'
          : e instanceof ApiError && e.status === 429
            ? `Too many failed sign-ins from this address: wait a minute, then try again.`
            : describeError(e),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <div className="signin-theme">
        <ThemeToggle theme={theme} onTheme={onTheme} />
      </div>
      <form className="card signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <div className="brand signin-brand">
          <svg viewBox="0 0 16 16" width="28" height="28" aria-hidden="true">
            <path d="M8 1l6 7h-4v7H6V8H2z" fill="currentColor" />
          </svg>
          Upshift
        </div>
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">Container runtime upgrades for your fleet, in growing batches.</p>
        {reason ? <Notice tone="warn">{reason}</Notice> : null}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-describedby="token-help"
          aria-invalid={error ? true : undefined}
        />
        <p id="token-help" className="help">
          The admin token is printed when the server first starts and kept in its data directory as <code>admin-token</code>; an admin can
          create tokens for others. The token is exchanged for a session of this browser and is not kept.
        </p>
        {error ? (
          <Notice tone="bad" alert testId="signin-error">
            {error}
          </Notice>
        ) : null}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
