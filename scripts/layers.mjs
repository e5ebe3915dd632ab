// The layers of the code and what each may import: the one table that eslint.config.js
// (its `layers/allowed-imports` rule, in the editor) and scripts/check-layers.mjs (in
// `npm test` and `npm run lint`, which also refuses import cycles) both read.
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root, where the paths below start. */
export const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));

/**
 * Each layer's folder and the layers it may import besides itself. `domain` holds the
 * pure rules and imports nothing of the project; `api` is the HTTP contract (schemas);
 * `platform` wraps the operating system (processes, Docker's Engine API); the server and
 * the CLI are thin; the console (`web`) sees only the contract and the domain.
 */
export const layers = {
  domain: { path: 'src/domain', imports: [] },
  api: { path: 'src/api', imports: ['domain'] },
  platform: { path: 'src/platform', imports: ['domain'] },
  store: { path: 'src/store', imports: ['domain'] },
  drivers: { path: 'src/drivers', imports: ['domain', 'platform'] },
  agent: { path: 'src/agent', imports: ['domain', 'platform'] },
  engine: { path: 'src/engine', imports: ['domain', 'store', 'drivers'] },
  server: { path: 'src/server', imports: ['domain', 'api', 'engine', 'store', 'drivers'] },
  cli: { path: 'src/cli', imports: ['domain', 'api'] },
  web: { path: 'web/src', imports: ['domain', 'api'] },
};

/** Files in no layer that may import any layer: the composition root. */
export const entryPoints = ['src/main.ts'];

/** Folders whose every file must be in a layer or be an entry point. */
export const layeredRoots = ['src', 'web/src'];

/** Import aliases (the console's, defined in web/vite.config.ts and web/tsconfig.json) and the folders they stand for. */
export const aliases = {
  '@upshift/domain/': 'src/domain/',
  '@upshift/api/': 'src/api/',
};

const toPosix = (path) => path.split(sep).join('/');

/** A path relative to the root, with forward slashes. */
export function projectPath(file) {
  return toPosix(relative(root, file));
}

/** The layer a project path belongs to, or undefined (an entry point, a test, a script). */
export function layerOf(path) {
  for (const [name, layer] of Object.entries(layers)) {
    if (path === layer.path || path.startsWith(`${layer.path}/`)) return name;
  }
  return undefined;
}

/** True when a file of layer `from` may import a file of layer `to`. */
export function mayImport(from, to) {
  return from === to || layers[from].imports.includes(to);
}

/**
 * The project path an import specifier in `fromPath` points at (relative or through an
 * alias), as written: without resolving extensions. Undefined for a package.
 */
export function importTarget(fromPath, specifier) {
  if (specifier.startsWith('.')) return toPosix(normalize(join(dirname(fromPath), specifier)));
  for (const [alias, folder] of Object.entries(aliases)) {
    if (specifier.startsWith(alias)) return folder + specifier.slice(alias.length);
  }
  return undefined;
}

/** Why `fromPath` must not import `targetPath`, or undefined when it may. */
export function layeringProblem(fromPath, targetPath) {
  const from = layerOf(fromPath);
  if (from === undefined) return undefined;
  const to = layerOf(targetPath);
  if (to === undefined) {
    if (entryPoints.includes(targetPath.replace(/\.js$/, '.ts'))) return `${from} must not import the entry point ${targetPath}`;
    return undefined;
  }
  if (mayImport(from, to)) return undefined;
  const allowed = layers[from].imports;
  return `${from} (${layers[from].path}) must not import ${to} (${layers[to].path}); ${from} may import ${allowed.length > 0 ? allowed.join(', ') : 'nothing of the project'}`;
}
