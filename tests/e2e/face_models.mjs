// The published face restorers in the page, end to end in headless Chromium: the catalog's model
// host is tests/model_host.py (one port answers /resolve/FILE with a redirect to a "CDN" on a
// third origin, as Hugging Face does), the site is a copy of dist/site whose catalog points there
// (web/catalog.py --host/--cdn), and the files are the random-weight checkpoints in upstream's
// exact layout from models/checkpoints.py (`make test-export`).
//
//   node tests/e2e/face_models.mjs      UNBLUR_SITE=dir  CHROMIUM=path  E2E_ONLY=name,name
//
// One browser profile runs the steps in order (each needs the store the one before left):
// a corrupt download, an interrupted one and its resume, GFPGAN's restored face against PyTorch
// and the photo against the CLI, a reload with the host stopped, deleting the stored model.
// Prints "N passed, M failed" last; exits non-zero on any failure.

import { readFile, writeFile, mkdir, rm, cp, symlink } from 'node:fs/promises';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { serveStatic, launchChromiumProfile, python } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const site0 = path.resolve(process.env.UNBLUR_SITE || path.join(repo, 'dist/site'));
const ckpt = path.join(repo, 'models/build/checkpoints');
const out = path.join(repo, 'tests/out/face-models');
const photos = path.resolve(repo, '../shared/data/dev/codeformer/whole_imgs');
const ONE_FACE = path.join(photos, '04.jpg');
const FOUR_FACES = path.join(photos, '01.jpg');
const cli = path.join(repo, 'target/release/unblur');
const LONG = 600_000;

const assert = (c, msg) => {
  if (!c) throw new Error(msg);
};
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// ---------- the site, pointed at the stand-in host ----------

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const tmp = path.join(os.tmpdir(), `unblur-face-models-${process.pid}`);
const site = path.join(tmp, 'site');
const hostDir = path.join(tmp, 'host');
await rm(tmp, { recursive: true, force: true });
await cp(site0, site, { recursive: true });
await mkdir(hostDir, { recursive: true });
const manifest = JSON.parse(await readFile(path.join(site0, 'models/manifest.json'), 'utf8'));
const entry = (id) => manifest.models.find((m) => m.id === id);
// The host serves the fixtures under the catalog's file names.
await symlink(path.join(ckpt, 'gfpgan.pth'), path.join(hostDir, entry('gfpgan-1.4').download.file));
await symlink(path.join(ckpt, 'codeformer.pth'), path.join(hostDir, entry('codeformer').download.file));
// GPEN is published as ONNX: the random-weight export stands in (models/export.py, `make test-export`).
const GPEN = path.join(repo, 'models/build/export/gpen-bfr-512.onnx');
await symlink(GPEN, path.join(hostDir, entry('gpen-bfr-512').download.file));
const [hostPort, cdnPort] = [await freePort(), await freePort()];
const HOST = `http://127.0.0.1:${hostPort}`;
const CDN = `http://127.0.0.1:${cdnPort}`;
execFileSync('python3', [path.join(repo, 'web/catalog.py'), site, '--host', HOST, '--cdn', CDN,
  '--file', `gfpgan-1.4=${path.join(ckpt, 'gfpgan.pth')}`, '--file', `codeformer=${path.join(ckpt, 'codeformer.pth')}`, '--file', `gpen-bfr-512=${GPEN}`], { stdio: 'inherit' });

const hostLog = path.join(tmp, 'host.log');
await writeFile(hostLog, '');
let host = null;
async function startHost() {
  host = spawn('python3', [path.join(repo, 'tests/model_host.py'), '--dir', hostDir, '--port', hostPort, '--cdn-port', cdnPort, '--log', hostLog], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    host.stdout.once('data', resolve);
    host.once('exit', (c) => reject(new Error(`model_host.py exited with ${c}`)));
  });
}
const mode = (m) => fetch(`${HOST}/_mode/${m}`).then((r) => assert(r.ok, `mode ${m}: HTTP ${r.status}`));
const hostRequests = async () => (await readFile(hostLog, 'utf8')).split('\n').filter((l) => l && !l.includes('/_mode/'));

// ---------- the browser ----------

const { server, origin } = await serveStatic([['/', site]]);
const requests = []; // every request the browser made: [time, url]
let clickedAt = null; // when the user first asked for a download
let browser, page;

