import type { ReactNode } from 'react';
import { useSession } from '../lib/session';
import { ErrorNotice, Loading } from './Notice';
import { RoleNote } from './RoleGate';

/**
 * The frame of an admin-only list page (tokens, webhooks): a role note for anyone else; for
 * admins the title, what the page is for and its Create button, then the list's load error,
 * "Loading…" or what to say when it is empty. The table and the dialogs are `children`.
 */
export function AdminListPage({
  title,
  what,
  subtitle,
  createLabel,
  onCreate,
  list,
  noun,
  empty,
  children,
}: {
  title: string;
  /** For the role note: "Managing API tokens". */
  what: string;
  subtitle: ReactNode;
  createLabel: string;
  onCreate: () => void;
  list: { data: readonly unknown[] | undefined; error: unknown };
  /** Plural, for "Loading tokens…" and "Could not load the tokens". */
  noun: string;
  empty: ReactNode;
  children: ReactNode;
}) {
  const { can } = useSession();
  if (!can('admin')) {
    return (
      <section className="page" aria-labelledby="page-title">
        <h1 id="page-title">{title}</h1>
        <RoleNote need="admin" what={what} />
      </section>
    );
  }
  return (
    <section className="page" aria-labelledby="page-title">
      <div className="page-head">
        <div>
          <h1 id="page-title">{title}</h1>
          <p className="subtitle">{subtitle}</p>
        </div>
        <div className="toolbar">
          <button type="button" className="primary" onClick={onCreate}>
            {createLabel}
          </button>
        </div>
      </div>
      <ErrorNotice error={list.error} prefix={`Could not load the ${noun}`} />
      {list.data === undefined && !list.error ? <Loading what={noun} /> : null}
      {list.data !== undefined && list.data.length === 0 ? empty : null}
      {children}
    </section>
  );
}
