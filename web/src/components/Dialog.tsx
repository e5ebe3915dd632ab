import { useEffect, useRef, type ReactNode } from 'react';
import { Notice } from './Notice';

/**
 * A modal built on <dialog>: the browser traps focus, Escape closes it, and focus goes
 * back to what opened it.
 */
export function Dialog({
  title,
  onClose,
  children,
  wide,
  testId,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  wide?: boolean;
  testId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement as HTMLElement | null;
    if (!dialog.open) dialog.showModal();
    const handleClose = () => onCloseRef.current();
    dialog.addEventListener('close', handleClose);
    return () => {
      dialog.removeEventListener('close', handleClose);
      if (dialog.open) dialog.close();
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);
  return (
    <dialog ref={ref} className={wide ? 'dialog wide' : 'dialog'} aria-labelledby="dialog-title" data-testid={testId}>
      <header className="dialog-header">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" className="icon-button" aria-label="Close" onClick={() => ref.current?.close()}>
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

/**
 * The end of a create form in a dialog: the server's refusal, if any, then Cancel and the
 * submit button, which says it is working while the request runs.
 */
export function FormFooter({
  error,
  errorTestId,
  busy,
  submitLabel,
  onCancel,
}: {
  error: string | null;
  errorTestId?: string;
  busy: boolean;
  submitLabel: string;
  onCancel: () => void;
}) {
  return (
    <>
      {error ? (
        <div className="span-all">
          <Notice tone="bad" alert testId={errorTestId}>
            {error}
          </Notice>
        </div>
      ) : null}
      <div className="actions span-all">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : submitLabel}
        </button>
      </div>
    </>
  );
}