async function open(query = '') {
  page = browser.pages()[0] || (await browser.newPage());
  await page.goto(`${origin}/?scale=2&denoise=0.5&strength=1&faces=on&format=png${query}`);
  await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000 });
}

async function addPhoto(file) {
  const queueShown = await page.isVisible('#queue-panel');
  await page.setInputFiles(queueShown ? '#file-more' : '#file', file);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 60_000 });
}

async function restore(name) {
  await page.waitForFunction(() => !document.querySelector('#restore').disabled, null, { timeout: 60_000 });
  await page.click('#restore');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: LONG, polling: 250 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'done') throw new Error(`restore ended in ${state}: ${await page.textContent('#view-error')}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(out, name);
  await dl.saveAs(file);
  return { file, faces: +(await page.getAttribute('#done', 'data-faces-restored')) };
}

const dialogState = () =>
  page.evaluate(() => {
    const d = document.querySelector('#fm-dialog');
    return d.open ? d.dataset.state : 'closed';
  });
async function waitDialog(states) {
  await page.waitForFunction((s) => {
    const d = document.querySelector('#fm-dialog');
    return s.includes(d.open ? d.dataset.state : 'closed');
  }, [].concat(states), { timeout: LONG, polling: 100 });
  return dialogState();
}

/** What is in the store: the index and the files in the Origin Private File System. */
const storeContents = () =>
  page.evaluate(async () => {
    let d = await navigator.storage.getDirectory();
    const files = [];
    try {
      for (const n of ['unblur', 'face-models']) d = await d.getDirectoryHandle(n);
      for await (const [name, h] of d.entries()) files.push([name, (await h.getFile()).size]);
    } catch {}
    return { index: JSON.parse(localStorage.getItem('unblur.faceModels') || '[]'), files };
  });

async function choose(value) {
  await page.selectOption('#face-model', value);
}

/** Python's comparison of the page's pixels, printed as JSON. */
const pythonJson = (code, ...args) => JSON.parse(python(code, ...args));

/**
 * The page's restored face 0 of the last restoration against PyTorch on the same checkpoint,
 * run on the page's own network input for that face: {psnr, std}. Saves input | page | PyTorch.
 */
async function faceVsPyTorch(arch, fidelity) {
  const face = await page.evaluate(() => window.unblur.face(0));
  const inBin = path.join(out, `${arch}.face0.input.bin`);
  const afterBin = path.join(out, `${arch}.face0.after.rgba`);
  await writeFile(inBin, Buffer.from(face.input, 'base64'));
  await writeFile(afterBin, Buffer.from(face.after, 'base64'));
  const refBin = path.join(out, `${arch}.face0.pytorch.bin`);
  const args = [path.join(repo, 'tests/face_reference.py'), '--pth', path.join(ckpt, `${arch}.pth`), '--arch', arch, '--input', inBin, '--out', refBin];
  if (fidelity != null) args.push('--fidelity', String(fidelity));
  execFileSync('python3', args, { stdio: 'inherit' });
  return pythonJson(`
import json, sys, numpy as np
from PIL import Image
ref = np.fromfile(sys.argv[1], '<f4').reshape(3, 512, 512).transpose(1, 2, 0)
ref = np.round(np.clip((ref + 1) / 2, 0, 1) * 255)
got = np.fromfile(sys.argv[2], np.uint8).reshape(512, 512, 4)[..., :3].astype(np.float64)
inp = np.fromfile(sys.argv[3], '<f4').reshape(3, 512, 512).transpose(1, 2, 0)
Image.fromarray(np.concatenate([np.round(np.clip((inp + 1) / 2, 0, 1) * 255), got, ref], 1).astype(np.uint8)).save(sys.argv[4])
mse = ((ref - got) ** 2).mean()
print(json.dumps({'psnr': 99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse)), 'std': float(got.std())}))
`, refBin, afterBin, inBin, path.join(out, `${arch}.face0-input-page-pytorch.png`));
}

// ---------- the steps ----------

const steps = [];
const step = (name, fn) => steps.push({ name, fn });
const only = process.env.E2E_ONLY?.split(',');

step('no request to the model host before a download is asked for', async () => {
  await open();
  await addPhoto(ONE_FACE);
  const opts = await page.$$eval('#face-model option', (os) => os.map((o) => [o.value, o.textContent]));
  for (const id of ['gfpgan-1.4', 'codeformer']) assert(opts.some(([v]) => v === `catalog:${id}`), `no catalog:${id} in the face-model choice: ${JSON.stringify(opts)}`);
  const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert(csp.includes(`connect-src 'self' ${HOST} ${CDN}`), `the CSP does not list the stand-in hosts: ${csp}`);
  const seen = await hostRequests();
  assert(seen.length === 0, `the model host was contacted before any click: ${seen.join('; ')}`);
  await page.screenshot({ path: path.join(out, 'settings.png') });
  return `${opts.length} choices; CSP connect-src lists the host and its CDN; host untouched`;
});

step('bad face model files get one clear message each and nothing is stored', async () => {
  const dir = path.join(out, 'bad');
  await mkdir(dir, { recursive: true });
  // Made with PyTorch and the standard library: what a user might pick by mistake, or be sent.
  execFileSync('python3', ['-c', `
