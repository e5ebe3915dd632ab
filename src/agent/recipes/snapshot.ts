import type { AgentTask, TaskResultRequest } from '../../domain/agent-protocol.js';
import { BtrfsSnapshotProvider } from '../snapshots/btrfs.js';
import { CommandSnapshotProvider } from '../snapshots/command.js';
import type { SnapshotProvider } from '../snapshots/provider.js';
import type { AgentConfig } from '../config.js';
import type { JournalEntry } from '../journal.js';
import { validateSnapshotParams } from '../params.js';
import type { Recipe, RecipeContext } from './types.js';

/** The provider the host's configuration names, or undefined for `none`. */
export function snapshotProviderFor(config: AgentConfig): SnapshotProvider | undefined {
  const s = config.snapshot;
  switch (s.provider) {
    case 'none':
      return undefined;
    case 'btrfs':
      return new BtrfsSnapshotProvider({ paths: s.paths, directory: s.directory });
    case 'command':
      return new CommandSnapshotProvider({ create: s.create, restore: s.restore, timeoutMs: config.timeouts.hookSeconds * 1000 });
    default: {
      const never: never = s;
      return never;
    }
  }
}

/**
 * The `snapshot` recipe: the configured provider snapshots the node before an upgrade and
 * the result carries its `ref`. Providers are idempotent per label, so resuming after a
 * restart simply asks again and gets the same ref.
 */
export class SnapshotRecipe implements Recipe {
  async run(task: AgentTask, ctx: RecipeContext): Promise<TaskResultRequest> {
    const { label } = validateSnapshotParams(task.params);
    const provider = snapshotProviderFor(ctx.config);
    if (!provider) {
      return {
        result: 'failed',
        step: 'snapshot',
        error:
          'no snapshot provider is configured on this node: set snapshot.provider (btrfs or command) in the agent config, or continue without a snapshot',
      };
    }
    try {
      const { ref } = await provider.create(label, (l) => ctx.log(`[snapshot] ${l}`));
      ctx.log(`[snapshot] ${provider.name} snapshot ${ref} taken`);
      return { result: 'succeeded', ref };
    } catch (e) {
      return { result: 'failed', step: 'snapshot', error: `${provider.name} snapshot failed: ${(e as Error).message}` };
    }
  }

  resume(task: AgentTask, _entry: JournalEntry, ctx: RecipeContext): Promise<TaskResultRequest> {
    ctx.log('[snapshot] the agent restarted while taking the snapshot; asking the provider again for the same label');
    return this.run(task, ctx);
  }
}
