// The Map view: every item of the collection at its `vdx map build` coordinates, drawn
// with WebGL (one gl.POINTS call; no framework) into a layer twice the canvas's size that
// panning only slides (one textured quad a frame: redrawing 100,000 points on every pointer
// move held a software rasteriser to 14 frames/s), over a 2-D canvas for what WebGL draws
// badly: thumbnails at close zoom (cells of the server's atlases: 256 thumbnails a
// request), cluster names, the hover ring and the lasso. Pan by dragging, zoom with the
// wheel (or the keys below); hover shows the thumbnail and the item's description; click
// opens the detail panel; Shift+drag draws a lasso whose items are labelled + or − in one
// request (one undo step, through app.js's labelItems), or start a new concept. Colour by cluster, labels, the
// current concept's score (diverging around its threshold) or a metadata column; the
// current view's items (search results, candidates) are drawn larger with a ring.
// Keys on the focused map: arrows pan, + and - zoom, 0 resets, 1 / 2 label the selection.
// It uses app.js's globals (state, api, labelItems, openDetail, thumbUrl, say) and adds
// its own button and section to the page, so index.html only loads it.
'use strict';

const mapState = {
  shown: false, loaded: false, summary: null, n: 0, xs: null, ys: null, cluster: null, ids: [],
  index: new Map(), view: { cx: 0.5, cy: 0.5, scale: 1 }, colourBy: 'cluster', colours: null,
  scores: null, scoreKey: '', selected: [], hover: -1, atlases: new Map(), grid: null,
  gl: null, buffers: null, layer: null, restMs: 250, lasso: null, meta: new Map(), columns: new Map(),
};
const MAP_PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];

function mapEl(tag, attrs, parent) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  if (parent) parent.appendChild(e);
  return e;
}

function mapSetup() {
  const head = document.querySelector('.results-head');
  const toggle = mapEl('button', { id: 'map-toggle', type: 'button', 'aria-pressed': 'false',
    title: 'The whole collection on one map (vdx map build)', text: 'Map' }, head);
  const section = mapEl('section', { id: 'map-view', class: 'map-view', 'aria-label': 'Map', hidden: '' });
  $('grid').before(section);
  const bar = mapEl('div', { class: 'map-bar', role: 'toolbar', 'aria-label': 'Map tools' }, section);
  const label = mapEl('label', { for: 'map-colour', text: 'Colour by ' }, bar);
  label.className = 'inline';
  const select = mapEl('select', { id: 'map-colour' }, bar);
  for (const [v, t] of [['cluster', 'cluster'], ['labels', 'labels'], ['score', 'concept score'], ['column', 'metadata column']]) {
    mapEl('option', { value: v, text: t }, select);
  }
  const column = mapEl('select', { id: 'map-column', 'aria-label': 'Metadata column', hidden: '' }, bar);
  mapEl('span', { id: 'map-selection', class: 'map-selection', 'aria-live': 'polite' }, bar);
  mapEl('button', { id: 'map-sel-pos', type: 'button', disabled: '', title: 'Label the selection positive (1)', text: '+ selection' }, bar);
  mapEl('button', { id: 'map-sel-neg', type: 'button', disabled: '', title: 'Label the selection negative (2)', text: '− selection' }, bar);
  mapEl('button', { id: 'map-sel-concept', type: 'button', disabled: '', title: 'A new concept whose examples are the selection', text: 'New concept' }, bar);
  mapEl('button', { id: 'map-sel-clear', type: 'button', disabled: '', text: 'Deselect' }, bar);
  mapEl('span', { id: 'map-note', class: 'view-note' }, bar);
  const stage = mapEl('div', { class: 'map-stage' }, section);
  const gl = mapEl('canvas', { id: 'map-canvas', tabindex: '0', role: 'application',
    'aria-label': 'Map of the collection: arrows pan, + and - zoom, Shift+drag selects, 1 / 2 label the selection' }, stage);
  mapEl('canvas', { id: 'map-overlay', 'aria-hidden': 'true' }, stage);
  const tip = mapEl('div', { id: 'map-tip', class: 'map-tip', role: 'tooltip', hidden: '' }, stage);
  mapEl('img', { id: 'map-tip-img', alt: '' }, tip);
  mapEl('div', { id: 'map-tip-text' }, tip);
  mapEl('p', { id: 'map-empty', class: 'empty', hidden: '' }, section);
  // the layout's own styles (the page's CSP allows no inline <style>; the CSSOM is fine)
  Object.assign(bar.style, { display: 'flex', gap: '8px', alignItems: 'center', flexWrap: 'wrap', margin: '4px 0' });
  Object.assign(stage.style, { position: 'relative', height: '60vh', border: '1px solid #ccc' });
  for (const c of [gl, $('map-overlay')]) Object.assign(c.style, { position: 'absolute', inset: '0', width: '100%', height: '100%' });
  $('map-overlay').style.pointerEvents = 'none';
  gl.style.touchAction = 'none';
  Object.assign(tip.style, { position: 'absolute', background: 'Canvas', color: 'CanvasText', border: '1px solid #888',
    padding: '4px', maxWidth: '260px', pointerEvents: 'none', fontSize: '12px', zIndex: '2' });
  Object.assign($('map-tip-img').style, { display: 'block', maxWidth: '128px', maxHeight: '128px' });

  toggle.addEventListener('click', () => mapShow(!mapState.shown));
  select.addEventListener('change', () => {
    mapState.colourBy = select.value;
    column.hidden = select.value !== 'column';
    if (!column.hidden && !column.options.length) {
      for (const c of (state.info && state.info.columns) || []) mapEl('option', { value: c, text: c }, column);
    }
    mapRecolour();
  });
  column.addEventListener('change', () => mapRecolour());
  $('map-sel-pos').addEventListener('click', () => mapLabelSelection(1));
  $('map-sel-neg').addEventListener('click', () => mapLabelSelection(0));
  $('map-sel-clear').addEventListener('click', () => mapSelect([]));
  $('map-sel-concept').addEventListener('click', () => guarded(mapConceptFromSelection));
  mapPointer(gl);
  gl.addEventListener('keydown', mapKey);
  window.addEventListener('resize', () => { if (mapState.shown) { mapFit(); mapDraw(); } });
  // what lies above the stage may grow (the bar wraps on a long legend, a notice or the
  // concept's heading appears: the page's body changes size) and the action bar below may
  // grow: the stage keeps to the room between them, never under the action bar (its new
  // height changes the body's once more, and the fit after that changes nothing)
  const refit = new ResizeObserver(() => { if (mapState.shown) { mapFit(); mapDraw(); } });
  refit.observe(document.body);
  refit.observe($('actionbar'));
  // the page's own state changes (a search, a round, labels): redraw what depends on it
  setInterval(mapWatch, 500);

}