import os, pickle, shutil, sys, zipfile
import torch
d, sr = sys.argv[1], sys.argv[2]
shutil.copyfile(sr, d + '/upscaler.onnx')  # an ONNX that does not take a face
torch.save({'params_ema': {'conv.weight': torch.zeros(4, 3, 3, 3)}}, d + '/other-arch.pth')
torch.save({'params_ema': {'conv.weight': torch.zeros(4, 3, 3, 3)}}, d + '/legacy.pth', _use_new_zipfile_serialization=False)
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + d + '/pwned',))
with zipfile.ZipFile(d + '/runs-code.pth', 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'params_ema': Evil()}, protocol=2))
    z.writestr('archive/version', '3\\n')
b = open(d + '/other-arch.pth', 'rb').read()
open(d + '/truncated.pth', 'wb').write(b[: len(b) // 2])
`, dir, path.join(site, 'models', manifest.models.find((m) => m.id === 'realesr-general-x4v3').artifacts.fp16.file)]);
  const msgs = [];
  for (const f of ['upscaler.onnx', 'other-arch.pth', 'legacy.pth', 'runs-code.pth', 'truncated.pth']) {
    await page.setInputFiles('#face-file', path.join(dir, f));
    await page.waitForFunction((n) => !document.querySelector('#toast').hidden && document.querySelector('#toast').textContent.startsWith(n), f, { timeout: 60_000 });
    const msg = await page.textContent('#toast');
    assert(/cannot be used as a face model: .{12,}/.test(msg), `unclear message for ${f}: ${msg}`);
    msgs.push(msg.replace(/^.*cannot be used as a face model: /, `${f}: `));
    await page.evaluate(() => (document.querySelector('#toast').hidden = true));
  }
  const st = await storeContents();
  assert(st.index.length === 0 && st.files.length === 0, `something was stored: ${JSON.stringify(st)}`);
  assert(!(await readFile(path.join(dir, 'pwned')).catch(() => null)), "the pickle's code ran");
  assert(!(await page.isDisabled('#restore')), 'the page is no longer usable');
  return msgs.join(' | ');
});

step('a model larger than the free storage is not downloaded', async () => {
  // As a full disk would report it: 100 MB free for a 377 MB download.
  await page.evaluate(() => {
    navigator.storage.__estimate = navigator.storage.estimate;
    navigator.storage.estimate = async () => ({ quota: 100e6, usage: 0 });
  });
  await choose('catalog:codeformer');
  await waitDialog('ask');
  await page.waitForFunction(() => !document.querySelector('#fm-error').hidden, null, { timeout: 10_000 });
  const msg = await page.textContent('#fm-error');
  assert(/not enough storage space/.test(msg) && /100 MB/.test(msg), `unclear message: ${msg}`);
  assert(await page.isDisabled('#fm-go'), 'Download is still offered');
  await page.click('#fm-cancel');
  await page.evaluate(() => (navigator.storage.estimate = navigator.storage.__estimate));
  assert((await hostRequests()).length === 0, 'the host was contacted');
  return msg;
});

step('a corrupt download is refused and nothing is stored', async () => {
  await mode('corrupt');
  await choose('catalog:codeformer');
  assert((await waitDialog('ask')) === 'ask', 'no question before downloading');
  const facts = await page.textContent('#fm-dialog .facts');
  assert(/S-Lab/.test(facts) && facts.includes(`127.0.0.1:${hostPort}`) && /377 MB/.test(facts), `the dialog does not show license, host and size: ${facts}`);
  await page.screenshot({ path: path.join(out, 'ask.png') });
  clickedAt = Date.now();
  await page.click('#fm-go');
  assert((await waitDialog(['error', 'closed'])) === 'error', 'a corrupt file was accepted');
  const msg = await page.textContent('#fm-error');
  assert(/checksum/.test(msg) && /not stored/.test(msg), `unclear message: ${msg}`);
  const st = await storeContents();
  assert(st.index.length === 0 && st.files.length === 0, `something was stored: ${JSON.stringify(st)}`);
  await page.click('#fm-cancel');
  assert((await page.inputValue('#face-model')) !== 'catalog:codeformer', 'the refused model is still chosen');
  return msg;
});

let resumedFrom = 0;
step('an interrupted download says so, stores nothing, and resumes with a Range request', async () => {
  await mode('halfway');
  await choose('catalog:gfpgan-1.4');
  await waitDialog('ask');
  await page.click('#fm-go');
  assert((await waitDialog(['error', 'closed'])) === 'error', 'a half download was accepted');
  const msg = await page.textContent('#fm-error');
  assert(/stopped at/.test(msg) && /Nothing was stored/.test(msg), `unclear message: ${msg}`);
  const st = await storeContents();
  assert(st.index.length === 0 && st.files.length === 0, `something was stored: ${JSON.stringify(st)}`);
  assert((await page.textContent('#fm-go')) === 'Resume', 'no Resume button');
  await page.screenshot({ path: path.join(out, 'interrupted.png') });
  await mode('ok');
  await page.click('#fm-go');
  // Progress shows while it runs; the dialog closes once the model is converted and stored.
  await page.waitForFunction(() => /MB of/.test(document.querySelector('#fm-status').textContent), null, { timeout: 60_000, polling: 50 });
  assert((await waitDialog(['closed', 'error'])) === 'closed', `the resumed download failed: ${await page.textContent('#fm-error')}`);
  const ranges = (await hostRequests()).filter((l) => l.startsWith(`${cdnPort} GET`) && /bytes=\d+-$/.test(l));
  assert(ranges.length === 1, `expected one Range request to the CDN, saw: ${ranges.join('; ')}`);
  resumedFrom = +ranges[0].match(/bytes=(\d+)-/)[1];
  assert(resumedFrom > 0, 'the resume started at 0');
  const st2 = await storeContents();
  assert(st2.index.length === 1 && st2.files.length === 1 && st2.files[0][0] === st2.index[0].file, `not stored once: ${JSON.stringify(st2)}`);
  assert(st2.files[0][0].endsWith('.c1.onnx'), `stored as ${st2.files[0][0]}`);
  assert((await page.inputValue('#face-model')) === 'catalog:gfpgan-1.4', 'GFPGAN is not chosen after its download');
  return `${msg}; resumed from byte ${resumedFrom}; stored ${st2.files[0][0]} (${(st2.files[0][1] / 1e6).toFixed(0)} MB)`;
});

let pageResult = null;
step("GFPGAN's face matches PyTorch on the same file, and the photo matches the CLI", async () => {
  const r = await restore('page-gfpgan.png');
  pageResult = r.file;
  assert(r.faces === 1, `${r.faces} faces restored`);
  const vsTorch = await faceVsPyTorch('gfpgan');
  assert(vsTorch.std > 5, 'the restored face is flat');
  assert(vsTorch.psnr >= 40, `the page's face vs PyTorch: ${vsTorch.psnr.toFixed(1)} dB (bar 40)`);

  const cliDir = path.join(out, 'cli');
  await mkdir(cliDir, { recursive: true });
  const cache = path.join(tmp, 'cli-cache');
  execFileSync(cli, ['restore', ONE_FACE, '--out', cliDir, '--scale', '2', '--denoise', '0.5', '--face-model', path.join(ckpt, 'gfpgan.pth')], {
    env: { ...process.env, UNBLUR_CACHE: cache },
    stdio: 'inherit',
  });
  await rm(cache, { recursive: true, force: true });
  const vsCli = pythonJson(`
import json, sys, numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert('RGB'), np.float64) for p in sys.argv[1:3])
if a.shape != b.shape: print(json.dumps({'shape': [a.shape, b.shape]})); sys.exit()
mse = ((a - b) ** 2).mean()
print(json.dumps({'psnr': 99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse)), 'max': float(abs(a - b).max())}))
`, r.file, path.join(cliDir, '04-unblur-x2.png'));
  assert(vsCli.psnr !== undefined, `page and CLI sizes differ: ${JSON.stringify(vsCli.shape)}`);
  assert(vsCli.psnr >= 40, `the page's photo vs the CLI's: ${vsCli.psnr.toFixed(1)} dB (bar 40)`);
  await page.screenshot({ path: path.join(out, 'restored.png') });
  return `face vs PyTorch ${vsTorch.psnr.toFixed(1)} dB; photo vs CLI ${vsCli.psnr.toFixed(1)} dB (max ${vsCli.max} levels)`;
});

