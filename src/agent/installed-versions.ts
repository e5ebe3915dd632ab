import { isValidVersion, releaseOf } from '../domain/versions.js';

/**
 * Turns what the tools print into the release strings the catalog uses, so that a node's
 * versions compare with the catalog's: Debian's packaging suffixes go (`26.1.5+dfsg1` →
 * `26.1.5`) and gVisor's dates lose their `0.0~`/`release-` decorations (`20240729`).
 */

/** Engine API `Version` → release: `26.1.5+dfsg1` → `26.1.5`. */
export function normaliseDockerVersion(reported: string): string | undefined {
  const v = reported.trim().replace(/^v/, '');
  if (!isValidVersion(v)) return undefined;
  return releaseOf(v);
}

/**
 * `containerd --version` → release. Real outputs:
 * `containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1` (Debian),
 * `containerd containerd.io 1.6.33 d2d58213f83a…` (Docker's packages),
 * `containerd github.com/containerd/containerd v1.7.2 0cae528…` (upstream).
 */
export function parseContainerdVersion(output: string): string | undefined {
  const line = output.split('\n').find((l) => l.trim().startsWith('containerd '));
  if (!line) return undefined;
  const third = line.trim().split(/\s+/)[2];
  if (third === undefined) return undefined;
  const v = third.replace(/^v/, '');
  if (!/^\d/.test(v) || !isValidVersion(v)) return undefined;
  return releaseOf(v);
}

/**
 * `runsc --version` → the gVisor release date. Real outputs: `runsc version 0.0~20240729.0`
 * (Debian), `runsc version release-20240729.0` (upstream), `runsc version 20221219.0`.
 */
export function parseRunscVersion(output: string): string | undefined {
  const line = output.split('\n').find((l) => /^runsc version\s/.test(l.trim()));
  if (!line) return undefined;
  const raw = line.trim().split(/\s+/)[2] ?? '';
  const date = /(?:^|[~-])(\d{8})(?:\.\d+)?(?:$|[^0-9])/.exec(raw) ?? /^(\d{8})/.exec(raw);
  return date?.[1];
}

/** `dockerd --version` → release: `Docker version 26.1.5+dfsg1, build 411e817` → `26.1.5`. */
export function parseDockerdVersion(output: string): string | undefined {
  const m = /Docker version\s+v?([0-9][^\s,]*)/.exec(output);
  if (!m?.[1] || !isValidVersion(m[1])) return undefined;
  return releaseOf(m[1]);
}
