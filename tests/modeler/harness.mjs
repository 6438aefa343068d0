// Shared by the browser test: bundles the page with esbuild, serves it on 127.0.0.1 and opens
// it in Debian's Chromium through playwright-core (no browser download).
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { copyFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css',
  '.svg': 'image/svg+xml', '.eot': 'application/vnd.ms-fontobject', '.map': 'application/json',
};

export async function bundle(outDir) {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'page', 'main.js')],
    bundle: true,
    format: 'iife',
    outdir: outDir,
    minify: true,
    logLevel: 'error',
    loader: {
      '.bpmn': 'text', '.eot': 'file', '.svg': 'file',
      '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl',
    },
  });
  copyFileSync(join(here, 'page', 'index.html'), join(outDir, 'index.html'));
}

export function serve(dir) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, origin: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

export function chromiumPath() {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

export function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
