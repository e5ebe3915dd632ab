import { Option, type Command } from 'commander';
import type { ApiTokenView, CreatedTokenView, TokenList } from '../../api/index.js';
import { roles } from '../../domain/roles.js';
import { clientCommand, parseSeconds, runAction } from '../command.js';

/** API tokens with roles (admin only): create (shown once), list, revoke. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('create, list and revoke API tokens (viewer, operator, admin)');

  const create = clientCommand(token, 'create <name>', 'create a token; it is shown once')
    .addOption(new Option('--role <role>', 'viewer, operator or admin').choices(roles).makeOptionMandatory())
    .addOption(new Option('--expires <seconds>', 'lifetime in seconds (at least 60)').argParser(parseSeconds));
  runAction<{ role: string; expires?: number }>(create, async ({ cli, args, opts }) => {
    const created = await cli.client.post<CreatedTokenView>('/tokens', {
      name: args[0],
      role: opts.role,
      ...(opts.expires !== undefined ? { expiresInSeconds: opts.expires } : {}),
    });
    if (cli.out.structured) return cli.out.data(created);
    cli.out.line(
      `token ${created.name} (${created.role}) created${created.expiresAt ? `, expires ${created.expiresAt}` : ''}; it is shown only now:`,
    );
    cli.out.line(`  ${created.token}`);
  });

  runAction(clientCommand(token, 'list', 'list tokens (never their secrets)').alias('ls'), async ({ cli }) => {
    const list = await cli.client.get<TokenList>('/tokens');
    if (cli.out.structured) return cli.out.data(list);
    cli.out.table(
      [
        { header: 'NAME', value: (t: ApiTokenView) => t.name },
        { header: 'ID', value: (t: ApiTokenView) => t.id },
        { header: 'ROLE', value: (t: ApiTokenView) => t.role },
        { header: 'EXPIRES', value: (t: ApiTokenView) => t.expiresAt ?? 'never' },
        { header: 'REVOKED', value: (t: ApiTokenView) => t.revokedAt ?? '' },
        { header: 'CREATED BY', value: (t: ApiTokenView) => t.createdBy ?? '', wide: true },
      ],
      list.items,
    );
  });

  runAction(clientCommand(token, 'revoke <id>', 'revoke a token and end its console sessions'), async ({ cli, args }) => {
    await cli.client.delete(`/tokens/${encodeURIComponent(args[0] as string)}`);
    if (!cli.out.structured) cli.out.line(`token ${args[0]} revoked`);
  });
}
