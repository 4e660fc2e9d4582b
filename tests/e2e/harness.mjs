// What every browser script here shares: a static file server on 127.0.0.1 over one or more
// folders, and Debian's Chromium launched with the flags this closed network needs.
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json', '.png': 'image/png',
};

/**
 * Serves `mounts` ([[urlPrefix, folder], …], first match wins) on a random loopback port.
 * `onRequest(pathname)` sees every request; while `offline()` is true every connection is
 * dropped, as if the network were down. Files are streamed (models are hundreds of MB).
 */
export async function serveStatic(mounts, { onRequest, offline = () => false } = {}) {
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
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] || 'application/octet-stream',
        'content-length': s.size,
        'cache-control': 'no-cache',
      });
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/** Debian's Chromium (never a downloaded one), quiet on a network that refuses everything. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
