import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import { ApiClient } from '../api/client';
import { EventStream, type StreamStatus } from '../api/stream';

/**
 * The signed-in session: the API token (kept in sessionStorage, so it dies with the tab),
 * the REST client and the one live event stream every page listens to.
 */
const tokenKey = 'upshift.token';

export function readToken(): string | null {
  try {
    return sessionStorage.getItem(tokenKey);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(tokenKey, token);
    else sessionStorage.removeItem(tokenKey);
  } catch {
    // storage refused: the session lasts until reload
  }
}

export interface Session {
  api: ApiClient;
  stream: EventStream;
  signOut: (reason?: string) => void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({
  token,
  onSignOut,
  children,
}: {
  token: string;
  onSignOut: (reason?: string) => void;
  children: ReactNode;
}) {
  const [session] = useState<Session>(() => {
    const expired = () => onSignOut('The server no longer accepts this token. Sign in again.');
    return {
      api: new ApiClient(token, expired),
      stream: new EventStream({ token, onUnauthorized: expired }),
      signOut: onSignOut,
    };
  });
  useEffect(() => {
    session.stream.start();
    return () => session.stream.stop();
  }, [session]);
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}

export function useStreamStatus(): StreamStatus {
  const { stream } = useSession();
  return useSyncExternalStore(
    (listener) => stream.onStatus(listener),
    () => stream.status,
  );
}
