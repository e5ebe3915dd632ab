import type { ArtifactRecord } from '../domain/model.js';
import { changed, nowIso } from './rows.js';
import type { Scope } from './scope.js';

const ARTIFACT_COLUMNS = ['file', 'component', 'version', 'method', 'sha256', 'size', 'createdAt'] as const;

/** The artifact mirror's index: which file name holds which bytes (by sha256) for which catalog version. */
export class ArtifactRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  /** Records a file (replacing a record of the same name). */
  async upsert(artifact: Omit<ArtifactRecord, 'createdAt'>): Promise<void> {
    await this.db.deleteFrom('artifacts').where('file', '=', artifact.file).execute();
    await this.db
      .insertInto('artifacts')
      .values({
        file: artifact.file,
        component: artifact.component,
        version: artifact.version,
        method: artifact.method,
        sha256: artifact.sha256,
        size: artifact.size,
        createdAt: nowIso(),
      })
      .execute();
  }

  /** The mirror's files by component, version and name; optionally of one component or one file name. */
  async list(filter: { component?: string; file?: string } = {}): Promise<ArtifactRecord[]> {
    let query = this.db.selectFrom('artifacts').select(ARTIFACT_COLUMNS);
    if (filter.component) query = query.where('component', '=', filter.component);
    if (filter.file) query = query.where('file', '=', filter.file);
    return query.orderBy('component').orderBy('version').orderBy('file').execute();
  }

  async delete(file: string): Promise<boolean> {
    return changed(await this.db.deleteFrom('artifacts').where('file', '=', file).executeTakeFirst()) === 1;
  }
}