async function mapShow(on) {
  mapState.shown = on;
  $('map-toggle').setAttribute('aria-pressed', String(on));
  $('map-view').hidden = !on;
  // (style, not the hidden attribute: the page's CSS gives .grid a display of its own)
  $('grid').style.display = on ? 'none' : '';
  if (!on) return;
  if (!mapState.loaded) await mapLoad();
  mapFit();
  mapDraw();
  $('map-canvas').focus();
}

// The stage fills the window down to the action bar (fixed at the bottom).
function mapFit() {
  const stage = document.querySelector('.map-stage');
  const bar = $('actionbar').getBoundingClientRect();
  const top = stage.getBoundingClientRect().top + window.scrollY;
  const bottom = (bar.height ? window.innerHeight - bar.height : window.innerHeight) - 12;
  stage.style.height = `${Math.max(240, bottom - top)}px`;
}

async function mapLoad() {
  const empty = $('map-empty');
  let summary;
  try {
    summary = await api('GET', '/api/map');
  } catch (e) {
    empty.textContent = e.status === 404
      ? 'No map yet: run “vdx map build” (make demo builds it after the ingest).' : e.message;
    empty.hidden = false;
    return;
  }
  const [points, ids] = await Promise.all([
    serverFetch('/api/map/points').then((r) => r.arrayBuffer()),
    serverFetch('/api/map/ids').then((r) => r.text())]);
  const dv = new DataView(points);
  const n = dv.getUint32(0, true);
  const box = [1, 2, 3, 4].map((i) => dv.getFloat32(4 * i, true));
  mapState.summary = summary;
  mapState.box = box;
  mapState.n = n;
  mapState.xs = new Uint16Array(points.slice(20, 20 + 2 * n));
  mapState.ys = new Uint16Array(points.slice(20 + 2 * n, 20 + 4 * n));
  mapState.cluster = new Uint16Array(points.slice(20 + 4 * n, 20 + 6 * n));
  mapState.ids = ids.split('\n').slice(0, n);
  mapState.index = new Map(mapState.ids.map((id, i) => [id, i]));
  mapState.grid = mapBuildGrid();
  mapState.loaded = true;
  empty.hidden = true;
  $('map-note').textContent = `${n} items, ${summary.clusters.length} clusters`;
  mapInitGl();
  mapRecolour();
}

