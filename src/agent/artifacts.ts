import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ServerClient } from './client.js';
import { isSafeFileName } from './params.js';
import type { AptMirrorAccess, ArtifactSource } from './recipes/types.js';
import { ChecksumError } from './recipes/types.js';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Files from a directory already on the host, checked like downloads. What a test runs a
 * recipe with, and what an operator can use to stage artifacts by hand.
 */
export class DirectoryArtifactSource implements ArtifactSource {
  constructor(private readonly dir: string) {}

  async fetch(file: string, sha256: string): Promise<string> {
    if (!isSafeFileName(file)) throw new Error(`not a plain file name: ${file}`);
    const p = path.join(this.dir, file);
    const actual = await sha256File(p);
    if (actual !== sha256) throw new ChecksumError(file, sha256, actual);
    return p;
  }
}

/**
 * The server's artifact mirror, cached in `<dataDir>/artifacts`. A file is downloaded to a
 * `.partial` name, hashed on the way and renamed only when the hash matches, so a cached
 * file is always a verified one; a mismatch deletes the download and fails the step.
 */
export class MirrorArtifactSource implements ArtifactSource {
  constructor(
    private readonly client: ServerClient,
    private readonly cacheDir: string,
  ) {}

  async fetch(file: string, sha256: string, signal: AbortSignal): Promise<string> {
    if (!isSafeFileName(file)) throw new Error(`not a plain file name: ${file}`);
    await mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
    const dest = path.join(this.cacheDir, file);
    const cached = await sha256File(dest).catch(() => undefined);
    if (cached === sha256) return dest;
    const partial = `${dest}.partial`;
    const d = await this.client.download(`/api/v1/agent/artifacts/${encodeURIComponent(file)}`, partial, signal);
    if (d.sha256 !== sha256) {
      await rm(partial, { force: true });
      throw new ChecksumError(file, sha256, d.sha256);
    }
    await rename(partial, dest);
    return dest;
  }

  aptMirror(): AptMirrorAccess | undefined {
    const credential = this.client.currentCredential();
    if (credential === undefined) return undefined;
    const ca = this.client.pinnedCa();
    return {
      url: `${this.client.baseUrl}/api/v1/agent/apt`,
      credential,
      ...(ca ? { caPem: ca } : {}),
      fetchKey: async (dest, signal) => {
        await this.client.download('/api/v1/agent/apt/key.gpg', dest, signal);
      },
    };
  }
}
