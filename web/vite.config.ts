import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The console. Built by `npm run build` with `npx vite build --config web/vite.config.ts`
 * from the repository root: the root is this folder, the output is dist/web, which the
 * server serves at `/`. `npx vite --config web/vite.config.ts` runs a dev server that
 * proxies the API to a local `upshift server` (UPSHIFT_API, default http://127.0.0.1:8420).
 */
const webRoot = decodeURIComponent(new URL('.', import.meta.url).pathname);
const srcRoot = decodeURIComponent(new URL('../src/', import.meta.url).pathname);
const apiTarget =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env['UPSHIFT_API'] ?? 'http://127.0.0.1:8420';

export default defineConfig({
  root: webRoot,
  base: '/',
  plugins: [react()],
  // The console shares the API contract and the domain's pure rules with the server
  // (the same aliases are in tsconfig.json); scripts/layers.mjs keeps it to these two.
  resolve: {
    alias: [
      { find: /^@upshift\/domain\//, replacement: `${srcRoot}domain/` },
      { find: /^@upshift\/api$/, replacement: `${srcRoot}api/index.ts` },
      { find: /^@upshift\/api\//, replacement: `${srcRoot}api/` },
    ],
  },
  build: {
    outDir: `${webRoot}../dist/web`,
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { '/api': { target: apiTarget, changeOrigin: false } },
  },
});
