import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, describeError, type ApiClient } from '../api/client';
import type { DeliveryView, EventView, WebhookView } from '@upshift/api';
import { webhookEventTypes, webhookFormats, type WebhookEventType, type WebhookFormat } from '@upshift/api/enums';
import { AdminListPage } from '../components/AdminListPage';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { Dialog, FormFooter } from '../components/Dialog';
import { SecretOnceDialog } from '../components/SecretOnceDialog';
import { formatClock, formatTime, plural } from '../lib/format';
import { useLiveResource, useTitle } from '../lib/live';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';

/** What each event a webhook may subscribe to means, for the Create dialog's checkboxes. */
export const webhookEventHelp: Record<WebhookEventType, string> = {
  'upgrade.started': 'an upgrade started',
  'upgrade.paused': 'an operator paused an upgrade',
  'upgrade.auto_paused': 'an upgrade paused itself after a failed node',
  'upgrade.resumed': 'a paused upgrade was resumed',
  'upgrade.continued': 'an upgrade went on without the snapshots that failed',
  'upgrade.canceled': 'an operator canceled an upgrade',
  'upgrade.auto_canceled': 'an upgrade paused too long was canceled automatically',
  'upgrade.auto_cancel_warning': 'a paused upgrade will be canceled automatically within a day',
  'upgrade.completed': 'an upgrade finished',
  'upgrade.snapshot_failed': 'snapshots failed: the upgrade waits for Continue or Quit',
  'upgrade.refused': 'a start was refused',
  'snapshot.failed': 'one node’s snapshot failed',
  'batch.finished': 'a batch of nodes finished',
  'node.failed': 'a node’s upgrade failed',
  'node.down': 'a node’s agent stopped answering',
  'cluster.unavailable': 'a cluster became unavailable',
  'cluster.available': 'a cluster is available again',
  'agent.join_refused': 'an agent was refused joining under a node’s name',
};

const formatHelp: Record<WebhookFormat, string> = {
  json: 'the event as JSON: type, upgrade, cluster, message, time and a link to the console',
  slack: 'a {"text": …} message for Slack or Mattermost incoming webhooks',
};

/** How many of a webhook's newest deliveries the list reads to find its last error. */
const RECENT_DELIVERIES = 20;

/** A webhook's newest failed attempt and whether a later one got through. */
export interface LastError {
  at: string;
  message: string;
  /** A later attempt of these deliveries succeeded. */
  since: string | null;
}

export function lastErrorOf(deliveries: DeliveryView[]): LastError | null {
  const attempts = deliveries.flatMap((d) => d.attempts).sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  const failed = attempts.find((a) => a.error !== null);
  if (!failed) return null;
  const later = attempts.find((a) => a.error === null && Date.parse(a.at) > Date.parse(failed.at));
  return { at: failed.at, message: failed.error ?? '', since: later?.at ?? null };
}

interface WebhookRow extends WebhookView {
  lastError: LastError | null;
}

/**
 * The webhooks with the last error of each: the list answer has the delivery counts but
 * not the errors, so each webhook's newest deliveries are read as well (an admin page
 * with a handful of webhooks).
 */
async function loadWebhooks(api: ApiClient, signal: AbortSignal): Promise<WebhookRow[]> {
  const webhooks = await api.listWebhooks(signal);
  return Promise.all(
    webhooks.map(async (w) => {
      // A webhook deleted meanwhile (by another admin) has no deliveries left; the next read drops it.
      const deliveries = await api.listDeliveries(w.id, RECENT_DELIVERIES, signal).catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 404) return [];
        throw error;
      });
      return { ...w, lastError: lastErrorOf(deliveries) };
    }),
  );
}

/** Events that change a webhook list or may have queued a delivery. */
export function webhookRelevant(event: EventView): boolean {
  return event.type.startsWith('webhook.') || (webhookEventTypes as readonly string[]).includes(event.type);
}

/**
 * Deliveries change state without an event of their own (an attempt is not an event), so
 * pages showing them also re-read on a timer: often while some are being retried.
 */
export function useDeliveryPolling(reload: () => void, retrying: boolean): void {
  useEffect(() => {
    const timer = setInterval(reload, retrying ? 2000 : 10_000);
    return () => clearInterval(timer);
  }, [reload, retrying]);
}

/**
 * Webhooks (admin only): where events are POSTed, signed with a secret that is shown once
 * when the webhook is created and never again; each with its deliveries' state and last
 * error, a page of deliveries, and deletion.
 */
