import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, upgradeStates, type UpgradeCommand, type UpgradeState } from '../../src/domain/upgrade-state.js';

const ok = (state: UpgradeState, command: UpgradeCommand, unstartedNodes = 5, failedPodsPresent = false) => {
  const t = decide({ state, unstartedNodes, failedPodsPresent }, command);
  if (!t.ok) throw new Error(`refused: ${t.refusal.code}`);
  return t.to;
};
const refusal = (state: UpgradeState, command: UpgradeCommand, unstartedNodes = 5, failedPodsPresent = false) => {
  const t = decide({ state, unstartedNodes, failedPodsPresent }, command);
  if (t.ok) throw new Error(`allowed: ${t.to}`);
  return t.refusal;
};

describe('upgrade state machine: every row of the spec', () => {
  it('BackingUp → Upgrading when all snapshots succeeded', () => expect(ok('BackingUp', { type: 'snapshotsSucceeded' })).toBe('Upgrading'));
  it('BackingUp → SnapshotFailed when a snapshot failed', () => expect(ok('BackingUp', { type: 'snapshotFailed' })).toBe('SnapshotFailed'));
  it('SnapshotFailed → Upgrading on continue', () => expect(ok('SnapshotFailed', { type: 'continue' })).toBe('Upgrading'));
  it('SnapshotFailed → Canceled on quit', () => expect(ok('SnapshotFailed', { type: 'quit' })).toBe('Canceled'));
  it('Upgrading → Paused on pause', () => expect(ok('Upgrading', { type: 'pause' })).toBe('Paused'));
  it('Upgrading → Paused when a node fails', () =>
    expect(ok('Upgrading', { type: 'nodeFailed', nodeId: 'n', message: 'x' })).toBe('Paused'));
  it('Upgrading → Paused, automatically, when a health gate kept failing', () => {
    const t = decide({ state: 'Upgrading', unstartedNodes: 3 }, { type: 'gateFailed', message: 'GET http://a/ answered 503' });
    expect(t).toEqual({ ok: true, from: 'Upgrading', to: 'Paused', automatic: true });
  });
  it('Paused → Upgrading on resume', () => expect(ok('Paused', { type: 'resume' })).toBe('Upgrading'));
  it('Paused → Canceled on cancel', () => expect(ok('Paused', { type: 'cancel' })).toBe('Canceled'));
  it('Paused → Canceled when the TTL expires', () => expect(ok('Paused', { type: 'pausedTtlExpired' })).toBe('Canceled'));
  it('Upgrading → Completed when every node succeeded', () => expect(ok('Upgrading', { type: 'allSucceeded' })).toBe('Completed'));
  it('BackingUp → Canceled on cancel (nothing upgraded yet)', () => expect(ok('BackingUp', { type: 'cancel' })).toBe('Canceled'));
});

describe('upgrade state machine: refusals', () => {
  it('pause with nothing unstarted: NOTHING_TO_PAUSE', () =>
    expect(refusal('Upgrading', { type: 'pause' }, 0).code).toBe('NOTHING_TO_PAUSE'));
  it('cancel while Upgrading: PAUSE_FIRST', () => {
    const r = refusal('Upgrading', { type: 'cancel' });
    expect(r.code).toBe('PAUSE_FIRST');
    expect(r.httpStatus).toBe(409);
    expect(r.message).toMatch(/pause/);
  });
  it('resume with failed pods: FAILED_PODS_PRESENT unless deleting them', () => {
    expect(refusal('Paused', { type: 'resume' }, 5, true).code).toBe('FAILED_PODS_PRESENT');
    expect(ok('Paused', { type: 'resume', deleteFailedPods: true }, 5, true)).toBe('Upgrading');
  });
  it('final states refuse everything', () => {
    for (const state of ['Completed', 'Canceled'] as const) {
      for (const type of ['pause', 'resume', 'cancel', 'continue', 'quit'] as const) {
        expect(refusal(state, { type } as UpgradeCommand).code).toBe('INVALID_STATE');
      }
    }
  });
  it('resume while Upgrading, pause while Paused, continue while Upgrading are refused', () => {
    expect(refusal('Upgrading', { type: 'resume' }).code).toBe('INVALID_STATE');
    expect(refusal('Paused', { type: 'pause' }).code).toBe('INVALID_STATE');
    expect(refusal('Upgrading', { type: 'continue' }).code).toBe('INVALID_STATE');
    expect(refusal('BackingUp', { type: 'pause' }).code).toBe('INVALID_STATE');
    expect(refusal('SnapshotFailed', { type: 'resume' }).code).toBe('INVALID_STATE');
  });
  it('property: every refusal is a 409 with a message, every transition leaves the state table', () => {
    const commands: UpgradeCommand[] = [
      { type: 'pause' },
      { type: 'resume' },
      { type: 'cancel' },
      { type: 'continue' },
      { type: 'quit' },
      { type: 'snapshotsSucceeded' },
      { type: 'snapshotFailed' },
      { type: 'nodeFailed', nodeId: 'n', message: 'm' },
      { type: 'gateFailed', message: 'm' },
      { type: 'allSucceeded' },
      { type: 'pausedTtlExpired' },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...upgradeStates),
        fc.constantFrom(...commands),
        fc.nat(10),
        fc.boolean(),
        (state, command, unstarted, pods) => {
          const t = decide({ state, unstartedNodes: unstarted, failedPodsPresent: pods }, command);
          if (t.ok) {
            expect(upgradeStates).toContain(t.to);
            expect(['Completed', 'Canceled']).not.toContain(state);
          } else {
            expect(t.refusal.httpStatus).toBe(409);
            expect(t.refusal.message.length).toBeGreaterThan(10);
          }
        },
      ),
    );
  });
});
