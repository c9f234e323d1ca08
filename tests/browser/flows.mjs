// The web explorer's flows in a real browser (Debian's chromium driven by
// playwright-core), against `vdx serve` on loopback:
//   node flows.mjs URL EMPTY_URL GROWING_URL IMAGES_DIR SCREENSHOT_DIR [HOLD_FILE]
// URL serves the sample collection (ingested from IMAGES_DIR), EMPTY_URL a collection
// without items, GROWING_URL one whose ingest is still running: held after its first commit
// while HOLD_FILE exists (VDX_TEST_HOLD_FILE), released by the flow that watches it grow,
// so that it runs however long the browser takes to get there. Prints one
// "ok - ..." / "not ok - ...: why" line per flow and exits non-zero when one failed.
// Screenshots of every step go to SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import { readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [url, emptyUrl, growingUrl, images, shots, holdFile] = process.argv.slice(2);
if (!url || !emptyUrl || !growingUrl || !images || !shots) {
  console.error('usage: node flows.mjs URL EMPTY_URL GROWING_URL IMAGES_DIR SCREENSHOT_DIR');
  process.exit(2);
}
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
async function flow(name, options, body, expected) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
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

const tileIds = (page) => page.$$eval('#grid .tile', (tiles) => tiles.map((t) => t.dataset.id));
const getJson = async (page, path) => (await page.request.get(url.replace(/\/$/, '') + path)).json();

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
  await page.waitForSelector('#grid .tile');
  check(await count() > first, 'the item count did not grow during the ingest');
  await shot('searching-while-ingesting');
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
  const tileButton = (i, which) => `#grid .tile[data-index="${i}"] .${which}`;
  await page.click(tileButton(0, 'b-pos'));
  await page.waitForSelector('#concept-panel:not([hidden])');
  for (let i = 1; i < 3; i++) await page.click(tileButton(i, 'b-pos'));
  for (let i = 3; i < 9; i++) await page.click(tileButton(i, 'b-neg'));
  await labelsSettled(page, 3, 6);
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
  const box = await (await page.$('#histogram')).boundingBox();
  const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.ok());
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await patched;
  const after = (await getJson(page, '/api/concepts/a%20red%20circle')).threshold;
  const slider = Number(await page.inputValue('#threshold'));
  const step = Number(await page.getAttribute('#threshold', 'step'));
  check(after !== before && Math.abs(after - slider) <= step, `threshold ${before} → ${after}, slider ${slider}`);
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
  const stored = (await getJson(page, '/api/concepts/a%20blue%20square')).threshold;
  const step = Number(await page.getAttribute('#threshold', 'step'));
  check(Math.abs(stored - after) <= step, `the server holds threshold ${stored}, the slider ${after}`);
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
  const rounds = (await getJson(page, '/api/concepts/a%20red%20circle')).rounds;
  const undone = page.waitForResponse((r) => r.url().endsWith('/undo') && r.ok());
  await page.click('#undo');
  await undone;
  check((await getJson(page, '/api/concepts/a%20red%20circle')).rounds === rounds - 1, 'undo did not drop the round');
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
  await page.fill('#q', 'a photo');
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
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
  await page.fill('#where', 'no_such_column = 1');
  await page.press('#where', 'Enter');
  await page.waitForSelector('#status.error');
  check((await page.textContent('#status')).includes('no_such_column'), `the error does not name the column: ${await page.textContent('#status')}`);
  await shot('bad-filter');
}, /status of 400/);

// ---- An empty collection says how to fill it -------------------------------------------
await flow('empty-collection', {}, async (page, shot) => {
  await open(page, emptyUrl);
  const text = await page.textContent('#empty');
  check(text.includes('vdx ingest'), `the empty state does not show the vdx ingest command: ${text}`);
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
  await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 9);
  check(await page.isHidden('#drop'), 'the drop hint stays after the drop');
  const [top] = await tileIds(page);
  const item = await getJson(page, `/api/items/${encodeURIComponent(top)}?neighbours=0`);
  check(item.url.endsWith(name), `the first result ${top} (${item.url}) is not the dropped image ${name}`);
  const score = Number(await page.textContent('#grid .tile .score'));
  check(score > 0.999, `the dropped image's own item scores ${score}, not 1`);
  await shot('results');
});

await browser.close();
process.exit(failures ? 1 : 0);
