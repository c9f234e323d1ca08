// Times the Map view in headless Chromium (run by bench/map_page.sh, which serves a mapped
// collection): for each round, a fresh page; the time from the Map button's click to the
// first frame with the points drawn; then a 3-second drag to and fro across the map (1,200
// pixels wide, so the view leaves the drawn layer's margin), with the redraws the page made
// (each a new frame of the map), their script time, and how often the points themselves
// were drawn again; then 3 seconds of wheel zooming in and out, measured the same way. Each
// gesture runs twice: as the page does it, then with the points drawn again on every frame
// (the layer marked dirty before each redraw: the way the page drew before the layer), for
// a ratio from one run. Chromium runs as the browser tests run it (--disable-gpu: SwiftShader
// rasterises WebGL on the CPU). Prints figures only.
//   VDX_TOKEN=T node map_page.mjs URL ITEMS ROUNDS
import { createRequire } from 'node:module';

// playwright-core as the browser tests install it (tests/browser/node_modules)
const { chromium } = createRequire(new URL('../tests/browser/package.json', import.meta.url))('playwright-core');

const [url, items, rounds] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const f1 = (x) => x.toFixed(1);
console.log(`map_page: ${items} items, viewport 1366x800, headless Chromium (${browser.version()}), --disable-gpu`);
for (let r = 0; r < Number(rounds); r++) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  await context.request.get(`${url}?token=${process.env.VDX_TOKEN}`, { maxRedirects: 0 });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]');
  // count the redraws and their script time
  await page.evaluate(() => {
    const draw = window.mapDraw;
    window.benchDraws = [];
    window.mapDraw = (...a) => {
      if (window.benchEveryFrame && window.vdxMap.state.layer) window.vdxMap.state.layer.dirty = true;
      const t = performance.now(); const v = draw(...a); window.benchDraws.push(performance.now() - t); return v;
    };
  });
  const t0 = Date.now();
  await page.click('#map-toggle');
  await page.waitForFunction(() => window.vdxMap.state.loaded && window.benchDraws.length > 0);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const firstPaint = Date.now() - t0;
  const box = await page.locator('#map-canvas').boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  // a gesture: the page's redraws while `step` runs for 3 s, as the page does it and with
  // the points drawn on every frame
  const gesture = async (name, begin, step, finish) => {
    for (const everyFrame of [false, true]) {
      await page.evaluate((e) => {
        window.benchEveryFrame = e;
        window.benchDraws = [];
        window.benchRenders = window.vdxMap.state.layer.renders;
      }, everyFrame);
      await begin();
      const start = Date.now();
      let events = 0;
      while (Date.now() - start < 3000) {
        await step((Date.now() - start) / 3000);
        events++;
      }
      await finish();
      const seconds = (Date.now() - start) / 1000;
      const { draws, renders } = await page.evaluate(() => ({
        draws: window.benchDraws, renders: window.vdxMap.state.layer.renders - window.benchRenders }));
      console.log(`round ${r + 1}, ${name}${everyFrame ? ', points drawn every frame' : ''}: ${f1(draws.length / seconds)} frames/s ` +
        `(${draws.length} redraws in ${f1(seconds)} s for ${events} input events; script median ${f1(pct(draws, 0.5))} ms, ` +
        `p90 ${f1(pct(draws, 0.9))} ms; points drawn ${renders} times)`);
      await page.waitForTimeout(400); // the layer is drawn again around the view at rest
    }
  };
  console.log(`round ${r + 1}: first map paint ${firstPaint} ms after the click`);
  // panning: a drag to the right, across to the left and back (1,200 px wide)
  await gesture('panning', async () => {
    await page.mouse.move(cx, cy);
    await page.mouse.down();
  }, async (t) => {
    const x = t < 0.25 ? 4 * t : t < 0.75 ? 2 - 4 * t : 4 * t - 4;
    await page.mouse.move(cx + 600 * x, cy + 100 * Math.sin(2 * Math.PI * t));
  }, async () => {
    await page.mouse.up();
  });
  // zooming: wheel steps in, out past the start, and in again (about the canvas's centre)
  await gesture('zooming', async () => {
    await page.mouse.move(cx, cy);
  }, async (t) => {
    await page.mouse.wheel(0, t < 0.25 || t >= 0.75 ? -60 : 60);
  }, async () => {});
  await context.close();
}
await browser.close();
