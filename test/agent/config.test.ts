import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AgentConfigError, parseAgentConfig } from '../../src/agent/config.js';

describe('the agent config file', () => {
  it('defaults to systemd and Debian packages', () => {
    const c = parseAgentConfig(undefined);
    expect(c.dataDir).toBe('/var/lib/upshift-agent');
    expect(c.dockerSocket).toBe('/var/run/docker.sock');
    expect(c.components.docker.methods).toEqual(['deb', 'apt']);
    expect(c.components.docker.service).toEqual({ kind: 'systemd', unit: 'docker' });
    expect(c.components.containerd.service).toEqual({ kind: 'systemd', unit: 'containerd' });
    expect(c.components['sandboxed-runtime'].service).toEqual({ kind: 'none' });
    expect(c.components['sandboxed-runtime'].sandboxCheck).toEqual(['--network=none']);
    expect(c.components.docker.sandboxCheck).toBeNull();
    expect(
      parseAgentConfig({ components: { 'sandboxed-runtime': { sandboxCheck: ['--platform=ptrace', '--network=none'] } } }).components[
        'sandboxed-runtime'
      ].sandboxCheck,
    ).toEqual(['--platform=ptrace', '--network=none']);
    expect(
      parseAgentConfig({ components: { 'sandboxed-runtime': { sandboxCheck: false } } }).components['sandboxed-runtime'].sandboxCheck,
    ).toBeNull();
    expect(c.snapshot).toEqual({ provider: 'none' });
    expect(Object.isFrozen(c.components.docker)).toBe(true);
  });

  it('reads a host with a binary install root, command service control, hooks and btrfs snapshots', () => {
    const c = parseAgentConfig(
      parse(`
server: http://10.0.0.1:8420/
dataDir: /srv/agent
dockerSocket: /run/docker.sock
components:
  docker:
    installRoot: /opt/docker
    configFiles: [/etc/docker/daemon.json]
    service: {kind: command, start: [/usr/local/bin/dockerctl, start], stop: [/usr/local/bin/dockerctl, stop]}
hooks:
  preflight: [[/usr/local/bin/drain-me]]
snapshot: {provider: btrfs, paths: [/var/lib/docker]}
timeouts: {startSeconds: 20}
`),
      { name: 'node-7' },
    );
    expect(c.server).toBe('http://10.0.0.1:8420');
    expect(c.name).toBe('node-7');
    expect(c.components.docker.methods).toEqual(['binary']);
    expect(c.components.docker.service).toEqual({
      kind: 'command',
      start: ['/usr/local/bin/dockerctl', 'start'],
      stop: ['/usr/local/bin/dockerctl', 'stop'],
    });
    expect(c.hooks.preflight).toEqual([['/usr/local/bin/drain-me']]);
    expect(c.snapshot).toEqual({ provider: 'btrfs', paths: ['/var/lib/docker'], directory: undefined });
    expect(c.timeouts.startSeconds).toBe(20);
    expect(c.timeouts.stopSeconds).toBe(90);
  });

  it('refuses unknown keys, shell strings and relative paths, naming the key', () => {
    const cases: [unknown, string][] = [
      [{ servre: 'http://x' }, 'servre'],
      [{ components: { docker: { methods: ['binary'] } } }, 'components.docker.installRoot'],
      [
        { components: { docker: { service: { kind: 'command', start: 'systemctl start docker', stop: ['x'] } } } },
        'components.docker.service.start',
      ],
      [{ components: { kubelet: {} } }, 'components.kubelet'],
      [{ hooks: { preflight: ['echo hi'] } }, 'hooks.preflight[0]'],
      [{ snapshot: { provider: 'lvm' } }, 'snapshot.provider'],
      [{ snapshot: { provider: 'btrfs', paths: ['var/lib/docker'] } }, 'snapshot.paths'],
      [{ dataDir: 'relative' }, 'dataDir'],
      [{ timeouts: { startSeconds: -1 } }, 'timeouts.startSeconds'],
      [{ components: { 'sandboxed-runtime': { sandboxCheck: ['--root /x; rm -rf /'] } } }, 'components.sandboxed-runtime.sandboxCheck'],
      [{ components: { docker: { sandboxCheck: false } } }, 'components.docker.sandboxCheck'],
    ];
    for (const [raw, key] of cases) {
      let error: unknown;
      try {
        parseAgentConfig(raw);
      } catch (e) {
        error = e;
      }
      expect(error, key).toBeInstanceOf(AgentConfigError);
      expect((error as AgentConfigError).key, key).toBe(key);
    }
  });
});
