// End-to-end tests of the page's GPU path (issue 30), in headless Chromium. This machine has no
// GPU: Chromium offers a WebGPU adapter only with --enable-unsafe-webgpu
// --use-webgpu-adapter=swiftshader --enable-features=Vulkan (SwiftShader, a software GPU), and
// none without them. So:
//  - with the flags and ?gpu=on, a small photo (≤ 0.05 MP, ×2, faces on, the build's own face
//    model) runs its tiles and its face on the GPU worker: the photo within 50 dB of ?gpu=off,
//    the restored face within 45 dB;
//  - with the flags and ?gpu=auto, the software adapter is left alone: the CPU restores, and the
//    settings say why;
//  - without the flags, ?gpu=auto restores on the CPU and says so, and the page never fetches
//    the GPU worker's code (gpuworker.js, pkg-gpu/);
//  - the choice is kept across visits, `?gpu=` lasts one visit, and a bad value is reported;
//  - a device lost in the middle of a job (the GPU worker's device.destroy(), from the test hook;
//    the default face stage, so the face too is an upscaler run on the GPU) hands the rest to the CPU workers: the job finishes within 50 dB of a CPU-only run, and
//    the page says so once.
//
//   node tests/e2e/gpu.mjs        UNBLUR_SITE=dir  CHROMIUM=path  E2E_ONLY=name,name
//
// Needs dist/site (bash web/build.sh dev). Photos are made and judged in Python (PIL, numpy).

import { readFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { serveStatic, python, openPage, waitState, runSuite, launchChromium } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const site = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const outRoot = path.join(repo, 'tests/out/e2e-gpu');
const FACE = path.resolve(repo, '../shared/data/dev/codeformer/cropped_faces/0143.png');
const SCENE = path.resolve(repo, '../shared/data/photos/kodak/kodim08.avif');
const TIMEOUT = 600_000;
const GPU_FLAGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
let out = outRoot;

// Every path the server is asked for, to show what a visit fetched.
const requested = [];
const { server, origin } = await serveStatic([['/', site]], { onRequest: (p) => requested.push(p) });
const base = `${origin}/`;
const assert = (c, msg) => {
  if (!c) throw new Error(msg);
};

// ---------- the photos ----------

const photos = path.join(outRoot, 'photos');
await mkdir(photos, { recursive: true });
// A face (its box ~70 px) on a 136×128 canvas (0.017 MP: SwiftShader runs the ×4 network at a
// fraction of a GMAC/s); and a 272×184 scene crop (0.05 MP) for the tests that run on the CPU.
const PORTRAIT = path.join(photos, 'portrait.png');
const LANDSCAPE = path.join(photos, 'scene.png');
python(
  `
import sys
from PIL import Image
face, scene, portrait, land = sys.argv[1:5]
f = Image.open(face).convert('RGB').resize((112, 112), Image.Resampling.LANCZOS)
c = Image.new('RGB', (136, 128), (120, 110, 100))
c.paste(f, (12, 8))
c.save(portrait)
s = Image.open(scene).convert('RGB')
w, h = s.size
s.crop(((w - 272) // 2, (h - 184) // 2, (w - 272) // 2 + 272, (h - 184) // 2 + 184)).save(land)
`,
  FACE,
  SCENE,
  PORTRAIT,
  LANDSCAPE,
);

/** PSNR in dB of each pair of PNG files ([a, b], …), of one size each. */
function psnr(...pairs) {
  return JSON.parse(
    python(
      `
import sys, json, numpy as np
from PIL import Image
fs = sys.argv[1:]
res = []
for a, b in zip(fs[::2], fs[1::2]):
    x, y = (np.asarray(Image.open(f).convert('RGB'), np.float64) for f in (a, b))
    if x.shape != y.shape:
        res.append(None); continue
    mse = ((x - y) ** 2).mean()
    res.append(99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse)))
print(json.dumps(res))
`,
      ...pairs.flat(),
    ),
  );
}

/** A restored face (RGBA8 512², base64 from the test hook) as a PNG file. */
function facePng(b64, file) {
  python(
    `
import sys, base64, numpy as np
from PIL import Image
a = np.frombuffer(base64.b64decode(open(sys.argv[1]).read()), np.uint8).reshape(512, 512, 4)
Image.fromarray(a[..., :3]).save(sys.argv[2])
`,
    b64,
    file,
  );
}

// ---------- the page ----------

async function addPhoto(page, file) {
  const queueShown = await page.isVisible('#queue-panel');
  await page.setInputFiles(queueShown ? '#file-more' : '#file', file);
  await waitState(page, 'ready', 60_000);
}

/** Restores the selected photo and downloads the result as `name`; returns its file and the
 *  page's account of it (where it ran). `during(page)` runs once the restoration has begun. */
async function restore(page, name, during) {
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  const before = await page.getAttribute('#download', 'href');
  await page.click('#restore');
  if (during) await during(page);
  await page.waitForFunction(
    (prev) => document.body.dataset.state === 'error' || (document.body.dataset.state === 'done' && document.querySelector('#download').getAttribute('href') !== prev),
    before,
    { timeout: TIMEOUT, polling: 250 },
  );
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'done') throw new Error(`restore ended in ${state}: ${await page.textContent('#view-error')}`);
  // Not Playwright's default 30 s: on a loaded machine (a training run beside it) the download's event once came later.
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#download')]);
  const file = path.join(out, name);
  await download.saveAs(file);
  const result = await page.evaluate(() => /** @type {any} */ (window).unblur.items.at(-1).result);
  return { file, result };
}

