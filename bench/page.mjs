// Benchmarks of the real page (dist/site) in headless Chromium, as a person meets it:
//
//  1. First visit, with an empty browser profile: every file the page and its service worker
//     download, as a static host sends them gzip-compressed, and the time from opening the page
//     to the first restored photo (a small photo at ×2 with faces).
//  2. The whole ×4 job on a real 0.32-megapixel photo with faces off, as a new user tries it
//     (photo chosen → download ready): wall time and the tab's peak memory.
//  3. A 12-megapixel photo at ×2 with faces, through the UI: wall time, and the tab's peak
//     memory (RSS of Chromium's renderer process, where the page and its workers live, sampled
//     from /proc every half second; also the whole browser's).
//
//   node bench/page.mjs     BENCH_MID=0 skips 2, BENCH_BIG=0 skips 3.  BENCH_OUT (bench/out/page.json),
//                           UNBLUR_SITE, CHROMIUM.

import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { serveStatic, launchChromium, launchChromiumProfile } from '../tests/e2e/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const OUT = path.resolve(process.env.BENCH_OUT || path.join(repo, 'bench/out/page.json'));
const BIG = process.env.BENCH_BIG !== '0';
const MID = process.env.BENCH_MID !== '0';
const MID_PHOTO = path.resolve(repo, '../shared/data/dev/gfpgan/whole_imgs/Blake_Lively.jpg');
const photos = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs');
const SMALL = path.join(photos, '01.jpg');
const log = (...a) => console.error('[page]', ...a);

// ---------- what the server sends ----------

const gzipped = new Map(); // file → gzip size (level 6, what static hosts use)
const gz = async (file) => {
  if (!gzipped.has(file)) gzipped.set(file, gzipSync(await readFile(file), { level: 6 }).length);
  return gzipped.get(file);
};
let sent = []; // {path, status, file}
const { server, origin } = await serveStatic([['/', site]], {
  onResponse: (p, status, file) => sent.push({ path: p, status, file }),
});

// ---------- memory: Chromium's processes, from /proc ----------

function descendants(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc'))
    if (/^\d+$/.test(d))
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = +stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
        if (!kids.has(ppid)) kids.set(ppid, []);
        kids.get(ppid).push(+d);
      } catch {}
  const out = [];
  const walk = (p) => (kids.get(p) || []).forEach((c) => (out.push(c), walk(c)));
  walk(root);
  return out;
}

async function sampleMemory() {
  let renderer = 0, total = 0;
  for (const pid of descendants(process.pid)) {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const rss = +(/VmRSS:\s+(\d+)/.exec(status)?.[1] || 0) * 1024;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('chrom')) continue;
      total += rss;
      if (cmd.includes('--type=renderer')) renderer = Math.max(renderer, rss);
    } catch {}
  }
  return { renderer, total };
}

// ---------- the page ----------

async function restore(page, file, timeout) {
  await page.setInputFiles((await page.isVisible('#queue-panel')) ? '#file-more' : '#file', file);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000, polling: 100 });
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  const t0 = Date.now();
  await page.click('#restore');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout, polling: 250 });
  const ms = Date.now() - t0;
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'done') throw new Error(`the restoration ended in ${state}: ${await page.textContent('#view-error')}`);
  // The download, saved as a person would; its PNG header gives the output's size.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const saved = path.join(repo, "bench/out", `page-${path.basename(download.suggestedFilename())}`);
  await download.saveAs(saved);
  const png = await readFile(saved);
  const size = { width: png.readUInt32BE(16), height: png.readUInt32BE(20), bytes: png.length };
  return { ms, ...size, faces: +(await page.getAttribute('#done', 'data-faces-restored')) };
}

