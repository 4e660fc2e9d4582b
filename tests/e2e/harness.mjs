// What every browser script here shares: a static file server on 127.0.0.1 over one or more
// folders, and Debian's Chromium launched with the flags this closed network needs.
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
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

export function launchChromium() {
  return chromium.launch(CHROMIUM());
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
