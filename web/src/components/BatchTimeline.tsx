import type { BatchView } from '@upshift/api';
import { formatClock, formatDuration } from '../lib/format';

const rowHeight = 22;
const axisHeight = 26;
const labelWidth = 120;
const width = 1000;
const rightPad = 70;

function niceStep(spanMs: number): number {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800].map(
    (s) => s * 1000,
  );
  return steps.find((s) => spanMs / s <= 8) ?? 604800_000;
}

/**
 * The batches on a time line: one row per batch, a bar from its start to its end (or to
 * now while it runs), coloured by result, with its size on the left and its duration on
 * the right. Gaps between bars are pauses or soak time. The batches still planned follow,
 * greyed: spread evenly up to the expected end when the server has an ETA, else only
 * listed with their sizes.
 */
export function BatchTimeline({
  batches,
  startedAt,
  endedAt,
  now,
  backingUp,
  planned = [],
  etaAt = null,
}: {
  batches: BatchView[];
  startedAt: string;
  endedAt: string | null;
  now: number;
  /** Snapshots first: `open` while they are being taken or waiting for the operator, `done` after. */
  backingUp: 'open' | 'done' | null;
  /** Sizes of the batches still to start (`progress.plannedSizes`). */
  planned?: number[];
  /** The expected end (`progress.etaAt`), when the server has one. */
  etaAt?: string | null;
}) {
  const started = batches.filter((b) => b.startedAt);
  if (started.length === 0 && !backingUp && planned.length === 0) {
    return <p className="muted">No batch has started yet.</p>;
  }
  const created = Date.parse(startedAt);
  const t0 = Math.min(created, ...started.map((b) => Date.parse(b.startedAt as string)));
  // `now` ticks once a second: a batch that started since is drawn from its start, not before it.
  const endOf = (b: BatchView) => (b.finishedAt ? Date.parse(b.finishedAt) : Math.max(now, Date.parse(b.startedAt as string)));
  const lastEnd = Math.max(t0, ...started.map(endOf));
  const current = Math.max(t0 + 1000, endedAt ? Math.max(Date.parse(endedAt), lastEnd) : Math.max(now, lastEnd));
  const eta = !endedAt && etaAt && planned.length > 0 ? Math.max(current, Date.parse(etaAt)) : null;
  const t1 = eta ?? current;
  const span = t1 - t0;
  const plot = width - labelWidth - rightPad;
  const x = (t: number) => labelWidth + ((t - t0) / span) * plot;
  // The snapshot phase runs from the start to the first batch (or on, while it lasts).
  const firstBatch = started.length ? Date.parse(started[0]?.startedAt as string) : null;
  const snapshotEnd = backingUp === 'open' ? (endedAt ? Date.parse(endedAt) : now) : (firstBatch ?? (endedAt ? Date.parse(endedAt) : now));
  const offset = backingUp ? 1 : 0;
  const height = axisHeight + (started.length + offset + planned.length) * rowHeight + 6;
  // Planned batches share the time up to the expected end equally: an estimate, drawn as one.
  const plannedSlot = eta !== null ? (eta - current) / planned.length : 0;
  const firstPlanned = (started.at(-1)?.index ?? -1) + 1;
  const step = niceStep(span);
  const ticks: number[] = [];
  for (let t = 0; t <= span; t += step) ticks.push(t);
  const succeeded = started.filter((b) => b.state === 'succeeded').length;
  const failed = started.filter((b) => b.state === 'failed').length;
  const running = started.filter((b) => b.state === 'running').length;
  const summary = `${started.length} ${started.length === 1 ? 'batch' : 'batches'} over ${formatDuration(current - t0)}: ${succeeded} succeeded, ${failed} with a failure, ${running} running${planned.length > 0 ? `, ${planned.length} planned` : ''}.`;

  return (
    <figure className="timeline" data-testid="batch-timeline">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Batch timeline. ${summary}`} preserveAspectRatio="xMinYMin meet">
        <g className="axis">
          {ticks.map((t) => (
            <g key={t}>
              <line x1={x(t0 + t)} x2={x(t0 + t)} y1={axisHeight - 6} y2={height} className="grid" />
              <text x={x(t0 + t)} y={axisHeight - 10} textAnchor="middle">
                +{formatDuration(t)}
              </text>
            </g>
          ))}
        </g>
        {backingUp ? (
          <g className="phase snapshots" data-phase="snapshots">
            <title>{`Snapshots: ${formatDuration(snapshotEnd - created)}${backingUp === 'open' ? ' so far' : ''}`}</title>
            <text x={labelWidth - 8} y={axisHeight + rowHeight / 2 + 4} textAnchor="end" className="label">
              Snapshots
            </text>
            <rect x={x(created)} y={axisHeight + 4} width={Math.max(3, x(snapshotEnd) - x(created))} height={rowHeight - 8} rx={3} />
            <text x={x(created) + Math.max(3, x(snapshotEnd) - x(created)) + 6} y={axisHeight + rowHeight / 2 + 4} className="value">
              {formatDuration(snapshotEnd - created)}
            </text>
          </g>
        ) : null}
        {started.map((b, i) => {
          const row = i + offset;
          const start = Date.parse(b.startedAt as string);
          const end = endOf(b);
          const bx = x(start);
          const bw = Math.max(3, x(end) - bx);
          const y = axisHeight + row * rowHeight;
          const duration = formatDuration(end - start);
          return (
            <g key={b.index} className={`bar ${b.state}`} data-batch={b.index}>
              <title>{`Batch ${b.index + 1}: ${b.size} node${b.size === 1 ? '' : 's'}, started ${formatClock(b.startedAt)}, ${b.finishedAt ? `took ${duration}` : `running for ${duration}`}, ${b.state}`}</title>
              <text x={labelWidth - 8} y={y + rowHeight / 2 + 4} textAnchor="end" className="label">
                {`#${b.index + 1} · ${b.size} node${b.size === 1 ? '' : 's'}`}
              </text>
              <rect x={bx} y={y + 4} width={bw} height={rowHeight - 8} rx={3} />
              <text x={bx + bw + 6} y={y + rowHeight / 2 + 4} className="value">
                {b.state === 'failed' ? `${duration} ✕` : duration}
              </text>
            </g>
          );
        })}
        {planned.map((size, i) => {
          const y = axisHeight + (started.length + offset + i) * rowHeight;
          const index = firstPlanned + i;
          const bx = x(current + i * plannedSlot);
          return (
            <g key={`planned-${index}`} className="bar planned" data-planned={index}>
              <title>{`Batch ${index + 1}: ${size} node${size === 1 ? '' : 's'}, planned`}</title>
              <text x={labelWidth - 8} y={y + rowHeight / 2 + 4} textAnchor="end" className="label">
                {`#${index + 1} · ${size} node${size === 1 ? '' : 's'}`}
              </text>
              {eta !== null ? (
                <rect x={bx} y={y + 4} width={Math.max(3, x(current + (i + 1) * plannedSlot) - bx)} height={rowHeight - 8} rx={3} />
              ) : (
                <text x={labelWidth + 6} y={y + rowHeight / 2 + 4} className="value">
                  planned
                </text>
              )}
            </g>
          );
        })}
        {!endedAt ? <line className="now" x1={x(current)} x2={x(current)} y1={axisHeight - 6} y2={height} /> : null}
      </svg>
      <figcaption className="legend">
        <span>
          <span className="swatch succeeded" aria-hidden="true" /> succeeded
        </span>
        <span>
          <span className="swatch running" aria-hidden="true" /> running
        </span>
        <span>
          <span className="swatch failed" aria-hidden="true" /> had a failure
        </span>
        {backingUp ? (
          <span>
            <span className="swatch snapshots" aria-hidden="true" /> snapshots
          </span>
        ) : null}
        {planned.length > 0 ? (
          <span>
            <span className="swatch planned" aria-hidden="true" /> planned{eta !== null ? ' (estimated)' : ''}
          </span>
        ) : null}
        <span className="muted">{summary}</span>
      </figcaption>
    </figure>
  );
}
