/** The agent's own log: one line per event on stderr, with a timestamp. Never given a credential. */
export interface AgentLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function stderrLogger(prefix = 'upshift-agent'): AgentLogger {
  const write = (level: string, message: string) => {
    try {
      process.stderr.write(`${new Date().toISOString()} ${prefix} ${level} ${message}\n`);
    } catch {
      // stderr closed: nothing to report to
    }
  };
  return { info: (m) => write('info', m), warn: (m) => write('warn', m), error: (m) => write('error', m) };
}

export const silentAgentLogger: AgentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
