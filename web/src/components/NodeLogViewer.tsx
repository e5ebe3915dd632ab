import { useEffect, useRef } from 'react';
import type { NodeTaskView } from '@upshift/api';
import { ErrorNotice } from './Notice';
import { useLiveResource } from '../lib/live';
import { useSession } from '../lib/session';

/** Whose log to show: a task of a loaded page, or only a node named elsewhere (a pause's cause). */
export type LogTarget = Pick<NodeTaskView, 'nodeId' | 'nodeName'> & Partial<Pick<NodeTaskView, 'attempt' | 'state'>>;

/** A node task's log, live while the task runs. */
export function LogViewer({ upgradeId, task, onClose }: { upgradeId: string; task: LogTarget; onClose: () => void }) {
  const { api } = useSession();
  const log = useLiveResource((signal) => api.nodeLog(upgradeId, task.nodeId, signal), `log:${upgradeId}:${task.nodeId}`, {
    relevant: (e) => e.upgradeId === upgradeId && e.nodeId === task.nodeId,
    debounceMs: 200,
    maxWaitMs: 600,
  });
  const heading = useRef<HTMLHeadingElement>(null);
  const pre = useRef<HTMLPreElement>(null);
  const running = task.state === 'running';
  const { reload } = log;

  // A running node writes its log without events: poll while it runs.
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(reload, 1000);
    return () => clearInterval(timer);
  }, [running, reload]);

  useEffect(() => {
    heading.current?.focus();
    heading.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [task.nodeId]);

  useEffect(() => {
    const element = pre.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [log.data]);

  return (
    <section className="log-viewer card" aria-labelledby="log-title" data-testid="log-viewer">
      <div className="log-head">
        <h3 id="log-title" ref={heading} tabIndex={-1}>
          Log of {task.nodeName}{' '}
          <span className="muted small">
            attempt {task.attempt || '—'}
            {task.state ? ` · ${task.state}` : ''}
          </span>
        </h3>
        <div className="actions start">
          <a
            className="button small"
            href={`data:text/plain;charset=utf-8,${encodeURIComponent(log.data ?? '')}`}
            download={`${task.nodeName}-${upgradeId}.log`}
          >
            Download
          </a>
          <button type="button" className="small" onClick={onClose}>
            Close log
          </button>
        </div>
      </div>
      <ErrorNotice error={log.error} prefix="Could not load the log" />
      <pre ref={pre} className="log" tabIndex={0} aria-label={`Log of ${task.nodeName}`}>
        {log.data === undefined ? 'Loading…' : log.data || 'The log is empty.'}
      </pre>
    </section>
  );
}
