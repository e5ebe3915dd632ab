import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Tmux, cliEnv } from '../support/cli.js';

/**
 * `upshift server` on a terminal: log lines a person reads (time, level, message, fields)
 * instead of JSON, and the generated admin token in a frame that cannot be missed. The
 * JSON form, for a pipe or a service manager, is what every other server test reads.
 */
describe('the server on a terminal', () => {
  let tty: Tmux | undefined;
  let dataDir: string | undefined;
  afterEach(() => {
    tty?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints readable log lines and frames the one-time admin token', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'upshift-tty-server-'));
    tty = new Tmux();
    const env = cliEnv(undefined, join(dataDir, 'cli.yaml'), { UPSHIFT_ADMIN_TOKEN: undefined });
    tty.start(['server', '--port', '0', '--data-dir', dataDir], env);
    const screen = await tty.waitFor((s) => /INFO {2}upshift server listening/.test(s) && s.includes('Also saved in'), 30_000);
    expect(screen).toMatch(/^\d\d:\d\d:\d\d INFO {2}upshift server listening address=http:\/\/127\.0\.0\.1:\d+ database=/m);
    expect(screen).not.toContain('{"level"');
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect(screen).toMatch(
      /┌─+┐\n│ Admin token \(shown once; sign in to the console or use it as a Bearer token\): +│\n│ +│\n│ {3}(\S+) +│/,
    );
    expect(/│ {3}(\S+) +│/.exec(screen)?.[1]).toBe(token);
    tty.keys('C-c');
    const stopped = await tty.waitFor((s) => s.includes('EXIT='), 20_000);
    expect(stopped).toContain('EXIT=0');
  }, 60_000);
});