// ---- coordinates: data (0..1 from the quantised points) → screen pixels ----------------
function mapDataX(i) { return mapState.xs[i] / 65535; }
function mapDataY(i) { return 1 - mapState.ys[i] / 65535; }
function mapToScreen(x, y, w, h) {
  const v = mapState.view, s = Math.min(w, h) * 0.9 * v.scale;
  return [w / 2 + (x - v.cx) * s, h / 2 + (y - v.cy) * s];
}
function mapFromScreen(px, py, w, h) {
  const v = mapState.view, s = Math.min(w, h) * 0.9 * v.scale;
  return [v.cx + (px - w / 2) / s, v.cy + (py - h / 2) / s];
}
// Where item `id` is drawn, in CSS pixels of the canvas (for tests and tooltips).
function mapScreenOf(id) {
  const i = mapState.index.get(id);
  if (i === undefined) return null;
  const c = $('map-canvas');
  return mapToScreen(mapDataX(i), mapDataY(i), c.clientWidth, c.clientHeight);
}
window.vdxMap = { screenOf: mapScreenOf, state: mapState };

// A 128 x 128 grid of point lists over the data square, for hover and lasso.
function mapBuildGrid() {
  const G = 128, cells = Array.from({ length: G * G }, () => []);
  for (let i = 0; i < mapState.n; i++) {
    const gx = Math.min(G - 1, Math.floor(mapDataX(i) * G)), gy = Math.min(G - 1, Math.floor(mapDataY(i) * G));
    cells[gy * G + gx].push(i);
  }
  return { G, cells };
}
function mapNearest(px, py, w, h, radius) {
  const [x, y] = mapFromScreen(px, py, w, h);
  const { G, cells } = mapState.grid;
  const s = Math.min(w, h) * 0.9 * mapState.view.scale, r = radius / s;
  let best = -1, bd = radius * radius;
  for (let gy = Math.max(0, Math.floor((y - r) * G)); gy <= Math.min(G - 1, Math.floor((y + r) * G)); gy++) {
    for (let gx = Math.max(0, Math.floor((x - r) * G)); gx <= Math.min(G - 1, Math.floor((x + r) * G)); gx++) {
      for (const i of cells[gy * G + gx]) {
        const [sx, sy] = mapToScreen(mapDataX(i), mapDataY(i), w, h);
        const d = (sx - px) ** 2 + (sy - py) ** 2;
        if (d <= bd) { bd = d; best = i; }
      }
    }
  }
  return best;
}

// ---- WebGL -----------------------------------------------------------------------------
const MAP_VS = `attribute vec2 a_pos; attribute vec3 a_col; attribute float a_big;
uniform vec2 u_centre; uniform vec2 u_scale; uniform float u_size; varying vec3 v_col; varying float v_big;
void main() { vec2 p = (a_pos - u_centre) * u_scale; gl_Position = vec4(p.x, -p.y, 0.0, 1.0);
  gl_PointSize = u_size * (1.0 + a_big * 1.5); v_col = a_col; v_big = a_big; }`;
const MAP_FS = `precision mediump float; varying vec3 v_col; varying float v_big;
void main() { vec2 d = gl_PointCoord - vec2(0.5); float r = length(d); if (r > 0.5) discard;
  vec3 c = v_big > 0.5 && r > 0.36 ? vec3(0.0) : v_col; gl_FragColor = vec4(c, 1.0); }`;

// The points are drawn into the layer: a texture (and its framebuffer) of the canvas's size
// plus a margin of half of it on each side, centred where the view was when it was drawn.
// A frame shows the layer with the pan since then as an offset in whole device pixels, and
// while a zoom gesture lasts, scaled about the canvas's centre (up to 2× either way); the
// points are drawn again when the view leaves the layer, when the canvas's size or the
// colours change (`dirty`), and once the pointer rests (mapRecentre: crisp points at the
// new zoom, the whole margin for the next pan).
const MAP_QUAD_VS = `attribute vec2 a_corner; void main() { gl_Position = vec4(a_corner, 0.0, 1.0); }`;
const MAP_QUAD_FS = `#ifdef GL_FRAGMENT_PRECISION_HIGH
precision highp float;
#else
precision mediump float;
#endif
uniform sampler2D u_layer; uniform vec2 u_half; uniform vec2 u_origin; uniform float u_ratio; uniform vec2 u_size;
void main() { gl_FragColor = texture2D(u_layer, ((gl_FragCoord.xy - u_half) * u_ratio + u_origin) / u_size); }`;

