#!/usr/bin/env node
// Builds the web dashboard into dist/web: web/src/main.ts bundled by esbuild into dashboard.js, and
// web/index.html and web/dashboard.css copied beside it. `npm run build` runs it after tsc.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist/web');

fs.mkdirSync(outDir, { recursive: true });
await build({
  entryPoints: [path.join(root, 'web/src/main.ts')],
  outfile: path.join(outDir, 'dashboard.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['index.html', 'dashboard.css']) {
  fs.copyFileSync(path.join(root, 'web', file), path.join(outDir, file));
}
