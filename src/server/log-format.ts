import type { DestinationStream } from 'pino';

const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const skipped = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  return JSON.stringify(v);
}

/**
 * pino's JSON lines as a person reads them on a terminal: `14:03:12 INFO  upshift server
 * listening address=http://127.0.0.1:8420`. Used only when stdout is a terminal; under a
 * service manager or a pipe the server writes pino's JSON, one object per line, for log
 * collectors. Redaction happens before this, in pino.
 */
export function terminalLog(out: NodeJS.WriteStream): DestinationStream {
  return {
    write(line: string): void {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = typeof entry['time'] === 'number' ? new Date(entry['time']).toISOString().slice(11, 19) : '';
      const level = (levels[Number(entry['level'])] ?? String(entry['level'])).padEnd(5);
      const fields = Object.entries(entry)
        .filter(([k]) => !skipped.has(k))
        .map(([k, v]) => `${k}=${value(v)}`);
      out.write(`${time} ${level} ${String(entry['msg'] ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`);
    },
  };
}

/** The one-time admin token, framed so that it cannot be missed among the log lines. */
export function adminTokenBanner(token: string, file: string): string {
  const lines = [
    'Admin token (shown once; sign in to the console or use it as a Bearer token):',
    '',
    `  ${token}`,
    '',
    `Also saved in ${file}.`,
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = '─'.repeat(width + 2);
  return `\n┌${bar}┐\n${lines.map((l) => `│ ${l.padEnd(width)} │`).join('\n')}\n└${bar}┘\n\n`;
}
