import { useId, type ButtonHTMLAttributes } from 'react';
import type { Role } from '@upshift/api';
import { needsRoleText, useSession } from '../lib/session';

/**
 * Where the signed-in role cannot do what a place of the page offers, this says so: which
 * role it needs and who is signed in. Nothing for a role that can. The server decides in
 * the end; the console only does not offer what it would refuse.
 */
export function RoleNote({ need, what, testId = 'role-note' }: { need: Role; what: string; testId?: string }) {
  const { principal, can } = useSession();
  if (can(need)) return null;
  return (
    <p className="role-note" data-testid={testId}>
      <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
        <path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z" fill="currentColor" />
      </svg>
      <span>
        {what} needs the <strong>{need}</strong> role; you are signed in as {principal.name} ({principal.role}).
      </span>
    </p>
  );
}

/**
 * A button that is disabled when the signed-in role cannot do its action, with the role it
 * needs as its tooltip and its accessible description.
 */
export function RoleButton({ need, disabled, title, children, ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { need: Role }) {
  const { principal, can } = useSession();
  const id = useId();
  const allowed = can(need);
  if (allowed) {
    return (
      <button type="button" disabled={disabled} title={title} {...rest}>
        {children}
      </button>
    );
  }
  const reason = needsRoleText(need, principal);
  return (
    <>
      <button type="button" {...rest} disabled title={reason} aria-describedby={id} data-needs-role={need}>
        {children}
      </button>
      <span id={id} className="visually-hidden">
        {reason}
      </span>
    </>
  );
}
