import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import { ApiClient, type SessionLoss } from '../api/client';
import { EventStream, type StreamStatus } from '../api/stream';
import type { PrincipalView, Role, SignInView } from '@upshift/api';

/**
 * The signed-in session. The session itself is the server's httpOnly cookie, which the
 * console never sees; what the tab keeps (in sessionStorage, so it dies with the tab and
 * survives a reload) is the session's CSRF token, its expiry and who is signed in. The API
 * token typed at sign-in is sent once and never stored.
 */
const sessionKey = 'upshift.session';

export function readSession(): SignInView | null {
  try {
    const text = sessionStorage.getItem(sessionKey);
    if (!text) return null;
    const parsed = JSON.parse(text) as Partial<SignInView>;
    if (typeof parsed.csrfToken !== 'string' || !parsed.principal || typeof parsed.principal.name !== 'string') return null;
    if (typeof parsed.expiresAt === 'string' && Date.parse(parsed.expiresAt) <= Date.now()) return null;
    return { csrfToken: parsed.csrfToken, expiresAt: parsed.expiresAt ?? '', principal: parsed.principal };
  } catch {
    return null;
  }
}

export function storeSession(session: SignInView | null): void {
  try {
    if (session) sessionStorage.setItem(sessionKey, JSON.stringify(session));
    else sessionStorage.removeItem(sessionKey);
  } catch {
    // storage refused: the session lasts until reload
  }
}

/**
 * A new tab (or one whose storage was cleared) shares the browser's open session: the
 * cookie is the browser's, and GET /session gives its CSRF token to this origin only.
 * Without it the tab would have to sign in again, which would end the other tabs' session.
 */
export async function adoptOpenSession(signal?: AbortSignal): Promise<SignInView | null> {
  try {
    const open = await new ApiClient(null).openSession(signal);
    if (typeof open.csrfToken !== 'string' || typeof open.principal?.name !== 'string') return null;
    return { csrfToken: open.csrfToken, expiresAt: open.expiresAt ?? '', principal: open.principal };
  } catch {
    return null;
  }
}

const rank: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Whether a role includes another (admin ⊃ operator ⊃ viewer), as the server decides. */
export function roleAllows(have: Role, need: Role): boolean {
  return (rank[have] ?? 0) >= rank[need];
}

/** The sentence a disabled or missing action shows: which role it needs and what this session has. */
export function needsRoleText(need: Role, principal: PrincipalView): string {
  return `Needs the ${need} role; ${principal.name} is ${principal.role}.`;
}

export interface Session {
  api: ApiClient;
  stream: EventStream;
  principal: PrincipalView;
  /** Whether the signed-in role may do what needs `role`. */
  can: (role: Role) => boolean;
  /** Ends the session on the server (DELETE /session), then shows the sign-in page. */
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

const lostMessages: Record<SessionLoss, string> = {
  unauthorized: 'Your session has ended: it expired, was signed out elsewhere, or its token was revoked. Sign in again.',
  csrf: 'This tab’s session was replaced (a sign-in in another tab?) and can no longer make changes. Sign in again.',
};

export function SessionProvider({
  info,
  onSignedOut,
  children,
}: {
  info: SignInView;
  /** The session is over; `reason` is shown on the sign-in page. */
  onSignedOut: (reason?: string) => void;
  children: ReactNode;
}) {
  const [parts] = useState(() => {
    let over = false;
    const lost = (why: SessionLoss) => {
      if (over) return;
      over = true;
      onSignedOut(lostMessages[why]);
    };
    const api = new ApiClient(info.csrfToken, lost);
    const stream = new EventStream({ onUnauthorized: () => lost('unauthorized') });
    const signOut = async () => {
      if (over) return;
      over = true;
      try {
        await api.signOut();
      } catch {
        // Signed out here either way; the server forgets the session when it expires.
      }
      onSignedOut();
    };
    return { api, stream, signOut, lost };
  });
  const session: Session = {
    api: parts.api,
    stream: parts.stream,
    signOut: parts.signOut,
    principal: info.principal,
    can: (role: Role) => roleAllows(info.principal.role, role),
  };
  useEffect(() => {
    parts.stream.start();
    return () => parts.stream.stop();
  }, [parts]);
  // Ask the server who this is (a 401 signs out): the cookie is shared by the browser's
  // tabs, and a sign-in in another tab as someone else replaced this tab's session.
  const { name, role } = info.principal;
  useEffect(() => {
    const controller = new AbortController();
    parts.api
      .whoAmI(controller.signal)
      .then((principal) => {
        if (principal.name !== name || principal.role !== role) parts.lost('csrf');
      })
      .catch(() => {});
    return () => controller.abort();
  }, [parts, name, role]);
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
