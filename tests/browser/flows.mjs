// The web explorer's flows in a real browser (Debian's chromium driven by
// playwright-core), against `vdx serve` on loopback:
//   VDX_TOKEN=T node flows.mjs URL EMPTY_URL GROWING_URL IMAGES_DIR SCREENSHOT_DIR HOLD_FILE READONLY_URL [MCLIP_URL]
// URL serves the sample collection (ingested from IMAGES_DIR), EMPTY_URL a collection
// without items, GROWING_URL one whose ingest is still running: held after its first commit
// while HOLD_FILE exists (VDX_TEST_HOLD_FILE), released by the flow that watches it grow,
// so that it runs however long the browser takes to get there. READONLY_URL serves the
// sample with --read-only. MCLIP_URL serves the sample with a multilingual (M-CLIP) text
// model; $VDX_ZH_PROMPT and $VDX_ZH_EXPECTED (ids, comma separated) are a Chinese prompt
// and what `vdx search` answers to it there. Every server has the access token T
// (tests/browser/serve.sh), which each flow's browser context trades for the servers'
// cookies first. Prints one
// "ok - ..." / "not ok - ...: why" line per flow and exits non-zero when one failed.
// Screenshots of every step go to SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import { readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

import http from 'node:http';

const [url, emptyUrl, growingUrl, images, shots, holdFile, readonlyUrl, mclipUrl] = process.argv.slice(2);
const token = process.env.VDX_TOKEN;
if (!url || !emptyUrl || !growingUrl || !images || !shots || !holdFile || !readonlyUrl || !token) {
  console.error('usage: VDX_TOKEN=T node flows.mjs URL EMPTY_URL GROWING_URL IMAGES_DIR SCREENSHOT_DIR HOLD_FILE READONLY_URL [MCLIP_URL]');
  process.exit(2);
}
const servers = [url, emptyUrl, growingUrl, readonlyUrl, ...(mclipUrl ? [mclipUrl] : [])];
mkdirSync(shots, { recursive: true });
let failures = 0;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

class Failure extends Error {}
function check(cond, message) { if (!cond) throw new Failure(message); }

// Runs one flow in a fresh context; any page error or failed request fails it.
// `expected` matches console errors the flow provokes on purpose.
// The context first opens each server's URL with ?token= (as a user opens the printed
// address), which sets its cookie; { login: false } starts without any.
// FLOWS=REGEX runs only the flows whose name matches (while working on some).
async function flow(name, options, body, expected) {
  if (process.env.FLOWS && !new RegExp(process.env.FLOWS).test(name)) return;
  const { login = true, ...contextOptions } = options;
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true, ...contextOptions });
  if (login) {
    for (const server of servers) {
      const r = await context.request.get(`${server}?token=${token}`, { maxRedirects: 0 });
      if (r.status() !== 303) throw new Error(`token exchange with ${server}: ${r.status()}`);
    }
  }
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // An image the page stops wanting (it navigated, or replaced the grid) is cancelled by the
    // browser itself (net::ERR_ABORTED): not a failure of the server. Any other failure of an
    // image (reset, empty reply) still counts.
    const why = r.failure() ? r.failure().errorText : '';
    if (r.resourceType() === 'image' && why === 'net::ERR_ABORTED') return;
    if (!(expected && expected.test(`request failed: ${r.url()}`))) problems.push(`request failed: ${r.url()} (${why})`);
  });
  let step = 0;
  const shot = async (what) => {
    step++;
    await page.screenshot({ path: join(shots, `${name}-${String(step).padStart(2, '0')}-${what}.png`) });
  };
  try {
    await body(page, shot);
    check(problems.length === 0, problems.join('; '));
    console.log(`ok - ${name}`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}: ${e instanceof Failure ? e.message : e.stack.split('\n').slice(0, 3).join(' | ')}`);
    await shot('failure').catch(() => {});
  } finally {
    await context.close();
  }
}

async function open(page, target) {
  const t0 = Date.now();
  await page.goto(target);
  await page.waitForSelector('body[data-ready="1"]');
  return Date.now() - t0;
}

// Waits until the count under the histogram is the server's (exact, not an estimate).
async function countIs(page, n) {
  const ok = await page.waitForFunction((m) => document.getElementById('above').dataset.count === String(m), n, { timeout: 10000 })
    .then(() => true, () => false);
  check(ok, `the page counts ${await page.$eval('#above', (a) => `"${a.dataset.count}" (${a.textContent})`)} above the threshold, the API ${n}`);
}

const tileIds = (page) => page.$$eval('#grid .tile', (tiles) => tiles.map((t) => t.dataset.id));
const getJson = async (page, path) => (await page.request.get(url.replace(/\/$/, '') + path)).json();

// A result tile's button by its index on the page and its class (b-pos, b-neg, ...).
const tileButton = (i, which) => `#grid .tile[data-index="${i}"] .${which}`;

// Labels the 9 tiles of the first page with their buttons, the first three + (the first
// click opens the concept panel) and the rest -, and waits for the counts.
async function labelFirstPage(page) {
  await page.click(tileButton(0, 'b-pos'));
  await page.waitForSelector('#concept-panel:not([hidden])');
  for (let i = 1; i < 3; i++) await page.click(tileButton(i, 'b-pos'));
  for (let i = 3; i < 9; i++) await page.click(tileButton(i, 'b-neg'));
  await labelsSettled(page, 3, 6);
}

// Waits for the label request of the tile to finish, so counts are in step.
async function labelsSettled(page, positive, negative) {
  await page.waitForFunction(([p, n]) => document.getElementById('count-pos')?.textContent === String(p) &&
    document.getElementById('count-neg')?.textContent === String(n), [positive, negative]);
}

async function checkExport(download, positives, negatives) {
  const text = readFileSync(await download.path(), 'utf8');
  const rows = text.trim().split(/\r?\n/).slice(1).map((line) => line.split(','));
  const labelOf = new Map(rows.map((r) => [r[0], r[2]]));
  check(labelOf.size === positives.length + negatives.length,
    `export holds ${labelOf.size} labels, expected ${positives.length + negatives.length}: ${text.slice(0, 300)}`);
  for (const id of positives) check(labelOf.get(id) === '1', `export: ${id} should be positive (got ${labelOf.get(id)})`);
  for (const id of negatives) check(labelOf.get(id) === '0', `export: ${id} should be negative (got ${labelOf.get(id)})`);
  check(/-labels\.csv$/.test(download.suggestedFilename()), `download name ${download.suggestedFilename()}`);
}

async function afterReload(page, concept, positives, negatives) {
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  const current = await page.textContent('.concepts button[aria-current="true"]');
  check(current && current.includes(concept), `after reload the concept "${concept}" is not selected (${current})`);
  check(await page.textContent('#count-pos') === String(positives.length), 'positive count lost on reload');
  check(await page.textContent('#count-neg') === String(negatives.length), 'negative count lost on reload');
  const labels = await getJson(page, `/api/concepts/${encodeURIComponent(concept)}/labels`);
  check(labels.length === positives.length + negatives.length, `server holds ${labels.length} labels after reload`);
}

// ---- An ingest running beside the server: progress, and items arriving -------------------
await flow('ingest-progress', {}, async (page, shot) => {
  await open(page, growingUrl);
  const count = async () => Number((await page.textContent('#collection')).match(/([\d,]+) items/)[1].replace(/,/g, ''));
  await page.waitForSelector('#progress:not([hidden])');
  check((await page.textContent('#progress-text')).startsWith('Ingest running'), 'no progress text');
  const first = await count();
  await shot('running');
  if (holdFile) rmSync(holdFile, { force: true }); // let the held ingest go on
  await page.waitForFunction((n) => Number(document.getElementById('collection').textContent.match(/([\d,]+) items/)[1].replace(/,/g, '')) > n,
    first, { timeout: 20000 });
  await page.fill('#q', 'a photo');
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => document.getElementById('view-title').textContent === '“a photo”' &&
    document.querySelectorAll('#grid .tile').length > 0);
  check(await count() > first, 'the item count did not grow during the ingest');
  await shot('searching-while-ingesting');
  // when the ingest ends, the page says so for a while, then the progress box goes
  await page.waitForFunction(() => /^Ingest done: /.test(document.getElementById('progress-text').textContent), null, { timeout: 240000 });
  await shot('ingest-done');
  await page.waitForSelector('#progress', { state: 'hidden', timeout: 20000 });
});

