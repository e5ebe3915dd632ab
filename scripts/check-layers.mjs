// Checks the layering of scripts/layers.mjs over every file of src/ and web/src/ (type
// imports included), that every such file is in a layer or an entry point, and that
// there is no import cycle (type-only imports aside: they vanish at run time). Prints
// each problem with the files involved; exits 1 when there is any.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { entryPoints, importTarget, layerOf, layeredRoots, layeringProblem, projectPath, root } from './layers.mjs';

const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) files.push(projectPath(path));
  }
};
for (const dir of layeredRoots) if (existsSync(join(root, dir))) walk(join(root, dir));

/** The file a project path written in an import names: `.js` for `.ts`, or no extension at all (the console). */
function resolveFile(path) {
  const candidates = [path, path.replace(/\.js$/, '.ts'), path.replace(/\.js$/, '.tsx'), `${path}.ts`, `${path}.tsx`, `${path}/index.ts`];
  return candidates.find((c) => existsSync(join(root, c)) && statSync(join(root, c)).isFile());
}

// Static imports and re-exports (`import … from`, `export … from`, `import '…'`) and dynamic `import('…')`.
const importPattern = /(?:^|[\s;])(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

const problems = [];
const graph = new Map();
for (const file of files) {
  if (layerOf(file) === undefined && !entryPoints.includes(file)) {
    problems.push(`${file} is in no layer: put it in a layer's folder, or add the layer to scripts/layers.mjs`);
  }
  const text = readFileSync(join(root, file), 'utf8');
  const runtimeDeps = [];
  for (const match of text.matchAll(importPattern)) {
    const specifier = match[3] ?? match[4];
    const typeOnly = match[2] !== undefined;
    const target = importTarget(file, specifier);
    if (target === undefined) continue;
    const problem = layeringProblem(file, target);
    if (problem) problems.push(`layering: ${file} imports ${target}: ${problem}`);
    const resolved = resolveFile(target);
    if (resolved === undefined) problems.push(`${file} imports ${specifier}, which is no file`);
    else if (!typeOnly) runtimeDeps.push(resolved);
  }
  graph.set(file, runtimeDeps);
}

const state = new Map();
const stack = [];
const visit = (file) => {
  state.set(file, 'open');
  stack.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (!graph.has(dep)) continue;
    if (state.get(dep) === 'open') problems.push(`import cycle: ${stack.slice(stack.indexOf(dep)).concat(dep).join(' → ')}`);
    else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, 'done');
};
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`layers: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`layers ok: ${files.length} files, no cycles`);