/** Records every text the toast shows from now on (`window.__toasts`). */
async function watchToasts(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__toasts = [];
    const t = document.querySelector('#toast');
    new MutationObserver(() => !t.hidden && w.__toasts.push(t.textContent)).observe(t, { attributes: true, childList: true, characterData: true, subtree: true });
  });
}

/** Waits until the page knows which processor runs (the GPU worker started, or why not). */
async function gpuSettled(page) {
  await page.waitForFunction(() => {
    const g = /** @type {any} */ (window).unblur?.gpu;
    return g && g.reason !== 'not started' && (g.active || g.reason);
  }, null, { timeout: 120_000 });
  return page.evaluate(() => /** @type {any} */ (window).unblur.gpu);
}

/** A fresh browser (with `args`) and page at `query`, its console errors kept. */
async function browserAt(args, query) {
  const browser = await launchChromium(args);
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  await openPage(page, `${base}${query}`);
  return { browser, page };
}

const OWN_FACE = 'faceModel=model:unblur-face';
// The deblur stage runs on the CPU by rule (and finds these photos sharp): left out, to keep the tests short.
const QUERY = `scale=2&faces=on&denoise=0.5&format=png&deblur=off&${OWN_FACE}`;

// ---------- the tests ----------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let page;

test('?gpu=on on SwiftShader: tiles and the face model on the GPU; the photo within 50 dB of ?gpu=off, the face within 45 dB', async () => {
  const gpu = await browserAt(GPU_FLAGS, `?${QUERY}&gpu=on`);
  try {
    const state = await gpuSettled(gpu.page);
    assert(state.active, `the GPU did not start: ${JSON.stringify(state)}`);
    const engine = await gpu.page.textContent('#engine-text');
    assert(/GPU: /.test(engine), `the header says "${engine}"`);
    const hint = await gpu.page.textContent('#gpu-hint');
    assert(/Runs on: GPU: /.test(hint) && (await gpu.page.inputValue('#gpu')) === 'on', `the settings say "${hint}"`);
    await gpu.page.locator('.side').screenshot({ path: path.join(out, 'settings-gpu.png') });
    await addPhoto(gpu.page, PORTRAIT);
    const g = await restore(gpu.page, 'gpu.png');
    assert(g.result.gpu && g.result.gpu.tiles > 0, `the GPU ran no tiles: ${JSON.stringify(g.result.gpu)}`);
    assert(g.result.faces === 1 && g.result.gpu.faces === 1, `faces ${g.result.faces}, on the GPU ${g.result.gpu.faces}`);
    await readFile(g.file).then((b) => assert(b.length > 1000, 'an empty download'));
    const gFace = await gpu.page.evaluate(() => /** @type {any} */ (window).unblur.face(0));

    // The same photo on the CPU (the same browser, ?gpu=off).
    const cpuPage = await gpu.page.context().newPage();
    await openPage(cpuPage, `${base}?${QUERY}&gpu=off`);
    assert(!(await gpuSettled(cpuPage)).active, 'the GPU runs with ?gpu=off');
    await addPhoto(cpuPage, PORTRAIT);
    const c = await restore(cpuPage, 'cpu.png');
    assert(!c.result.gpu, `?gpu=off ran on the GPU: ${JSON.stringify(c.result.gpu)}`);
    const cFace = await cpuPage.evaluate(() => /** @type {any} */ (window).unblur.face(0));
    const files = ['gpu-face', 'cpu-face'].map((n) => path.join(out, `${n}.png`));
    const b64 = files.map((f) => `${f}.b64`);
    await Promise.all([import('node:fs/promises').then((fs) => fs.writeFile(b64[0], gFace.after)), import('node:fs/promises').then((fs) => fs.writeFile(b64[1], cFace.after))]);
    facePng(b64[0], files[0]);
    facePng(b64[1], files[1]);
    const [photo, face] = psnr([g.file, c.file], files);
    assert(photo >= 50, `the GPU's photo is ${photo?.toFixed(1)} dB from the CPU's (bar 50)`);
    assert(face >= 45, `the GPU's face is ${face?.toFixed(1)} dB from the CPU's (bar 45)`);
    return `${g.result.gpu.tiles} tiles and 1 face on ${state.name}; photo ${photo.toFixed(1)} dB, face ${face.toFixed(1)} dB from the CPU's`;
  } finally {
    await gpu.browser.close();
  }
});