// ---- Ingest failures are listed on the page (id, URL, reason) -----------------------------
await flow('ingest-failures', {}, async (page, shot) => {
  await open(page, url);
  const info = await getJson(page, '/api/info');
  const failures = await getJson(page, '/api/failures');
  check(info.failed > 0 && failures.count === info.failed, `the sample collection should have failures: ${info.failed}, ${failures.count}`);
  await page.waitForSelector('#failures:not([hidden])');
  await page.click('#failures summary');
  const rows = await page.$$eval('#failures-list tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  check(rows.length === Math.min(50, failures.count), `${rows.length} failure rows for ${failures.count}`);
  check(rows.every(([id, u, reason]) => id && u && reason), `a failure row misses its id, URL or reason: ${JSON.stringify(rows)}`);
  check(rows[0][0] === failures.failures[0].id, 'the rows are not the API\'s');
  await shot('failures');
});

// ---- The loop with the mouse ---------------------------------------------------------
await flow('mouse', {}, async (page, shot) => {
  const ms = await open(page, url);
  console.log(`# page interactive in ${ms} ms`);
  await shot('start');
  await page.fill('#q', 'a red circle');
  await page.click('#search-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
  await shot('search');
  const first = await tileIds(page);
  const positives = first.slice(0, 3), negatives = first.slice(3, 9);
  await labelFirstPage(page);
  check((await page.$$('#grid .tile.label-1')).length === 3, 'three tiles show positive');
  check((await page.$$('#grid .tile.label-0')).length === 6, 'six tiles show negative');
  await shot('labelled');
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled'));
  await page.waitForSelector('#history tr td:first-child');
  const next = await tileIds(page);
  check(next.length > 0, 'the next page is empty');
  const labelled = new Set(first);
  check(next.every((id) => !labelled.has(id)), `the next page holds labelled items: ${next.filter((id) => labelled.has(id))}`);
  check(await page.textContent('#history tr td:first-child') === '1', 'the rounds table shows round 1');
  await shot('trained');
  // drag the threshold on the histogram
  await page.waitForFunction(() => document.getElementById('above').textContent.includes('above the threshold'));
  const before = (await getJson(page, '/api/concepts/a%20red%20circle')).threshold;
  await page.$eval('#histogram', (c) => c.scrollIntoView({ block: 'center' }));
  const box = await (await page.$('#histogram')).boundingBox();
  const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await patched;
  const after = (await getJson(page, '/api/concepts/a%20red%20circle')).threshold;
  // the slider is on the calibrated probability axis; the server keeps its logit
  const slider = Number(await page.getAttribute('#threshold', 'data-logit'));
  check(after !== before && Math.abs(after - slider) < 1e-9, `threshold ${before} → ${after}, slider ${slider}`);
  // the count under the histogram is the server's, exactly
  const evaluation = await getJson(page, '/api/concepts/a%20red%20circle/evaluate?bins=40');
  await countIs(page, evaluation.above_threshold);
  await shot('threshold');
  await page.click('#browse');
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Above the threshold'));
  await shot('positives');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-labels-csv')]);
  await checkExport(download, positives, negatives);
  // the item detail with its neighbours, and "more like this" from there
  await page.click('#grid .tile .thumb');
  await page.waitForSelector('#detail[open] #detail-neighbours .thumb');
  check((await page.textContent('#detail-meta')).includes('photo_url'), 'the detail shows the metadata');
  await shot('detail');
  await page.click('#detail-actions button:has-text("More like this")');
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('More like'));
  await shot('more-like-this');
  await afterReload(page, 'a red circle', positives, negatives);
  await shot('reloaded');
});

// ---- The trainer: chosen on the page, used by the next round, kept ---------------------
await flow('trainer-choice', {}, async (page, shot) => {
  await open(page, url);
  await page.fill('#q', 'a purple thing');
  await page.click('#search-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
  await page.click(tileButton(0, 'b-pos'));
  await page.waitForSelector('#concept-panel:not([hidden])');
  await page.click(tileButton(1, 'b-pos'));
  for (let i = 2; i < 5; i++) await page.click(tileButton(i, 'b-neg'));
  await labelsSettled(page, 2, 3);
  check(await page.inputValue('#trainer') === 'auto', 'a new concept does not start on the automatic trainer');
  check(await page.isVisible('#next-trainer') && await page.getAttribute('#next-trainer', 'data-trainer') === 'seed' &&
    /original/.test(await page.textContent('#next-trainer')), 'the page does not say the next round is the original trainer');
  const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
  await page.selectOption('#trainer', 'anchored');
  await patched;
  const path = '/api/concepts/a%20purple%20thing';
  check((await getJson(page, path)).trainer === 'anchored', 'the server did not record the trainer');
  await page.waitForFunction(() => document.getElementById('next-trainer').hidden); // shown for auto only
  await page.click('#train');
  // the rounds table's first row is round 1 (before, it holds a "no rounds yet" line)
  await page.waitForFunction(() => document.querySelector('#history tr td:first-child')?.textContent === '1');
  const concept = await getJson(page, path);
  check(concept.history.length === 1 && concept.history[0].trainer === 'anchored' && concept.history[0].lr === 0,
    `round 1: ${JSON.stringify(concept.history[0]).slice(0, 200)}`);
  check(/anchored/.test(await page.getAttribute('#history tr', 'title')), 'the rounds table does not say how round 1 was trained');
  await shot('anchored-round');
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('#concept-panel:not([hidden])');
  check(await page.inputValue('#trainer') === 'anchored', 'reload lost the trainer');
});

// ---- The same loop from the keyboard only ---------------------------------------------
await flow('keyboard', { colorScheme: 'dark' }, async (page, shot) => {
  await open(page, url);
  await page.keyboard.press('/');
  check(await page.evaluate(() => document.activeElement.id) === 'q', '/ does not focus the search box');
  await page.keyboard.type('a blue square');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9 &&
    document.activeElement.classList.contains('tile'));
  await shot('search');
  const first = await tileIds(page);
  const positives = first.slice(0, 3), negatives = first.slice(3, 9);
  // as fast as keys go: the labels given while the concept is being created wait for it
  for (let i = 0; i < 9; i++) {
    await page.keyboard.press(i < 3 ? '1' : '2');
    if (i < 8) await page.keyboard.press('ArrowRight');
  }
  await labelsSettled(page, 3, 6);
  const names = (await getJson(page, '/api/concepts')).map((c) => c.name);
  check(names.filter((n) => n.startsWith('a blue square')).length === 1, `concepts: ${names}`);
  // arrows move in two dimensions: up from the last tile lands on the one above it
  await page.keyboard.press('ArrowUp');
  check(await page.evaluate(() => document.activeElement.dataset.index) === '5', 'ArrowUp moves one row up');
  // 0 clears, 2 sets it back
  await page.keyboard.press('0');
  await labelsSettled(page, 3, 5);
  await page.keyboard.press('2');
  await labelsSettled(page, 3, 6);
  await shot('labelled');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled'));
  const next = await tileIds(page);
  const labelled = new Set(first);
  check(next.length > 0 && next.every((id) => !labelled.has(id)), 'the next page holds labelled items');
  await shot('trained');
  // Tab to the threshold slider and move it with the arrow keys
  await page.waitForFunction(() => document.getElementById('above').textContent.includes('above the threshold'));
  let tabs = 0;
  while (await page.evaluate(() => document.activeElement.id) !== 'threshold' && tabs++ < 80) await page.keyboard.press('Tab');
  check(tabs <= 80, 'the threshold slider cannot be reached with Tab');
  const before = Number(await page.inputValue('#threshold'));
  const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
  for (let i = 0; i < 30; i++) await page.keyboard.press('ArrowRight');
  await patched;
  const after = Number(await page.inputValue('#threshold'));
  check(after > before, `the arrow keys did not raise the threshold (${before} → ${after})`);
  await page.waitForFunction(() => document.getElementById('above').dataset.count !== '');
  const stored = (await getJson(page, '/api/concepts/a%20blue%20square')).threshold;
  const shown = Number(await page.getAttribute('#threshold', 'data-logit'));
  check(Math.abs(stored - shown) < 1e-9, `the server holds threshold ${stored}, the slider ${shown}`);
  await shot('threshold');
  tabs = 0;
  while (await page.evaluate(() => document.activeElement.id) !== 'export-labels-csv' && tabs++ < 40) await page.keyboard.press('Tab');
  check(tabs <= 40, 'the labels export cannot be reached with Tab');
  const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
  await checkExport(download, positives, negatives);
  await afterReload(page, 'a blue square', positives, negatives);
  await shot('reloaded');
});

// ---- Undo, rename, delete ----------------------------------------------------------
await flow('undo-rename-delete', {}, async (page, shot) => {
  await open(page, url + '#concept=a%20red%20circle&view=candidates');
  await page.waitForSelector('#concept-panel:not([hidden])');
  const before = await getJson(page, '/api/concepts/a%20red%20circle');
  const undone = page.waitForResponse((r) => r.url().endsWith('/undo') && r.ok());
  await page.click('#undo-round');
  await page.waitForSelector('#ask[open]');
  check((await page.textContent('#ask-text')).includes('Your labels stay'), 'the dialog says what undoing a round reverts');
  await shot('undo-round-dialog');
  await page.click('#ask-ok');
  await undone;
  const after = await getJson(page, '/api/concepts/a%20red%20circle');
  check(after.rounds === before.rounds - 1, 'undo round did not drop the round');
  check(after.positive === before.positive && after.negative === before.negative, 'undo round lost labels');
  await page.waitForSelector('#history td[colspan]');
  await page.click('#rename');
  await page.fill('#ask-input', 'red things');
  await page.click('#ask-ok');
  await page.waitForFunction(() => document.getElementById('concept-name').textContent === 'red things');
  await shot('renamed');
  await page.click('#delete');
  await page.click('#ask-ok');
  await page.waitForSelector('#concept-panel[hidden]', { state: 'attached' });
  const names = (await getJson(page, '/api/concepts')).map((c) => c.name);
  check(!names.includes('red things') && !names.includes('a red circle'), `still listed: ${names}`);
  await shot('deleted');
});

// ---- A metadata filter applies to the results; a bad one is reported -------------------
await flow('filter', {}, async (page, shot) => {
  await open(page, url);
  await searchFor(page, 'a photo'); // its results, not the opening sample (also 9 tiles)
  await page.fill('#where', "photo_featured = 'f'");
  await page.evaluate(() => { document.getElementById('status').textContent = ''; });
  await page.press('#where', 'Enter');
  await page.waitForFunction(() => / results in /.test(document.getElementById('status').textContent));
  const ids = await tileIds(page);
  check(ids.length > 0, 'no results with the filter');
  for (const id of ids) {
    const item = await getJson(page, `/api/items/${encodeURIComponent(id)}?neighbours=0`);
    check(item.metadata.photo_featured === 'f', `${id} has photo_featured ${item.metadata.photo_featured}`);
  }
  await shot('filtered');
  await page.fill('#where', "photo_featurd = 't'");
  await page.press('#where', 'Enter');
  await page.waitForSelector('#where-error:not([hidden])');
  const message = await page.textContent('#where-error');
  check(message.includes('photo_featurd') && message.includes("did you mean 'photo_featured'?") && !message.includes('columns:'),
    `the error in place: ${message}`);
  check(await page.getAttribute('#where', 'aria-invalid') === 'true', 'the filter box is not marked invalid');
  check((await tileIds(page)).length === 0, 'stale results stay after a bad filter');
  check(new URL(page.url()).hash.includes('where='), 'the filter is not in the URL');
  await shot('bad-filter');
  // column names complete at the cursor (Tab takes the first)
  await page.fill('#where', '');
  await page.type('#where', 'photo_fea');
  await page.waitForSelector('#where-suggest:not([hidden]) li');
  check((await page.textContent('#where-suggest li')) === 'photo_featured', 'no completion for photo_fea');
  await shot('completion');
  await page.keyboard.press('Tab');
  check(await page.inputValue('#where') === 'photo_featured ', `completed to "${await page.inputValue('#where')}"`);
}, /status of 400/);

// ---- An empty collection says how to fill it -------------------------------------------
await flow('empty-collection', {}, async (page, shot) => {
  await open(page, emptyUrl);
  const text = await page.textContent('#empty');
  check(text.includes('vdx ingest') && text.includes('--data '), `the empty state does not show the vdx ingest command with --data: ${text}`);
  // the page looks again by itself
  const polled = await page.waitForRequest((r) => r.url().endsWith('/api/info'), { timeout: 8000 }).catch(() => null);
  check(polled, 'the empty page does not poll /api/info');
  await shot('empty');
});

// ---- Drop an image on the page: its own item comes first ---------------------------------
await flow('image-drop', {}, async (page, shot) => {
  await open(page, url);
  const name = readdirSync(images).sort()[0];
  const bytes = readFileSync(join(images, name)).toString('base64');
  const dataTransfer = await page.evaluateHandle(({ bytes, name }) => {
    const raw = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([raw], name, { type: 'image/jpeg' }));
    return dt;
  }, { bytes, name });
  await page.dispatchEvent('main', 'dragenter', { dataTransfer });
  check(await page.isVisible('#drop'), 'no drop hint while dragging a file');
  await shot('dragging');
  await page.dispatchEvent('main', 'drop', { dataTransfer });
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Like ') &&
    document.querySelectorAll('#grid .tile').length === 9);
  check(await page.isVisible('#query-thumb'), 'the dropped image is not shown beside the results');
  check(await page.isHidden('#drop'), 'the drop hint stays after the drop');
  const [top] = await tileIds(page);
  const item = await getJson(page, `/api/items/${encodeURIComponent(top)}?neighbours=0`);
  check(item.url.endsWith(name), `the first result ${top} (${item.url}) is not the dropped image ${name}`);
  const score = Number(await page.textContent('#grid .tile .score'));
  check(score > 0.999, `the dropped image's own item scores ${score}, not 1`);
  await shot('results');
});

