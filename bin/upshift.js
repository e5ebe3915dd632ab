#!/usr/bin/env node
// The `upshift` command: runs the bundle built by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = new URL('../dist/upshift.js', import.meta.url);
if (!existsSync(fileURLToPath(bundle))) {
  process.stderr.write('upshift: not built yet; run `npm ci && npm run build` in the checkout first\n');
  process.exit(1);
}
await import(bundle.href);
