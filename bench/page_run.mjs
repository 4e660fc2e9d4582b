// One whole job through the page's UI in a fresh context (an empty cache, as on a first visit),
// shared by bench/page_job.mjs and bench/page_vs_ort.mjs: open `origin/?query`, wait for the
// engine, choose `photo`, click Restore, wait for done and the download link. Returns the
// Date.now() of each step, so that each script times the span it reports. `whenReady(page)`, if
// given, runs once the engine is ready and before `ready` is stamped (e.g. to wait for the GPU).
export async function pageRun(browser, origin, query, photo, whenReady = null) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const t = { opened: Date.now() };
    await page.goto(`${origin}/?${query}`);
    await page.waitForFunction(() => document.body.dataset.engine === 'ready', null, { timeout: 120_000, polling: 20 });
    await whenReady?.(page);
    t.ready = Date.now();
    await page.setInputFiles('#file', photo);
    await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000, polling: 20 });
    t.clicked = Date.now();
    await page.click('#restore');
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 600_000, polling: 50 });
    if ((await page.evaluate(() => document.body.dataset.state)) !== 'done') throw new Error(`the page's job failed (${query})`);
    await page.waitForSelector('#download[href]', { timeout: 60_000 });
    t.done = Date.now();
    return t;
  } finally {
    await context.close();
  }
}