// ---- Access: the token, the cookie, foreign Host names, a read-only server ---------------
// A request with a chosen Host header (browsers do not let a page set it).
const rawGet = (target, headers) => new Promise((resolve, reject) => {
  http.get(target, { headers }, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)); }).on('error', reject);
});

await flow('access-token', { login: false }, async (page, shot) => {
  const answer = await page.goto(url);
  check(answer.status() === 401, `the page without the token answers ${answer.status()}, not 401`);
  check((await page.textContent('body')).includes('needs its access token'), 'no hint where the token is');
  await shot('no-token');
  const api = await page.request.get(url + 'api/info');
  check(api.status() === 401, `the API without the token answers ${api.status()}, not 401`);
  await open(page, `${url}?token=${token}`);
  const landed = new URL(page.url());
  check(landed.origin + landed.pathname === url && !landed.search, `after the token exchange the page is at ${page.url()}, not ${url}`);
  check(!(await page.evaluate(() => document.cookie)).includes(token), 'the token cookie is readable by scripts');
  const cookies = await page.context().cookies(url);
  const cookie = cookies.find((c) => c.value === token);
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `cookie: ${JSON.stringify(cookies)}`);
  check((await page.request.get(url + 'api/info')).status() === 200, 'the API refuses the cookie');
  await shot('with-token');
  const port = new URL(url).port;
  const foreign = await rawGet(url + 'api/info', { Host: `127.0.0.1.attacker.example:${port}`, Authorization: `Bearer ${token}` });
  check(foreign === 403, `a foreign Host answers ${foreign}, not 403`);
  const wrong = await page.goto(`${url}?token=not-the-token-at-all`);
  check(wrong.status() === 403, `a wrong token answers ${wrong.status()}, not 403`);
}, /status of (401|403|404)/); // the refusals this flow provokes (and no favicon)

await flow('read-only', {}, async (page, shot) => {
  await open(page, readonlyUrl);
  await shot('page');
  const search = await page.request.post(readonlyUrl + 'api/search', { data: { text: 'a photo', k: 3 } });
  check(search.status() === 200, `search on the read-only server answers ${search.status()}`);
  const writes = [
    ['post', 'api/concepts', { name: 'ro', prompt: 'a dog' }],
    ['post', 'api/concepts/ro/labels', { labels: [] }],
    ['post', 'api/concepts/ro/train', {}],
    ['post', 'api/concepts/ro/undo', {}],
    ['post', 'api/concepts/ro/copy', { name: 'x' }],
    ['patch', 'api/concepts/ro', { threshold: 0 }],
    ['delete', 'api/concepts/ro', undefined],
  ];
  for (const [method, path, data] of writes) {
    const r = await page.request[method](readonlyUrl + path, data === undefined ? {} : { data });
    check(r.status() === 403, `${method.toUpperCase()} /${path} on the read-only server answers ${r.status()}, not 403`);
  }
  const list = await (await page.request.get(readonlyUrl + 'api/concepts')).json();
  check(!JSON.stringify(list).includes('"ro"'), 'a concept was created on the read-only server');
});

// ---- The issue-15 flows, at a laptop and at a phone size ---------------------------------
const sizes = [
  { tag: 'desktop', options: { viewport: { width: 1366, height: 800 } } },
  { tag: 'phone', options: { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 } },
];

// Opens the sidebar drawer on a narrow screen (a no-op where the sidebar is always shown).
async function sidebar(page) {
  if (await page.isVisible('#drawer-toggle') && !(await page.$('#sidebar.open'))) {
    await page.click('#drawer-toggle');
    await page.waitForSelector('#sidebar.open');
  }
}
async function closeSidebar(page) {
  if (await page.$('#sidebar.open')) { await page.click('#scrim', { position: { x: 380, y: 400 } }); }
}
const serverLabels = async (page, concept) =>
  new Map((await getJson(page, `/api/concepts/${encodeURIComponent(concept)}/labels`)).map((l) => [l.id, l.label]));
async function searchFor(page, text) {
  await page.fill('#q', text);
  await page.press('#q', 'Enter');
  await page.waitForFunction((t) => document.getElementById('view-title').textContent === `“${t}”` &&
    document.querySelectorAll('#grid .tile').length === 9, text);
}
const noSideways = (page) => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

