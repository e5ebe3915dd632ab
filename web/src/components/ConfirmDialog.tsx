import { useState, type ReactNode } from 'react';
import { describeError } from '../api/client';
import { Dialog } from './Dialog';
import { Notice } from './Notice';

/**
 * "Are you sure?" before something that cannot be undone (revoking a token, deleting a
 * webhook): what it ends, in `children`; "Keep it" has the focus so that Enter is safe; the
 * server's refusal stays in the dialog so the admin can retry or keep it.
 */
export function ConfirmDialog({
  title,
  testId,
  confirmLabel,
  busyLabel,
  action,
  onDone,
  onClose,
  children,
}: {
  title: string;
  testId: string;
  confirmLabel: string;
  busyLabel: string;
  action: () => Promise<unknown>;
  onDone: () => void;
  onClose: () => void;
  children: ReactNode;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await action();
      onDone();
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} testId={testId}>
      {children}
      {error ? (
        <div>
          <Notice tone="bad" alert>
            {error}
          </Notice>
        </div>
      ) : null}
      <div className="actions">
        <button type="button" onClick={onClose} autoFocus>
          Keep it
        </button>
        <button type="button" className="danger" onClick={() => void confirm()} disabled={busy}>
          {busy ? busyLabel : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
