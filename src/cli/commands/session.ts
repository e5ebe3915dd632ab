import type { Command } from 'commander';
import type { SessionList, SessionView } from '../../api/index.js';
import { clientCommand, runAction } from '../command.js';

/** Console sessions (admin only): who is signed in, and ending a session. */
export function registerSessionCommands(program: Command): void {
  const session = program.command('session').description('list and end console sessions (admin)');

  runAction(clientCommand(session, 'list', 'list open console sessions (never their secrets)').alias('ls'), async ({ cli }) => {
    const list = await cli.client.get<SessionList>('/sessions');
    if (cli.out.structured) return cli.out.data(list);
    cli.out.table(
      [
        { header: 'ID', value: (s: SessionView) => s.id },
        { header: 'WHO', value: (s: SessionView) => s.principal },
        { header: 'ROLE', value: (s: SessionView) => s.role },
        { header: 'FROM', value: (s: SessionView) => s.address ?? '' },
        { header: 'SIGNED IN', value: (s: SessionView) => s.createdAt },
        { header: 'EXPIRES', value: (s: SessionView) => s.expiresAt },
        { header: 'TOKEN', value: (s: SessionView) => s.tokenId ?? '(bootstrap admin)', wide: true },
      ],
      list.items,
    );
  });

  runAction(clientCommand(session, 'revoke <id>', 'end a console session at once'), async ({ cli, args }) => {
    await cli.client.delete(`/sessions/${encodeURIComponent(args[0] as string)}`);
    if (!cli.out.structured) cli.out.line(`session ${args[0]} ended`);
  });
}