for (const { tag, options } of sizes) {
  const concept = `a green thing ${tag}`;

  await flow(`undo-redo-focus-${tag}`, options, async (page, shot) => {
    await open(page, url);
    await searchFor(page, concept);
    const ids = await tileIds(page);
    // mouse then keyboard: the focus stays on the tiles
    await page.click('#grid .tile[data-index="0"] .b-pos');
    await page.waitForFunction(() => document.getElementById('count-pos').textContent === '1');
    check(await page.evaluate(() => document.activeElement.dataset.index) === '0', 'focus left the tile after a mouse label');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('2');
    await labelsSettled(page, 1, 1);
    check(await page.evaluate(() => document.activeElement.dataset.index) === '1', 'the keys do not follow the focus');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('1');
    await labelsSettled(page, 2, 1);
    await shot('labelled');
    // Ctrl+Z takes back one action only, Ctrl+Shift+Z replays it
    await page.keyboard.press('Control+z');
    await labelsSettled(page, 1, 1);
    let labels = await serverLabels(page, concept);
    check(labels.get(ids[0]) === 1 && labels.get(ids[1]) === 0 && !labels.has(ids[2]), `after one undo: ${[...labels]}`);
    await page.keyboard.press('Control+z');
    await labelsSettled(page, 1, 0);
    await page.keyboard.press('Control+Shift+z');
    await labelsSettled(page, 1, 1);
    await page.keyboard.press('Control+Shift+z');
    await labelsSettled(page, 2, 1);
    labels = await serverLabels(page, concept);
    check(labels.size === 3 && labels.get(ids[2]) === 1, `after undo, undo, redo, redo: ${[...labels]}`);
    check(await page.$eval('#grid .tile[data-index="2"]', (t) => t.classList.contains('label-1')), 'the tile does not show the redone label');
    await shot('undo-redo');
    // the history panel lists the actions; any can be reverted
    await sidebar(page);
    await page.waitForFunction(() => document.querySelectorAll('#actions li button').length === 3);
    await shot('history');
    const reverted = page.waitForResponse((r) => r.url().endsWith('/revert') && r.ok());
    await page.click('#actions li:last-child button');
    await reverted;
    await labelsSettled(page, 1, 1);
    labels = await serverLabels(page, concept);
    check(!labels.has(ids[0]) && labels.get(ids[1]) === 0, `reverting the first action: ${[...labels]}`);
    await closeSidebar(page);
  });

  await flow(`bulk-${tag}`, options, async (page, shot) => {
    await open(page, url + `#concept=${encodeURIComponent(concept)}&q=${encodeURIComponent(concept)}&view=search`);
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
    const ids = await tileIds(page);
    const before = await serverLabels(page, concept);
    // a shift-click range: tiles 3..5 positive in one action
    await page.click('#grid .tile[data-index="3"] .b-pos');
    await page.waitForFunction((id) => document.querySelector(`#grid .tile[data-id="${id}"]`).classList.contains('label-1'), ids[3]);
    await page.click('#grid .tile[data-index="5"] .b-pos', { modifiers: ['Shift'] });
    await page.waitForFunction(() => [3, 4, 5].every((i) => document.querySelector(`#grid .tile[data-index="${i}"]`).classList.contains('label-1')));
    // the tiles change at once, the server's answer follows: its history, once it has the action
    const newestWith = async (id) => {
      let h;
      for (let tries = 0; tries < 50; tries++) {
        h = await getJson(page, `/api/concepts/${encodeURIComponent(concept)}/history`);
        if (h.actions[0].changes.some((ch) => ch.id === id)) break;
        await page.waitForTimeout(100);
      }
      return h;
    };
    let history = await newestWith(ids[5]);
    check(history.actions[0].changes.length === 2, `the range is one action of 2 changes: ${JSON.stringify(history.actions[0])}`);
    // checkboxes: tiles 6 and 7 negative together
    await page.check('#grid .tile[data-index="6"] .pick input');
    await page.check('#grid .tile[data-index="7"] .pick input');
    check(await page.textContent('#selection-count') === '2 selected', 'the selection count');
    await shot('selected');
    await page.click('#sel-neg');
    await page.waitForFunction(() => [6, 7].every((i) => document.querySelector(`#grid .tile[data-index="${i}"]`).classList.contains('label-0')));
    // the rest of the page negative: one action, then undone as one
    await page.click('#rest-neg');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile:not(.label-0):not(.label-1)').length === 0);
    const restIds = ids.filter((id, i) => !before.has(id) && ![3, 4, 5, 6, 7].includes(i));
    history = await newestWith(restIds[0]);
    const rest = history.actions[0].changes.length;
    const unlabelled = restIds.length;
    check(rest === unlabelled, `"rest −" labelled ${rest} items, ${unlabelled} were unlabelled`);
    await shot('rest-negative');
    const undone = page.waitForResponse((r) => r.url().endsWith('/undo') && r.ok());
    await page.click('#undo');
    await undone;
    await page.waitForFunction((n) => document.querySelectorAll('#grid .tile:not(.label-0):not(.label-1)').length === n, rest);
    const labels = await serverLabels(page, concept);
    check([3, 4, 5].every((i) => labels.get(ids[i]) === 1) && [6, 7].every((i) => labels.get(ids[i]) === 0),
      'undoing the bulk action touched other labels');
    // Shift+1: all of the page positive
    await page.focus('#grid .tile[data-index="0"]');
    await page.keyboard.press('Shift+Digit1');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile.label-1').length === 9);
    await page.keyboard.press('Control+z');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile.label-1').length < 9);
  });

  await flow(`paging-metrics-${tag}`, options, async (page, shot) => {
    await open(page, url + `#concept=${encodeURIComponent(concept)}&q=${encodeURIComponent(concept)}&view=search`);
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
    await page.click('#train');
    await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled'));
    const name = encodeURIComponent(concept);
    const c = await getJson(page, `/api/concepts/${name}`);
    const page2 = (await getJson(page, `/api/concepts/${name}/candidates?mode=nearest&k=9&page=1`)).items.map((i) => i.id);
    // label page 1, go on: ranks 10-18, as the list said before the labels
    await page.click('#rest-neg');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile:not(.label-0):not(.label-1)').length === 0);
    await page.click('#next');
    await page.waitForFunction(() => document.getElementById('page-label').textContent.startsWith('10–18'));
    const shown = await tileIds(page);
    check(JSON.stringify(shown) === JSON.stringify(page2), `page 2 after labelling page 1: ${shown} instead of ${page2}`);
    check(new URL(page.url()).hash.includes('page=1'), 'the page is not in the URL');
    await shot('page-2');
    // "62% likely" on the tiles, the logit in the tooltip
    const score = await page.textContent('#grid .tile .score');
    check(/^\d+% likely$/.test(score), `tile score reads "${score}"`);
    check(/logit/.test(await page.getAttribute('#grid .tile .score', 'title')), 'no logit in the tooltip');
    // metrics: the rounds table from the server, the count equal to the API's, no "-0.00"
    await sidebar(page);
    const evaluation = await getJson(page, `/api/concepts/${name}/evaluate?bins=40`);
    await countIs(page, evaluation.above_threshold);
    const last = c.history[c.history.length - 1];
    const cells = await page.$$eval('#history tr:first-child td', (t) => t.map((x) => x.textContent));
    check(cells[0] === String(last.round) && cells.length === 7, `rounds table: ${cells}`);
    if (last.cross_validation && last.cross_validation.precision !== null) {
      check(cells[4] === `${Math.round(last.cross_validation.precision * 100)}%`, `CV precision ${cells[4]} vs ${JSON.stringify(last.cross_validation)}`);
    }
    check(!(await page.textContent('body')).includes('-0.00'), 'the page shows -0.00');
    check((await page.textContent('#metrics')).includes('Cross-validated'), 'no cross-validated metrics');
    await shot('metrics');
    // a threshold nobody reaches: the warning, and a fit from it
    await page.request.patch(url.replace(/\/$/, '') + `/api/concepts/${name}`, { data: { threshold: 1000 } });
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await sidebar(page);
    await page.waitForSelector('#warnings li[data-code="no_positive_above"] button');
    await shot('warning');
    const fitted = page.waitForResponse((r) => r.url().endsWith('/threshold/fit') && r.ok());
    await page.click('#warnings li[data-code="no_positive_above"] button');
    await fitted;
    const after = await getJson(page, `/api/concepts/${name}`);
    check(after.threshold < 1000, `the fit left the threshold at ${after.threshold}`);
    const e2 = await getJson(page, `/api/concepts/${name}/evaluate?bins=40`);
    await countIs(page, e2.above_threshold);
    await shot('fitted');
    // the audit panel: estimates unknown until a random sample is labelled, then numbers
    check(await page.getAttribute('#estimates', 'data-status') === 'unknown' &&
      (await page.textContent('#estimates')).includes('unknown'), `estimates before the audit: ${await page.textContent('#estimates')}`);
    await page.click('#audit');
    await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Audit sample'));
    const sample = (await getJson(page, `/api/concepts/${name}/candidates?mode=audit&k=20`)).items.map((i) => i.id);
    await page.waitForFunction((n) => document.querySelectorAll('#grid .tile').length === n, sample.length);
    check(sample.length === 20 && JSON.stringify(await tileIds(page)) === JSON.stringify(sample),
      `the audit view shows ${await tileIds(page)}, the API's sample ${sample}`);
    await shot('audit');
    await page.request.post(url.replace(/\/$/, '') + `/api/concepts/${name}/labels`,
      { data: { labels: sample.map((id) => ({ id, label: 0 })) } });
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await sidebar(page);
    await page.waitForFunction(() => document.getElementById('estimates')?.dataset.status === 'estimated');
    const text = await page.textContent('#estimates');
    check(/positives · precision/.test(text) && /\[/.test(text), `estimates after the audit: ${text}`);
    await shot('estimates');
    // with 20 audit labels the automatic trainer (the default) runs the anchored one next,
    // and the page says so without suggesting a switch
    check(await page.inputValue('#trainer') === 'auto' && (await getJson(page, `/api/concepts/${name}`)).next_trainer === 'anchored',
      'the concept is not automatic with its next round anchored');
    await page.waitForSelector('#next-trainer[data-trainer="anchored"]:not([hidden])');
    check(/anchored/.test(await page.textContent('#next-trainer')), `next trainer: ${await page.textContent('#next-trainer')}`);
    check(!(await page.$('#warnings li[data-code="try_anchored"]')), 'an automatic concept is told to switch trainers');
    // on the original trainer the page suggests the anchored one; its button switches
    const toSeed = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
    await page.selectOption('#trainer', 'seed');
    await toSeed;
    await page.waitForSelector('#warnings li[data-code="try_anchored"] button');
    await page.waitForFunction(() => document.getElementById('next-trainer').hidden); // shown for auto only
    const switched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
    await page.click('#warnings li[data-code="try_anchored"] button');
    await switched;
    check((await getJson(page, `/api/concepts/${name}`)).trainer === 'anchored' &&
      await page.inputValue('#trainer') === 'anchored', 'the suggestion did not switch the trainer');
    await page.waitForFunction(() => !document.querySelector('#warnings li[data-code="try_anchored"]'));
    await closeSidebar(page);
  }, /request failed: .*\/evaluate\?/); // the reload cancels an evaluation still on its way

  await flow(`detail-${tag}`, options, async (page, shot) => {
    await open(page, url + `#concept=${encodeURIComponent(concept)}&q=${encodeURIComponent('a photo')}&view=search`);
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
    const ids = await tileIds(page);
    await page.click('#grid .tile[data-index="0"] .thumb');
    await page.waitForSelector('#detail[open] #detail-neighbours .neighbour');
    check(await page.textContent('#detail-title') === ids[0], 'the detail shows the first item');
    check(/similarity/.test(await page.textContent('#detail-score')), 'no score in the detail');
    // the large rendition, made by vdx from the original on the collection's mirror (the
    // sample's originals there are 640 px; the thumbnails smaller)
    await page.waitForFunction(() => { const i = document.getElementById('detail-image');
      return i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0 && !i.classList.contains('preview-pending'); });
    const shown = await page.$eval('#detail-image', (i) => ({ side: Math.max(i.naturalWidth, i.naturalHeight), title: i.title }));
    check(shown.side === 640 && !shown.title, `the detail shows ${JSON.stringify(shown)}, not the original's 640 px from the mirror`);
    await shot('detail');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((id) => document.getElementById('detail-title').textContent === id, ids[1]);
    await page.keyboard.press('1');
    await page.waitForFunction(() => document.getElementById('detail-score').textContent.includes('labelled positive'));
    check((await serverLabels(page, concept)).get(ids[1]) === 1, 'the 1 key in the detail did not label');
    const free = '#detail-neighbours .neighbour:not(.label-0):not(.label-1)';
    const neighbour = await page.getAttribute(free, 'data-id');
    await page.click(`${free} .b-neg`);
    await page.waitForFunction((id) => document.querySelector(`#detail-neighbours .neighbour[data-id="${id}"]`)?.classList.contains('label-0'), neighbour);
    check((await serverLabels(page, concept)).get(neighbour) === 0, 'the neighbour\'s − did not label it');
    await shot('detail-labelled');
    await page.keyboard.press('Escape');
    // "More like this" shows the query image beside the title
    await page.click('#grid .tile[data-index="2"] .b-like');
    await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('More like'));
    check(await page.isVisible('#query-thumb'), 'the query image is not shown beside "More like this"');
    await shot('more-like');
  });

  await flow(`url-layout-${tag}`, options, async (page, shot) => {
    await open(page, url);
    check((await tileIds(page)).length > 0, 'the opening view shows no images (a random sample)');
    await shot('opening');
    await searchFor(page, 'a yellow star');
    await page.fill('#where', "photo_featured = 'f'");
    await page.press('#where', 'Enter');
    await page.waitForFunction(() => location.hash.includes('where='));
    const searched = await tileIds(page);
    check(await noSideways(page), 'the search results scroll sideways');
    // the concept's candidates, then Back to the search
    await sidebar(page);
    await page.click(`.concepts button:has-text("${concept}")`);
    await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled'));
    check(await noSideways(page), 'the candidates scroll sideways');
    await shot('candidates');
    await page.goBack();
    await page.waitForFunction(() => document.getElementById('view-title').textContent === '“a yellow star”');
    check(JSON.stringify(await tileIds(page)) === JSON.stringify(searched), 'Back does not restore the search');
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    check(await page.inputValue('#q') === 'a yellow star' && await page.inputValue('#where') === "photo_featured = 'f'",
      'reload lost the query or the filter');
    check(JSON.stringify(await tileIds(page)) === JSON.stringify(searched), 'reload does not restore the results');
    if (tag === 'phone') {
      check(!(await page.isVisible('#keys')), 'the key legend shows on a touch screen');
      const small = await page.$$eval('#grid .tile-bar button, #actionbar button', (bs) => bs
        .filter((b) => b.offsetParent).map((b) => b.getBoundingClientRect().height).filter((h) => h < 40));
      check(small.length === 0, `touch targets under 40 px: ${small}`);
      check(await page.isVisible('#drawer-toggle'), 'no drawer toggle below 900 px');
      await page.setViewportSize({ width: 360, height: 740 });
      check(await noSideways(page), 'the page scrolls sideways at 360 px');
      await shot('360px');
    } else {
      check(await page.isHidden('#drawer-toggle') && await page.isVisible('#sidebar'), 'the sidebar is not shown at 1366 px');
    }
    check(await page.$eval('#actionbar', (b) => getComputedStyle(b).position) === 'sticky', 'the action bar is not sticky');
  });
}

