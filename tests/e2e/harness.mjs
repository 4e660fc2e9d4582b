// What every browser script here shares: a static file server on 127.0.0.1 over one or more
// folders, and Debian's Chromium launched with the flags this closed network needs.
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json', '.png': 'image/png',
};

/**
 * Serves `mounts` ([[urlPrefix, folder], …], first match wins) on a random loopback port.
 * `onRequest(pathname)` sees every request and `onResponse(pathname, status, file)` every file
 * answered; while `offline()` is true every connection is dropped, as if the network were down.
 * `headers` go on every file answered (e.g. COOP/COEP for a cross-origin-isolated page).
 * Files are streamed (models are hundreds of MB).
 */
export async function serveStatic(mounts, { onRequest, onResponse, offline = () => false, headers: extra = {} } = {}) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    onRequest?.(url.pathname);
    if (offline()) return req.socket.destroy();
    let pathname;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return res.writeHead(400).end();
    }
    const [prefix, root] = mounts.find(([m]) => pathname.startsWith(m)) || [];
    if (!root) return res.writeHead(404).end('not found');
    let file = path.join(root, pathname.slice(prefix.length));
    if (!file.startsWith(root + path.sep) && file !== root) return res.writeHead(403).end();
    try {
      let s = await stat(file);
      if (s.isDirectory()) s = await stat((file = path.join(file, 'index.html')));
      // Like a real static host: an ETag, and 304 to a revalidation that matches it.
      const etag = `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`;
      const headers = { etag, 'cache-control': 'no-cache', ...extra };
      if (req.headers['if-none-match'] === etag) {
        onResponse?.(url.pathname, 304, file);
        return res.writeHead(304, headers).end();
      }
      onResponse?.(url.pathname, 200, file);
      res.writeHead(200, { ...headers, 'content-type': MIME[path.extname(file)] || 'application/octet-stream', 'content-length': s.size });
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/** Debian's Chromium (never a downloaded one), quiet on a network that refuses everything. */
const CHROMIUM = () => ({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** `args`: more flags; with WebGPU's (`--enable-unsafe-webgpu` …) `--disable-gpu` is left out. */
export function launchChromium(args = []) {
  const base = CHROMIUM();
  if (args.length) base.args = [...base.args.filter((a) => !(args.includes('--enable-unsafe-webgpu') && a === '--disable-gpu')), ...args];
  return chromium.launch(base);
}

/** The same Chromium with a real profile in `dir` (a disk HTTP cache, as a person's browser has;
 *  the contexts of `launchChromium` keep theirs in memory and skip large files). */
export function launchChromiumProfile(dir, options = {}) {
  return chromium.launchPersistentContext(dir, { ...CHROMIUM(), ...options });
}

/** Runs `python3 -c code args…` and returns what it printed. The tests make their photos and
 *  judge their pixels in Python (PIL, numpy): neither the page nor node should judge their own. */
export function python(code, ...args) {
  return execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' });
}

/** The largest difference between two photos of one size, in levels (null if sizes differ). */
export function maxDiff(a, b) {
  return JSON.parse(
    python(
      `
import sys, json, numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert('RGB'), np.int16) for p in sys.argv[1:3])
print(json.dumps(int(abs(a - b).max()) if a.shape == b.shape else None))
`,
      a,
      b,
    ),
  );
}

/** Opens the page at `url` and waits for its engine to be ready. */
export async function openPage(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
}

/** Waits until the page's photo state (`body[data-state]`) is one of `states`; returns it. */
export async function waitState(page, states, timeout = 300_000) {
  states = [].concat(states);
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout, polling: 200 });
  return page.evaluate(() => document.body.dataset.state);
}

/**
 * Runs a suite of page tests ([{name, fn}]), each in a fresh browser context with its own output
 * folder under `outRoot` (`E2E_ONLY=name,name` picks some), printing ok/FAIL lines, a failing
 * test's screenshot, the browser's console errors, and the count; exits 1 if any failed.
 * `bind({context, page, out})` hands each test's context to the suite's module before it runs.
 */
export async function runSuite(tests, { outRoot, bind, server }) {
  const only = process.env.E2E_ONLY?.split(',');
  const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
  let browser;
  let passed = 0;
  let failed = 0;
  const logs = [];
  try {
    browser = await launchChromium();
    for (const t of tests) {
      if (only && !only.some((o) => t.name.includes(o))) continue;
      const t0 = Date.now();
      const out = path.join(outRoot, slug(t.name));
      await mkdir(out, { recursive: true });
      const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      page.on('console', (m) => m.type() === 'error' && logs.push(`${t.name}: ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`${t.name}: pageerror: ${e.message}`));
      bind({ context, page, out });
      try {
        const note = await t.fn();
        passed++;
        console.log(`ok   ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` — ${note}` : ''}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e.message.split('\n')[0]}`);
        await page.screenshot({ path: path.join(out, 'fail.png') }).catch(() => {});
      } finally {
        await context.close();
      }
    }
    if (logs.length) console.log(`browser console errors:\n  ${logs.slice(0, 20).join('\n  ')}`);
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e.message}`);
  } finally {
    await browser?.close().catch(() => {});
    server?.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
