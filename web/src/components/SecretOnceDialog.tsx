import type { ReactNode } from 'react';
import { Dialog } from './Dialog';
import { Notice } from './Notice';
import { SecretField } from './SecretField';

/**
 * What a create dialog turns into when the server answers with a secret it never returns
 * again (a token, a webhook's signing secret): the warning to copy it now, the secret, a
 * summary of what was created (`children`) and Done, focused.
 */
export function SecretOnceDialog({
  title,
  testId,
  warningTitle,
  warningTestId,
  warning,
  secret,
  secretLabel,
  secretTestId,
  onClose,
  children,
}: {
  title: string;
  testId: string;
  warningTitle: string;
  warningTestId: string;
  warning: ReactNode;
  secret: string;
  secretLabel: string;
  secretTestId: string;
  onClose: () => void;
  children: ReactNode;
}) {
  return (
    <Dialog title={title} onClose={onClose} wide testId={testId}>
      <div>
        <Notice tone="warn" title={warningTitle} testId={warningTestId}>
          {warning}
        </Notice>
        <SecretField value={secret} label={secretLabel} testId={secretTestId} />
        <p className="muted">{children}</p>
      </div>
      <div className="actions">
        <button type="button" className="primary" onClick={onClose} autoFocus>
          Done
        </button>
      </div>
    </Dialog>
  );
}