// ---- The collection switcher: every collection of the server's data directory ------------
// The sample's server also serves "empty" and "growing" (same data directory, same model):
// choosing one shows its items and its own concepts, the URL names it, Back returns.
for (const { tag, options } of sizes) {
  await flow(`collections-${tag}`, options, async (page, shot) => {
    await open(page, url);
    // a concept of the sample's (409 when the other size made it already)
    await page.evaluate(() => fetch('/api/concepts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'only in the sample', prompt: 'a cat' }) }).then((r) => r.text()));
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    const info = await getJson(page, '/api/info');
    check(await page.isVisible('#collection-select'), 'no collection switcher');
    const choices = await page.$$eval('#collection-select option', (os) => os.map((o) => o.textContent));
    check(JSON.stringify(choices) === '["empty","growing","sample"]', `choices: ${choices}`);
    const titles = await page.$$eval('#collection-select option', (os) => os.map((o) => o.title));
    check(titles[0] === '0 items' && titles[2] === `${info.count} items`, `counts: ${titles}`);
    check(await page.inputValue('#collection-select') === 'sample', 'the switcher does not show the served collection');
    const sampleConcepts = await page.$$eval('#concepts li', (l) => l.map((x) => x.textContent).join('|'));
    check(sampleConcepts.includes('only in the sample'), `the sample's concepts: ${sampleConcepts}`);
    check(await noSideways(page), 'the header with the switcher scrolls sideways');
    await shot('switcher');
    const t0 = Date.now();
    await Promise.all([page.waitForEvent('load'), page.selectOption('#collection-select', 'empty')]);
    await page.waitForSelector('body[data-ready="1"]');
    console.log(`# ${tag}: switching collections took ${Date.now() - t0} ms (choice to a ready page)`);
    check(new URLSearchParams((await page.evaluate(() => location.hash)).slice(1)).get('collection') === 'empty',
      `the URL does not name the collection: ${await page.evaluate(() => location.hash)}`);
    check(/^0 items/.test(await page.textContent('#collection')), `count: ${await page.textContent('#collection')}`);
    check((await page.textContent('#empty')).includes('--collection empty'), 'the empty collection\'s page does not say how to fill it');
    await shot('empty');
    // Back: the sample again
    await Promise.all([page.waitForEvent('load'), page.goBack()]);
    await page.waitForSelector('body[data-ready="1"]');
    check(await page.inputValue('#collection-select') === 'sample', 'Back did not return to the sample');
    check(await page.textContent('#collection') === `${info.count} items`, `count after Back: ${await page.textContent('#collection')}`);
    // a link to another collection: its thumbnails, its (empty) concept book
    await open(page, url + '#collection=growing&view=sample');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile img').length > 0 &&
      [...document.querySelectorAll('#grid .tile img')].every((i) => i.complete && i.naturalWidth > 0));
    const srcs = await page.$$eval('#grid .tile img', (is) => is.map((i) => i.getAttribute('src')));
    check(srcs.every((s) => s.endsWith('?collection=growing')), `thumbnails of another collection: ${srcs[0]}`);
    const grown = await (await page.request.get(url + 'api/info?collection=growing')).json();
    check(grown.collection === 'growing' && await page.inputValue('#collection-select') === 'growing', 'the link did not open growing');
    check(await page.$$eval('#concepts li', (l) => l.length) === 0, 'growing shows the sample\'s concepts');
    await shot('growing');
    // a name the server does not have: said, and the server's own collection is shown
    await open(page, url + '#collection=nowhere');
    await page.waitForFunction(() => document.getElementById('status').textContent.includes('“nowhere” does not exist'));
    check(await page.inputValue('#collection-select') === 'sample', 'an unknown collection is not replaced by the served one');
  }, /status of 409/);
}

// ---- "Fit": a page fills a wide screen, follows the size slider, pages without gaps -------
const columns = (page) => page.$eval('#grid', (g) => getComputedStyle(g).gridTemplateColumns.split(' ').length);
const searchIds = (page, text, k, offset) => page.evaluate(async ([t, kk, o]) => (await (await fetch('/api/search', {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: t, k: kk, offset: o }) })).json())
  .items.map((i) => i.id), [text, k, offset]);
for (const { tag, options } of [{ tag: 'wide', options: { viewport: { width: 1920, height: 1080 } } }, sizes[1]]) {
  await flow(`fit-${tag}`, options, async (page, shot) => {
    await open(page, url);
    await searchFor(page, 'a red circle');
    await page.selectOption('#k', 'fit');
    // the page settles on whole rows (a refit after the layout may re-page once)
    await page.waitForFunction(() => {
      const n = document.querySelectorAll('#grid .tile').length;
      const cols = getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length;
      return location.hash.includes('k=fit') && n !== 9 && n % cols === 0;
    });
    const cols = await columns(page);
    const n = (await tileIds(page)).length;
    check(n % cols === 0 && n / cols >= 2, `${n} tiles in ${cols} columns: not whole rows`);
    if (tag === 'wide') check(cols >= 6 && n > 9, `a 1920-px screen shows ${n} tiles in ${cols} columns`);
    check(JSON.stringify(await tileIds(page)) === JSON.stringify(await searchIds(page, 'a red circle', n, 0)), 'page 1 is not the search\'s first ranks');
    check(await noSideways(page), 'Fit scrolls sideways');
    await shot('fit');
    // the next page: the next ranks, none skipped
    await page.click('#next');
    await page.waitForFunction(() => /page 2/.test(document.getElementById('page-label').textContent));
    const second = await tileIds(page);
    const expected = await searchIds(page, 'a red circle', n, n);
    check(JSON.stringify(second) === JSON.stringify(expected), `page 2: ${second.slice(0, 3)} != ${expected.slice(0, 3)}`);
    if (tag === 'wide') {
      // smaller tiles: more columns, more tiles, still whole rows; the first item shown stays
      await page.$eval('#density', (d) => { d.value = 150; d.dispatchEvent(new Event('input')); });
      await page.waitForFunction((m) => document.querySelectorAll('#grid .tile').length > m, n);
      const cols2 = await columns(page);
      const n2 = (await tileIds(page)).length;
      const { count } = await getJson(page, '/api/info'); // a page past the collection's end is not whole
      check(cols2 > cols && (n2 % cols2 === 0 || n2 === count), `at size 150: ${n2} tiles in ${cols2} columns`);
      check((await tileIds(page)).includes(second[0]), 'the first item of the page is gone after the resize');
      await shot('fit-small');
    }
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    check(await page.inputValue('#k') === 'fit', 'reload lost "Fit"');
    if (tag === 'wide') check(await page.inputValue('#density') === '150' && await columns(page) > cols, 'reload lost the tile size');
  });
}

// ---- A stopped server: a banner that clears itself ------------------------------------
await flow('server-unreachable', {}, async (page, shot) => {
  await open(page, url);
  await page.route('**/api/**', (route) => route.abort());
  await page.fill('#q', 'anything');
  await page.press('#q', 'Enter');
  await page.waitForSelector('#offline:not([hidden])');
  check(!(await page.textContent('#status')).includes('Failed to fetch'), 'the status shows "Failed to fetch"');
  await shot('unreachable');
  await page.unroute('**/api/**');
  await page.waitForSelector('#offline', { state: 'hidden', timeout: 8000 });
  await shot('back');
}, /ERR_FAILED|Failed to load resource|request failed: .*\/api\//);

// ---- Import a concept by dropping its JSON ------------------------------------------------
await flow('import-drop', {}, async (page, shot) => {
  await open(page, url);
  const exported = await (await page.request.get(url.replace(/\/$/, '') + '/api/concepts/a%20blue%20square/export?what=classifier&format=json')).text();
  const json = JSON.parse(exported);
  json.name = 'imported by a drop';
  const dataTransfer = await page.evaluateHandle((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], 'classifier.json', { type: 'application/json' }));
    return dt;
  }, JSON.stringify(json));
  await page.dispatchEvent('main', 'dragenter', { dataTransfer });
  await page.dispatchEvent('main', 'drop', { dataTransfer });
  await page.waitForFunction(() => document.getElementById('concept-name').textContent === 'imported by a drop');
  const names = (await getJson(page, '/api/concepts')).map((c) => c.name);
  check(names.includes('imported by a drop'), `not imported: ${names}`);
  await shot('imported');
});

// A multilingual text model: the page says so, offers Chinese example prompts, and a
// Chinese prompt typed in the box finds what `vdx search --text-model` finds.
if (mclipUrl) await flow('multilingual-prompt', {}, async (page, shot) => {
  await open(page, mclipUrl);
  const notice = await page.textContent('#text-model-notice');
  check(/any language/.test(notice) && /mclip-tiny/.test(notice), `notice: ${notice}`);
  const examples = await page.$$eval('#examples button', (bs) => bs.map((b) => b.textContent));
  check(examples.some((t) => /[\u4e00-\u9fff]/.test(t)), `no Chinese example prompt: ${examples.join(' | ')}`);
  await shot('notice');
  // the results of the prompt, not the opening view's random sample (also 9 tiles)
  await searchFor(page, process.env.VDX_ZH_PROMPT);
  const ids = (await tileIds(page)).join(',');
  check(ids === process.env.VDX_ZH_EXPECTED, `page ${ids} != vdx search ${process.env.VDX_ZH_EXPECTED}`);
  await shot('results');
  // (not by navigating away: that would abort the result thumbnails still loading)
  const english = await getJson(page, '/api/info');
  check(english.text_model && english.text_model.multilingual === false,
    `the English server reports ${JSON.stringify(english.text_model)}`);
});