const result = { site: path.relative(repo, site) };
const browser = await launchChromium();
try {
  // 1. First visit, in a fresh profile with a disk cache (what a person's browser has).
  {
    const profile = await mkdtemp(path.join(os.tmpdir(), 'unblur-profile-'));
    const context = await launchChromiumProfile(profile);
    const page = context.pages()[0] || (await context.newPage());
    sent = [];
    const t0 = Date.now();
    await page.goto(`${origin}/?scale=2&faces=on`);
    await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000, polling: 50 });
    const readyMs = Date.now() - t0;
    const engine = await page.textContent('#engine-text');
    const r = await restore(page, SMALL, 300_000);
    const firstPhotoMs = Date.now() - t0;
    // The first visit is what came before the first restored photo. Then the page keeps the
    // rest for offline use once idle (the service worker keeps the engine, revalidating; the
    // models fetched only when first needed come now): reported apart.
    const upToPhoto = sent.length;
    const offlineMs = await page
      .waitForFunction(() => document.body.dataset.offline === 'ready', null, { timeout: 120_000 })
      .then(() => Date.now() - t0, () => null);
    const got = async (list) => {
      const out = [];
      for (const s of list) if (s.status === 200) out.push({ path: s.path, bytes: (await stat(s.file)).size, gzip: await gz(s.file) });
      return out;
    };
    const files = await got(sent.slice(0, upToPhoto));
    const later = await got(sent.slice(upToPhoto));
    const revalidated = sent.filter((s) => s.status === 304).length;
    // Unblur's own face model, selectable but not yet the default: what choosing it would add.
    const ownName = readdirSync(path.join(site, 'models')).find((f) => f.startsWith('unblur-face') && f.endsWith('.onnx'));
    const ownPath = ownName && path.join(site, 'models', ownName);
    const ownFaceModel = ownPath && { path: ownName, bytes: (await stat(ownPath)).size, gzip: await gz(ownPath) };
    const sum = (k, f = () => true) => files.filter(f).reduce((a, x) => a + x[k], 0);
    const kind = (p) => (p.endsWith('.wasm') ? 'wasm' : p.endsWith('.onnx') ? 'models' : 'page (HTML, JS, CSS, manifest)');
    result.firstVisit = {
      engine,
      readyMs,
      firstPhotoMs,
      restoreMs: r.ms,
      photo: path.basename(SMALL),
      output: [r.width, r.height],
      faces: r.faces,
      files,
      revalidated,
      byKind: Object.fromEntries(
        ['wasm', 'models', 'page (HTML, JS, CSS, manifest)'].map((k) => [k, { bytes: sum('bytes', (f) => kind(f.path) === k), gzip: sum('gzip', (f) => kind(f.path) === k) }]),
      ),
      total: { bytes: sum('bytes'), gzip: sum('gzip') },
      offlineMs,
      ownFaceModel,
      later: { files: later, bytes: later.reduce((n, x) => n + x.bytes, 0), gzip: later.reduce((n, x) => n + x.gzip, 0) },
    };
    log(`first visit: ready in ${readyMs} ms, first photo at ${firstPhotoMs} ms; ${(sum('gzip') / 1e6).toFixed(2)} MB gzip in ${files.length} files (${revalidated} revalidated)`);
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }

  // 2. A 12-megapixel photo at ×2 with faces.
  if (MID) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/?scale=4&faces=off`);
    await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
    let peak = 0;
    const timer = setInterval(async () => (peak = Math.max(peak, (await sampleMemory()).renderer)), 500);
    try {
      const t0 = Date.now();
      // Chosen → ready → Restore → done → download saved: what a person waits for.
      const r = await restore(page, MID_PHOTO, 10 * 60_000);
      result.mid = { photo: path.basename(MID_PHOTO), output: [r.width, r.height], wallMs: Date.now() - t0, restoreMs: r.ms, peakRenderer: peak };
      log(`0.32 MP ×4, faces off: ${(result.mid.wallMs / 1e3).toFixed(1)} s (restore ${(r.ms / 1e3).toFixed(1)} s), renderer peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      clearInterval(timer);
    }
    await context.close();
  }

  if (BIG) {
    const big = path.join(repo, 'bench/out/photo-12mp.jpg');
    if (!(await stat(big).catch(() => null))) {
      // 02.png (four faces) enlarged to 4733×2535: 12.0 MP, the size of a phone photo.
      execFileSync('python3', ['-c', `
from PIL import Image
im = Image.open(${JSON.stringify(path.join(photos, '02.png'))}).convert('RGB')
im.resize((4733, 2535), Image.LANCZOS).save(${JSON.stringify(big)}, quality=90)
`]);
    }
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/?scale=2&faces=on`);
    await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
    const base = await sampleMemory();
    let peak = { ...base };
    const samples = [];
    const t0 = Date.now();
    const timer = setInterval(async () => {
      const m = await sampleMemory();
      samples.push({ s: (Date.now() - t0) / 1e3, ...m });
      peak = { renderer: Math.max(peak.renderer, m.renderer), total: Math.max(peak.total, m.total) };
    }, 500);
    const progress = setInterval(async () => {
      const t = await page.evaluate(() => document.querySelector('#progress')?.dataset.tiles).catch(() => null);
      log(`12 MP: ${((Date.now() - t0) / 1e3).toFixed(0)} s, tiles ${t}, renderer ${(peak.renderer / 2 ** 20).toFixed(0)} MiB peak`);
    }, 60_000);
    try {
      const r = await restore(page, big, 45 * 60_000);
      const info = execFileSync('python3', ['-c', `from PIL import Image; im = Image.open(${JSON.stringify(big)}); print(im.size[0], im.size[1])`], { encoding: 'utf8' }).trim().split(' ').map(Number);
      result.big = {
        photo: path.relative(repo, big),
        input: info,
        output: [r.width, r.height],
        outputBytes: r.bytes,
        faces: r.faces,
        wallMs: Date.now() - t0,
        restoreMs: r.ms,
        baseline: base,
        peak,
        samples: samples.filter((_, i) => i % 4 === 0),
      };
      log(`12 MP: done in ${(r.ms / 1e3).toFixed(0)} s; renderer peak ${(peak.renderer / 2 ** 20).toFixed(0)} MiB, browser ${(peak.total / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      clearInterval(timer);
      clearInterval(progress);
    }
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
await mkdir(path.dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 1));
log(`wrote ${OUT}`);
