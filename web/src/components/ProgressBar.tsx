import type { NodeTaskState } from '@upshift/api';

const order: NodeTaskState[] = ['succeeded', 'failed', 'running', 'skipped', 'pending'];

/** The nodes of an upgrade by state, as one stacked bar with the numbers beside it. */
export function ProgressBar({ counts, compact }: { counts: { total: number } & Record<NodeTaskState, number>; compact?: boolean }) {
  const total = Math.max(0, counts.total);
  const done = counts.succeeded;
  const percent = total ? Math.floor((done / total) * 100) : 0;
  return (
    <div className={compact ? 'progress compact' : 'progress'}>
      <div
        className="progress-track"
        role="progressbar"
        aria-label="Nodes upgraded"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={done}
        aria-valuetext={`${done} of ${total} nodes upgraded`}
      >
        {order.map((state) =>
          counts[state] > 0 && state !== 'pending' ? (
            <span key={state} className={`seg ${state}`} style={{ width: `${(counts[state] / Math.max(1, total)) * 100}%` }} />
          ) : null,
        )}
      </div>
      <span className="progress-text" data-testid="progress-text">
        {compact ? `${done}/${total}` : `${done.toLocaleString('en')} of ${total.toLocaleString('en')} nodes upgraded (${percent}%)`}
      </span>
      {!compact ? (
        <ul className="legend">
          {order.map((state) => (
            <li key={state}>
              <span className={`swatch ${state}`} aria-hidden="true" />
              {state} <strong>{counts[state].toLocaleString('en')}</strong>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