step('GPEN, an ONNX from the catalog, is checked, stored as it is and restores a face', async () => {
  await choose('catalog:gpen-bfr-512');
  await waitDialog('ask');
  const facts = await page.textContent('#fm-dialog .facts');
  assert(/non-commercial/.test(facts), `GPEN's license is not shown: ${facts}`);
  await page.click('#fm-go');
  assert((await waitDialog(['closed', 'error'])) === 'closed', `GPEN failed: ${await page.textContent('#fm-error')}`);
  const st = await storeContents();
  const gpen = st.index.find((m) => m.id === 'gpen-bfr-512');
  const size = (await readFile(GPEN)).length;
  assert(gpen && gpen.file.endsWith('.onnx') && !gpen.file.includes('.c1.') && gpen.bytes === size, `GPEN stored as ${JSON.stringify(gpen)}`);
  const r = await restore('page-gpen.png');
  assert(r.faces === 1, `${r.faces} faces restored with GPEN`);
  await choose('catalog:gfpgan-1.4'); // stored: chosen without a question
  assert((await dialogState()) === 'closed', 'choosing a stored model asked to download it');
  return `stored ${gpen.file} (${(size / 1e6).toFixed(0)} MB, as downloaded); 1 face restored`;
});

step('CodeFormer with its fidelity set in the page matches PyTorch at that w', async () => {
  await choose('catalog:codeformer');
  await waitDialog('ask');
  await page.click('#fm-go');
  assert((await waitDialog(['closed', 'error'])) === 'closed', `CodeFormer failed: ${await page.textContent('#fm-error')}`);
  assert(await page.isVisible('#fidelity-field'), 'no fidelity slider for CodeFormer');
  await page.$eval('#fidelity', (el) => {
    el.value = '0.7';
    el.dispatchEvent(new Event('input'));
  });
  assert((await page.textContent('#fidelity-out')) === '0.70', 'the slider does not show 0.70');
  await page.screenshot({ path: path.join(out, 'codeformer-settings.png') });
  const r = await restore('page-codeformer.png');
  assert(r.faces === 1, `${r.faces} faces restored with CodeFormer`);
  const vs = await faceVsPyTorch('codeformer', 0.7);
  assert(vs.std > 5, 'the restored face is flat');
  assert(vs.psnr >= 40, `the page's CodeFormer face (w = 0.7) vs PyTorch: ${vs.psnr.toFixed(1)} dB (bar 40)`);
  await choose('catalog:gfpgan-1.4');
  assert(await page.isHidden('#fidelity-field'), 'the fidelity slider stays for GFPGAN');
  return `w = 0.7: ${vs.psnr.toFixed(1)} dB against PyTorch`;
});

