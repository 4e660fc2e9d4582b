// The build's models: the manifest, and each shipped model file fetched once with progress,
// checked against its sha256 and kept in the Cache API (refetched once if it does not match);
// what the build no longer names is pruned.

const MODEL_CACHE = 'unblur-models';

async function sha256Hex(bytes) {
  const d = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function readWithProgress(resp, total, onBytes) {
  if (!resp.body) {
    const b = new Uint8Array(await resp.arrayBuffer());
    onBytes(b.length);
    return b;
  }
  const reader = resp.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onBytes(value.length);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  if (total && got !== total) onBytes(0);
  return out;
}

/** The built manifest and the model files it names. */
export class Models {
  constructor(base = 'models/') {
    this.base = base;
    this.bytes = new Map(); // url → Uint8Array
  }

  async manifest() {
    const r = await fetch(this.base + 'manifest.json');
    if (!r.ok) throw new Error(`the model list could not be loaded (HTTP ${r.status})`);
    this.text = await r.text(); // as served: the core reads it too (Pool.upscaler)
    this.list = JSON.parse(this.text).models;
    return this.list;
  }

  byId(id) {
    return this.list.find((m) => m.id === id);
  }

  /** Super-resolution models to offer (denoise partners and presets are used through their
   *  main model: Manifest::upscaler). */
  srModels() {
    const partners = new Set(this.list.map((m) => m.denoise_partner).filter(Boolean));
    return this.list.filter((m) => m.task === 'super-resolution' && m.ship && !partners.has(m.id) && !m.preset);
  }

  /** Every model the build ships, for keeping them all for offline use. */
  shipped() {
    return this.list.filter((m) => m.ship);
  }

  /** Face models the build ships (Unblur's own), fetched when first chosen. */
  faceModels() {
    return this.list.filter((m) => m.task === 'face-restoration' && m.ship);
  }

  detector() {
    return this.list.find((m) => m.task === 'face-detection' && m.ship);
  }

  /** The deblur network (Unblur's own, `unblur-deblur`), if the build ships one. */
  deblur() {
    return this.list.find((m) => m.task === 'deblur' && m.ship);
  }

  /** The damage detector for old-photo repair (Unblur's own, `unblur-repair`), if the build ships one. */
  damageDetector() {
    return this.list.find((m) => m.task === 'damage-detection' && m.ship);
  }

  artifact(m) {
    const a = m.artifacts[m.ship];
    return { url: `${this.base}${a.file}?sha256=${a.sha256.slice(0, 16)}`, ...a };
  }

  /**
   * Fetches the models' shipped artifacts (from the Cache API when there), reporting bytes done
   * of the total; each is checked against its sha256, refetched once if it does not match.
   */
  /**
   * @param {any[]} models manifest entries
   * @param {(done: number, total: number) => void} [onProgress]
   * @param {{hold?: boolean}} [opts] hold: false only makes sure they are in the cache
   *   (fetched at low priority), keeping no bytes in memory
   * @returns {Promise<Uint8Array[]>}
   */
  async load(models, onProgress = () => {}, { hold = true } = {}) {
    const arts = models.map((m) => ({ m, a: this.artifact(m) }));
    const total = arts.reduce((s, { a }) => s + a.bytes, 0);
    let done = 0;
    const tick = (n) => {
      done += n;
      onProgress(Math.min(done, total), total);
    };
    tick(0);
    const cache = 'caches' in self ? await caches.open(MODEL_CACHE).catch(() => null) : null;
    const out = await Promise.all(
      arts.map(async ({ m, a }) => {
        if (this.bytes.has(a.url)) {
          tick(a.bytes);
          return this.bytes.get(a.url);
        }
        let bytes = null;
        const hit = cache && (await cache.match(a.url));
        if (hit) {
          bytes = new Uint8Array(await hit.arrayBuffer());
          if ((await sha256Hex(bytes)) === a.sha256) tick(a.bytes);
          else {
            await cache.delete(a.url);
            bytes = null;
          }
        }
        for (let attempt = 0; !bytes; attempt++) {
          let got = 0;
          const resp = await fetch(a.url, { cache: attempt ? 'reload' : 'default', priority: hold ? 'auto' : 'low' }).catch(() => null);
          if (!resp || !resp.ok) {
            throw new Error(`the model "${m.name}" could not be downloaded${resp ? ` (HTTP ${resp.status})` : ' (offline?)'}`);
          }
          const b = await readWithProgress(resp, a.bytes, (n) => {
            got += n;
            tick(n);
          });
          if ((await sha256Hex(b)) === a.sha256) {
            bytes = b;
            if (cache) await cache.put(a.url, new Response(b, { headers: { 'content-type': 'application/octet-stream' } })).catch(() => {});
          } else {
            tick(-got);
            if (attempt >= 1) {
              throw new Error(`the model "${m.name}" is damaged (its checksum does not match, even after downloading it again)`);
            }
          }
        }
        if (hold) this.bytes.set(a.url, bytes);
        return bytes;
      }),
    );
    this.prune(cache);
    return out;
  }

  /** Removes cached model files that no model of this build names. */
  async prune(cache) {
    if (!cache) return;
    const keep = new Set(this.list.filter((m) => m.ship).map((m) => new URL(this.artifact(m).url, location.href).href));
    for (const req of await cache.keys()) if (!keep.has(req.url)) cache.delete(req);
  }
}