test('with SwiftShader and ?gpu=auto the software adapter is left alone: the CPU restores, and the settings say why', async () => {
  const b = await browserAt(GPU_FLAGS, `?${QUERY}&gpu=auto`);
  try {
    const state = await gpuSettled(b.page);
    assert(!state.active && /software/.test(state.reason), `auto with SwiftShader: ${JSON.stringify(state)}`);
    const hint = await b.page.textContent('#gpu-hint');
    assert(/Runs on: CPU, \d+ workers? \(the only adapter is a software one/.test(hint), `the settings say "${hint}"`);
    await addPhoto(b.page, LANDSCAPE);
    const r = await restore(b.page, 'auto-software.png');
    assert(!r.result.gpu, `auto ran on SwiftShader: ${JSON.stringify(r.result.gpu)}`);
    return hint;
  } finally {
    await b.browser.close();
  }
});

test('no adapter: ?gpu=auto restores on the CPU, says so, and fetches no GPU code', async () => {
  requested.length = 0;
  const b = await browserAt([], `?${QUERY}&gpu=auto`);
  try {
    const state = await gpuSettled(b.page);
    assert(!state.active && /no (WebGPU|GPU adapter)/.test(state.reason), `without an adapter: ${JSON.stringify(state)}`);
    const hint = await b.page.textContent('#gpu-hint');
    assert(/Runs on: CPU, \d+ workers?/.test(hint), `the settings say "${hint}"`);
    await addPhoto(b.page, LANDSCAPE);
    const r = await restore(b.page, 'no-adapter.png');
    assert(!r.result.gpu, `restored on a GPU: ${JSON.stringify(r.result.gpu)}`);
    // Let the service worker's precache finish, then look at everything this visit fetched.
    await b.page.waitForTimeout(1500);
    const gpuCode = requested.filter((p) => /gpuworker\.js|pkg-gpu\//.test(p));
    assert(!gpuCode.length, `a browser without an adapter fetched ${gpuCode.join(', ')}`);
    assert(requested.some((p) => p.includes('/gpu.js')), 'the page did not even load gpu.js (is this the right build?)');
    return `${hint} · ${requested.length} requests, none for the GPU's code`;
  } finally {
    await b.browser.close();
  }
});

test('the Processor choice: kept across visits, ?gpu= for one visit only, a bad value reported', async () => {
  const b = await browserAt([], '');
  try {
    const open = async (q) => {
      await openPage(b.page, `${base}${q}`);
      await gpuSettled(b.page);
    };
    await open('');
    await b.page.selectOption('#gpu', 'off');
    await open('');
    assert((await b.page.inputValue('#gpu')) === 'off', 'the choice CPU was not kept');
    const hint = await b.page.textContent('#gpu-hint');
    assert(/^Runs on: CPU, \d+ workers?\.$/.test(hint), `with CPU chosen the hint says "${hint}"`);
    await open('?gpu=on');
    assert((await b.page.inputValue('#gpu')) === 'on', '?gpu=on is not shown');
    assert(/this visit, as the address asks/.test(await b.page.textContent('#gpu-hint')), 'the hint does not say ?gpu= is for this visit');
    await open('');
    assert((await b.page.inputValue('#gpu')) === 'off', '?gpu=on was kept beyond its visit');
    await open('?gpu=sometimes');
    const toast = (await b.page.textContent('#toast')).trim();
    assert((await b.page.isVisible('#toast')) && /\?gpu=sometimes.*auto, on or off/.test(toast), `no toast for a bad ?gpu: "${toast}"`);
    assert((await b.page.inputValue('#gpu')) === 'auto', `a bad ?gpu uses ${await b.page.inputValue('#gpu')}, not the default`);
    return `toast: "${toast}"`;
  } finally {
    await b.browser.close();
  }
});

test('a device lost in the middle of a job: the CPU workers finish it, within 50 dB of a CPU-only run, and the page says so once', async () => {
  // The default face stage (the upscaler on the face), so the face is an upscaler run on the GPU
  // too; small tiles, so the job has several and the GPU is lost after its first.
  const query = `${QUERY.replace(`&${OWN_FACE}`, '')}&tile=64`;
  const b = await browserAt(GPU_FLAGS, `?${query}&gpu=on`);
  try {
    assert((await gpuSettled(b.page)).active, 'the GPU did not start');
    await addPhoto(b.page, PORTRAIT);
    await watchToasts(b.page);
    const lost = await restore(b.page, 'lost.png', async (p) => {
      await p.waitForFunction(() => parseInt(/** @type {HTMLElement} */ (document.querySelector('#progress'))?.dataset.tiles || '0', 10) >= 1, null, { timeout: TIMEOUT, polling: 100 });
      await p.evaluate(() => /** @type {any} */ (window).unblur.loseGpu());
    });
    assert(lost.result.gpu && lost.result.gpu.tiles >= 1, `the GPU ran no tile before it was lost: ${JSON.stringify(lost.result.gpu)}`);
    assert(lost.result.faces === 1 && lost.result.gpu.faces === 1, `faces ${lost.result.faces}, on the GPU ${lost.result.gpu.faces} (the face comes first)`);
    const toasts = () => b.page.evaluate(() => [...new Set(/** @type {any} */ (window).__toasts)]);
    const said = (await toasts()).filter((t) => /The GPU could not go on/.test(t));
    assert(said.length === 1, `the page said it ${said.length} times: ${(await toasts()).join(' | ')}`);
    const state = await b.page.evaluate(() => /** @type {any} */ (window).unblur.gpu);
    assert(!state.active && /GPU failed/.test(state.reason), `after the loss: ${JSON.stringify(state)}`);
    const engine = await b.page.textContent('#engine-text');
    assert(!/GPU: /.test(engine), `the header still says "${engine}"`);

    const cpuPage = await b.page.context().newPage();
    await openPage(cpuPage, `${base}?${query}&gpu=off`);
    await addPhoto(cpuPage, PORTRAIT);
    const cpu = await restore(cpuPage, 'cpu.png');
    const [d] = psnr([lost.file, cpu.file]);
    assert(d >= 50, `the job after the loss is ${d?.toFixed(1)} dB from a CPU-only run (bar 50)`);
    // The page goes on: the next photo restores on the CPU.
    await addPhoto(b.page, LANDSCAPE);
    const next = await restore(b.page, 'after.png');
    assert(!next.result.gpu, 'the next photo still went to the lost GPU');
    const again = (await toasts()).filter((t) => /The GPU could not go on/.test(t));
    assert(again.length === 1, `after the next photo the page has said it ${again.length} times`);
    return `the face and ${lost.result.gpu.tiles} tile(s) on the GPU before the loss; ${d.toFixed(1)} dB from the CPU-only run`;
  } finally {
    await b.browser.close();
  }
});

try {
  await runSuite(tests, {
    outRoot,
    server,
    bind: (t) => {
      out = t.out;
      page = t.page;
    },
  });
} finally {
  server.close();
}
void page;