step('a stored model the browser evicted fails only its faces: the photo is restored and says so', async () => {
  const st = await storeContents();
  const cf = st.index.find((m) => m.id === 'codeformer');
  await choose('catalog:codeformer');
  // As an eviction would: the file is gone from the store, the page does not know yet.
  await page.evaluate(async (file) => {
    let d = await navigator.storage.getDirectory();
    for (const n of ['unblur', 'face-models']) d = await d.getDirectoryHandle(n);
    await d.removeEntry(file);
  }, cf.file);
  const r = await restore('page-evicted.png');
  assert(r.faces === 0, `the done panel says ${r.faces} faces restored`);
  await page.waitForFunction(() => /left as the upscaler made/.test(document.querySelector('#toast').textContent), null, { timeout: 10_000 });
  const msg = await page.textContent('#toast');
  assert(/gone/.test(msg) && /One face was left/.test(msg), `unclear message: ${msg}`);
  await choose('catalog:gfpgan-1.4');
  return msg;
});

step('with the host stopped, a reload restores with the stored model; a face box leaves a face out', async () => {
  host.kill();
  await new Promise((r) => host.once('exit', r));
  const before = (await hostRequests()).length;
  await open();
  assert((await page.inputValue('#face-model')) === 'catalog:gfpgan-1.4', 'the choice of GFPGAN did not survive the reload');
  const listed = await page.$$eval('#stored-models li[data-file]', (ls) => ls.map((l) => l.textContent));
  assert(!listed.some((t) => t.includes('CodeFormer')), `the evicted CodeFormer is still listed: ${listed.join(', ')}`);
  await addPhoto(FOUR_FACES);
  const boxes = await page.$$('#faces-overlay rect');
  assert(boxes.length === 4, `${boxes.length} face boxes on 01.jpg`);
  for (const i of [1, 2, 3]) await page.click(`#faces-overlay rect[data-face="${i}"]`);
  const meta = await page.textContent('#photo-meta');
  assert(/1 of 4 faces/.test(meta), `the photo does not say 1 of 4 faces: ${meta}`);
  await page.screenshot({ path: path.join(out, 'faces-chosen.png') });
  const r = await restore('page-gfpgan-offline.png');
  assert(r.faces === 1, `${r.faces} faces restored, not the 1 chosen`);
  assert((await hostRequests()).length === before, 'the reload went to the model host');
  return `restored 1 of 4 faces with the stored GFPGAN, host down`;
});

