import { useState, type ReactNode } from 'react';
import { useSession } from '../lib/session';
import { ErrorNotice, Loading } from './Notice';
import { RoleNote } from './RoleGate';

/**
 * The frame of an admin-only list page (tokens, webhooks): a role note for anyone else; for
 * admins the title, what the page is for and its Create button (and dialog), then the list's
 * load error, "Loading…", what to say when it is empty, or its table.
 */
export function AdminListPage({
  title,
  what,
  subtitle,
  createLabel,
  createDialog,
  list,
  noun,
  empty,
  table,
  rows,
  children,
}: {
  title: string;
  /** For the role note: "Managing API tokens". */
  what: string;
  subtitle: ReactNode;
  createLabel: string;
  /** The create dialog, shown from the Create button until `close` is called. */
  createDialog: (close: () => void) => ReactNode;
  list: { data: readonly unknown[] | undefined; error: unknown };
  /** Plural, for "Loading tokens…" and "Could not load the tokens". */
  noun: string;
  empty: ReactNode;
  /** The list's table, shown while it has items: its columns and a last one for each row's actions. */
  table: { className: string; testId: string; columns: string[] };
  /** The table's rows. */
  rows: ReactNode;
  /** The page's other dialogs (confirm before delete). */
  children?: ReactNode;
}) {
  const { can } = useSession();
  const [creating, setCreating] = useState(false);
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
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {createLabel}
          </button>
        </div>
      </div>
      <ErrorNotice error={list.error} prefix={`Could not load the ${noun}`} />
      {list.data === undefined && !list.error ? <Loading what={noun} /> : null}
      {list.data !== undefined && list.data.length === 0 ? empty : null}
      {list.data !== undefined && list.data.length > 0 ? (
        <div className="table-wrap">
          <table className={table.className} data-testid={table.testId}>
            <thead>
              <tr>
                {table.columns.map((c) => (
                  <th key={c} scope="col">
                    {c}
                  </th>
                ))}
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>{rows}</tbody>
          </table>
        </div>
      ) : null}
      {creating ? createDialog(() => setCreating(false)) : null}
      {children}
    </section>
  );
}