export function WebhooksPage() {
  useTitle('Webhooks');
  const { api, can } = useSession();
  const admin = can('admin');
  const webhooks = useLiveResource((signal) => (admin ? loadWebhooks(api, signal) : Promise.resolve([])), 'webhooks', {
    relevant: webhookRelevant,
  });
  const [deleting, setDeleting] = useState<WebhookView | null>(null);
  const items = webhooks.data ?? [];
  useDeliveryPolling(
    webhooks.reload,
    items.some((w) => w.pending > 0),
  );

  return (
    <AdminListPage
      title="Webhooks"
      what="Managing webhooks"
      subtitle={
        <>
          Events POSTed to your receivers, signed with <code>X-Upshift-Signature</code>. A refused delivery is retried with a growing wait
          (up to 5 minutes apart) for 24 hours.
        </>
      }
      createLabel="Create webhook"
      list={webhooks}
      table={{
        className: 'webhooks-table',
        testId: 'webhooks-table',
        columns: ['Name', 'URL', 'Events', 'Format', 'Created', 'Latest deliveries'],
      }}
      rows={
        <>
          {items.map((w) => (
            <tr key={w.id} data-webhook={w.name}>
              <th scope="row">
                <Link to={`/webhooks/${encodeURIComponent(w.name)}`}>{w.name}</Link>
                <div className="muted small mono">{w.id}</div>
              </th>
              <td className="mono-wrap small" data-testid="webhook-url">
                {w.url}
              </td>
              <td>
                <ul className="event-types" data-testid="webhook-events">
                  {w.events.map((e) => (
                    <li key={e}>
                      <code>{e}</code>
                    </li>
                  ))}
                </ul>
              </td>
              <td>{w.format}</td>
              <td>
                {formatTime(w.createdAt)}
                <div className="muted small">by {w.createdBy}</div>
              </td>
              <td data-testid="webhook-deliveries">
                <DeliveryCounts webhook={w} />
                <LastErrorLine lastError={w.lastError} />
              </td>
              <td className="actions-cell">
                <Link to={`/webhooks/${encodeURIComponent(w.name)}`} className="button small">
                  Deliveries
                </Link>{' '}
                <button type="button" className="danger-outline small" aria-label={`Delete ${w.name}`} onClick={() => setDeleting(w)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </>
      }
      createDialog={(close) => <CreateWebhookDialog onClose={close} onCreated={webhooks.reload} />}
      noun="webhooks"
      empty={
        <p className="muted" data-testid="no-webhooks">
          No webhook yet. Create one to be told when an upgrade pauses itself, fails a snapshot or is about to be canceled.
        </p>
      }
    >
      {deleting ? (
        <DeleteWebhookDialog
          webhook={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            setDeleting(null);
            webhooks.reload();
          }}
        />
      ) : null}
    </AdminListPage>
  );
}

/** Sent, pending (being retried) and failed (given up) deliveries, as badges; nothing yet said as such. */
export function DeliveryCounts({ webhook }: { webhook: Pick<WebhookView, 'sent' | 'pending' | 'failed'> }) {
  const { sent, pending, failed } = webhook;
  if (sent + pending + failed === 0) return <span className="muted">No delivery yet</span>;
  return (
    <span className="delivery-counts" data-testid="delivery-counts">
      <span className="badge ok">{sent} sent</span> <span className={`badge ${pending > 0 ? 'warn' : 'muted'}`}>{pending} pending</span>{' '}
      <span className={`badge ${failed > 0 ? 'bad' : 'muted'}`}>{failed} failed</span>
    </span>
  );
}

function LastErrorLine({ lastError }: { lastError: LastError | null }) {
  if (!lastError) return null;
  return (
    <div className={lastError.since ? 'muted small' : 'error-text small'} data-testid="last-error">
      Last error {formatClock(lastError.at)}: {lastError.message}
      {lastError.since ? ` (delivered since, ${formatClock(lastError.since)})` : ''}
    </div>
  );
}

/** 32 random bytes from the browser's generator, as hex: the secret never travels but in the create request. */
function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function CreateWebhookDialog({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<WebhookEventType[]>(['upgrade.auto_paused', 'upgrade.auto_cancel_warning']);
  const [format, setFormat] = useState<WebhookFormat>('json');
  const [secretChoice, setSecretChoice] = useState<'generate' | 'type'>('generate');
  const [typedSecret, setTypedSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ webhook: WebhookView; secret: string } | null>(null);

  const toggle = (type: WebhookEventType, on: boolean) =>
    setEvents((current) => webhookEventTypes.filter((t) => (t === type ? on : current.includes(t))));

  // The server checks every field and says what to fix; the console shows its words.
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const secret = secretChoice === 'generate' ? generateSecret() : typedSecret;
    try {
      const webhook = await api.createWebhook({ name: name.trim(), url: url.trim(), events, secret, format });
      setCreated({ webhook, secret });
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
        title={`Webhook ${created.webhook.name} created`}
        testId="webhook-created-dialog"
        warningTitle="Copy the secret now"
        warningTestId="webhook-secret-warning"
        warning={
          <>
            This is the only time it is shown: Upshift keeps it sealed and never returns it. The receiver needs it to check the{' '}
            <code>X-Upshift-Signature</code> header (<code>sha256=</code> and the HMAC-SHA256 of the body). If it is lost, delete the
            webhook and create another.
          </>
        }
        secret={created.secret}
        secretLabel="Signing secret"
        secretTestId="webhook-secret"
        onClose={onClose}
      >
        {created.webhook.events.join(', ')} → <span className="mono">{created.webhook.url}</span> ({created.webhook.format})
      </SecretOnceDialog>
    );
  }

  return (
    <Dialog title="Create webhook" onClose={onClose} wide testId="create-webhook-dialog">
      <form className="form-grid" onSubmit={submit} noValidate>
        <label htmlFor="wh-name">Name</label>
        <input
          id="wh-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoFocus
          required
          maxLength={63}
          placeholder="ops-pager"
          aria-describedby="wh-name-help"
        />
        <p id="wh-name-help" className="help span-field">
          Lowercase letters, digits and dashes; receivers get it as <code>webhook</code> in each event.
        </p>
        <label htmlFor="wh-url">URL</label>
        <input
          id="wh-url"
          type="url"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
          required
          maxLength={2000}
          placeholder="https://hooks.example.com/upshift"
          className="mono"
          spellCheck={false}
        />
        <fieldset className="span-all event-choices">
          <legend className="form-label">Events</legend>
          {webhookEventTypes.map((type) => (
            <label key={type} className="checkbox">
              <input type="checkbox" value={type} checked={events.includes(type)} onChange={(e) => toggle(type, e.target.checked)} />
              <span>
                <code>{type}</code>
                <span className="event-help">{webhookEventHelp[type]}</span>
              </span>
            </label>
          ))}
        </fieldset>
        <label htmlFor="wh-format">Format</label>
        <select
          id="wh-format"
          value={format}
          onChange={(e) => setFormat(e.target.value as WebhookFormat)}
          aria-describedby="wh-format-help"
        >
          {webhookFormats.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </select>
        <p id="wh-format-help" className="help span-field">
          {formatHelp[format]}
        </p>
        <fieldset className="span-all secret-choice">
          <legend className="form-label">Signing secret</legend>
          <label className="checkbox">
            <input
              type="radio"
              name="wh-secret-choice"
              checked={secretChoice === 'generate'}
              onChange={() => setSecretChoice('generate')}
            />
            Generate one in this browser (shown once after creating)
          </label>
          <label className="checkbox">
            <input type="radio" name="wh-secret-choice" checked={secretChoice === 'type'} onChange={() => setSecretChoice('type')} />
            Type the receiver’s secret
          </label>
          {secretChoice === 'type' ? (
            <input
              aria-label="Secret"
              type="password"
              value={typedSecret}
              onChange={(e) => setTypedSecret(e.target.value)}
              autoComplete="new-password"
              maxLength={1024}
              placeholder="16 characters or more"
            />
          ) : null}
        </fieldset>
        <FormFooter error={error} errorTestId="create-webhook-error" busy={busy} submitLabel="Create webhook" onCancel={onClose} />
      </form>
    </Dialog>
  );
}

export function DeleteWebhookDialog({ webhook, onClose, onDeleted }: { webhook: WebhookView; onClose: () => void; onDeleted: () => void }) {
  const { api } = useSession();
  const { pending } = webhook;
  const dropped =
    pending === 0
      ? ''
      : pending === 1
        ? ', and the delivery still being retried is dropped'
        : `, and the ${plural(pending, 'delivery', 'deliveries')} still being retried are dropped`;
  return (
    <ConfirmDialog
      title={`Delete ${webhook.name}?`}
      testId="delete-webhook-dialog"
      confirmLabel="Delete webhook"
      busyLabel="Deleting…"
      action={() => api.deleteWebhook(webhook.id)}
      onDone={onDeleted}
      onClose={onClose}
    >
      <p>
        Nothing more is sent to <span className="mono">{webhook.url}</span>
        {dropped}. Its delivery history is deleted with it. This cannot be undone: to be told again, create a new webhook.
      </p>
    </ConfirmDialog>
  );
}
