import { useState, type FormEvent } from 'react';
import { describeError } from '../api/client';
import { useSession } from '../lib/session';
import { Dialog, FormFooter } from './Dialog';

function names(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Creates a simulated cluster: in-process nodes that behave like real ones from the API's
 * point of view, for demos and trials. Node names are sim-001, sim-002, …
 */
export function CreateClusterDialog({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [nodes, setNodes] = useState('50');
  const [managers, setManagers] = useState('0');
  const [seconds, setSeconds] = useState('1');
  const [failNodes, setFailNodes] = useState('');
  const [snapshotFailNodes, setSnapshotFailNodes] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      setError('Give the cluster a name.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.createCluster({
        name: name.trim(),
        kind: 'simulated',
        simulation: {
          nodes: Number(nodes),
          managers: Number(managers),
          upgradeSeconds: Number(seconds),
          failNodes: names(failNodes),
          snapshotFailNodes: names(snapshotFailNodes),
        },
      });
      onCreated();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title="Create simulated cluster" onClose={onClose} testId="create-cluster-dialog">
      <form className="form-grid" onSubmit={submit} noValidate>
        <p className="muted span-all">
          Simulated nodes are named sim-001, sim-002, … and upgrade in the time you choose; they can be told to fail.
        </p>
        <label htmlFor="cc-name">Name</label>
        <input id="cc-name" value={name} onChange={(e) => setName(e.target.value)} autoFocus required pattern="[A-Za-z0-9._-]+" />
        <label htmlFor="cc-nodes">Nodes</label>
        <input id="cc-nodes" type="number" min={1} max={100000} value={nodes} onChange={(e) => setNodes(e.target.value)} />
        <label htmlFor="cc-managers">Swarm managers</label>
        <input
          id="cc-managers"
          type="number"
          min={0}
          value={managers}
          onChange={(e) => setManagers(e.target.value)}
          aria-describedby="cc-managers-help"
        />
        <p id="cc-managers-help" className="help span-field">
          The first nodes are managers: they go first, one per batch.
        </p>
        <label htmlFor="cc-seconds">Seconds per node upgrade</label>
        <input id="cc-seconds" type="number" min={0} step={0.1} value={seconds} onChange={(e) => setSeconds(e.target.value)} />
        <label htmlFor="cc-fail">Nodes whose first upgrade fails</label>
        <input
          id="cc-fail"
          value={failNodes}
          onChange={(e) => setFailNodes(e.target.value)}
          placeholder="sim-007"
          aria-describedby="cc-fail-help"
        />
        <p id="cc-fail-help" className="help span-field">
          Comma-separated. A failure pauses the upgrade automatically; resuming retries the node.
        </p>
        <label htmlFor="cc-snapfail">Nodes whose snapshots fail</label>
        <input id="cc-snapfail" value={snapshotFailNodes} onChange={(e) => setSnapshotFailNodes(e.target.value)} placeholder="sim-003" />
        <FormFooter error={error} busy={busy} submitLabel="Create cluster" onCancel={onClose} />
      </form>
    </Dialog>
  );
}
