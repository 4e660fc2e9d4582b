// The page's whole ×4 job on a real 0.32 MP photo (faces off, the default denoise), on two sites
// side by side in one Chromium, alternating round by round, each run in a fresh context (an empty
// cache, as on a first visit): the page opened → engine ready, and Restore clicked → done, in ms.
//
//   node bench/page_job.mjs SITE_A SITE_B [ROUNDS=4]
//   prints {"a": [ms…], "b": [ms…], "ready": {"a": [ms…], "b": [ms…]}}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic, launchChromium } from '../tests/e2e/harness.mjs';
import { pageRun } from './page_run.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [a, b, rounds = '4'] = process.argv.slice(2);
const photo = path.resolve(repo, '../shared/data/dev/gfpgan/whole_imgs/Blake_Lively.jpg');
const hosts = { a: await serveStatic([['/', path.resolve(a)]], {}), b: await serveStatic([['/', path.resolve(b)]], {}) };
const browser = await launchChromium();
const ms = { a: [], b: [] };
const ready = { a: [], b: [] };
try {
  for (let r = 0; r < +rounds; r++)
    for (const k of r % 2 ? ['b', 'a'] : ['a', 'b']) {
      const t = await pageRun(browser, hosts[k].origin, 'scale=4&faces=off', photo);
      ready[k].push(t.ready - t.opened);
      ms[k].push(t.done - t.clicked);
      console.error(`[page_job] ${k}: ready ${ready[k].at(-1)} ms, job ${ms[k].at(-1)} ms`);
    }
} finally {
  await browser.close();
  for (const h of Object.values(hosts)) h.server.close();
}
console.log(JSON.stringify({ ...ms, ready }));
