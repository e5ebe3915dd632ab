// Refuses import cycles between the files of src/ and imports that run against the
// layering of STYLE.md (domain ← store/drivers/snapshots ← engine ← server). Prints
// each problem with the files involved; exits 1 when there is any.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.tsx?$/.test(name)) files.push(path);
  }
};
walk(root);

const graph = new Map();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const deps = [];
  for (const match of text.matchAll(/(?:import|export)\s+(?:type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    if (/^\s*import\s+type\b|^\s*export\s+type\b/.test(match[0])) continue;
    const target = resolve(dirname(file), match[1]).replace(/\.js$/, '.ts');
    deps.push(target);
  }
  graph.set(file, deps);
}

const problems = [];
const state = new Map();
const stack = [];
const visit = (file) => {
  state.set(file, 'open');
  stack.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (!graph.has(dep)) continue;
    if (state.get(dep) === 'open') {
      const cycle = stack
        .slice(stack.indexOf(dep))
        .concat(dep)
        .map((f) => relative(root, f));
      problems.push(`import cycle: ${cycle.join(' → ')}`);
    } else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, 'done');
};
for (const file of graph.keys()) if (!state.has(file)) visit(file);

const layerOf = (file) => relative(root, file).split('/')[0];
const allowed = {
  domain: ['domain'],
  api: ['domain', 'api'],
  store: ['domain', 'store'],
  drivers: ['domain', 'drivers'],
  snapshots: ['domain', 'snapshots'],
  engine: ['domain', 'engine', 'store'],
  server: ['domain', 'api', 'engine', 'store', 'drivers', 'snapshots', 'server'],
  agent: ['domain', 'agent', 'snapshots'],
  cli: ['domain', 'api', 'cli'],
};
for (const [file, deps] of graph) {
  const from = layerOf(file);
  const ok = allowed[from];
  if (!ok) continue;
  for (const dep of deps) {
    const to = layerOf(dep);
    if (!ok.includes(to))
      problems.push(`layering: ${relative(root, file)} imports ${relative(root, dep)} (${from} may import ${ok.join(', ')})`);
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`layers ok: ${files.length} files, no cycles`);
