/**
 * The one spawn helper (src/platform/run-command.ts): argv arrays and never a shell,
 * timeouts, bounded capture, line streaming; with real programs.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CAPTURE, outputTail, runCommand, startDetached } from '../../src/platform/run-command.js';

describe('runCommand', () => {
  it('passes every argument as it is: shell text stays text', async () => {
    const r = await runCommand(['printf', '%s|', '$(touch /tmp/never)', 'a b', ';', '*']);
    expect(r).toEqual({
      argv: ['printf', '%s|', '$(touch /tmp/never)', 'a b', ';', '*'],
      code: 0,
      stdout: '$(touch /tmp/never)|a b|;|*|',
      stderr: '',
      timedOut: false,
    });
  });

  it('adds to the environment, feeds stdin and streams complete lines of both outputs', async () => {
    const lines: string[] = [];
    const r = await runCommand(['sh', '-c', 'read x; echo "$GREETING $x"; echo warn >&2; printf tail'], {
      env: { GREETING: 'hello' },
      input: 'world\n',
      onLine: (l) => lines.push(l),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello world\ntail');
    expect(r.stderr).toBe('warn\n');
    expect(lines.sort()).toEqual(['hello world', 'tail', 'warn']);
  });

  it('reports a program that does not exist as code 127, and an empty argv too', async () => {
    const r = await runCommand(['/nonexistent/upshift-no-such-program', 'x']);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('/nonexistent/upshift-no-such-program');
    expect((await runCommand([])).code).toBe(127);
  });

  it('stops a command at its timeout and says so', async () => {
    const r = await runCommand(['sleep', '30'], { timeoutMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBe(128 + 15);
    expect(outputTail(r)).toBe('`sleep 30` timed out');
  });

  it('stops a command when its signal aborts', async () => {
    const controller = new AbortController();
    const running = runCommand(['sleep', '30'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const r = await running;
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(128 + 15);
  });

  it('keeps at most MAX_CAPTURE characters of an output, and still streams every line', async () => {
    let count = 0;
    const r = await runCommand(['sh', '-c', 'yes 0123456789 | head -n 60000'], { onLine: () => count++ });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(MAX_CAPTURE);
    expect(count).toBe(60000);
  });
});

describe('outputTail', () => {
  it('quotes the last lines after the command and its exit code', async () => {
    const r = await runCommand(['sh', '-c', 'for i in 1 2 3 4; do echo line$i; done; exit 3']);
    expect(outputTail(r, { lines: 2 })).toBe('`sh -c for i in 1 2 3 4; do echo line$i; done; exit 3` exited with code 3:\nline3\nline4');
    expect(outputTail(r, { lines: 1, separator: ': ' })).toMatch(/exited with code 3: line4$/);
  });
});

describe('startDetached', () => {
  const ended = async (p: { exitReason(): string | undefined }) => {
    for (let i = 0; i < 100 && p.exitReason() === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    return p.exitReason();
  };

  it('starts a program in its own session with the extra environment, and tells how it ended', async () => {
    const p = startDetached(['sh', '-c', '[ "$(ps -o sid= -p $$)" -eq $$ ] && exit $((CODE + 0))'], { env: { CODE: '3' } });
    expect(p.pid).toBeGreaterThan(1);
    expect(await ended(p)).toBe('code 3');
  });

  it('tells why a program could not start', async () => {
    expect(await ended(startDetached(['/nonexistent/upshift-no-such-program']))).toMatch(/ENOENT/);
  });
});