// A linked program with its attribute and uniform locations looked up once (`names`), or
// null when the browser's WebGL cannot build it.
function mapProgram(gl, vs, fs, names) {
  const shader = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); return s; };
  const prog = gl.createProgram();
  gl.attachShader(prog, shader(gl.VERTEX_SHADER, vs));
  gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) return null;
  const at = {};
  for (const n of names) at[n] = n.startsWith('a_') ? gl.getAttribLocation(prog, n) : gl.getUniformLocation(prog, n);
  return { prog, at };
}

function mapInitGl() {
  const canvas = $('map-canvas');
  const gl = canvas.getContext('webgl', { antialias: false, preserveDrawingBuffer: true });
  if (!gl) { $('map-empty').textContent = 'This browser has no WebGL: the map cannot be drawn.'; $('map-empty').hidden = false; return; }
  const points = mapProgram(gl, MAP_VS, MAP_FS, ['a_pos', 'a_col', 'a_big', 'u_centre', 'u_scale', 'u_size']);
  const quad = mapProgram(gl, MAP_QUAD_VS, MAP_QUAD_FS, ['a_corner', 'u_layer', 'u_half', 'u_origin', 'u_ratio', 'u_size']);
  if (!points || !quad) { $('map-empty').textContent = 'This browser\'s WebGL cannot build the map\'s shaders.'; $('map-empty').hidden = false; return; }
  const pos = new Float32Array(2 * mapState.n);
  for (let i = 0; i < mapState.n; i++) { pos[2 * i] = mapDataX(i); pos[2 * i + 1] = mapDataY(i); }
  const buf = (data) => {
    const b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
    return b;
  };
  mapState.gl = gl;
  mapState.points = points;
  mapState.quad = quad;
  mapState.attribSlots = gl.getParameter(gl.MAX_VERTEX_ATTRIBS);
  mapState.buffers = {
    pos: buf(pos), col: buf(new Uint8Array(3 * mapState.n)), big: buf(new Float32Array(mapState.n)),
    corners: buf(new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1])),
  };
  mapState.layer = { tex: gl.createTexture(), fbo: gl.createFramebuffer(), w: 0, h: 0, dirty: true, renders: 0 };
}

// Makes `program` current with its attributes bound to their buffers (the two programs
// share attribute slots).
function mapAttributes(gl, program, list) {
  gl.useProgram(program.prog);
  for (let k = 0; k < mapState.attribSlots; k++) gl.disableVertexAttribArray(k);
  for (const [name, buffer, size, type, normalised] of list) {
    const loc = program.at[name];
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.vertexAttribPointer(loc, size, type, normalised, 0, 0);
    gl.enableVertexAttribArray(loc);
  }
}

function mapUpload(name, data) {
  const gl = mapState.gl;
  if (!gl) return;
  gl.bindBuffer(gl.ARRAY_BUFFER, mapState.buffers[name]);
  gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
  mapState.layer.dirty = true;
}

// ---- colours -----------------------------------------------------------------------------
async function mapRecolour() {
  if (!mapState.loaded) return;
  const n = mapState.n, col = new Uint8Array(3 * n);
  const by = mapState.colourBy;
  let legend = '';
  if (by === 'score') await mapLoadScores();
  const values = by === 'column' ? await mapLoadColumn($('map-column').value) : null;
  for (let i = 0; i < n; i++) {
    let c = [170, 170, 170];
    if (by === 'cluster') {
      if (mapState.cluster[i] !== 65535) c = MAP_PALETTE[mapState.cluster[i] % MAP_PALETTE.length];
    } else if (by === 'labels') {
      const l = state.labels.get(mapState.ids[i]);
      c = l === 1 ? [30, 150, 60] : l === 0 ? [200, 40, 40] : [200, 200, 200];
    } else if (by === 'score' && mapState.scores) {
      const s = mapState.scores.get(mapState.ids[i]);
      if (s !== undefined) {
        // diverging around the threshold: blue below, red above, white at it
        const t = Math.max(-1, Math.min(1, (s - mapState.threshold) * 4));
        c = t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
          : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
      }
    } else if (by === 'column' && values) {
      c = values.colour(i);
    }
    col.set(c, 3 * i);
  }
  if (by === 'score') legend = state.concept ? `score of “${state.concept.name}”: blue below the threshold, red above` : 'no concept selected';
  if (by === 'labels') legend = 'green +, red −, grey unlabelled';
  if (by === 'column') legend = values ? values.legend : 'no such column';
  if (by === 'cluster') legend = `${mapState.n} items, ${mapState.summary.clusters.length} clusters`;
  $('map-note').textContent = legend;
  mapState.colours = col;
  mapUpload('col', col);
  mapHighlight();
}

