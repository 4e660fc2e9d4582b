// Offline: the app shell (precached at install, under a cache named by the build, plus the wasm
// build the page runs, kept when the page names it) and the
// models (cached by the page after their sha256 check, under a cache keyed by that hash) are
// served from the Cache API; a new build gets a new cache and the old one is deleted.
// Only this origin is ever contacted; nothing the user gives passes through here.

const BUILD = '__BUILD__';
const APP_CACHE = `unblur-app-${BUILD}`;
const ASSETS = __ASSETS__;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(APP_CACHE);
      // 'no-cache' revalidates: a file the page already fetched is not sent again.
      await cache.addAll(ASSETS.map((a) => new Request(a, { cache: 'no-cache' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const k of await caches.keys()) if (k.startsWith('unblur-app-') && k !== APP_CACHE) await caches.delete(k);
      await self.clients.claim();
    })(),
  );
});

// The page names the wasm build it runs (engine.js); only that one of the two is kept, and the
// GPU worker's code only where the page runs it.
self.addEventListener('message', (event) => {
  const { type, urls } = event.data || {};
  if (type !== 'keep' || !Array.isArray(urls)) return;
  const ok = urls.filter((u) => typeof u === 'string' && (/^pkg(-relaxed)?\/unblur_web(_bg\.wasm|\.js)$/.test(u) || /^(pkg-gpu\/unblur_web_gpu(_bg\.wasm|\.js)|gpuworker\.js)$/.test(u)));
  const reply = (m) => event.ports[0]?.postMessage(m);
  event.waitUntil(
    caches
      .open(APP_CACHE)
      .then(async (cache) => {
        for (const u of ok) if (!(await cache.match(u))) await cache.add(new Request(u, { cache: 'no-cache' }));
        reply({ kept: ok.length === urls.length });
      })
      .catch((e) => reply({ error: String(e) })),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin) return;
  event.respondWith(
    (async () => {
      const nav = req.mode === 'navigate';
      const app = await caches.open(APP_CACHE);
      // The page itself is the same whatever the query (?scale=4 …).
      const hit = (await app.match(req, { ignoreSearch: nav })) || (!nav && (await caches.match(req)));
      if (hit) return hit;
      try {
        return await fetch(req);
      } catch (e) {
        if (nav) {
          const index = await app.match('./');
          if (index) return index;
        }
        throw e;
      }
    })(),
  );
});
