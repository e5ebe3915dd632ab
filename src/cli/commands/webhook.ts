import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { DeliveryList, DeliveryView, WebhookList, WebhookView } from '../../api/index.js';
import { webhookEventTypes, webhookFormats } from '../../domain/webhooks.js';
import { clientCommand, parseNameList, parseWholeNumber, runAction } from '../command.js';
import { usageError } from '../errors.js';

/** The secret from a file or from standard input, one trailing newline dropped (as `echo` or an editor leaves it). */
function readSecret(opts: { secretFile?: string; secretStdin?: boolean }): string {
  if ((opts.secretFile === undefined) === (opts.secretStdin !== true))
    throw usageError('give the secret with exactly one of --secret-file FILE or --secret-stdin (never on the command line)');
  let text: string;
  try {
    text = readFileSync(opts.secretFile ?? 0, 'utf8');
  } catch (error) {
    throw usageError(`cannot read the secret from ${opts.secretFile ?? 'standard input'}: ${(error as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

const path = (ref: string) => `/webhooks/${encodeURIComponent(ref)}`;

/** Webhooks (admin only): signed POSTs of chosen events to a URL (docs/webhooks.md). */
export function registerWebhookCommands(program: Command): void {
  const webhook = program.command('webhook').description('create, list and delete webhooks, and read their deliveries (admin)');

  const create = clientCommand(webhook, 'create <name>', 'POST events of these types to a URL, signed with a secret')
    .addOption(new Option('--url <url>', 'http:// or https:// URL of the receiver').makeOptionMandatory())
    .addOption(
      new Option('--events <types>', `comma-separated event types: ${webhookEventTypes.join(', ')}`)
        .argParser(parseNameList)
        .makeOptionMandatory(),
    )
    .addOption(new Option('--secret-file <file>', 'read the signing secret (16 characters or more) from this file'))
    .addOption(new Option('--secret-stdin', 'read the signing secret from standard input'))
    .addOption(
      new Option('--format <format>', 'json, or slack for Slack/Mattermost incoming webhooks').choices(webhookFormats).default('json'),
    );
  runAction<{ url: string; events: string[]; secretFile?: string; secretStdin?: boolean; format: string }>(
    create,
    async ({ cli, args, opts }) => {
      const secret = readSecret(opts);
      const created = await cli.client.post<WebhookView>('/webhooks', {
        name: args[0],
        url: opts.url,
        events: opts.events,
        secret,
        format: opts.format,
      });
      if (cli.out.structured) return cli.out.data(created);
      cli.out.line(`webhook ${created.name} (${created.id}) created: ${created.events.join(', ')} → ${created.url} (${created.format})`);
    },
  );

  runAction(clientCommand(webhook, 'list', 'list webhooks (never their secrets)').alias('ls'), async ({ cli }) => {
    const list = await cli.client.get<WebhookList>('/webhooks');
    if (cli.out.structured) return cli.out.data(list);
    if (list.items.length === 0) {
      process.stderr.write(
        'No webhooks. Create one with `upshift webhook create NAME --url URL --events upgrade.auto_paused --secret-stdin`.\n',
      );
      return;
    }
    cli.out.table(
      [
        { header: 'NAME', value: (w: WebhookView) => w.name },
        { header: 'URL', value: (w: WebhookView) => w.url },
        { header: 'EVENTS', value: (w: WebhookView) => w.events.join(',') },
        { header: 'FORMAT', value: (w: WebhookView) => w.format },
        { header: 'PENDING', value: (w: WebhookView) => String(w.pending) },
        { header: 'SENT', value: (w: WebhookView) => String(w.sent) },
        { header: 'FAILED', value: (w: WebhookView) => String(w.failed) },
        { header: 'ID', value: (w: WebhookView) => w.id, wide: true },
        { header: 'CREATED BY', value: (w: WebhookView) => w.createdBy, wide: true },
      ],
      list.items,
    );
  });

  runAction(
    clientCommand(webhook, 'delete <id|name>', 'delete a webhook and its pending deliveries').alias('rm'),
    async ({ cli, args }) => {
      await cli.client.delete(path(args[0] as string));
      if (!cli.out.structured) cli.out.line(`webhook ${args[0]} deleted`);
    },
  );

  const deliveries = clientCommand(webhook, 'deliveries <id|name>', 'deliveries, newest first, with each attempt').addOption(
    new Option('--limit <n>', 'at most this many deliveries (default 50)').argParser(parseWholeNumber(1, 500)),
  );
  runAction<{ limit?: number }>(deliveries, async ({ cli, args, opts }) => {
    const list = await cli.client.get<DeliveryList>(
      `${path(args[0] as string)}/deliveries${opts.limit !== undefined ? `?limit=${opts.limit}` : ''}`,
    );
    if (cli.out.structured) return cli.out.data(list);
    if (list.items.length === 0) {
      process.stderr.write(`No deliveries yet for ${args[0]}: none of its events happened since it was created.\n`);
      return;
    }
    const lastAttempt = (d: DeliveryView) => d.attempts[d.attempts.length - 1];
    cli.out.table(
      [
        { header: 'EVENT', value: (d: DeliveryView) => d.eventType },
        { header: 'STATE', value: (d: DeliveryView) => d.state },
        { header: 'ATTEMPTS', value: (d: DeliveryView) => String(d.attempts.length) },
        {
          header: 'LAST',
          value: (d: DeliveryView) => {
            const last = lastAttempt(d);
            if (!last) return '';
            return last.status !== null && last.error === null ? `HTTP ${last.status}` : (last.error ?? '');
          },
        },
        { header: 'NEXT ATTEMPT', value: (d: DeliveryView) => d.nextAttemptAt ?? '' },
        { header: 'CREATED', value: (d: DeliveryView) => d.createdAt },
        { header: 'UPGRADE', value: (d: DeliveryView) => d.upgradeId ?? '', wide: true },
        { header: 'EVENT ID', value: (d: DeliveryView) => d.eventId, wide: true },
      ],
      list.items,
    );
  });
}