step('the requests went only to the page and the model host, and only after the click', async () => {
  const origins = new Set(requests.map(([, u]) => new URL(u).origin));
  for (const o of origins) assert([origin, HOST, CDN].includes(o), `a request went to ${o}`);
  const early = requests.filter(([t, u]) => (u.startsWith(HOST) || u.startsWith(CDN)) && t < clickedAt);
  assert(early.length === 0, `the model host was contacted before the click: ${early.map(([, u]) => u).join(', ')}`);
  const redirected = requests.some(([, u]) => u.startsWith(CDN));
  assert(redirected, 'no request followed the redirect to the CDN');
  return `${requests.length} requests, to ${[...origins].join(', ')}`;
});

step('the stored models are listed with their sizes and deleted', async () => {
  const rows = await page.$$eval('#stored-models li[data-file]', (ls) => ls.map((l) => l.textContent));
  assert(rows.length === 2 && ['GFPGAN', 'GPEN'].every((n) => rows.some((r) => r.includes(n) && /MB/.test(r))), `stored list: ${JSON.stringify(rows)}`);
  await page.evaluate(() => (document.querySelector('#stored-models').closest('details').open = true));
  await page.screenshot({ path: path.join(out, 'stored-list.png') });
  for (let left = rows.length; left > 0; left--) {
    await page.click('#stored-models li[data-file] button');
    await page.waitForFunction((n) => document.querySelectorAll('#stored-models li[data-file]').length === n, left - 1, { timeout: 10_000 });
  }
  const st = await storeContents();
  assert(st.index.length === 0 && st.files.length === 0, `still stored: ${JSON.stringify(st)}`);
  assert((await page.inputValue('#face-model')) !== 'catalog:gfpgan-1.4', 'the deleted model is still chosen');
  return `${rows.join(', ')}: deleted`;
});

// ---------- run ----------

let passed = 0;
let failed = 0;
try {
  await startHost();
  browser = await launchChromiumProfile(path.join(tmp, 'profile'), { acceptDownloads: true, viewport: { width: 1280, height: 860 } });
  browser.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith('blob:') && !u.startsWith('data:')) requests.push([Date.now(), u]);
  });
  browser.on('page', (p) => p.on('console', (m) => m.type() === 'error' && console.log(`  [console] ${m.text()}`)));
  for (const s of steps) {
    if (only && !only.includes(s.name)) continue;
    const t0 = Date.now();
    try {
      const note = await s.fn();
      passed++;
      console.log(`ok   ${s.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${s.name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e.message}`);
      await page?.screenshot({ path: path.join(out, `fail-${passed + failed}.png`) }).catch(() => {});
      break; // the steps build on each other
    }
  }
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  host?.kill();
  server.close();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