// A metadata column's values in map order: numbers on a blue→yellow scale between their
// minimum and maximum, anything else as categories (the 9 commonest coloured, the rest grey).
async function mapLoadColumn(name) {
  if (!name) return null;
  const cached = mapState.columns.get(name);
  if (cached) return cached;
  let raw;
  try { raw = await api('GET', `/api/map/column/${enc(name)}`); } catch (e) { say(e.message, true); return null; }
  const nums = raw.map((v) => (v !== null && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null));
  const numeric = nums.filter((v) => v !== null).length >= 0.9 * raw.filter((v) => v !== null).length && nums.some((v) => v !== null);
  let out;
  if (numeric) {
    const present = nums.filter((v) => v !== null);
    let lo = Infinity, hi = -Infinity;
    for (const v of present) { if (v < lo) lo = v; if (v > hi) hi = v; }
    out = {
      colour: (i) => {
        if (nums[i] === null) return [210, 210, 210];
        const t = hi > lo ? (nums[i] - lo) / (hi - lo) : 0.5;
        return [Math.round(40 + 215 * t), Math.round(40 + 190 * t), Math.round(200 - 170 * t)];
      },
      legend: `${name}: ${fmt(lo)} (blue) to ${fmt(hi)} (yellow)`,
    };
  } else {
    const counts = new Map();
    for (const v of raw) if (v !== null) counts.set(v, (counts.get(v) || 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 9).map((e) => e[0]);
    const slot = new Map(top.map((v, k) => [v, k]));
    out = {
      colour: (i) => (slot.has(raw[i]) ? MAP_PALETTE[slot.get(raw[i])] : [190, 190, 190]),
      legend: `${name}: ${top.map((v) => (v.length > 16 ? `${v.slice(0, 15)}…` : v)).join(', ')}${counts.size > 9 ? ', others grey' : ''}`,
    };
  }
  mapState.columns.set(name, out);
  return out;
}

async function mapLoadScores() {
  const c = state.concept;
  if (!c) { mapState.scores = null; return; }
  const key = `${c.name}/${c.rounds}/${c.threshold}`;
  if (mapState.scoreKey === key && mapState.scores) return;
  const scores = new Map();
  let threshold = 0;
  for (let offset = 0; ; offset += 10000) {
    const r = await api('GET', `/api/concepts/${enc(c.name)}/scores?all=1&top=10000&offset=${offset}`);
    threshold = r.threshold;
    for (const it of r.items) scores.set(it.id, it.score);
    if (r.items.length < 10000) break;
  }
  mapState.scores = scores;
  mapState.threshold = threshold;
  mapState.scoreKey = key;
}

// The current view's items (search results, candidates) and the selection, drawn large.
function mapHighlight() {
  if (!mapState.loaded) return;
  mapLastWatch = mapWatchKey();
  const big = new Float32Array(mapState.n);
  for (const it of state.items || []) {
    const i = mapState.index.get(it.id);
    if (i !== undefined) big[i] = 1;
  }
  for (const i of mapState.selected) big[i] = 1;
  mapUpload('big', big);
  mapDraw();
}

// What the colours and highlights were drawn from (mapHighlight records it).
let mapLastWatch = '';
function mapWatchKey() {
  const c = state.concept;
  return `${state.items.map((i) => i.id).join(',')}|${c ? `${c.name}/${c.rounds}/${c.threshold}/${c.positive}/${c.negative}` : ''}|${state.labels.size}`;
}
function mapWatch() {
  if (!mapState.shown || !mapState.loaded) return;
  const key = mapWatchKey();
  if (key === mapLastWatch) return;
  mapLastWatch = key;
  if (mapState.colourBy === 'cluster') mapHighlight(); else mapRecolour();
}

// ---- drawing -------------------------------------------------------------------------------
function mapDraw() {
  if (!mapState.loaded || !mapState.shown) return;
  const canvas = $('map-canvas'), overlay = $('map-overlay');
  const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
  for (const c of [canvas, overlay]) {
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  }
  if (mapState.gl) mapDrawPoints(mapState.gl, canvas.width, canvas.height, Math.min(w, h) * 0.9 * mapState.view.scale * dpr, dpr);
  mapDrawOverlay(w, h, dpr);
}

// W x H: the canvas in device pixels; k: device pixels per data unit at the current zoom.
function mapDrawPoints(gl, W, H, k, dpr) {
  const L = mapState.layer, v = mapState.view, b = mapState.buffers;
  // layer pixels per canvas pixel, and the view's centre in the layer (whole pixels at 1:1)
  let ratio = L.k / k, dx = (v.cx - L.cx) * L.k, dy = (v.cy - L.cy) * L.k;
  if (ratio === 1) { dx = Math.round(dx); dy = Math.round(dy); }
  const inside = Math.abs(dx) + (W / 2) * ratio <= L.tw / 2 && Math.abs(dy) + (H / 2) * ratio <= L.th / 2;
  if (L.dirty || L.w !== W || L.h !== H || !(ratio >= 0.5 && ratio <= 2) || !inside) {
    if (L.w !== W || L.h !== H) {
      const most = gl.getParameter(gl.MAX_TEXTURE_SIZE);
      L.mx = Math.max(0, Math.min(Math.floor(W / 2), Math.floor((most - W) / 2)));
      L.my = Math.max(0, Math.min(Math.floor(H / 2), Math.floor((most - H) / 2)));
      L.tw = W + 2 * L.mx;
      L.th = H + 2 * L.my;
      gl.bindTexture(gl.TEXTURE_2D, L.tex);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, L.tw, L.th, 0, gl.RGBA, gl.UNSIGNED_BYTE, null);
      for (const [p, q] of [[gl.TEXTURE_MIN_FILTER, gl.NEAREST], [gl.TEXTURE_MAG_FILTER, gl.NEAREST],
        [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE]]) gl.texParameteri(gl.TEXTURE_2D, p, q);
      gl.bindFramebuffer(gl.FRAMEBUFFER, L.fbo);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, L.tex, 0);
      L.w = W;
      L.h = H;
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, L.fbo);
    gl.viewport(0, 0, L.tw, L.th);
    gl.clearColor(0.97, 0.97, 0.97, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const P = mapState.points;
    mapAttributes(gl, P, [['a_pos', b.pos, 2, gl.FLOAT, false], ['a_col', b.col, 3, gl.UNSIGNED_BYTE, true],
      ['a_big', b.big, 1, gl.FLOAT, false]]);
    gl.uniform2f(P.at.u_centre, v.cx, v.cy);
    gl.uniform2f(P.at.u_scale, 2 * k / L.tw, 2 * k / L.th);
    gl.uniform1f(P.at.u_size, dpr * Math.min(14, 4 + Math.log2(v.scale) * 2));
    gl.drawArrays(gl.POINTS, 0, mapState.n);
    Object.assign(L, { cx: v.cx, cy: v.cy, scale: v.scale, k, dirty: false, renders: L.renders + 1 });
    dx = dy = 0;
    ratio = 1;
  }
  // the layer, slid by the pan since it was drawn (framebuffer rows count upwards) and
  // scaled by the zoom since then (pixel for pixel when there is none)
  gl.bindFramebuffer(gl.FRAMEBUFFER, null);
  gl.viewport(0, 0, W, H);
  const Q = mapState.quad;
  mapAttributes(gl, Q, [['a_corner', b.corners, 2, gl.FLOAT, false]]);
  gl.activeTexture(gl.TEXTURE0);
  gl.bindTexture(gl.TEXTURE_2D, L.tex);
  const filter = ratio === 1 ? gl.NEAREST : gl.LINEAR;
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, filter);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, filter);
  gl.uniform1i(Q.at.u_layer, 0);
  gl.uniform2f(Q.at.u_half, W / 2, H / 2);
  gl.uniform2f(Q.at.u_origin, L.tw / 2 + dx, L.th / 2 - dy);
  gl.uniform1f(Q.at.u_ratio, ratio);
  gl.uniform2f(Q.at.u_size, L.tw, L.th);
  gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
}