// ---- The README's picture: two rounds of a real session on the sample ----------------------
// Tiles are labelled by what they show: a thumbnail whose mean colour is the prompt's colour
// is positive, the rest of the page negative (of four prompts, the one whose first page
// shows its colour most). The screenshot is build/artifacts/screenshots/readme-*-explorer.png,
// copied to docs/images/explorer.png by hand (FLOWS=readme sh tests/browser/run.sh).
const tilesOfColour = (page, colour) => page.$$eval('#grid .tile', (tiles, want) => tiles.filter((t) => {
  const c = document.createElement('canvas');
  c.width = 16; c.height = 16;
  const g = c.getContext('2d');
  g.drawImage(t.querySelector('.thumb img'), 0, 0, 16, 16);
  const d = g.getImageData(0, 0, 16, 16).data;
  let r = 0, gr = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
  const is = { red: r > 1.4 * gr && r > 1.4 * b, green: gr > 1.3 * r && gr > 1.3 * b, blue: b > 1.4 * r && b > 1.2 * gr,
    yellow: r > 1.3 * b && gr > 1.3 * b && Math.abs(r - gr) < 0.25 * r };
  return is[want];
}).map((t) => t.dataset.index), colour);
const imagesLoaded = (page) => page.waitForFunction(() => [...document.querySelectorAll('#grid .tile img')]
  .every((i) => i.complete && i.naturalWidth > 0));
await flow('readme', { viewport: { width: 1366, height: 1180 } }, async (page, shot) => {
  await open(page, url);
  let best = null;
  for (const [prompt, colour] of [['a blue sky', 'blue'], ['a green forest', 'green'], ['a red circle', 'red'], ['yellow flowers', 'yellow']]) {
    await searchFor(page, prompt);
    await imagesLoaded(page);
    const n = (await tilesOfColour(page, colour)).length;
    if (!best || n > best.n) best = { prompt, colour, n };
  }
  check(best.n >= 2, `no prompt finds its colour: ${JSON.stringify(best)}`);
  await searchFor(page, best.prompt);
  for (let round = 1; round <= 2; round++) {
    await imagesLoaded(page);
    for (const i of await tilesOfColour(page, best.colour)) await page.click(`#grid .tile[data-index="${i}"] .b-pos`);
    if (round === 1) await page.waitForSelector('#concept-panel:not([hidden])');
    await page.click('#rest-neg');
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile:not(.label-0):not(.label-1)').length === 0);
    await page.click('#train');
    await page.waitForFunction((n) => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled') &&
      document.querySelectorAll('#history tr').length >= n, round);
  }
  // the page filled at the slider's size
  await page.selectOption('#k', 'fit');
  await page.waitForFunction(() => location.hash.includes('k=fit') && document.querySelectorAll('#grid .tile').length > 9);
  await imagesLoaded(page);
  await page.waitForFunction(() => document.getElementById('above').textContent.includes('above the threshold'));
  const text = await page.evaluate(() => document.body.innerText);
  check(!/-0\.0+(?!\d*[1-9])/.test(text), `the page shows a negative zero: ${text.match(/.{20}-0\.0+.{10}/)}`);
  await page.mouse.move(0, 0);
  await page.evaluate(() => { if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); });
  await page.waitForFunction(() => !document.getElementById('status').classList.contains('show'), null, { timeout: 10000 });
  await shot('explorer');
});

