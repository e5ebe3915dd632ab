import { upgradePolicy } from '@upshift/domain/defaults.js';
import { useEffect, useMemo, useState } from 'react';
import { describeError } from '../api/client';
import type { ClusterCatalogView, ClusterView, Component, PlanView, UpgradeBody } from '@upshift/api';
import { components, runtimeComponents } from '@upshift/api/enums';
import { compareNatural, displayComponent, formatDuration, plural, summariseSizes, versionEntries } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { Dialog } from './Dialog';
import { GateEditor, type GateDraft, gateBody } from './GateEditor';
import { Notice } from './Notice';
import { VersionSummary } from './Versions';
import { describeChoice, newWindowDraft, type WindowChoice, type WindowDraft, WindowEditor, windowPolicy } from './WindowEditor';

const { defaults, bounds } = upgradePolicy;

/** What upgrading a component does to the workloads on a node while it runs (no drain). */
const impact: Partial<Record<Component, string>> = {
  docker:
    'Upgrading Docker Engine stops and restarts it on each node: the containers and services running there are interrupted while their node is upgraded (Upshift does not drain nodes).',
  containerd: 'Upgrading containerd restarts it on each node: containers on a node may be interrupted while it is upgraded.',
};

/** `20.10.24 (48), 26.1.5 (2)`: the versions the cluster's nodes run now. */
function currentVersions(cluster: ClusterView, component: Component): string {
  const entries = versionEntries(cluster.components[component]?.versions ?? {});
  if (entries.length === 1) return entries[0]?.[0] ?? '';
  return entries.map(([v, n]) => `${v} (${n})`).join(', ');
}

/** How many nodes run an agent older than the latest. */
export function outdatedAgents(cluster: ClusterView): number {
  const agent = cluster.components.agent;
  if (!agent?.latest) return 0;
  const latest = agent.latest;
  return versionEntries(agent.versions).reduce((n, [version, count]) => (compareNatural(version, latest) < 0 ? n + count : n), 0);
}

/**
 * Starts an upgrade of one component of one cluster: target version from the catalog,
 * upgrade directly or back up snapshots first, and a preview of the batches (the server's
 * plan) before anything starts. When agents are outdated a runtime upgrade would be
 * refused, so the dialog says so and offers the agent upgrade first. The versions come
 * from the catalog as this cluster sees it: one that does not install on its nodes'
 * distribution is shown disabled, with why under the select, and is never the default.
 */