// Once the pointer rests after a pan or a zoom, the layer is drawn again around the view, so
// the points are crisp at the new zoom and the next pan starts with its whole margin.
let mapRestTimer = 0;
function mapRecentre() {
  clearTimeout(mapRestTimer);
  mapRestTimer = setTimeout(() => {
    const L = mapState.layer, v = mapState.view;
    if (L && (L.cx !== v.cx || L.cy !== v.cy || L.scale !== v.scale)) { L.dirty = true; mapDraw(); }
  }, mapState.restMs);
}

// Pointer moves come faster than frames: draw at most once a frame.
let mapFramePending = false;
function mapDrawSoon() {
  if (mapFramePending) return;
  mapFramePending = true;
  requestAnimationFrame(() => { mapFramePending = false; mapDraw(); });
}

function mapVisible(w, h, limit) {
  const out = [];
  for (let i = 0; i < mapState.n && out.length <= limit; i++) {
    const [x, y] = mapToScreen(mapDataX(i), mapDataY(i), w, h);
    if (x > -40 && y > -40 && x < w + 40 && y < h + 40) out.push(i);
  }
  return out;
}

function mapAtlas(page) {
  let a = mapState.atlases.get(page);
  if (!a) {
    a = new Image();
    a.onload = () => mapDraw();
    // a failed load (a server restarting, a dropped connection) is asked for again at the
    // next draw a second later, not held as a broken image for good
    a.onerror = () => setTimeout(() => { if (mapState.atlases.get(page) === a) mapState.atlases.delete(page); mapDraw(); }, 1000);
    a.src = withCollection(`/api/map/atlas/${page}`);
    mapState.atlases.set(page, a);
  }
  return a.complete && a.naturalWidth ? a : null;
}

