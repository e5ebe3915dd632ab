import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  linkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/run.js';
import { dialects } from '../support/databases.js';
import { ADMIN, AGENT_EXE, AGENT_FILE, type Reply, facts, identityServerForSuite } from '../support/identity-server.js';
import { selfSignedCert } from '../support/tls.js';

/**
 * A node's identity cannot be taken over: a join under the name of a node whose agent
 * holds a credential is refused and recorded; an admin reset locks the agent out and
 * admits exactly one new join; join tokens expire by default and can be single-use; the
 * install script checks the agent against the checksum given on its command line and
 * leaves no join token on the host. Against the real server (in this process, so that a
 * jump clock can pass a token's lifetime), the built agent and the served script, on
 * SQLite and PostgreSQL.
 */
const sha256Of = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** systemd's own units, when systemd is installed: `systemd-analyze verify` checks the agent's unit against them. */
const systemUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'multi-user.target')));
const hasAnalyze = systemUnits !== undefined && spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;

/**
 * `systemd-analyze verify` of the unit the install script wrote, in a temp root laid out as
 * the host: systemd's units, the unit, and the executable at its ExecStart path (verify
 * refuses a unit whose program is missing). Returns what verify printed and its status.
 */
function verifyUnit(work: string, unit: string, executable: string): { status: number | null; output: string } {
  const root = mkdtempSync(join(work, 'unit-root-'));
  cpSync(systemUnits as string, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  writeFileSync(join(root, 'etc/systemd/system/upshift-agent.service'), unit);
  mkdirSync(join(root, dirname(executable)), { recursive: true });
  linkSync(executable, join(root, executable));
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, 'upshift-agent.service'], { encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

/**
 * A PATH for the install script on a host without Node.js: the stubs first, then a directory
 * of links to the few tools the script uses. `node` is not among them.
 */
function hostPath(dir: string, stubs: string): string {
  const tools = join(dir, 'tools');
  mkdirSync(tools, { recursive: true });
  for (const tool of ['sh', 'curl', 'sha256sum', 'cut', 'tr', 'mkdir', 'chmod', 'rm', 'mv', 'cat', 'uname']) {
    const found = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((f) => existsSync(f));
    if (!found) throw new Error(`${tool} is not installed`);
    if (!existsSync(join(tools, tool))) symlinkSync(found, join(tools, tool));
  }
  return `${stubs}:${tools}`;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process, asynchronously: the server answering it runs in this process. */
function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

for (const dialect of dialects) {
  describe(`node identity on ${dialect}`, () => {
    const s = identityServerForSuite(dialect);
    const { clock, api, agent, events, createHosts, waitFor } = s;
    const join_ = (joinToken: string, name: string) => s.join(joinToken, name);

    it('refuses a join under the name of a node that holds a credential, even during an upgrade, and records who tried', async () => {
      const cluster = await createHosts('takeover');
      const real = await join_(cluster.joinToken, 'web-1');
      const other = await join_(cluster.joinToken, 'web-2');
      expect([real.status, other.status]).toEqual([201, 201]);
      const start = await api('POST', '/api/v1/clusters/takeover/upgrades', { body: { component: 'docker' } });
      expect(start.status).toBe(201);
      const poll = await agent(real.body.credential, 'GET', '/tasks?waitSeconds=5');
      expect(poll.body.tasks).toHaveLength(1);
      const task = poll.body.tasks[0] as { taskKey: string };

      const impostor = await join_(cluster.joinToken, 'web-1');
      expect(impostor.status).toBe(409);
      expect(impostor.body.error.code).toBe('NODE_NAME_TAKEN');
      expect(impostor.body.error.message).toContain('upshift node reset takeover web-1');
      expect(impostor.body.credential).toBeUndefined();

      const refused = await events(cluster.id, 'agent.join_refused');
      expect(refused).toHaveLength(1);
      expect(refused[0]?.nodeId).toBe(real.body.nodeId);
      expect(refused[0]?.data).toMatchObject({ node: 'web-1', cluster: 'takeover', address: '127.0.0.1' });
      expect(refused[0]?.message).toContain('127.0.0.1');

      // The real agent keeps its identity; nothing else can report its task.
      expect((await agent(real.body.credential, 'POST', '/heartbeat', { facts: facts('web-1') })).status).toBe(200);
      expect((await agent(other.body.credential, 'POST', `/tasks/${task.taskKey}/result`, { result: 'succeeded' })).status).toBe(404);
      expect(
        (await agent('upa_forged-credential-0123456789abcdef', 'POST', `/tasks/${task.taskKey}/result`, { result: 'succeeded' })).status,
      ).toBe(401);
      const tasks = (await api('GET', `/api/v1/upgrades/${start.body.id}/nodes`)).body.items as Array<{ nodeName?: string; state: string }>;
      expect(tasks.every((t) => t.state !== 'succeeded')).toBe(true);
      expect(
        (
          await agent(real.body.credential, 'POST', `/tasks/${task.taskKey}/result`, {
            result: 'succeeded',
            versions: { docker: '26.1.5' },
          })
        ).status,
      ).toBe(204);
    });

    it('resets a node: its agent is locked out at once, its running task fails, and exactly one new join claims it', async () => {
      const cluster = await createHosts('replace');
      const old = await join_(cluster.joinToken, 'r-1');
      expect((await join_(cluster.joinToken, 'r-2')).status).toBe(201);
      const start = await api('POST', '/api/v1/clusters/replace/upgrades', { body: { component: 'docker' } });
      expect(start.status).toBe(201);
      const task = (await agent(old.body.credential, 'GET', '/tasks?waitSeconds=5')).body.tasks[0] as { taskKey: string };
      expect(task).toBeDefined();

      const operator = await api('POST', '/api/v1/tokens', { body: { name: 'ops', role: 'operator' } });
      expect((await api('POST', '/api/v1/clusters/replace/nodes/r-1/reset', { token: operator.body.token })).status).toBe(403);

      const reset = await api('POST', '/api/v1/clusters/replace/nodes/r-1/reset');
      expect(reset.status).toBe(200);
      expect(reset.body).toMatchObject({ cluster: 'replace', revokedCredentials: 1, failedTasks: [task.taskKey] });
      expect(reset.body.node).toMatchObject({ id: old.body.nodeId, name: 'r-1' });
      // Locked out at once: the very next call.
      expect((await agent(old.body.credential, 'POST', '/heartbeat', { facts: facts('r-1') })).status).toBe(401);
      expect((await agent(old.body.credential, 'POST', `/tasks/${task.taskKey}/result`, { result: 'succeeded' })).status).toBe(401);
      const paused = await waitFor('the upgrade to pause', async () => {
        const u = (await api('GET', `/api/v1/upgrades/${start.body.id}`)).body;
        return u.state === 'Paused' ? u : undefined;
      });
      expect(paused.pauseReason.message).toMatch(/reset by admin/);
      const recorded = await events(cluster.id, 'node.credential_reset');
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ actor: 'admin', nodeId: old.body.nodeId });

      // Four hosts race for the name: one claims the node, the others are refused.
      const claims = await Promise.all([0, 1, 2, 3].map(() => join_(cluster.joinToken, 'r-1')));
      expect(claims.map((c) => c.status).sort()).toEqual([201, 409, 409, 409]);
      const winner = claims.find((c) => c.status === 201) as Reply;
      expect(winner.body.nodeId).toBe(old.body.nodeId);
      expect((await join_(cluster.joinToken, 'r-1')).body.error.code).toBe('NODE_NAME_TAKEN');
      expect((await agent(winner.body.credential, 'POST', '/heartbeat', { facts: facts('r-1') })).status).toBe(200);
      expect((await agent(old.body.credential, 'POST', '/heartbeat', { facts: facts('r-1') })).status).toBe(401);
      expect((await events(cluster.id, 'agent.joined'))[0]?.message).toMatch(/node r-1 joined replace/);
      const nodes = (await api('GET', '/api/v1/clusters/replace/nodes')).body.items as Array<{ name: string }>;
      expect(nodes.map((n) => n.name)).toEqual(['r-1', 'r-2']);

      expect((await api('POST', '/api/v1/clusters/replace/nodes/nope/reset')).status).toBe(404);
      expect((await api('POST', '/api/v1/clusters', { body: { name: 'sim', kind: 'simulated' } })).status).toBe(201);
      const simulated = await api('POST', '/api/v1/clusters/sim/nodes/sim-001/reset');
      expect([simulated.status, simulated.body.error.code]).toEqual([422, 'NOT_SUPPORTED']);
    });

    it('admits exactly one of eight concurrent joins with a single-use token', async () => {
      await createHosts('race');
      const token = await api('POST', '/api/v1/clusters/race/join-tokens', { body: { singleUse: true } });
      expect(token.status).toBe(201);
      expect(token.body).toMatchObject({ singleUse: true });
      const joins = await Promise.all(Array.from({ length: 8 }, (_, i) => join_(token.body.joinToken, `race-${i}`)));
      expect(joins.map((j) => j.status).sort()).toEqual([201, 401, 401, 401, 401, 401, 401, 401]);
      for (const refused of joins.filter((j) => j.status === 401)) {
        expect(refused.body.error.details).toMatchObject({ reason: 'used', cluster: 'race' });
        expect(refused.body.error.message).toContain('upshift cluster join-token race');
      }
      expect((await api('GET', '/api/v1/clusters/race/nodes')).body.items).toHaveLength(1);
      // A refused takeover does not spend a single-use token.
      const once = await api('POST', '/api/v1/clusters/race/join-tokens', { body: { singleUse: true } });
      const name = ((await api('GET', '/api/v1/clusters/race/nodes')).body.items[0] as { name: string }).name;
      expect((await join_(once.body.joinToken, name)).status).toBe(409);
      expect((await join_(once.body.joinToken, 'race-new')).status).toBe(201);
    });

    it('serves a POSIX install script that refuses an agent whose checksum is not --sha256 and installs nothing', async () => {
      const res = await fetch(`${s.base}/install/agent.sh`);
      const script = join(s.work, 'agent.sh');
      writeFileSync(script, await res.text());
      expect(await run('sh', ['-n', script], { PATH: process.env['PATH'] ?? '' })).toMatchObject({ code: 0 });

      const dir = mkdtempSync(join(s.work, 'host-'));
      const stubs = join(dir, 'stubs');
      mkdirSync(stubs);
      const calls = join(dir, 'calls.log');
      // curl hands out a file that is not the agent; systemctl only notes that it was called.
      writeFileSync(
        join(stubs, 'curl'),
        `#!/bin/sh\necho "curl $*" >> '${calls}'\nwhile [ $# -gt 0 ]; do if [ "$1" = -o ]; then printf 'not the agent\\n' > "$2"; fi; shift; done\n`,
      );
      writeFileSync(join(stubs, 'systemctl'), `#!/bin/sh\necho "systemctl $*" >> '${calls}'\n`);
      chmodSync(join(stubs, 'curl'), 0o755);
      chmodSync(join(stubs, 'systemctl'), 0o755);
      const env = { PATH: hostPath(dir, stubs) };
      const where = ['--data-dir', join(dir, 'data'), '--prefix', join(dir, 'opt'), '--unit-dir', join(dir, 'units')];
      const genuine = sha256Of(AGENT_EXE);

      const mismatch = await run('sh', [script, '--join-token', 'upj_abcdefghijklmnop', '--sha256', genuine, ...where], env);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toContain(`but --sha256 is ${genuine}; nothing was installed`);
      expect(readdirSync(join(dir, 'opt'))).toEqual([]);
      expect(existsSync(join(dir, 'units'))).toBe(false);
      expect(readFileSync(calls, 'utf8')).not.toContain('systemctl');

      const notHex = await run('sh', [script, '--join-token', 'upj_abcdefghijklmnop', '--sha256', `${genuine.slice(1)}g`, ...where], env);
      expect([notHex.code, notHex.stderr]).toEqual([2, 'agent.sh: --sha256 must be 64 hexadecimal digits\n']);
      const shortHex = await run('sh', [script, '--join-token', 'upj_abcdefghijklmnop', '--sha256', genuine.slice(2), ...where], env);
      expect(shortHex.code).toBe(2);
      const injected = await run(
        'sh',
        [script, '--join-token', 'upj_abcdefghijklmnop', '--name', 'x\nExecStartPre=/bin/false', ...where],
        env,
      );
      expect(injected.code).toBe(2);
      const caOverHttp = await run('sh', [script, '--join-token', 'upj_abcdefghijklmnop', '--ca-file', script, ...where], env);
      expect([caOverHttp.code, caOverHttp.stderr]).toEqual([
        2,
        `agent.sh: --ca-file pins the CA of an https server, and ${s.base} is not one\n`,
      ]);
      // Nothing of the refused runs reached the network or systemd.
      expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
    });

    it('installs the agent executable with the printed join command on a host without Node.js: one join, the service runs the binary on the credential, no join token left on the host', async () => {
      const cluster = await createHosts('inst');
      const genuine = sha256Of(AGENT_EXE);
      expect(cluster.agentSha256).toBe(genuine);
      expect(cluster.joinCommand).toBe(
        `curl -fsSL ${s.base}/install/agent.sh | sudo sh -s -- --join-token ${cluster.joinToken} --sha256 ${genuine}`,
      );
      const script = join(s.work, 'agent-inst.sh');
      writeFileSync(script, await (await fetch(`${s.base}/install/agent.sh`)).text());
      const host = (label: string) => {
        const dir = mkdtempSync(join(s.work, `${label}-`));
        const stubs = join(dir, 'stubs');
        mkdirSync(stubs);
        writeFileSync(join(stubs, 'systemctl'), `#!/bin/sh\necho "$*" >> '${join(dir, 'systemctl.log')}'\n`);
        chmodSync(join(stubs, 'systemctl'), 0o755);
        return {
          dir,
          env: { PATH: hostPath(dir, stubs) },
          // --systemd: the unit is installed also where systemd does not run (this machine, CI containers).
          args: ['--systemd', '--data-dir', join(dir, 'data'), '--prefix', join(dir, 'opt'), '--unit-dir', join(dir, 'units')],
        };
      };
      const args = cluster.joinCommand.split(' -- ')[1]?.split(' ') ?? [];
      expect(args).toEqual(['--join-token', cluster.joinToken, '--sha256', genuine]);

      const first = host('first');
      expect((await run('sh', ['-c', 'command -v node || echo none'], first.env)).stdout).toBe('none\n');
      // A host installed before the executable: its script agent goes with the reinstall.
      mkdirSync(join(first.dir, 'opt'));
      writeFileSync(join(first.dir, 'opt', 'agent.js'), '// the agent of an older install\n');
      const installed = await run('sh', [script, ...args, '--name', 'inst-1', ...first.args], first.env);
      expect(installed.code, installed.stderr).toBe(0);
      expect(installed.stdout).toContain(`upshift agent ${PRODUCT_VERSION} installed as ${join(first.dir, 'opt')}/upshift-agent`);
      expect(readdirSync(join(first.dir, 'opt'))).toEqual(['upshift-agent']);
      const binary = join(first.dir, 'opt', 'upshift-agent');
      expect(statSync(binary).mode & 0o777).toBe(0o755);
      expect(sha256Of(binary)).toBe(genuine);
      // What is installed is the executable with Node.js 24 inside, and it runs without a node on PATH.
      const reported = await run(binary, ['--version', '--verbose'], first.env);
      expect(JSON.parse(reported.stdout)).toMatchObject({
        version: PRODUCT_VERSION,
        node: expect.stringMatching(/^v24\./),
        form: 'executable',
      });
      const credentialFile = join(first.dir, 'data', 'credential.json');
      expect(statSync(credentialFile).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(credentialFile, 'utf8'))).toMatchObject({ clusterName: 'inst', name: 'inst-1' });
      for (const file of filesUnder(first.dir)) expect(readFileSync(file, 'utf8'), file).not.toContain(cluster.joinToken);
      const unit = readFileSync(join(first.dir, 'units', 'upshift-agent.service'), 'utf8');
      expect(unit).toContain(`ExecStart=${binary} agent --server ${s.base} --data-dir ${join(first.dir, 'data')} --name inst-1\n`);
      expect(unit).toContain('RestartPreventExitStatus=2\n');
      if (hasAnalyze) {
        expect(verifyUnit(s.work, unit, binary)).toEqual({ status: 0, output: '' });
        // …and it does speak up about a unit that is wrong, so the check above can fail.
        expect(verifyUnit(s.work, unit.replace('RestartSec=', 'RestartSc='), binary).output).toContain("Unknown key 'RestartSc'");
      }
      // Where systemd runs (/run/systemd/system), the unit is started now; elsewhere only enabled, for the next boot.
      expect(readFileSync(join(first.dir, 'systemctl.log'), 'utf8')).toBe(
        existsSync('/run/systemd/system')
          ? 'stop upshift-agent\ndaemon-reload\nenable upshift-agent\nrestart upshift-agent\n'
          : 'enable upshift-agent\n',
      );
      if (!existsSync('/run/systemd/system'))
        expect(installed.stdout).toContain(
          `systemd does not run here now (/run/systemd/system does not exist): ${join(first.dir, 'units')}/upshift-agent.service is enabled and starts the agent at the next boot\n`,
        );
      const nodes = (await api('GET', '/api/v1/clusters/inst/nodes')).body.items as Array<{ name: string; id: string }>;
      expect(nodes.map((n) => n.name)).toEqual(['inst-1']);

      // What the unit runs: the agent starts on its stored credential, without a token.
      const [execFile = '', ...execArgs] = (/ExecStart=(.*)\n/.exec(unit)?.[1] ?? '').split(' ');
      expect(execFile).toBe(binary);
      const service = spawn(execFile, execArgs, { env: { PATH: first.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      service.stderr.on('data', (d: Buffer) => (log += d.toString()));
      await waitFor('the service agent to check in', async () => (/node inst-1 \(nd_\w+\) of cluster inst/.test(log) ? true : undefined));
      const exited = new Promise<number | null>((r) => service.on('close', r));
      service.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(log).not.toContain('joined cluster');

      // Installing again on the same host (how a host moves from agent.js to the executable):
      // the stored credential is kept, nothing joins anew, the executable and unit are in place.
      const credential = readFileSync(credentialFile, 'utf8');
      writeFileSync(join(first.dir, 'opt', 'agent.js'), '// the agent of an older install\n');
      const again = await run('sh', [script, ...args, '--name', 'inst-1', ...first.args], first.env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('this host holds a credential already');
      expect(readFileSync(credentialFile, 'utf8')).toBe(credential);
      expect(readdirSync(join(first.dir, 'opt'))).toEqual(['upshift-agent']);
      expect(readFileSync(join(first.dir, 'units', 'upshift-agent.service'), 'utf8')).toBe(unit);
      expect(await events(cluster.id, 'agent.joined')).toHaveLength(0);

      // Another host with the same name: the script stops with the advice, and installs no service.
      const second = host('second');
      const taken = await run('sh', [script, ...args, '--name', 'inst-1', ...second.args], second.env);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain(
        'a node named inst-1 already holds a credential in cluster inst: if this host replaces it, an admin runs `upshift node reset inst inst-1`; otherwise start the agent with --name OTHER',
      );
      expect(existsSync(join(second.dir, 'units'))).toBe(false);

      // After a reset the old host's agent is refused, says why, and stops rather than retrying.
      expect((await api('POST', '/api/v1/clusters/inst/nodes/inst-1/reset')).status).toBe(200);
      const locked = await run(execFile, execArgs, { PATH: first.env.PATH, UPSHIFT_JOIN_TOKEN: cluster.joinToken });
      expect(locked.code).toBe(2);
      expect(locked.stderr).toContain(
        "the server refused this node's credential (node inst-1 of cluster inst): an admin reset or removed the node",
      );
      // The leftover token (the one it joined with) did not claim the node back.
      expect(await events(cluster.id, 'agent.joined')).toHaveLength(0);
      // The replacement host joins with the same command.
      const replaced = await run('sh', [script, ...args, '--name', 'inst-1', ...second.args], second.env);
      expect(replaced.code, replaced.stderr).toBe(0);
      expect(await events(cluster.id, 'agent.joined')).toHaveLength(1);
    });

    it('stops an agent whose join token was used up, with the command that gets a new one', async () => {
      const token = await api('POST', '/api/v1/clusters/race/join-tokens', { body: { singleUse: true } });
      expect((await join_(token.body.joinToken, 'spender')).status).toBe(201);
      const dir = mkdtempSync(join(s.work, 'late-'));
      const late = await run(
        process.execPath,
        [AGENT_FILE, 'agent', '--server', s.base, '--data-dir', join(dir, 'data'), '--name', 'late'],
        {
          PATH: process.env['PATH'] ?? '',
          UPSHIFT_JOIN_TOKEN: token.body.joinToken,
        },
      );
      expect(late.code).toBe(2);
      expect(late.stderr).toContain(
        'upshift agent: join refused: the join token was for one join only and has been used: ask an admin for a new one: upshift cluster join-token race',
      );
    });

    it('expires a join token after the server’s default lifetime (--join-token-ttl)', async () => {
      const cluster = await createHosts('ttl');
      const now = clock.now();
      expect(Math.abs(Date.parse(cluster.expiresAt) - (now + 600_000))).toBeLessThan(5000);
      const byDefault = await api('POST', '/api/v1/clusters/ttl/join-tokens');
      expect(byDefault.status).toBe(201);
      expect(Math.abs(Date.parse(byDefault.body.expiresAt) - (now + 600_000))).toBeLessThan(5000);
      expect(byDefault.body.singleUse).toBe(false);
      const hour = await api('POST', '/api/v1/clusters/ttl/join-tokens', { body: { ttlSeconds: 3600 } });
      expect(Math.abs(Date.parse(hour.body.expiresAt) - (now + 3_600_000))).toBeLessThan(5000);
      expect((await join_(cluster.joinToken, 'before')).status).toBe(201);

      clock.advance(601_000);
      for (const expired of [cluster.joinToken, byDefault.body.joinToken]) {
        const refused = await join_(expired, 'after');
        expect(refused.status).toBe(401);
        expect(refused.body.error.details).toMatchObject({ reason: 'expired', cluster: 'ttl' });
        expect(refused.body.error.message).toMatch(
          /^the join token of cluster ttl expired at .*: ask an administrator for a new one \(upshift cluster join-token ttl\)$/,
        );
      }
      expect((await join_(hour.body.joinToken, 'after')).status).toBe(201);
    });
  });
}

/**
 * `--ca-file` against an https server with a private CA: every download of the install
 * script and the agent's own join trust that CA only; with another CA nothing installs.
 */
describe('the install script with --ca-file', () => {
  let server: RunningServer;
  let work: string;
  const savedAdminEnv = process.env['UPSHIFT_ADMIN_TOKEN'];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upshift-identity-tls-'));
    for (const name of ['server', 'other']) selfSignedCert(name, work);
    const dataDir = join(work, 'server');
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(dataDir, 'admin-token'), `${ADMIN}\n`, { mode: 0o600 });
    delete process.env['UPSHIFT_ADMIN_TOKEN'];
    const config = loadServerConfig(
      { port: '0', dataDir, logLevel: 'silent', tlsCert: join(work, 'server.pem'), tlsKey: join(work, 'server.key') },
      {},
    );
    server = await startServer(config, { agentBundle: AGENT_FILE, agentExecutable: AGENT_EXE });
  });
  afterAll(async () => {
    await server?.close();
    if (savedAdminEnv !== undefined) process.env['UPSHIFT_ADMIN_TOKEN'] = savedAdminEnv;
    rmSync(work, { recursive: true, force: true });
  });

  it('downloads and joins with the pinned CA only', async () => {
    const url = server.url.replace('http://', 'https://');
    const curl = (args: string[]) =>
      run('curl', ['-fsS', '--cacert', join(work, 'server.pem'), ...args], { PATH: process.env['PATH'] ?? '' });
    const created = JSON.parse(
      (
        await curl([
          '-H',
          `authorization: Bearer ${ADMIN}`,
          '-H',
          'content-type: application/json',
          '-d',
          '{"name":"pinned","kind":"hosts"}',
          `${url}/api/v1/clusters`,
        ])
      ).stdout,
    ) as { joinToken: string; agentSha256: string };
    const script = join(work, 'agent.sh');
    writeFileSync(script, (await curl([`${url}/install/agent.sh`])).stdout);

    const host = (label: string) => {
      const dir = mkdtempSync(join(work, `${label}-`));
      const stubs = join(dir, 'stubs');
      mkdirSync(stubs);
      writeFileSync(join(stubs, 'systemctl'), '#!/bin/sh\n');
      chmodSync(join(stubs, 'systemctl'), 0o755);
      return {
        dir,
        env: { PATH: hostPath(dir, stubs) },
        args: ['--systemd', '--data-dir', join(dir, 'data'), '--prefix', join(dir, 'opt'), '--unit-dir', join(dir, 'units')],
      };
    };
    const base = ['--join-token', created.joinToken, '--sha256', created.agentSha256, '--name', 'pin-1'];

    const wrong = host('wrong');
    const refused = await run('sh', [script, ...base, '--ca-file', join(work, 'other.pem'), ...wrong.args], wrong.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`agent.sh: cannot download the agent (linux-x64) from ${url}`);
    expect(readdirSync(join(wrong.dir, 'opt'))).toEqual([]);

    const right = host('right');
    const installed = await run('sh', [script, ...base, '--ca-file', join(work, 'server.pem'), ...right.args], right.env);
    expect(installed.code, installed.stderr).toBe(0);
    expect(readFileSync(join(right.dir, 'data', 'agent.env'), 'utf8')).toBe(`UPSHIFT_AGENT_CA_FILE=${join(work, 'server.pem')}\n`);
    expect(JSON.parse(readFileSync(join(right.dir, 'data', 'credential.json'), 'utf8'))).toMatchObject({ server: url, name: 'pin-1' });
  });
});
