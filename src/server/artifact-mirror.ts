import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, UpshiftError, invalid } from '../domain/errors.js';
import type { Store } from '../store/store.js';
import { AptRepository, type AptIndex } from './apt-repository.js';

export interface ArtifactMeta {
  file: string;
  component: string;
  version: string;
  method: string;
}

export interface StoredArtifact extends ArtifactMeta {
  sha256: string;
  size: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The artifact mirror's files. The bytes are stored by content (`blobs/<sha256>`) and the
 * database maps a file name to its sha256, so what an agent downloads under a name is
 * always the blob of the sha256 recorded for it: replacing an artifact is one row
 * update, never a file being rewritten under a reader. Each upload writes its own temp
 * file; two uploads of one name at once are refused (409) for the second, not mixed.
 */
export class ArtifactMirror {
  private readonly uploading = new Set<string>();
  private readonly blobs: string;
  /** The mirror's .deb files as a signed apt repository (apt-repository.ts). */
  readonly apt: AptRepository;

  constructor(
    private readonly dir: string,
    private readonly store: Store,
  ) {
    this.blobs = join(dir, 'blobs');
    this.apt = new AptRepository(dir, (sha256) => this.blobPath(sha256));
  }

  /** The apt repository's index of what the mirror holds now. */
  async aptIndex(): Promise<AptIndex> {
    return this.apt.index(await this.store.artifacts.list());
  }

  /** The bytes of a blob the apt index names (`pool/<sha256>.deb`), or undefined. */
  async openPool(sha256: string): Promise<{ stream: Readable; size: number } | undefined> {
    if (!SHA256.test(sha256) || !(await this.aptIndex()).pool.has(sha256)) return undefined;
    const path = this.blobPath(sha256);
    if (!existsSync(path)) return undefined;
    const row = (await this.store.artifacts.list()).find((a) => a.sha256 === sha256);
    return { stream: createReadStream(path), size: row?.size ?? 0 };
  }

  private blobPath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new UpshiftError(ErrorCode.INTERNAL, `artifact sha256 ${sha256} is not a sha256`);
    return join(this.blobs, sha256);
  }

  /** Receives an upload; refuses an empty file, a second upload of the same name at once, and a sha256 mismatch. */
  async put(meta: ArtifactMeta, body: Readable, expectedSha256?: string): Promise<StoredArtifact> {
    if (this.uploading.has(meta.file)) {
      body.resume();
      throw new UpshiftError(ErrorCode.ARTIFACT_BUSY, `another upload of ${meta.file} is in progress; try again when it has finished`);
    }
    this.uploading.add(meta.file);
    mkdirSync(this.blobs, { recursive: true, mode: 0o700 });
    const partial = join(this.dir, `.upload-${randomBytes(12).toString('hex')}.partial`);
    try {
      const hash = createHash('sha256');
      let size = 0;
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(partial, { flags: 'wx', mode: 0o600 }),
      );
      const sha256 = hash.digest('hex');
      if (size === 0) throw invalid(`${meta.file} is empty; nothing was stored`);
      if (expectedSha256 && expectedSha256 !== sha256) {
        throw invalid(`the upload's sha256 is ${sha256}, not the expected ${expectedSha256}; nothing was stored`);
      }
      renameSync(partial, this.blobPath(sha256));
      const previous = (await this.store.artifacts.list({ file: meta.file }))[0];
      const stored = { ...meta, sha256, size };
      await this.store.artifacts.upsert(stored);
      if (previous && previous.sha256 !== sha256) await this.dropBlobIfUnused(previous.sha256);
      return stored;
    } finally {
      rmSync(partial, { force: true });
      this.uploading.delete(meta.file);
    }
  }

  /** The bytes recorded for a file name, or undefined when the mirror has none. */
  async open(file: string): Promise<{ stream: Readable; sha256: string; size: number } | undefined> {
    const row = (await this.store.artifacts.list({ file }))[0];
    if (!row) return undefined;
    const path = this.blobPath(row.sha256);
    if (!existsSync(path)) return undefined;
    return { stream: createReadStream(path), sha256: row.sha256, size: row.size };
  }

  async remove(file: string): Promise<boolean> {
    const row = (await this.store.artifacts.list({ file }))[0];
    if (!row || !(await this.store.artifacts.delete(file))) return false;
    await this.dropBlobIfUnused(row.sha256);
    return true;
  }

  private async dropBlobIfUnused(sha256: string): Promise<void> {
    const all = await this.store.artifacts.list();
    if (!all.some((a) => a.sha256 === sha256)) rmSync(this.blobPath(sha256), { force: true });
  }

  /**
   * Mirrors written before blobs kept each file under its name: those whose bytes match
   * their recorded sha256 move into the blob store; others are left and reported.
   */
  async adoptLegacyFiles(warn: (message: string) => void): Promise<void> {
    if (!existsSync(this.dir)) return;
    const names = new Set(readdirSync(this.dir));
    for (const row of await this.store.artifacts.list()) {
      if (!names.has(row.file) || existsSync(this.blobPath(row.sha256))) continue;
      const legacy = join(this.dir, row.file);
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(legacy)) hash.update(chunk as Buffer);
      if (hash.digest('hex') !== row.sha256) {
        warn(`artifact ${row.file}: its bytes do not match the recorded sha256; upload it again`);
        continue;
      }
      mkdirSync(this.blobs, { recursive: true, mode: 0o700 });
      renameSync(legacy, this.blobPath(row.sha256));
    }
  }
}