function mapDrawOverlay(w, h, dpr) {
  const ctx = $('map-overlay').getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  // thumbnails when few enough points are in view
  const visible = mapState.view.scale >= 2 ? mapVisible(w, h, 400) : [];
  if (visible.length && visible.length <= 400) {
    const a = mapState.summary.atlas, size = Math.min(64, 12 * Math.sqrt(mapState.view.scale));
    for (const i of visible) {
      const img = mapAtlas(Math.floor(i / a.items));
      if (!img) continue;
      const cell = i % a.items, sx = (cell % a.side) * a.cell, sy = Math.floor(cell / a.side) * a.cell;
      const [x, y] = mapToScreen(mapDataX(i), mapDataY(i), w, h);
      ctx.drawImage(img, sx, sy, a.cell, a.cell, x - size / 2, y - size / 2, size, size);
    }
  }
  // cluster names at their centres
  ctx.font = '13px system-ui, sans-serif';
  ctx.textAlign = 'center';
  const b = mapState.box;
  for (const c of mapState.summary.clusters) {
    if (!c.name || !c.size) continue;
    const x = (c.x - b[0]) / (b[2] - b[0] || 1), y = 1 - (c.y - b[1]) / (b[3] - b[1] || 1);
    const [sx, sy] = mapToScreen(x, y, w, h);
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.strokeText(c.name, sx, sy);
    ctx.fillStyle = '#222';
    ctx.fillText(c.name, sx, sy);
  }
  if (mapState.hover >= 0) {
    const [x, y] = mapToScreen(mapDataX(mapState.hover), mapDataY(mapState.hover), w, h);
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 9, 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (mapState.lasso && mapState.lasso.length > 1) {
    ctx.strokeStyle = '#0a58ca';
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    mapState.lasso.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

// ---- pointer: pan, zoom, hover, click, lasso --------------------------------------------
function mapPointer(canvas) {
  let drag = null;
  const local = (ev) => { const r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  canvas.addEventListener('pointerdown', (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    const [x, y] = local(ev);
    drag = { x, y, moved: false, lasso: ev.shiftKey, cx: mapState.view.cx, cy: mapState.view.cy };
    if (drag.lasso) mapState.lasso = [[x, y]];
  });
  canvas.addEventListener('pointermove', (ev) => {
    const [x, y] = local(ev), w = canvas.clientWidth, h = canvas.clientHeight;
    if (drag) {
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) drag.moved = true;
      if (drag.lasso) { mapState.lasso.push([x, y]); mapDrawSoon(); return; }
      const s = Math.min(w, h) * 0.9 * mapState.view.scale;
      mapState.view.cx = drag.cx - (x - drag.x) / s;
      mapState.view.cy = drag.cy - (y - drag.y) / s;
      mapDrawSoon();
      return;
    }
    if (!mapState.loaded) return;
    const i = mapNearest(x, y, w, h, 8);
    if (i !== mapState.hover) { mapState.hover = i; mapTip(i, x, y); mapDrawSoon(); }
  });
  canvas.addEventListener('pointerup', (ev) => {
    const d = drag;
    drag = null;
    if (!d || !mapState.loaded) return;
    if (d.moved && !d.lasso) mapRecentre();
    const [x, y] = local(ev);
    if (d.lasso) {
      const poly = mapState.lasso;
      mapState.lasso = null;
      if (poly.length > 2) mapSelectPolygon(poly); else mapDraw();
      return;
    }
    if (!d.moved) {
      const i = mapNearest(x, y, canvas.clientWidth, canvas.clientHeight, 8);
      if (i >= 0) openDetail(mapState.ids[i]);
    }
  });
  canvas.addEventListener('pointerleave', () => { mapState.hover = -1; $('map-tip').hidden = true; mapDraw(); });
  canvas.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const [x, y] = local(ev);
    mapZoom(Math.exp(-ev.deltaY * 0.0015), x, y);
  }, { passive: false });
}

function mapZoom(factor, px, py) {
  const c = $('map-canvas'), w = c.clientWidth, h = c.clientHeight;
  if (px === undefined) { px = w / 2; py = h / 2; }
  const [x, y] = mapFromScreen(px, py, w, h);
  mapState.view.scale = Math.max(0.5, Math.min(4000, mapState.view.scale * factor));
  const [x2, y2] = mapFromScreen(px, py, w, h);
  mapState.view.cx += x - x2;
  mapState.view.cy += y - y2;
  mapDrawSoon();
  mapRecentre();
}

async function mapTip(i, x, y) {
  const tip = $('map-tip');
  if (i < 0) { tip.hidden = true; return; }
  const id = mapState.ids[i];
  $('map-tip-img').src = thumbUrl(id);
  const cl = mapState.cluster[i], name = cl !== 65535 ? mapState.summary.clusters[cl].name : '';
  $('map-tip-text').textContent = `${id}${name ? ` · ${name}` : ''}`;
  tip.style.left = `${x + 14}px`;
  tip.style.top = `${y + 14}px`;
  tip.hidden = false;
  tip.dataset.id = id;
  let m = mapState.meta.get(id);
  if (!m) {
    try { m = await api('GET', `/api/items/${enc(id)}`); } catch { return; }
    mapState.meta.set(id, m);
  }
  if (tip.dataset.id !== id) return;
  const md = m.metadata || {};
  const text = md.photo_description || md.ai_description || '';
  $('map-tip-text').textContent = `${id}${name ? ` · ${name}` : ''}${text ? ` — ${text}` : ''}`;
}

function mapSelectPolygon(poly) {
  const c = $('map-canvas'), w = c.clientWidth, h = c.clientHeight, inside = [];
  for (let i = 0; i < mapState.n; i++) {
    const [x, y] = mapToScreen(mapDataX(i), mapDataY(i), w, h);
    let on = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [xa, ya] = poly[a], [xb, yb] = poly[b];
      if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) on = !on;
    }
    if (on) inside.push(i);
  }
  mapSelect(inside);
}