export function UpgradeDialog({
  cluster,
  initialComponent,
  onClose,
}: {
  cluster: ClusterView;
  initialComponent: Component;
  onClose: () => void;
}) {
  const { api } = useSession();
  const [catalog, setCatalog] = useState<ClusterCatalogView | null>(null);
  const [catalogError, setCatalogError] = useState<unknown>(null);
  const [component, setComponent] = useState<Component>(initialComponent);
  const [toVersion, setToVersion] = useState<string>('');
  const [maxBatchPercent, setMaxBatchPercent] = useState(String(defaults.maxBatchPercent));
  const [soakSeconds, setSoakSeconds] = useState(String(defaults.soakSeconds));
  const [gates, setGates] = useState<GateDraft[]>([]);
  // Keep the cluster's default window unless the operator chooses otherwise.
  const [windowChoice, setWindowChoice] = useState<WindowChoice>('cluster');
  const [windowDraft, setWindowDraft] = useState<WindowDraft>(() => newWindowDraft(cluster.window));
  const [plan, setPlan] = useState<{ key: string; plan?: PlanView; error?: unknown } | null>(null);
  const [startError, setStartError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // The last step before anything starts: what, where, how many, how long, what it interrupts.
  const [confirming, setConfirming] = useState<'none' | 'before' | null>(null);

  // Per cluster, and again when its membership changes: a new node may run another distribution.
  useEffect(() => {
    const controller = new AbortController();
    api.clusterCatalog(cluster.id, controller.signal).then(
      (result) => {
        setCatalog(result);
        setCatalogError(null);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setCatalogError(e);
      },
    );
    return () => controller.abort();
  }, [api, cluster.id, cluster.nodeCount]);

  const versions = useMemo(
    () => [...(catalog?.components[component]?.versions ?? [])].sort((a, b) => compareNatural(b.version, a.version)),
    [catalog, component],
  );
  const notOffered = versions.filter((v) => !v.installable);
  const latest = catalog?.components[component]?.latest ?? cluster.components[component]?.latest ?? null;
  const preferred = catalog ? catalog.components[component]?.default : latest;
  const target = toVersion && versions.some((v) => v.version === toVersion && v.installable) ? toVersion : (preferred ?? '');

  const policy = useMemo(() => {
    const p: NonNullable<UpgradeBody['policy']> = {};
    const percent = Number(maxBatchPercent);
    const soak = Number(soakSeconds);
    if (maxBatchPercent !== '' && Number.isInteger(percent) && percent !== defaults.maxBatchPercent) p.maxBatchPercent = percent;
    if (soakSeconds !== '' && Number.isFinite(soak) && soak !== defaults.soakSeconds) p.soakSeconds = soak;
    if (gates.length > 0) p.gates = gates.map(gateBody);
    // Absent keeps the cluster's window; null runs without one; an object is this upgrade's own.
    Object.assign(p, windowPolicy(windowChoice, windowDraft));
    return p;
  }, [maxBatchPercent, soakSeconds, gates, windowChoice, windowDraft]);

  const request = (snapshot: 'none' | 'before'): UpgradeBody => ({
    component,
    ...(target ? { toVersion: target } : {}),
    snapshot,
    ...(Object.keys(policy).length ? { policy } : {}),
  });

  const planKey = JSON.stringify([cluster.id, component, target, policy]);
  useEffect(() => {
    if (!catalog) return;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api
        .plan(
          cluster.id,
          { component, ...(target ? { toVersion: target } : {}), ...(Object.keys(policy).length ? { policy } : {}) },
          controller.signal,
        )
        .then(
          (result) => setPlan({ key: planKey, plan: result }),
          (error: unknown) => {
            if (!controller.signal.aborted) setPlan({ key: planKey, error });
          },
        );
    }, 150);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
    // planKey covers every input of the request; nodeCount re-plans after membership changes.
  }, [api, catalog, planKey, cluster.nodeCount]);

  // A changed request is a new question: confirm it again.
  useEffect(() => setConfirming(null), [planKey, component]);

  const outdated = outdatedAgents(cluster);
  const agentGate = runtimeComponents.includes(component) && outdated > 0;
  const activeGate = cluster.activeUpgradeId !== null;
  const currentPlan = plan?.key === planKey ? plan : null;
  const planReady = currentPlan?.plan !== undefined && currentPlan.plan.batches.length > 0;
  // The server's own answer to a start now (the same checks, an active upgrade first).
  const refusal = currentPlan?.plan?.refusal ?? null;
  const canStart = !busy && !agentGate && !activeGate && planReady && refusal === null;

  const start = async (snapshot: 'none' | 'before') => {
    setBusy(true);
    setStartError(null);
    try {
      const upgrade = await api.startUpgrade(cluster.id, request(snapshot));
      onClose();
      navigate(`/upgrades/${upgrade.id}`);
    } catch (e) {
      setStartError(describeError(e));
      setBusy(false);
    }
  };

  const sizes = currentPlan?.plan?.batches.map((b) => b.length) ?? [];
  const planned = sizes.reduce((a, b) => a + b, 0);
  const biggest = Math.max(1, ...sizes);

  return (
    <Dialog title={`Upgrade ${cluster.name}`} onClose={onClose} wide testId="upgrade-dialog">
      <div className="upgrade-form">
        <div className="form-grid">
          <label htmlFor="ud-component">Component</label>
          <select
            id="ud-component"
            value={component}
            onChange={(e) => {
              setComponent(e.target.value as Component);
              setToVersion('');
              setStartError(null);
            }}
          >
            {components.map((c) => (
              <option key={c} value={c} disabled={Object.keys(cluster.components[c]?.versions ?? {}).length === 0}>
                {displayComponent(c)}
              </option>
            ))}
          </select>
          <span className="form-label">In use</span>
          <div data-testid="versions-in-use">
            <VersionSummary summary={cluster.components[component]} />
          </div>
          <label htmlFor="ud-version">Target version</label>
          <select
            id="ud-version"
            value={target}
            onChange={(e) => setToVersion(e.target.value)}
            disabled={!catalog}
            aria-describedby={notOffered.length > 0 ? 'ud-not-offered' : undefined}
          >
            {versions.map((v) => (
              <option key={v.version} value={v.version} disabled={!v.installable} title={v.reason ?? undefined}>
                {v.version}
                {v.version === latest ? ' (latest)' : ''}
                {v.installable ? '' : ' (not offered)'}
              </option>
            ))}
          </select>
          {notOffered.length > 0 ? (
            <div id="ud-not-offered" className="help span-field not-offered" data-testid="versions-not-offered">
              Not offered on this cluster:
              <ul>
                {notOffered.map((v) => (
                  <li key={v.version}>
                    <span className="mono">{v.version}</span>: {v.reason}
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
        </div>
        <details className="advanced">
          <summary>Batch policy</summary>
          <div className="form-grid">
            <label htmlFor="ud-percent">Largest batch, % of nodes</label>
            <input
              id="ud-percent"
              type="number"
              min={bounds.maxBatchPercent.min}
              max={bounds.maxBatchPercent.max}
              value={maxBatchPercent}
              onChange={(e) => setMaxBatchPercent(e.target.value)}
            />
            <label htmlFor="ud-soak">Wait between batches (s)</label>
            <input
              id="ud-soak"
              type="number"
              min={bounds.soakSeconds.min}
              value={soakSeconds}
              onChange={(e) => setSoakSeconds(e.target.value)}
            />
          </div>
        </details>
        <details className="advanced">
          <summary>Health gates{gates.length > 0 ? ` (${gates.length})` : ''}</summary>
          <GateEditor cluster={cluster} gates={gates} onChange={setGates} />
        </details>
        <details className="advanced" data-testid="window-section">
          <summary>
            Maintenance window
            {windowChoice === 'none'
              ? ' (none)'
              : windowChoice === 'custom'
                ? " (this upgrade's own)"
                : cluster.window
                  ? " (the cluster's)"
                  : ''}
          </summary>
          <WindowEditor
            clusterWindow={cluster.window}
            choice={windowChoice}
            draft={windowDraft}
            onChoice={setWindowChoice}
            onDraft={setWindowDraft}
          />
        </details>

        {catalogError ? (
          <Notice tone="bad" alert>
            Could not load the catalog: {describeError(catalogError)}
          </Notice>
        ) : null}
        {activeGate ? (
          <Notice tone="warn" title="An upgrade is already active on this cluster" testId="active-upgrade-notice">
            {cluster.statusText}. Only one upgrade runs per cluster: let it finish, or pause and cancel it.{' '}
            <Link to={`/upgrades/${cluster.activeUpgradeId}`} onClick={onClose}>
              View the active upgrade
            </Link>
          </Notice>
        ) : null}
        {agentGate ? (
          <Notice tone="warn" title="Upgrade the agent first" testId="agent-outdated">
            <p>
              {outdated === cluster.nodeCount
                ? `All ${plural(outdated, 'node')}`
                : `${plural(outdated, 'node')} of ${cluster.nodeCount.toLocaleString('en')}`}{' '}
              run an Upshift agent older than {cluster.components.agent.latest}. {displayComponent(component)} upgrades are refused until
              every agent is current.
            </p>
            <button type="button" className="primary" onClick={() => setComponent('agent')} disabled={activeGate}>
              Upgrade Agent
            </button>
          </Notice>
        ) : null}

        <section className="plan" aria-labelledby="plan-title" aria-live="polite" data-testid="plan-preview">
          <h3 id="plan-title">Batches</h3>
          {!currentPlan ? <p className="muted">Planning…</p> : null}
          {currentPlan?.error ? (
            <Notice tone="warn" alert>
              {describeError(currentPlan.error)}
            </Notice>
          ) : null}
          {refusal && !agentGate && !activeGate ? (
            <Notice tone="warn" testId="plan-refusal">
              A start would be refused now ({refusal.code}): {refusal.message}
            </Notice>
          ) : null}
          {currentPlan?.plan ? (
            <>
              <p data-testid="plan-summary">
                {plural(planned, 'node')} to upgrade to {displayComponent(component)} {currentPlan.plan.toVersion ?? target} in{' '}
                {plural(sizes.length, 'batch', 'batches')}: {summariseSizes(sizes)}.
                {currentPlan.plan.cap ? ` At most ${plural(currentPlan.plan.cap, 'node')} at a time.` : ''}
              </p>
              <ol className="plan-bars" aria-label="batch sizes">
                {sizes.slice(0, 60).map((size, i) => (
                  <li key={i} title={`Batch ${i + 1}: ${size} nodes`} style={{ height: `${Math.max(8, (size / biggest) * 56)}px` }}>
                    <span className="visually-hidden">
                      Batch {i + 1}: {size} nodes
                    </span>
                  </li>
                ))}
              </ol>
              <details>
                <summary>Nodes in each batch</summary>
                <ol className="plan-list">
                  {currentPlan.plan.batches.slice(0, 200).map((batch, i) => (
                    <li key={i}>
                      <strong>Batch {i + 1}</strong> ({batch.length}):{' '}
                      {batch.length > 12 ? `${batch.slice(0, 12).join(', ')}, … ${batch[batch.length - 1]}` : batch.join(', ')}
                    </li>
                  ))}
                </ol>
              </details>
            </>
          ) : null}
        </section>

        {impact[component] && currentPlan?.plan && planned > 0 ? (
          <Notice tone="warn" title="What this interrupts" testId="impact-notice">
            {impact[component]} At most {plural(currentPlan.plan.cap, 'node')} at a time;{' '}
            {currentPlan.plan.estimatedSeconds === null
              ? 'how long it takes is not known yet (no earlier upgrade of this component on this cluster)'
              : `about ${formatDuration(currentPlan.plan.estimatedSeconds * 1000)} in all, from this cluster's earlier upgrades`}
            .
          </Notice>
        ) : null}

        {confirming ? (
          <section className="confirm-start" aria-labelledby="confirm-title" data-testid="confirm-start">
            <h3 id="confirm-title">Start this upgrade?</h3>
            <p data-testid="confirm-summary">
              {displayComponent(component)} on <strong>{cluster.name}</strong>: {currentVersions(cluster, component)} →{' '}
              <strong>{currentPlan?.plan?.toVersion ?? target}</strong> on {plural(planned, 'node')} in{' '}
              {plural(sizes.length, 'batch', 'batches')}
              {confirming === 'before' ? ', snapshots of every node first' : ', without snapshots'}
              {currentPlan?.plan?.estimatedSeconds != null
                ? `, about ${formatDuration(currentPlan.plan.estimatedSeconds * 1000)}`
                : ''}, {describeChoice(windowChoice, windowDraft, cluster.window)}.
            </p>
          </section>
        ) : null}

        {startError ? (
          <Notice tone="bad" alert testId="start-error">
            {startError}
          </Notice>
        ) : null}

        <div className="actions">
          <button type="button" onClick={onClose}>
            Close
          </button>
          {confirming ? (
            <>
              <button type="button" onClick={() => setConfirming(null)} disabled={busy}>
                Back
              </button>
              <button type="button" className="primary" disabled={!canStart} onClick={() => start(confirming)}>
                {busy ? 'Starting…' : 'Start upgrade'}
              </button>
            </>
          ) : component === 'agent' ? (
            <button type="button" className="primary" disabled={!canStart} onClick={() => setConfirming('none')}>
              Upgrade Agent
            </button>
          ) : (
            <>
              <button type="button" disabled={!canStart} onClick={() => setConfirming('none')}>
                Upgrade directly
              </button>
              <button
                type="button"
                className="primary"
                disabled={!canStart}
                onClick={() => setConfirming('before')}
                aria-describedby="ud-snapshot-help"
              >
                Back up snapshot before upgrade
              </button>
            </>
          )}
        </div>
        {component !== 'agent' ? (
          <p id="ud-snapshot-help" className="help">
            Backing up snapshots takes every node's snapshot first; if one fails you choose to continue without it or quit before anything
            is upgraded.
          </p>
        ) : null}
      </div>
    </Dialog>
  );
}
