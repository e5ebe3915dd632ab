import {
  AliasNode,
  ColumnNode,
  type DefaultQueryCompiler,
  type IdentifierNode,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  ReferenceNode,
  type RootOperationNode,
  type SelectionNode,
  type UnknownRow,
} from 'kysely';

/*
 * The repositories name tables and columns in camelCase (`nodeTasks.clusterId`); the
 * database names them in snake_case (`node_tasks.cluster_id`). This is what Kysely's
 * CamelCasePlugin does, done where the SQL is written instead of by rebuilding every
 * query's operation tree (which cost some 70 µs of CPU per query on PostgreSQL, where no
 * statement cache pays it back): the query compiler writes each identifier in
 * snake_case, and asks for each selected column under its camelCase name (`"cluster_id"
 * as "clusterId"`), so that rows come from the driver in the names the repositories read
 * and none is renamed in JavaScript. Aliases the repositories give their selections
 * (`count(*) as n`) are kept as they are. Rows of what is not a list of columns
 * (`selectAll()`, raw SQL) are renamed by `CamelCaseRows`, once per result.
 *
 * Migrations are written in the database's own (snake_case) names, which this leaves as
 * they are.
 */

const snakeNames = new Map<string, string>();
const camelNames = new Map<string, string>();

/** `clusterId` → `cluster_id` (names without capitals are left as they are). */
export function snakeCase(name: string): string {
  let snake = snakeNames.get(name);
  if (snake === undefined) {
    snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    snakeNames.set(name, snake);
  }
  return snake;
}

/** `cluster_id` → `clusterId`. */
export function camelCase(name: string): string {
  let camel = camelNames.get(name);
  if (camel === undefined) {
    camel = name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    camelNames.set(name, camel);
  }
  return camel;
}

type Compiler = abstract new (...args: any[]) => DefaultQueryCompiler;

/** A dialect's query compiler that writes camelCase names in snake_case, and selections under their camelCase names. */
export function camelCaseCompiler<C extends Compiler>(Base: C) {
  abstract class CamelCaseCompiler extends Base {
    protected override compileUnwrappedIdentifier(node: IdentifierNode): void {
      this.append(this.sanitizeIdentifier(snakeCase(node.name)));
    }

    protected override visitSelection(node: SelectionNode): void {
      const { selection } = node;
      if (ReferenceNode.is(selection) && ColumnNode.is(selection.column)) {
        this.visitNode(selection);
        const name = selection.column.column.name;
        if (snakeCase(name) !== name) this.appendAlias(name);
        return;
      }
      if (AliasNode.is(selection) && selection.alias.kind === 'IdentifierNode') {
        this.visitNode(selection.node);
        this.appendAlias((selection.alias as IdentifierNode).name);
        return;
      }
      super.visitSelection(node);
    }

    /** ` as "name"`, the name as it is. */
    private appendAlias(name: string): void {
      this.append(` as ${this.getLeftIdentifierWrapper()}${this.sanitizeIdentifier(name)}${this.getRightIdentifierWrapper()}`);
    }
  }
  return CamelCaseCompiler;
}

/** Renames the columns of rows that came back in snake_case (see above); every row of a result has the same columns. */
export class CamelCaseRows implements KyselyPlugin {
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const { rows } = args.result;
    const first = rows[0];
    if (!first) return args.result;
    const columns = Object.keys(first);
    const names = columns.map(camelCase);
    if (names.every((name, i) => name === columns[i])) return args.result;
    const renamed = new Array<UnknownRow>(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as UnknownRow;
      const out: UnknownRow = {};
      for (let i = 0; i < columns.length; i++) out[names[i] as string] = row[columns[i] as string];
      renamed[r] = out;
    }
    return { ...args.result, rows: renamed };
  }
}
