import type { ReactNode } from 'react';
import { describeError } from '../api/client';

/** A message box. `alert` ones are announced by screen readers as soon as they appear. */
export function Notice({
  tone,
  title,
  children,
  testId,
  alert,
}: {
  tone: 'info' | 'warn' | 'bad' | 'ok';
  title?: string;
  children: ReactNode;
  testId?: string;
  alert?: boolean;
}) {
  return (
    <div className={`notice ${tone}`} role={alert ? 'alert' : 'status'} data-testid={testId}>
      {title ? <strong className="notice-title">{title}</strong> : null}
      <div>{children}</div>
    </div>
  );
}

export function ErrorNotice({ error, prefix }: { error: unknown; prefix?: string }) {
  if (!error) return null;
  return (
    <Notice tone="bad" alert testId="error">
      {prefix ? `${prefix}: ` : ''}
      {describeError(error)}
    </Notice>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}
