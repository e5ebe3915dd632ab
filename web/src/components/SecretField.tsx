import { useId, useRef, useState } from 'react';

/**
 * A secret shown once (a new API token, a webhook's signing secret): read-only, selected on
 * focus, with a Copy button that falls back to selecting it where the clipboard is refused.
 */
export function SecretField({ value, label, testId }: { value: string; label: string; testId: string }) {
  const id = useId();
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'yes' | 'select' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('yes');
    } catch {
      // No clipboard permission (or not a secure context): select it for Ctrl+C.
      input.current?.focus();
      input.current?.select();
      setCopied('select');
    }
  };
  return (
    <div className="secret-field">
      <label htmlFor={id}>{label}</label>
      <div className="secret-row">
        <input
          id={id}
          ref={input}
          className="mono"
          readOnly
          value={value}
          spellCheck={false}
          autoComplete="off"
          onFocus={(e) => e.currentTarget.select()}
          data-testid={testId}
        />
        <button type="button" onClick={() => void copy()}>
          {copied === 'yes' ? 'Copied' : 'Copy'}
        </button>
      </div>
      <p className="help" role="status">
        {copied === 'yes'
          ? 'Copied to the clipboard.'
          : copied === 'select'
            ? 'The clipboard is not available here: press Ctrl+C to copy.'
            : ''}
      </p>
    </div>
  );
}
