import type { ClusterView } from '../api/index.js';
import type { Catalog } from '../domain/catalog.js';
import type { VersionGroup } from '../domain/fleet-summary.js';
import type { ClusterRecord, UpgradeRecord } from '../domain/model.js';
import type { Store } from '../store/store.js';
import { clusterView } from './views.js';

/** What a cluster's view is made of; the view is made again only when one of them changed. */
interface Inputs {
  catalog: Catalog;
  cluster: ClusterRecord;
  groups: VersionGroup[];
  active: UpgradeRecord | undefined;
}

const sameGroups = (a: readonly VersionGroup[], b: readonly VersionGroup[]) =>
  a.length === b.length &&
  a.every((g, i) => {
    const h = b[i] as VersionGroup;
    // The store hands out one frozen versions object per text (store/rows.ts, FrozenJson).
    return g.versions === h.versions && g.distribution === h.distribution && g.count === h.count;
  });

/** Whether a view made of `a` is the view of `b`: cluster settings and windows are shared frozen objects (store/clusters.ts). */
const sameInputs = (a: Inputs, b: Inputs) =>
  a.catalog === b.catalog &&
  a.cluster.name === b.cluster.name &&
  a.cluster.kind === b.cluster.kind &&
  a.cluster.config === b.cluster.config &&
  a.cluster.unavailableReason === b.cluster.unavailableReason &&
  a.cluster.window === b.cluster.window &&
  a.cluster.createdAt === b.cluster.createdAt &&
  a.active?.id === b.active?.id &&
  a.active?.state === b.active?.state &&
  a.active?.component === b.active?.component &&
  sameGroups(a.groups, b.groups);

/**
 * The views of every cluster for `GET /clusters`, made of what the database holds (the
 * clusters, their nodes' version groups kept on write, the active upgrades, the catalog
 * as installs see it). Where the database keeps a revision of those (one server on
 * SQLite, `listRevision`) they are read again only when it moved; elsewhere (replicas on
 * PostgreSQL) on every request, so that what another replica wrote shows at once. Either
 * way the view of a cluster none of whose inputs changed is the same object as last
 * time, and its JSON, made once by the route's schema (`serialize`), is reused with it.
 * Summarising a cluster's components and serialising it were most of the list's time
 * (issue 17).
 */
export class ClusterListViews {
  private previous = new Map<string, { inputs: Inputs; view: ClusterView }>();
  /**
   * Each view's JSON as UTF-8 bytes: copied into an answer as they are, where joining the
   * serialiser's strings walked their many pieces again on every answer.
   */
  private readonly json = new WeakMap<ClusterView, Buffer>();
  /** The last answer and the views it holds: the answer while none of them changed. */
  private answer: { views: readonly ClusterView[]; body: Buffer } | undefined;

  /** The last list read in full, and the revision of the database it was read at (null: not kept there). */
  private read: { revision: number; catalog: Catalog; views: ClusterView[] } | undefined;

  async list(store: Store, catalog: Catalog): Promise<ClusterView[]> {
    // Taken before the reads: a write that lands between them moves it past what the
    // views were read at, and the next request reads again.
    const revision = await store.clusters.listRevision();
    const last = this.read;
    if (revision !== null && last && last.revision === revision && last.catalog === catalog) return last.views;
    const views = await this.readAll(store, catalog);
    if (revision !== null) this.read = { revision, catalog, views };
    return views;
  }

  private async readAll(store: Store, catalog: Catalog): Promise<ClusterView[]> {
    const [clusters, groupRows, activeList] = await Promise.all([
      store.clusters.list(),
      store.nodes.versionGroups(),
      store.upgrades.listActive(),
    ]);
    const groups = new Map<string, VersionGroup[]>();
    for (const row of groupRows) {
      let list = groups.get(row.clusterId);
      if (!list) groups.set(row.clusterId, (list = []));
      list.push(row);
    }
    const active = new Map(activeList.map((u) => [u.clusterId, u]));
    // Only the clusters listed now are kept: a deleted cluster's view goes with it.
    const next = new Map<string, { inputs: Inputs; view: ClusterView }>();
    const views = clusters.map((cluster) => {
      const inputs: Inputs = { catalog, cluster, groups: groups.get(cluster.id) ?? [], active: active.get(cluster.id) };
      const kept = this.previous.get(cluster.id);
      const entry =
        kept && sameInputs(kept.inputs, inputs)
          ? kept
          : { inputs, view: clusterView(inputs.catalog, inputs.cluster, inputs.groups, inputs.active) };
      next.set(cluster.id, entry);
      return entry.view;
    });
    this.previous = next;
    return views;
  }

  /** `{"items":[…]}` of these views, each view's JSON made by `serialize` once and kept with it. */
  serialize(views: readonly ClusterView[], serialize: (view: ClusterView) => string): Buffer {
    const last = this.answer;
    if (last && last.views.length === views.length && last.views.every((v, i) => v === views[i])) return last.body;
    const parts: Buffer[] = [OPEN];
    views.forEach((view, i) => {
      let bytes = this.json.get(view);
      if (bytes === undefined) this.json.set(view, (bytes = Buffer.from(serialize(view))));
      if (i > 0) parts.push(COMMA);
      parts.push(bytes);
    });
    parts.push(CLOSE);
    const body = Buffer.concat(parts);
    this.answer = { views, body };
    return body;
  }
}

const OPEN = Buffer.from('{"items":[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');
