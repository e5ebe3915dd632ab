import type { UpgradeView } from '../api/index.js';
import { formatElapsed } from '../domain/duration.js';
import { describeWaiting } from '../domain/progress.js';

/**
 * Where an upgrade stands, in one line: `batch 4 of 12 · 17/50 nodes · ETA 3m10s`. The
 * ETA is the server's (`progress`); the line says why there is none rather than
 * printing a guess.
 */
export function progressLine(u: UpgradeView): string {
  const p = u.progress;
  const parts = [`batch ${p.batch} of ${p.batches}`, `${p.nodesDone}/${p.nodesTotal} nodes`];
  if (u.state === 'Completed') parts.push(`took ${formatElapsed(p.elapsedSeconds * 1000)}`);
  else if (u.state === 'Canceled') parts.push(`ran ${formatElapsed(p.elapsedSeconds * 1000)}`);
  else if (u.state === 'Paused' || u.state === 'SnapshotFailed') parts.push('no ETA while it waits for an operator');
  else if (p.etaSeconds === null) parts.push('ETA once a batch has ended');
  else parts.push(`ETA ${formatElapsed(p.etaSeconds * 1000)}`);
  if (u.waiting) parts.push(describeWaiting(u.waiting, u.policy.window, Date.now(), p.batch));
  return parts.join(' · ');
}
