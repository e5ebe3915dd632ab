import { describe, expect, it } from 'vitest';
import {
  normaliseDockerVersion,
  parseContainerdVersion,
  parseDockerdVersion,
  parseRunscVersion,
} from '../../src/agent/installed-versions.js';

describe('version normalisation of what the tools print', () => {
  it('reads runsc releases from Debian, backports and upstream builds', () => {
    expect(parseRunscVersion('runsc version 0.0~20240729.0\nspec: 1.0.2-dev\n')).toBe('20240729');
    expect(parseRunscVersion('runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n')).toBe('20221219');
    expect(parseRunscVersion('runsc version release-20240729.0\nspec: 1.1.0\n')).toBe('20240729');
    expect(parseRunscVersion('runsc version 20231009.0\n')).toBe('20231009');
    expect(parseRunscVersion('Usage: runsc <flags> <subcommand>')).toBeUndefined();
    expect(parseRunscVersion('')).toBeUndefined();
  });

  it('reads containerd releases from Debian, docker.io and upstream builds', () => {
    expect(parseContainerdVersion('containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1')).toBe('1.7.24');
    expect(parseContainerdVersion('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n')).toBe('1.6.20');
    expect(parseContainerdVersion('containerd containerd.io 1.6.33 d2d58213f83a351ca8f528a95fbd145f5654e957')).toBe('1.6.33');
    expect(parseContainerdVersion('containerd github.com/containerd/containerd v1.7.2 0cae528dd6cb557f7201036e9f43420650207b58')).toBe(
      '1.7.2',
    );
    expect(parseContainerdVersion('bash: containerd: command not found')).toBeUndefined();
    expect(parseContainerdVersion('containerd github.com/containerd/containerd')).toBeUndefined();
  });

  it('reads Docker Engine releases from the Engine API and dockerd --version', () => {
    expect(normaliseDockerVersion('26.1.5+dfsg1')).toBe('26.1.5');
    expect(normaliseDockerVersion('20.10.24+dfsg1')).toBe('20.10.24');
    expect(normaliseDockerVersion('27.3.1')).toBe('27.3.1');
    expect(normaliseDockerVersion('bad version; rm -rf /')).toBeUndefined();
    expect(parseDockerdVersion('Docker version 26.1.5+dfsg1, build 411e817')).toBe('26.1.5');
    expect(parseDockerdVersion('Docker version 20.10.24+dfsg1, build 5d6db84\n')).toBe('20.10.24');
    expect(parseDockerdVersion('dockerd: not found')).toBeUndefined();
  });
});
