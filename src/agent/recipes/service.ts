import type { ServiceControl } from '../config.js';
import { outputTail, runCommand } from '../../platform/run-command.js';

/**
 * Stops and starts a component's service the way this host does it: systemd by default,
 * the operator's own argv where there is no systemd (configured per host).
 */
export async function controlService(
  service: ServiceControl,
  action: 'start' | 'stop',
  timeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  switch (service.kind) {
    case 'none':
      return;
    case 'command': {
      const argv = action === 'start' ? service.start : service.stop;
      log(`${action}: ${argv.join(' ')}`);
      const r = await runCommand(argv, { timeoutMs, onLine: (l) => log(`  ${l}`) });
      if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r));
      return;
    }
    case 'systemd': {
      const units = [service.unit];
      // A socket-activated unit (docker.socket) would start the daemon again on the next
      // API call: stop the socket with the service, and start it with it.
      const socket = `${service.unit}.socket`;
      const hasSocket = (await runCommand(['systemctl', 'cat', socket], { timeoutMs: 10_000 })).code === 0;
      if (hasSocket) units.unshift(socket);
      const argv = ['systemctl', action, ...units];
      log(`${action}: ${argv.join(' ')}`);
      const r = await runCommand(argv, { timeoutMs, onLine: (l) => log(`  ${l}`) });
      if (r.code !== 0 || r.timedOut) {
        const status = await runCommand(['systemctl', 'status', '--no-pager', '--lines=15', service.unit], { timeoutMs: 10_000 });
        throw new Error(`${outputTail(r)}\n${status.stdout.trim()}`);
      }
      return;
    }
    default: {
      const never: never = service;
      return never;
    }
  }
}