function mapSelect(indices) {
  mapState.selected = indices;
  const n = indices.length;
  $('map-selection').textContent = n ? `${n} selected` : '';
  for (const id of ['map-sel-pos', 'map-sel-neg', 'map-sel-concept', 'map-sel-clear']) $(id).disabled = !n;
  mapHighlight();
}

async function mapLabelSelection(label) {
  const ids = mapState.selected.map((i) => mapState.ids[i]);
  if (!ids.length) return;
  await labelItems(ids, label, 'The map selection');
  mapSelect([]);
  if (mapState.colourBy !== 'cluster') mapRecolour();
}

// A concept that starts from the selection: its examples (the mean of their vectors).
async function mapConceptFromSelection() {
  const ids = mapState.selected.map((i) => mapState.ids[i]);
  if (!ids.length) return;
  const concept = await api('POST', '/api/concepts', { name: uniqueName('map selection'), examples: ids });
  await loadConcepts();
  await selectConcept(concept.name, false);
  mapSelect([]);
  say(`Concept “${concept.name}” created from ${ids.length} items`);
}

function mapKey(ev) {
  const step = 0.1 / mapState.view.scale;
  const keys = {
    ArrowLeft: () => { mapState.view.cx -= step; }, ArrowRight: () => { mapState.view.cx += step; },
    ArrowUp: () => { mapState.view.cy -= step; }, ArrowDown: () => { mapState.view.cy += step; },
    '+': () => mapZoom(1.25), '=': () => mapZoom(1.25), '-': () => mapZoom(0.8),
    0: () => { mapState.view = { cx: 0.5, cy: 0.5, scale: 1 }; },
    1: () => mapLabelSelection(1), 2: () => mapLabelSelection(0),
    Escape: () => mapSelect([]),
  };
  const f = keys[ev.key];
  if (!f || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  ev.preventDefault();
  ev.stopPropagation();
  f();
  mapDraw();
  mapRecentre();
}

mapSetup();
