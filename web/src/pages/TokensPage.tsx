import { useState, type FormEvent } from 'react';
import { describeError } from '../api/client';
import type { ApiTokenView, CreatedTokenView, Role } from '@upshift/api';
import { roles } from '@upshift/api/enums';
import { AdminListPage } from '../components/AdminListPage';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { Dialog, FormFooter } from '../components/Dialog';
import { SecretOnceDialog } from '../components/SecretOnceDialog';
import { formatTime } from '../lib/format';
import { useLiveResource, useNow, useTitle } from '../lib/live';
import { useSession } from '../lib/session';

const expiryChoices: { label: string; seconds: number | undefined }[] = [
  { label: 'Never', seconds: undefined },
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 86_400 },
  { label: '7 days', seconds: 7 * 86_400 },
  { label: '30 days', seconds: 30 * 86_400 },
  { label: '90 days', seconds: 90 * 86_400 },
  { label: '1 year', seconds: 365 * 86_400 },
];

const roleDescription: Record<Role, string> = {
  viewer: 'Viewer: sees clusters, upgrades and events; changes nothing.',
  operator: 'Operator: also plans, starts, pauses, continues and cancels upgrades.',
  admin: 'Admin: also creates and deletes clusters and manages tokens.',
};

function tokenStatus(t: ApiTokenView, now: number): { label: string; tone: string } {
  if (t.revokedAt) return { label: 'Revoked', tone: 'muted' };
  if (t.expiresAt && Date.parse(t.expiresAt) <= now) return { label: 'Expired', tone: 'muted' };
  return { label: 'Active', tone: 'ok' };
}

/**
 * API tokens (admin only): who has one and with which role, a new one (its secret shown
 * once), and revocation, which also ends the console sessions signed in with it.
 */
export function TokensPage() {
  useTitle('Tokens');
  const { api, can } = useSession();
  const admin = can('admin');
  const now = useNow(30_000);
  const tokens = useLiveResource((signal) => (admin ? api.listTokens(signal) : Promise.resolve([])), 'tokens', {
    relevant: (e) => e.type === 'token.created' || e.type === 'token.revoked',
  });
  const [revoking, setRevoking] = useState<ApiTokenView | null>(null);
  const items = tokens.data ?? [];
  return (
    <AdminListPage
      title="Tokens"
      what="Managing API tokens"
      subtitle={
        <>
          API tokens for the CLI, scripts and the console’s sign-in. Only a digest of each token is stored: a lost token cannot be shown
          again, only replaced.
        </>
      }
      createLabel="Create token"
      list={tokens}
      table={{ className: 'tokens-table', testId: 'tokens-table', columns: ['Name', 'Role', 'Status', 'Created', 'Created by', 'Expires'] }}
      rows={
        <>
          {items.map((t) => {
            const status = tokenStatus(t, now);
            return (
              <tr key={t.id} data-token={t.name}>
                <th scope="row">
                  {t.name}
                  <div className="muted small mono">{t.id}</div>
                </th>
                <td>
                  <span className={`role-badge role-${t.role}`}>{t.role}</span>
                </td>
                <td>
                  <span className={`badge ${status.tone}`} data-testid="token-status">
                    {status.label}
                  </span>
                  {t.revokedAt ? <div className="muted small">{formatTime(t.revokedAt)}</div> : null}
                </td>
                <td>{formatTime(t.createdAt)}</td>
                <td>{t.createdBy}</td>
                <td>{t.expiresAt ? formatTime(t.expiresAt) : 'Never'}</td>
                <td className="actions-cell">
                  {status.label === 'Revoked' ? null : (
                    <button type="button" className="danger-outline small" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </>
      }
      createDialog={(close) => <CreateTokenDialog onClose={close} onCreated={tokens.reload} />}
      noun="tokens"
      empty={<p className="muted">No API token yet. The admin token of the server’s data directory is not listed here.</p>}
    >
      {revoking ? (
        <RevokeTokenDialog
          token={revoking}
          onClose={() => setRevoking(null)}
          onRevoked={() => {
            setRevoking(null);
            tokens.reload();
          }}
        />
      ) : null}
    </AdminListPage>
  );
}

function CreateTokenDialog({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [expiry, setExpiry] = useState('0');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedTokenView | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(trimmed)) {
      setError('The name is 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const seconds = expiryChoices[Number(expiry)]?.seconds;
      const result = await api.createToken({ name: trimmed, role, ...(seconds === undefined ? {} : { expiresInSeconds: seconds }) });
      setCreated(result);
      onCreated();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  if (created) {
    return (
      <SecretOnceDialog
        title={`Token ${created.name} created`}
        testId="token-created-dialog"
        warningTitle="Copy the token now"
        warningTestId="token-secret-warning"
        warning={
          <>
            This is the only time it is shown: Upshift keeps only a digest of it. Store it in a password manager or a secret store; if it is
            lost, revoke it and create another.
          </>
        }
        secret={created.token}
        secretLabel="Token"
        secretTestId="token-secret"
        onClose={onClose}
      >
        Role <strong>{created.role}</strong>
        {created.expiresAt ? `, expires ${formatTime(created.expiresAt)}` : ', does not expire'}. Use it to sign in to the console, or with
        the CLI as <code>UPSHIFT_TOKEN</code>.
      </SecretOnceDialog>
    );
  }

  return (
    <Dialog title="Create token" onClose={onClose} testId="create-token-dialog">
      <form className="form-grid" onSubmit={submit} noValidate>
        <label htmlFor="tk-name">Name</label>
        <input
          id="tk-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoFocus
          required
          maxLength={63}
          pattern="[A-Za-z0-9][A-Za-z0-9._\-]*"
          placeholder="ci-pipeline"
          aria-describedby="tk-name-help"
        />
        <p id="tk-name-help" className="help span-field">
          Who or what uses it; events record its actions as <code>token:{name.trim() || 'name'}</code>.
        </p>
        <label htmlFor="tk-role">Role</label>
        <select id="tk-role" value={role} onChange={(e) => setRole(e.target.value as Role)} aria-describedby="tk-role-help">
          {roles.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <p id="tk-role-help" className="help span-field">
          {roleDescription[role]}
        </p>
        <label htmlFor="tk-expiry">Expires after</label>
        <select id="tk-expiry" value={expiry} onChange={(e) => setExpiry(e.target.value)}>
          {expiryChoices.map((c, i) => (
            <option key={c.label} value={String(i)}>
              {c.label}
            </option>
          ))}
        </select>
        <FormFooter error={error} errorTestId="create-token-error" busy={busy} submitLabel="Create token" onCancel={onClose} />
      </form>
    </Dialog>
  );
}

function RevokeTokenDialog({ token, onClose, onRevoked }: { token: ApiTokenView; onClose: () => void; onRevoked: () => void }) {
  const { api } = useSession();
  return (
    <ConfirmDialog
      title={`Revoke ${token.name}?`}
      testId="revoke-token-dialog"
      confirmLabel="Revoke token"
      busyLabel="Revoking…"
      action={() => api.revokeToken(token.id)}
      onDone={onRevoked}
      onClose={onClose}
    >
      <p>
        Anything using this {token.role} token stops working at once, and consoles signed in with it are signed out. This cannot be undone:
        to give access again, create a new token.
      </p>
    </ConfirmDialog>
  );
}
