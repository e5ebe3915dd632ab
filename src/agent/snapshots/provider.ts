/**
 * A snapshot provider takes a restorable copy of a node's state before an upgrade and can
 * put it back. One file per provider (`btrfs.ts`, `command.ts`); the agent picks one from
 * its local configuration and runs it for the `snapshot` recipe. `create` is idempotent
 * per label: asked again for a label it already took, it answers with the same ref.
 */
export interface SnapshotProvider {
  readonly name: string;
  /** Takes the snapshot; resolves with the handle to restore from. */
  create(label: string, log: (line: string) => void): Promise<{ ref: string }>;
  /** Puts the snapshot `ref` back. The caller stops the services that use the paths first. */
  restore(ref: string, log: (line: string) => void): Promise<void>;
}
