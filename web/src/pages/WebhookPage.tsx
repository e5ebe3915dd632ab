import { useState } from 'react';
import type { DeliveryAttemptView, DeliveryView, WebhookView } from '@upshift/api';
import { ErrorNotice, Loading } from '../components/Notice';
import { RoleNote } from '../components/RoleGate';
import { formatTime, plural } from '../lib/format';
import { useLiveResource, useTitle } from '../lib/live';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { DeleteWebhookDialog, DeliveryCounts, useDeliveryPolling, webhookRelevant } from './WebhooksPage';

/** How many deliveries the page shows, newest first (the API's default page). */
const DELIVERY_LIMIT = 50;

const stateTone: Record<DeliveryView['state'], string> = { sent: 'ok', pending: 'warn', failed: 'bad' };

/**
 * One webhook (by id or name) and its deliveries, newest first: each delivery's event,
 * state and every attempt with its time, the receiver's answer or the error, and when the
 * next attempt is due. Deliveries being retried are re-read every two seconds.
 */
export function WebhookPage({ webhookRef }: { webhookRef: string }) {
  const { api, can } = useSession();
  const admin = can('admin');
  const resource = useLiveResource(
    async (signal): Promise<{ webhook: WebhookView; deliveries: DeliveryView[] } | null> => {
      if (!admin) return null;
      const [webhook, deliveries] = await Promise.all([
        api.getWebhook(webhookRef, signal),
        api.listDeliveries(webhookRef, DELIVERY_LIMIT, signal),
      ]);
      return { webhook, deliveries };
    },
    `webhook:${webhookRef}`,
    { relevant: webhookRelevant },
  );
  const [deleting, setDeleting] = useState(false);
  const webhook = resource.data?.webhook;
  const deliveries = resource.data?.deliveries ?? [];
  useTitle(webhook ? `Webhook ${webhook.name}` : 'Webhook');
  useDeliveryPolling(
    resource.reload,
    deliveries.some((d) => d.state === 'pending'),
  );

  const breadcrumb = (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <ol>
        <li>
          <Link to="/webhooks">Webhooks</Link>
        </li>
        <li aria-current="page">{webhook?.name ?? webhookRef}</li>
      </ol>
    </nav>
  );

  if (!admin) {
    return (
      <section className="page" aria-labelledby="page-title">
        {breadcrumb}
        <h1 id="page-title">Webhook {webhookRef}</h1>
        <RoleNote need="admin" what="Managing webhooks" />
      </section>
    );
  }

  return (
    <section className="page" aria-labelledby="page-title">
      {breadcrumb}
      <div className="page-head">
        <div>
          <h1 id="page-title">Webhook {webhook?.name ?? webhookRef}</h1>
          {webhook ? (
            <p className="subtitle">
              <span className="mono">{webhook.url}</span> · {webhook.format} · created {formatTime(webhook.createdAt)} by{' '}
              {webhook.createdBy}
            </p>
          ) : null}
        </div>
        {webhook ? (
          <div className="toolbar">
            <button type="button" className="danger-outline" onClick={() => setDeleting(true)}>
              Delete webhook
            </button>
          </div>
        ) : null}
      </div>
      <ErrorNotice error={resource.error} prefix="Could not load the webhook" />
      {resource.data === undefined && !resource.error ? <Loading what="deliveries" /> : null}
      {webhook ? (
        <div className="webhook-summary">
          <p>
            Events:{' '}
            {webhook.events.map((e, i) => (
              <span key={e}>
                {i > 0 ? ', ' : ''}
                <code>{e}</code>
              </span>
            ))}
          </p>
          <p>
            All deliveries: <DeliveryCounts webhook={webhook} />
          </p>
        </div>
      ) : null}
      {webhook && deliveries.length === 0 ? (
        <p className="muted" data-testid="no-deliveries">
          No delivery yet: none of its events happened since it was created.
        </p>
      ) : null}
      {deliveries.length > 0 ? (
        <>
          <h2>Deliveries</h2>
          <p className="muted small">
            {deliveries.length < DELIVERY_LIMIT
              ? `${plural(deliveries.length, 'delivery', 'deliveries')}, newest first.`
              : `The newest ${DELIVERY_LIMIT}; older ones are listed by the CLI: upshift webhook deliveries ${webhook?.name ?? webhookRef} --limit 500.`}
          </p>
          <div className="table-wrap">
            <table className="deliveries-table" data-testid="deliveries-table">
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">State</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Next attempt</th>
                </tr>
              </thead>
              <tbody>
                {deliveries.map((d) => (
                  <tr key={d.id} data-delivery={d.id} data-event-type={d.eventType}>
                    <th scope="row">
                      <code>{d.eventType}</code>
                      <div className="small">{d.message}</div>
                      <div className="muted small">
                        {formatTime(d.createdAt)}
                        {d.upgradeId ? (
                          <>
                            {' · '}
                            <Link to={`/upgrades/${encodeURIComponent(d.upgradeId)}`} className="mono">
                              {d.upgradeId}
                            </Link>
                          </>
                        ) : null}
                      </div>
                    </th>
                    <td>
                      <span className={`badge ${stateTone[d.state]}`} data-testid="delivery-state">
                        {d.state}
                      </span>
                      {d.finishedAt ? <div className="muted small">{formatTime(d.finishedAt)}</div> : null}
                    </td>
                    <td>
                      <ol className="attempts" data-testid="delivery-attempts">
                        {d.attempts.map((a, i) => (
                          <li key={i} className={a.error === null ? undefined : 'error-text'}>
                            <span className="muted">{formatTime(a.at)}</span> {attemptOutcome(a)}
                          </li>
                        ))}
                      </ol>
                      {d.attempts.length === 0 ? <span className="muted">not tried yet</span> : null}
                    </td>
                    <td data-testid="delivery-next">{d.nextAttemptAt ? formatTime(d.nextAttemptAt) : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      {deleting && webhook ? (
        <DeleteWebhookDialog webhook={webhook} onClose={() => setDeleting(false)} onDeleted={() => navigate('/webhooks')} />
      ) : null}
    </section>
  );
}

/** `HTTP 200`, or the error as the server recorded it (`the receiver answered HTTP 500`, a refused connection, a timeout). */
function attemptOutcome(a: DeliveryAttemptView): string {
  if (a.error !== null) return a.error;
  return a.status === null ? 'sent' : `HTTP ${a.status}`;
}