// ---- The map (web/map.js) ---------------------------------------------------------------
// The map of the sample collection (built by run.sh with `vdx map build`), read from the
// API independently of the page: data coordinates in 0..1 and their screen position under
// the page's opening view (centred, 90% of the shorter side).
const MAP_PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
async function mapPoints(page) {
  const base = url.replace(/\/$/, '');
  const buf = await (await page.request.get(`${base}/api/map/points`)).body();
  const ids = (await (await page.request.get(`${base}/api/map/ids`)).text()).split('\n');
  const n = buf.readUInt32LE(0), pts = [];
  for (let i = 0; i < n; i++) {
    pts.push({ id: ids[i], x: buf.readUInt16LE(20 + 2 * i) / 65535, y: 1 - buf.readUInt16LE(20 + 2 * n + 2 * i) / 65535,
      cluster: buf.readUInt16LE(20 + 4 * n + 2 * i) });
  }
  const box = await page.$eval('#map-canvas', (c) => { const r = c.getBoundingClientRect(); return { left: r.left, top: r.top, w: r.width, h: r.height }; });
  const s = Math.min(box.w, box.h) * 0.9;
  for (const p of pts) { p.sx = box.w / 2 + (p.x - 0.5) * s; p.sy = box.h / 2 + (p.y - 0.5) * s; }
  return { pts, box };
}
// The WebGL canvas's pixel at CSS position (x, y), and a hash of all its pixels.
const mapPixel = (page, x, y) => page.evaluate(([x, y]) => {
  const c = document.getElementById('map-canvas'), gl = c.getContext('webgl'), d = window.devicePixelRatio || 1;
  const px = new Uint8Array(4);
  gl.readPixels(Math.round(x * d), c.height - 1 - Math.round(y * d), 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
  return [...px];
}, [x, y]);
const mapPixels = (page) => page.evaluate(() => {
  const c = document.getElementById('map-canvas'), gl = c.getContext('webgl');
  const px = new Uint8Array(c.width * c.height * 4);
  gl.readPixels(0, 0, c.width, c.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
  let drawn = 0, hash = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (Math.abs(px[i] - 247) > 6 || Math.abs(px[i + 1] - 247) > 6 || Math.abs(px[i + 2] - 247) > 6) drawn++;
    hash = (hash * 31 + px[i] * 7 + px[i + 1] * 3 + px[i + 2]) >>> 0;
  }
  return { drawn, hash };
});
// Six (or `size`) items a lasso can take alone: the centre item and its 5 nearest on
// screen, with the widest gap to the 7th; the lasso is a 24-gon between the 6th and the 7th.
function mapSix(pts, exclude, size = 6) {
  let best = null;
  for (const p of pts) {
    if (exclude.has(p.id)) continue;
    const d = pts.map((q) => ({ q, d: Math.hypot(q.sx - p.sx, q.sy - p.sy) })).sort((a, b) => a.d - b.d);
    if (d.slice(0, size).some((e) => exclude.has(e.q.id))) continue;
    const gap = d[size].d - d[size - 1].d;
    if (!best || gap > best.gap) best = { gap, centre: p, six: d.slice(0, size).map((e) => e.q.id), r: (d[size - 1].d + d[size].d) / 2 };
  }
  return best;
}
async function mapLasso(page, _box, sel) {
  const { centre, r } = sel;
  // where the canvas is now (the bar above it may have wrapped since)
  const box = await page.$eval('#map-canvas', (c) => { const b = c.getBoundingClientRect(); return { left: b.left, top: b.top }; });
  await page.keyboard.down('Shift');
  for (let k = 0; k <= 24; k++) {
    const a = (2 * Math.PI * k) / 24, x = box.left + centre.sx + r * Math.cos(a), y = box.top + centre.sy + r * Math.sin(a);
    if (k === 0) { await page.mouse.move(x, y); await page.mouse.down(); } else await page.mouse.move(x, y);
  }
  await page.mouse.up();
  await page.keyboard.up('Shift');
  await page.waitForFunction((n) => document.getElementById('map-selection').textContent === `${n} selected`, sel.six.length);
}
async function openMap(page) {
  const t0 = Date.now();
  await page.click('#map-toggle');
  await page.waitForFunction(() => window.vdxMap && window.vdxMap.state.loaded);
  await page.waitForFunction(() => document.getElementById('map-canvas').width > 0);
  return Date.now() - t0;
}

await flow('map-render-hover-click', {}, async (page, shot) => {
  // atlas requests over the whole flow (an atlas is fetched once and kept by the page, so it
  // may come before the close zoom below asks for it)
  const atlasUrls = [];
  const atlasFailures = [];
  page.on('response', (r) => {
    if (!/\/api\/map\/atlas\/\d+$/.test(r.url())) return;
    if (r.ok()) atlasUrls.push(r.url()); else atlasFailures.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => { if (/\/api\/map\/atlas\//.test(r.url())) atlasFailures.push(`${r.failure()?.errorText} ${r.url()}`); });
  await open(page, url);
  const ms = await openMap(page);
  const { pts, box } = await mapPoints(page);
  // every item is inked at its place (a dot is 4 CSS pixels wide at this zoom, so a count of
  // inked pixels says little: dots overlap)
  const blank = await page.evaluate((ps) => {
    const c = document.getElementById('map-canvas'), gl = c.getContext('webgl'), d = window.devicePixelRatio || 1;
    const px = new Uint8Array(c.width * c.height * 4);
    gl.readPixels(0, 0, c.width, c.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
    return ps.filter(([, x, y]) => {
      const i = ((c.height - 1 - Math.round(y * d)) * c.width + Math.round(x * d)) * 4;
      return [0, 1, 2].every((k) => Math.abs(px[i + k] - 247) <= 6);
    }).map(([id]) => id);
  }, pts.map((p) => [p.id, p.sx, p.sy]));
  check(blank.length === 0, `${blank.length} of ${pts.length} items not drawn at their place (${blank.slice(0, 5).join(', ')})`);
  // the most isolated item: drawn where its coordinates say, in its cluster's colour
  let iso = null;
  const onMap = await page.evaluate((ps) => ps.map(([x, y]) => {
    const e = document.elementFromPoint(x, y);
    return !!e && (e.id === 'map-canvas' || e.id === 'map-overlay');
  }), pts.map((p) => [box.left + p.sx, box.top + p.sy]));
  check(onMap.every(Boolean), `${onMap.filter((v) => !v).length} items drawn under something else`);
  for (const p of pts) {
    const d = Math.min(...pts.filter((q) => q !== p).map((q) => Math.hypot(q.sx - p.sx, q.sy - p.sy)));
    if (!iso || d > iso.d) iso = { p, d };
  }
  const item = iso.p, want = MAP_PALETTE[item.cluster % MAP_PALETTE.length];
  const got = await mapPixel(page, item.sx, item.sy);
  check(want.every((v, k) => Math.abs(v - got[k]) <= 3), `item ${item.id} at (${item.sx.toFixed(1)}, ${item.sy.toFixed(1)}): pixel ${got}, its cluster's colour ${want}`);
  const far = await mapPixel(page, item.sx + iso.d / 2, item.sy);
  check(!want.every((v, k) => Math.abs(v - far[k]) <= 3) || iso.d < 16, `the pixel beside ${item.id} has its colour too`);
  console.log(`    map: first paint ${ms} ms after the click (${pts.length} items)`);
  await shot('map');
  // a drag slides the drawn layer (the points are not drawn again while it lasts): the item
  // follows the pointer; at rest the layer is drawn again around the view, the item in place
  // (dragged towards the middle, so that it stays on the canvas)
  const renders = () => page.evaluate(() => window.vdxMap.state.layer.renders);
  const r0 = await renders(), grab = [box.left + box.w / 2, box.top + box.h / 2];
  const dx = item.sx < box.w / 2 ? 150 : -150, dy = item.sy < box.h / 2 ? 80 : -80;
  await page.mouse.move(...grab);
  await page.mouse.down();
  for (let k = 1; k <= 10; k++) await page.mouse.move(grab[0] + dx * k / 10, grab[1] + dy * k / 10);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const dragged = await mapPixel(page, item.sx + dx, item.sy + dy), r1 = await renders();
  await page.mouse.up();
  check(want.every((v, k) => Math.abs(v - dragged[k]) <= 3), `dragged by (${dx}, ${dy}): pixel ${dragged} where ${item.id} should be, not ${want}`);
  check(r1 === r0, `the points were drawn ${r1 - r0} times during a drag that stayed within the layer`);
  await page.waitForFunction((r) => window.vdxMap.state.layer.renders > r, r1);
  const rested = await mapPixel(page, item.sx + dx, item.sy + dy);
  check(want.every((v, k) => Math.abs(v - rested[k]) <= 3), `after the drag, at rest: pixel ${rested} where ${item.id} should be`);
  await page.evaluate(() => { Object.assign(window.vdxMap.state.view, { cx: 0.5, cy: 0.5 }); mapDraw(); });
  const back = await mapPixel(page, item.sx, item.sy);
  check(want.every((v, k) => Math.abs(v - back[k]) <= 3), `view reset: pixel ${back} at ${item.id}`);
  // a wheel zoom about the item scales the layer (no points drawn) with the item staying
  // under the pointer; at rest the points are drawn again at the new zoom, the item in place
  // (the rest comes after 1.5 s here, so that a loaded machine cannot reach it early)
  await page.evaluate(() => { window.vdxMap.state.restMs = 1500; });
  const z0 = await renders();
  await page.mouse.move(box.left + item.sx, box.top + item.sy);
  await page.mouse.wheel(0, -200);
  await page.waitForFunction((s) => window.vdxMap.state.view.scale > s, 1);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const zoomed = await mapPixel(page, item.sx, item.sy), z1 = await renders();
  const scale = await page.evaluate(() => window.vdxMap.state.view.scale);
  check(want.every((v, k) => Math.abs(v - zoomed[k]) <= 3), `zoomed ×${scale.toFixed(2)} about ${item.id}: pixel ${zoomed}, not ${want}`);
  check(z1 === z0, `a zoom gesture drew the points ${z1 - z0} times before the pointer rested`);
  await page.waitForFunction((r) => window.vdxMap.state.layer.renders > r, z1);
  const settled = await mapPixel(page, item.sx, item.sy);
  check(want.every((v, k) => Math.abs(v - settled[k]) <= 3), `zoomed, at rest: pixel ${settled} at ${item.id}`);
  await page.evaluate(() => { window.vdxMap.state.restMs = 250; Object.assign(window.vdxMap.state.view, { cx: 0.5, cy: 0.5, scale: 1 }); mapDraw(); });
  // hover: the tooltip names the item; click: the detail panel opens on it
  await page.mouse.move(box.left + item.sx, box.top + item.sy);
  await page.waitForFunction((id) => { const t = document.getElementById('map-tip'); return !t.hidden && t.dataset.id === id; }, item.id);
  check((await page.textContent('#map-tip-text')).startsWith(item.id), 'tooltip text');
  await shot('hover');
  await page.mouse.click(box.left + item.sx, box.top + item.sy);
  await page.waitForSelector('#detail[open]');
  check(await page.evaluate(() => detailItemId()) === item.id, 'click opened another item');
  await shot('detail');
  await page.keyboard.press('Escape');
  // colour by a numeric metadata column: the legend gives its range, the colours change
  const before = await mapPixels(page);
  await page.selectOption('#map-colour', 'column');
  await page.selectOption('#map-column', 'photo_width');
  await page.waitForFunction(() => /^photo_width: [\d.,]+ \(blue\) to [\d.,]+ \(yellow\)$/.test(document.getElementById('map-note').textContent));
  const after = await mapPixels(page);
  check(after.hash !== before.hash, 'colouring by photo_width changed nothing');
  await shot('by-column');
  // a bar that wraps to more lines pushes the stage down: it shrinks to keep clear of the
  // action bar fixed at the bottom (nothing of the map may lie under its buttons)
  const legend = await page.textContent('#map-note');
  const clearance = () => page.evaluate(() => {
    const stage = document.querySelector('.map-stage').getBoundingClientRect();
    const bar = document.getElementById('actionbar').getBoundingClientRect();
    return { stageBottom: stage.bottom, barTop: bar.height ? bar.top : window.innerHeight, barRows: document.querySelector('.map-bar').getBoundingClientRect().height,
      why: `stage top ${stage.top} height ${stage.height} (style ${document.querySelector('.map-stage').style.height}), window ${window.innerHeight} scrolled ${window.scrollY}, action bar ${bar.top}+${bar.height}` };
  });
  const c0 = await clearance();
  check(c0.stageBottom <= c0.barTop + 1, `the map's stage ends at ${c0.stageBottom}, under the action bar (top ${c0.barTop}): ${c0.why}`);
  await page.evaluate(() => { document.getElementById('map-note').textContent = 'a legend long enough to wrap the bar '.repeat(12); });
  await page.waitForFunction((h) => document.querySelector('.map-bar').getBoundingClientRect().height > h + 10, c0.barRows);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const c1 = await clearance();
  check(c1.stageBottom <= c1.barTop + 1, `with the bar wrapped (${c0.barRows} → ${c1.barRows} px) the map's stage ends at ${c1.stageBottom}, under the action bar (top ${c1.barTop}): ${c1.why}`);
  await page.evaluate((t) => { document.getElementById('map-note').textContent = t; }, legend);
  // close zoom: thumbnails from the first atlas (one request for up to 256 of them)
  // (zoomed about the isolated item with the wheel: the layout varies with ingest order)
  // (the view is first centred on the item, so that the wheel turns over the canvas's
  // middle: at the item's own place a button of the bar above may cover the canvas)
  const moved = await mapPoints(page), at = moved.pts.find((p) => p.id === item.id);
  await page.evaluate(([x, y]) => { Object.assign(window.vdxMap.state.view, { cx: x, cy: y }); mapDraw(); }, [at.x, at.y]);
  at.sx = moved.box.w / 2;
  at.sy = moved.box.h / 2;
  const over = await page.evaluate(([x, y]) => document.elementFromPoint(x, y)?.id, [moved.box.left + at.sx, moved.box.top + at.sy]);
  check(over === 'map-canvas', `the canvas's middle is covered by #${over}`);
  await page.mouse.move(moved.box.left + at.sx, moved.box.top + at.sy);
  // thumbnails: the first atlas loaded and the overlay drawn (the hover card alone also
  // draws on the overlay, so the atlas is part of the test)
  const thumbnailsDrawn = () => page.evaluate(() => {
    const a = window.vdxMap.state.atlases.get(0);
    if (!a || !a.complete || !a.naturalWidth) return false;
    const c = document.getElementById('map-overlay'), x = c.getContext('2d');
    const d = x.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n > 30 * 30;
  });
  // zoom in until thumbnails are drawn (under load wheel events may coalesce; the view is
  // drawn again once the wheel rests)
  let drawnThumbs = false;
  for (let z = 0; z < 16 && !drawnThumbs; z++) {
    if (z < 8) await page.mouse.wheel(0, -500);
    await page.waitForTimeout(z < 3 ? 100 : 500);
    drawnThumbs = await thumbnailsDrawn();
  }
  // what the page saw, should it fail: the zoom, the items in view, the atlas, what the
  // pointer is over (the wheel's target) and the overlay's inked pixels
  const seen = drawnThumbs || await page.evaluate(([x, y]) => {
    const s = window.vdxMap.state, a = s.atlases.get(0), c = document.getElementById('map-overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) inked++;
    const under = document.elementFromPoint(x, y);
    return JSON.stringify({ scale: s.view.scale, cx: s.view.cx, cy: s.view.cy, shown: s.shown,
      atlas: a ? { complete: a.complete, width: a.naturalWidth, src: a.src } : null, inked,
      pointerOver: under ? `${under.tagName}#${under.id}` : null });
  }, [moved.box.left + at.sx, moved.box.top + at.sy]);
  check(drawnThumbs, `no thumbnails drawn at close zoom: ${seen}; atlas responses ${atlasUrls.length}, failures ${JSON.stringify(atlasFailures)}`);
  // the page's own record of the atlases it loaded (a response event is not seen when the
  // browser serves the atlas from its memory cache, as after an earlier flow)
  const atlases = await page.evaluate(() => [...window.vdxMap.state.atlases.entries()]
    .map(([k, img]) => ({ page: k, loaded: img.complete && img.naturalWidth > 0 })));
  check(atlases.length === 1 && atlases[0].page === 0 && atlases[0].loaded &&
      atlasUrls.every((u) => /\/atlas\/0$/.test(u)) && atlasUrls.length <= 2,
    `atlases loaded: ${JSON.stringify(atlases)}, responses seen: ${atlasUrls.length} (${atlasUrls.slice(0, 3)}): one atlas holds the 46 items`);
  await shot('thumbnails');
});

await flow('map-lasso-label-undo-score', {}, async (page, shot) => {
  await open(page, url);
  await searchFor(page, 'a map test');
  await openMap(page);
  const { pts, box } = await mapPoints(page);
  const sel = mapSix(pts, new Set());
  check(sel && sel.gap > 4, `no six items a lasso can take alone (gap ${sel && sel.gap})`);
  await mapLasso(page, box, sel);
  await shot('lasso');
  await page.click('#map-sel-pos');
  await page.waitForFunction(() => document.getElementById('count-pos')?.textContent === '6');
  const concept = await page.evaluate(() => state.concept.name);
  let labels = await serverLabels(page, concept);
  check(sel.six.every((id) => labels.get(id) === 1) && labels.size === 6, `the API holds ${[...labels]} after labelling ${sel.six}`);
  const actions = (await getJson(page, `/api/concepts/${encodeURIComponent(concept)}/history`));
  await page.click('#undo');
  await page.waitForFunction(() => document.getElementById('count-pos')?.textContent === '0');
  labels = await serverLabels(page, concept);
  check(labels.size === 0, `one undo left ${labels.size} labels: ${[...labels]} (history ${JSON.stringify(actions).slice(0, 200)})`);
  await shot('undone');
  // keyboard: zoom and pan on the focused map, then 1 / 2 label a selection
  await page.focus('#map-canvas');
  const v0 = await page.evaluate(() => ({ ...window.vdxMap.state.view }));
  await page.keyboard.press('+');
  await page.keyboard.press('ArrowLeft');
  const v1 = await page.evaluate(() => ({ ...window.vdxMap.state.view }));
  check(v1.scale > v0.scale && v1.cx < v0.cx, `keys did not zoom and pan: ${JSON.stringify(v0)} → ${JSON.stringify(v1)}`);
  await page.keyboard.press('0');
  // colour by score, then a round (six + by key 1, six − by key 2, train): the colours change
  await page.selectOption('#map-colour', 'score');
  await page.waitForFunction(() => /score of/.test(document.getElementById('map-note').textContent));
  await page.waitForTimeout(300);
  const before = await mapPixels(page);
  await shot('score-before');
  await mapLasso(page, box, sel);
  await page.focus('#map-canvas');
  await page.keyboard.press('1');
  await page.waitForFunction(() => document.getElementById('count-pos')?.textContent === '6');
  // a second group apart from the first: of six where the layout has one, else of 5, 7, 4 or 8
  const other = [6, 5, 7, 4, 8].map((n) => mapSix(pts, new Set(sel.six), n)).find((g) => g && g.gap > 4);
  check(other, 'no second group of 4 to 8 items a lasso can take alone');
  await mapLasso(page, box, other);
  await page.focus('#map-canvas');
  await page.keyboard.press('2');
  await page.waitForFunction((n) => document.getElementById('count-neg')?.textContent === `${n}`, other.six.length);
  const trained = page.waitForResponse((r) => r.url().endsWith('/train') && r.ok());
  await page.click('#train');
  await trained;
  const newConcept = page.waitForResponse((r) => r.url().endsWith('/api/concepts') && r.request().method() === 'POST' && r.status() === 201);
  await mapLasso(page, box, other);
  await page.click('#map-sel-concept');
  const created = await (await newConcept).json();
  check(created.name === 'map selection' && created.examples.length === other.six.length && other.six.every((id) => created.examples.includes(id)),
    `the concept from the selection: ${JSON.stringify(created).slice(0, 300)}`);
  await page.waitForFunction(() => document.getElementById('concept-name').textContent === 'map selection');
  await page.click('.concepts button:has-text("a map test")');
  await page.waitForFunction(() => document.getElementById('concept-name').textContent === 'a map test');
  await page.waitForFunction((h) => {
    const c = document.getElementById('map-canvas'), gl = c.getContext('webgl');
    const px = new Uint8Array(c.width * c.height * 4);
    gl.readPixels(0, 0, c.width, c.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let hash = 0;
    for (let i = 0; i < px.length; i += 4) hash = (hash * 31 + px[i] * 7 + px[i + 1] * 3 + px[i + 2]) >>> 0;
    return hash !== h;
  }, before.hash, { timeout: 10000 });
  await shot('score-after');
});

// ---- Accessibility: axe-core on the page's main states, light and dark -------------------
// axe-core (npm, tests/browser/package.json) checks the WCAG 2.0/2.1/2.2 A and AA rules
// on the start page, search results, labelled results, a concept after a round (the side
// panel with metrics and histogram), the detail dialog and the Map view, in both colour
// schemes; a violation of impact "serious" or "critical" fails the flow (the lesser ones are
// printed as "#"), as does a symbol-only control under 3:1 (glyphContrast).
// Then the dialog from the keyboard: focus moves into it, Esc closes it, focus returns.
// (bypassCSP: the page's script-src 'self' would refuse the injected axe.)

// What axe leaves "to check by hand" as colour contrast most often: controls whose text is a
// symbol only (← → ✕ + −), which WCAG 1.4.11 asks to show at 3:1 against their background
// (the first opaque one up the tree, translucent ones blended in). Visible, enabled and not
// aria-hidden ones; returns "selector: ratio (colour on colour)" for each below 3:1.
const glyphContrast = (page) => page.evaluate(() => {
  const parse = (c) => {
    const n = (c.match(/[\d.]+/g) || []).map(Number);
    if (n.length < 3) return [0, 0, 0, 0];
    const k = c.startsWith('color(') ? 255 : 1;
    return [n[0] * k, n[1] * k, n[2] * k, n.length > 3 ? n[3] : 1];
  };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
  const lum = (rgb) => rgb.map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const hex = (rgb) => '#' + rgb.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const bad = [];
  for (const e of document.querySelectorAll('button, a, kbd, span')) {
    const text = e.textContent.trim();
    if (!text || /[\p{L}\p{N}]/u.test(text) || e.closest('[aria-hidden="true"], [hidden]') || e.disabled ||
        e.getClientRects().length === 0) continue;
    const layers = [];
    for (let a = e; a; a = a.parentElement) {
      const c = parse(getComputedStyle(a).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    const bg = layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255]);
    const fg = over(parse(getComputedStyle(e).color), bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 3) bad.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')} "${text}": ` +
      `${ratio.toFixed(2)} (${hex(fg)} on ${hex(bg)})`);
  }
  return bad;
});

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
async function axeCheck(page, state) {
  const serious = [];
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(bg === (colorScheme === 'dark' ? 'rgb(15, 18, 22)' : 'rgb(246, 247, 249)'), `the ${colorScheme} scheme did not apply: body ${bg}`);
    if (!await page.evaluate(() => !!window.axe)) await page.addScriptTag({ content: axeSource });
    if (process.env.AXE_DEBUG) await page.evaluate(() => { window.axeDebug = true; });
    const { passes, incomplete, violations } = await page.evaluate(async () => {
      const r = await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
      });
      const brief = (v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ') +
        (window.axeDebug ? ' {' + n.any.concat(n.all).map((c) => c.message + ' ' + JSON.stringify(c.data)).join(';') + '}' : '')) });
      return { passes: r.passes.length, incomplete: r.incomplete.map(brief), violations: r.violations.map(brief) };
    });
    check(passes > 10, `axe passed only ${passes} rules on the ${state} (${colorScheme}): did it run?`);
    console.log(`#   axe ${state} (${colorScheme}): ${passes} rules pass, ${violations.length} violated; to check by hand: ` +
      (incomplete.map((v) => `${v.id} (${v.targets.length})`).join(', ') || 'none'));
    if (process.env.AXE_DEBUG) for (const v of incomplete) console.log(`#     to check: ${v.id} [${v.impact}] ${v.help}: ${v.targets.join(', ')}`);
    for (const v of violations) {
      const line = `${state} (${colorScheme}): ${v.id} [${v.impact}] ${v.help}: ${v.targets.slice(0, 6).join(', ')}` +
        (v.targets.length > 6 ? ` … (${v.targets.length} nodes)` : ` (${v.targets.length} nodes)`);
      console.log(`#   axe ${line}`);
      if (v.impact === 'serious' || v.impact === 'critical') serious.push(line);
    }
    const glyphs = await glyphContrast(page);
    if (glyphs.length) serious.push(`${state} (${colorScheme}): symbols below 3:1: ${glyphs.join(', ')}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return serious;
}

await flow('accessibility', { bypassCSP: true }, async (page, shot) => {
  const serious = [];
  await open(page, url);
  serious.push(...await axeCheck(page, 'start page'));
  await shot('start');
  await page.fill('#q', 'an accessible orange moon');
  await page.click('#search-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
  serious.push(...await axeCheck(page, 'search results'));
  await shot('search');
  await labelFirstPage(page);
  serious.push(...await axeCheck(page, 'labelled results'));
  await shot('labelled');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('labelled-dark'); // the + / − badges and buttons on the bright dark-scheme fills
  await page.emulateMedia({ colorScheme: 'light' });
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('view-title').textContent.startsWith('Nearest unlabelled'));
  await page.waitForSelector('#history tr td:first-child');
  await page.waitForFunction(() => document.getElementById('above').textContent.includes('above the threshold'));
  serious.push(...await axeCheck(page, 'concept after a round'));
  await shot('trained');
  // the detail dialog, opened from the keyboard on the second tile
  await page.focus('#grid .tile[data-index="1"]');
  const tileId = await page.evaluate(() => document.activeElement.dataset.id);
  await page.keyboard.press('o');
  await page.waitForSelector('#detail[open] #detail-neighbours .thumb');
  check(await page.evaluate(() => document.getElementById('detail').contains(document.activeElement)),
    `opening the detail leaves the focus outside it (on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))})`);
  serious.push(...await axeCheck(page, 'detail dialog'));
  await shot('detail');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.getElementById('detail').contains(document.activeElement)), 'Tab leaves the modal detail dialog');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('detail').open);
  check(await page.evaluate(() => document.activeElement.dataset.id) === tileId,
    `closing the detail does not give the focus back to its tile ${tileId} (on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))})`);
  await openMap(page);
  serious.push(...await axeCheck(page, 'map view'));
  await shot('map');
  check(serious.length === 0, `${serious.length} serious or critical accessibility violations:\n  ${serious.join('\n  ')}`);
});

// The phone layout (390×844, touch): results, and the concepts drawer from the keyboard
// (focus moves into it, Esc closes it and gives the focus back to its toggle).
await flow('accessibility-phone', { ...sizes[1].options, bypassCSP: true }, async (page, shot) => {
  const serious = [];
  await open(page, url + '#concept=an%20accessible%20orange%20moon&view=candidates');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length > 0);
  serious.push(...await axeCheck(page, 'phone: candidates'));
  await shot('candidates');
  await page.focus('#drawer-toggle');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#sidebar.open');
  check(await page.evaluate(() => document.getElementById('sidebar').contains(document.activeElement)),
    `opening the drawer leaves the focus outside it (on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))})`);
  await page.waitForTimeout(300); // the drawer slides in
  serious.push(...await axeCheck(page, 'phone: drawer'));
  await shot('drawer');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('sidebar').classList.contains('open'));
  check(await page.evaluate(() => document.activeElement.id) === 'drawer-toggle',
    `closing the drawer does not give the focus back to its toggle (on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))})`);
  check(serious.length === 0, `${serious.length} serious or critical accessibility violations:\n  ${serious.join('\n  ')}`);
});

await browser.close();
process.exit(failures ? 1 : 0);
