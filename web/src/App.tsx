import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link, matchPath, navigate, useLocation } from './lib/router';
import type { Role, SignInView } from '@upshift/api';
import { adoptOpenSession, readSession, SessionProvider, storeSession, useSession, useStreamStatus } from './lib/session';
import { useTheme, type ThemeChoice } from './lib/theme';
import { ThemeToggle } from './components/ThemeToggle';
import { ClusterPage } from './pages/ClusterPage';
import { ClustersPage } from './pages/ClustersPage';
import { EventsPage } from './pages/EventsPage';
import { SignInPage } from './pages/SignInPage';
import { TokensPage } from './pages/TokensPage';
import { UpgradePage } from './pages/UpgradePage';
import { UpgradesPage } from './pages/UpgradesPage';
import { WebhookPage } from './pages/WebhookPage';
import { WebhooksPage } from './pages/WebhooksPage';

/** The console: sign-in, then the pages behind a header with navigation and the live status. */
export function App() {
  const [session, setSession] = useState<SignInView | null>(readSession);
  // Without a session of its own, the tab first asks for the browser's open one.
  const [adopting, setAdopting] = useState(() => session === null);
  const [signedOutReason, setSignedOutReason] = useState<string | undefined>();
  const [theme, setTheme] = useTheme();

  useEffect(() => {
    if (!adopting) return;
    const controller = new AbortController();
    void adoptOpenSession(controller.signal).then((info) => {
      if (controller.signal.aborted) return;
      if (info) {
        storeSession(info);
        setSession(info);
      }
      setAdopting(false);
    });
    return () => controller.abort();
  }, [adopting]);

  const signIn = (info: SignInView) => {
    storeSession(info);
    setSignedOutReason(undefined);
    setSession(info);
  };
  const signedOut = (reason?: string) => {
    storeSession(null);
    setSignedOutReason(reason);
    setSession(null);
  };

  if (!session && adopting) return null;
  if (!session) return <SignInPage onSignIn={signIn} reason={signedOutReason} theme={theme} onTheme={setTheme} />;
  return (
    <SessionProvider key={session.csrfToken} info={session} onSignedOut={signedOut}>
      <Shell theme={theme} onTheme={setTheme}>
        <Routes />
      </Shell>
    </SessionProvider>
  );
}

function Routes() {
  const { pathname } = useLocation();
  let params: Record<string, string> | null;
  if (pathname === '/' || pathname === '') {
    return <Redirect to="/clusters" />;
  }
  if (matchPath('/clusters', pathname)) return <ClustersPage />;
  if ((params = matchPath('/clusters/:id', pathname))) return <ClusterPage key={params['id']} clusterId={params['id'] as string} />;
  if (matchPath('/upgrades', pathname)) return <UpgradesPage />;
  if ((params = matchPath('/upgrades/:id', pathname))) return <UpgradePage key={params['id']} upgradeId={params['id'] as string} />;
  if (matchPath('/events', pathname)) return <EventsPage />;
  if (matchPath('/tokens', pathname)) return <TokensPage />;
  if (matchPath('/webhooks', pathname)) return <WebhooksPage />;
  if ((params = matchPath('/webhooks/:id', pathname))) return <WebhookPage key={params['id']} webhookRef={params['id'] as string} />;
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        There is nothing at <code>{pathname}</code>. <Link to="/clusters">Go to the clusters</Link>.
      </p>
    </section>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function LiveIndicator() {
  const status = useStreamStatus();
  const text =
    status === 'live' ? 'Live' : status === 'reconnecting' ? 'Reconnecting…' : status === 'connecting' ? 'Connecting…' : 'Offline';
  return (
    <span className={`live ${status}`} role="status" data-testid="live-status" title="Updates from the server's event stream">
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

const nav: { to: string; label: string; role?: Role }[] = [
  { to: '/clusters', label: 'Clusters' },
  { to: '/upgrades', label: 'Upgrades' },
  { to: '/events', label: 'Events' },
  { to: '/tokens', label: 'Tokens', role: 'admin' },
  { to: '/webhooks', label: 'Webhooks', role: 'admin' },
];

const roleHelp: Record<Role, string> = {
  viewer: 'viewer: can look at everything, change nothing',
  operator: 'operator: can plan, start, pause, continue and cancel upgrades',
  admin: 'admin: can also manage clusters, API tokens and webhooks',
};

function WhoAmI() {
  const { principal } = useSession();
  return (
    <span className="whoami" data-testid="principal" title={`Signed in as ${principal.name}, ${roleHelp[principal.role]}`}>
      <span className="whoami-name">{principal.name}</span>
      <span className={`role-badge role-${principal.role}`}>{principal.role}</span>
    </span>
  );
}

function Shell({ theme, onTheme, children }: { theme: ThemeChoice; onTheme: (t: ThemeChoice) => void; children: ReactNode }) {
  const { signOut, can } = useSession();
  const { pathname } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  // After a navigation, start reading at the top of the new page, as a page load would.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    window.scrollTo(0, 0);
    main.current?.focus({ preventScroll: true });
  }, [pathname]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/clusters" className="brand" aria-label="Upshift home">
          <svg viewBox="0 0 16 16" width="20" height="20" aria-hidden="true">
            <path d="M8 1l6 7h-4v7H6V8H2z" fill="currentColor" />
          </svg>
          Upshift
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((item) => !item.role || can(item.role))
              .map((item) => {
                const current = pathname === item.to || pathname.startsWith(`${item.to}/`);
                return (
                  <li key={item.to}>
                    <Link to={item.to} aria-current={current ? 'page' : undefined}>
                      {item.label}
                    </Link>
                  </li>
                );
              })}
          </ul>
        </nav>
        <div className="topbar-tools">
          <LiveIndicator />
          <WhoAmI />
          <ThemeToggle theme={theme} onTheme={onTheme} />
          <button type="button" className="ghost" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
