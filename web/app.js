// vdx explorer: the page's behaviour, plain JavaScript over the JSON API (docs/api.md).
// One state object, small render functions, every server call through api(). The view
// (collection, query, image query, filter, concept, view, page, mode, page and tile size) lives in the URL hash: a
// reload restores it, Back returns to the previous view. Labels, undo and redo, rounds
// and their metrics live on the server, so every client sees the same.
'use strict';

const $ = (id) => document.getElementById(id);
// Example prompts shown instead when a multilingual text model (M-CLIP) is loaded.
const MULTILINGUAL_EXAMPLES = ['海滩上的狗', '日落时的山', '一辆红色的汽车', '夜晚的城市街道',
  'a bowl of fruit', 'perros en la playa', 'Blumen in Nahaufnahme', 'قطة على الأريكة'];

const state = {
  info: null,
  concepts: [],
  concept: null,          // the active concept (GET /api/concepts/NAME)
  labels: new Map(),      // id → 1 | 0 in the active concept
  evaluation: null,       // GET .../evaluate
  history: null,          // GET .../history (label actions)
  query: null,            // {text} | {image: Blob, name, url} | {like: id}
  view: 'search',         // 'search' | 'candidates' | 'positives' | 'sample'
  items: [],
  hidden: [],             // near-duplicates hidden from the page: {id, duplicate_of}
  page: 0,
  more: false,
  k: 9,
  focus: 0,
  anchor: null,           // index of the last tile labelled by mouse (shift-click ranges)
  selected: new Set(),    // ids ticked for a bulk label
  busy: false,
  detail: null,           // index of state.items shown in the detail view, or an id
  applyingHash: false,
  collection: null,       // the collection shown (?collection=); null: the server's own
  fit: false,             // "Fit" page size: k is as many tiles as fill the window
};

// ---- Server calls ------------------------------------------------------------------
// Every request of the page goes through serverFetch (one place for what each needs):
// each names the collection shown when it is not the server's own.
function withCollection(path) {
  if (!state.collection) return path;
  return `${path}${path.includes('?') ? '&' : '?'}collection=${encodeURIComponent(state.collection)}`;
}
function serverFetch(path, opts) { return fetch(withCollection(path), opts); }
let offline = false;
async function api(method, path, body, raw) {
  const opts = { method, headers: {} };
  if (raw) {
    opts.headers['Content-Type'] = raw.type || 'application/octet-stream';
    opts.body = raw;
  } else if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await serverFetch(path, opts);
  } catch {
    setOffline(true);
    throw new Error('The vdx server is unreachable');
  }
  setOffline(false);
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    const e = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    e.status = response.status;
    throw e;
  }
  return data;
}
const enc = encodeURIComponent;
const conceptPath = (name, rest = '') => `/api/concepts/${enc(name)}${rest}`;
const thumbUrl = (id) => withCollection(`/api/items/${enc(id)}/thumbnail`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A banner while the server cannot be reached; it clears itself when it answers again.
function setOffline(down) {
  if (down === offline) return;
  offline = down;
  $('offline').hidden = !down;
  if (down) watchServer();
  else say('The server is back');
}
async function watchServer() {
  while (offline) {
    await sleep(2000);
    try {
      const r = await serverFetch('/api/info');
      if (r.ok) setOffline(false);
    } catch { /* still down */ }
  }
}

// ---- Status line (aria-live) -------------------------------------------------------
let statusTimer = 0;
function say(text, isError) {
  const el = $('status');
  el.textContent = text;
  el.className = 'status show' + (isError ? ' error' : '');
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { el.className = 'status'; }, isError ? 6000 : 2500);
}
async function guarded(fn) {
  try { return await fn(); } catch (e) { if (!offline) say(e.message, true); return undefined; }
}

// ---- Numbers as people read them -----------------------------------------------------
// Fixed digits without "-0.00": anything that rounds to zero is 0.
function fmt(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return '–';
  let v = Number(x);
  if (Math.abs(v) < 0.5 * 10 ** -digits) v = 0;
  return v.toFixed(digits);
}
function pct(x) { return x === null || x === undefined ? '–' : `${Math.round(Number(x) * 100)}%`; }
function likely(p) { return `${Math.round(p * 100)}% likely`; }

// ---- URL hash: the view survives a reload, Back returns to the previous one -----------
function hashOf() {
  const p = new URLSearchParams();
  if (state.collection) p.set('collection', state.collection);
  if (state.concept) p.set('concept', state.concept.name);
  if (state.query && state.query.text) p.set('q', state.query.text);
  if (state.query && state.query.like) p.set('like', state.query.like);
  if (state.query && state.query.image) p.set('image', state.query.name || 'upload');
  if (filterValue()) p.set('where', filterValue());
  p.set('view', state.view);
  if (state.page) p.set('page', state.page);
  if (state.density) p.set('size', state.density);
  if (state.fit) p.set('k', 'fit');
  else if (state.k !== 9) p.set('k', state.k);
  if ($('mode').value !== 'nearest') p.set('mode', $('mode').value);
  return '#' + p.toString();
}
// push: a new entry for Back (a new query or view); else the current entry is replaced
function saveHash(push) {
  if (state.applyingHash) return;
  const h = hashOf();
  if (h === location.hash) return;
  if (push) history.pushState(null, '', h); else history.replaceState(null, '', h);
  lastHash = location.hash;
}
let lastHash = null;

async function applyHash() {
  if (location.hash === lastHash) return;
  lastHash = location.hash;
  const p = new URLSearchParams(location.hash.slice(1));
  // another collection is another page: everything is loaded afresh
  if ((p.get('collection') || null) !== state.collection) { location.reload(); return; }
  state.applyingHash = true;
  try {
    const k = Number(p.get('k') || 9);
    const size = Number(p.get('size'));
    setDensity(size >= 110 && size <= 360 ? size : 0);
    state.fit = p.get('k') === 'fit';
    if (state.fit) { setGridClass(); state.k = fitK(); $('k').value = 'fit'; }
    else if ([9, 24, 48, 96].includes(k)) { state.k = k; $('k').value = k; }
    $('where').value = p.get('where') || '';
    clearFilterError();
    const mode = p.get('mode');
    $('mode').value = ['nearest', 'boundary', 'random', 'audit'].includes(mode) ? mode : 'nearest';
    if (p.get('q')) { state.query = { text: p.get('q') }; $('q').value = p.get('q'); }
    else if (p.get('like')) { state.query = { like: p.get('like') }; $('q').value = ''; }
    else if (!(p.get('image') && state.query && state.query.image)) { state.query = null; $('q').value = ''; }
    const name = p.get('concept');
    if (name && state.concepts.some((c) => c.name === name)) {
      if (!state.concept || state.concept.name !== name) await guarded(() => selectConcept(name, false));
    } else if (state.concept) clearConcept();
    const view = p.get('view');
    const page = Math.max(0, Number(p.get('page')) || 0);
    if (state.concept && view === 'candidates') await guarded(() => showCandidatesPage(page));
    else if (state.concept && view === 'positives') await guarded(() => showPositives(page));
    else if (state.query) await guarded(() => runSearch(page));
    else await guarded(showSample);
  } finally {
    state.applyingHash = false;
  }
  lastHash = location.hash;
}

// ---- Results grid ------------------------------------------------------------------
function labelOf(item) {
  if (state.labels.has(item.id)) return state.labels.get(item.id);
  return null;
}

function tile(item, index) {
  const label = labelOf(item);
  const el = document.createElement('div');
  el.className = 'tile' + (label === null ? '' : ` label-${label}`) + (state.selected.has(item.id) ? ' selected' : '');
  el.setAttribute('role', 'listitem');
  el.tabIndex = index === state.focus ? 0 : -1;
  el.dataset.index = index;
  el.dataset.id = item.id;
  const concept = state.view === 'candidates' || state.view === 'positives';
  const scoreText = concept ? likely(item.probability) : fmt(item.score);
  const scoreTitle = concept ? `logit ${fmt(item.score)} (probability ${fmt(item.probability)})${item.rank ? `, rank ${item.rank}` : ''}`
    : 'cosine similarity to the query';
  el.setAttribute('aria-label', `${item.id}, ${concept ? scoreText : `similarity ${scoreText}`}` +
    (label === 1 ? ', positive' : label === 0 ? ', negative' : ''));
  el.innerHTML = `
    <button class="thumb" type="button" tabindex="-1" aria-label="Details of ${escapeHtml(item.id)}">
      <img loading="lazy" decoding="async" alt="" src="${thumbUrl(item.id)}"></button>
    <label class="pick" title="Select for a bulk label (x)"><input type="checkbox" tabindex="-1" ${state.selected.has(item.id) ? 'checked' : ''}
      aria-label="Select ${escapeHtml(item.id)}"></label>
    <span class="badge">${label === 1 ? '+ positive' : label === 0 ? '− negative' : ''}</span>
    ${state.view === 'sample' ? '' : `<span class="score" title="${escapeHtml(scoreTitle)}">${scoreText}</span>`}
    <div class="tile-bar">
      <button type="button" class="b-pos" tabindex="-1" aria-pressed="${label === 1}" title="Positive (1; shift-click: the range from the last one)">+</button>
      <button type="button" class="b-neg" tabindex="-1" aria-pressed="${label === 0}" title="Negative (2; shift-click: the range from the last one)">−</button>
      <button type="button" class="b-clear" tabindex="-1" title="Clear (0)" ${label === null ? 'disabled' : ''}>×</button>
      <button type="button" class="b-like" tabindex="-1" title="More like this (m)">Similar</button>
    </div>`;
  el.querySelector('.thumb').onclick = () => openDetail(index);
  const mouseLabel = (value) => (ev) => {
    const from = ev.shiftKey && state.anchor !== null ? state.anchor : null;
    state.anchor = index;
    focusTile(index);
    if (from !== null && from !== index) labelRange(from, index, value);
    else setLabel(index, value);
  };
  el.querySelector('.b-pos').onclick = mouseLabel(1);
  el.querySelector('.b-neg').onclick = mouseLabel(0);
  el.querySelector('.b-clear').onclick = mouseLabel(null);
  el.querySelector('.b-like').onclick = () => searchLike(item.id);
  el.querySelector('.pick input').onchange = (ev) => toggleSelected(item.id, ev.target.checked);
  el.addEventListener('focus', () => { state.focus = index; });
  return el;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// The grid's layout class: nine tiles at the default size are a 3×3 block, any other page
// fills the width. Set before fitK() measures the columns.
function setGridClass() {
  $('grid').className = 'grid' + (state.k === 9 && !state.density && !state.fit ? ' k9' : '');
}

function renderGrid(keepFocus) {
  const grid = $('grid');
  const hadFocus = grid.contains(document.activeElement);
  setGridClass();
  grid.replaceChildren(...state.items.map(tile));
  if (state.focus >= state.items.length) state.focus = Math.max(0, state.items.length - 1);
  if ((keepFocus || hadFocus) && state.items.length) focusTile(state.focus);
  renderPager();
  renderEmpty();
  if (state.fit) requestAnimationFrame(refit); // the layout may have changed the columns
}

function renderPager() {
  $('prev').disabled = state.page === 0;
  $('next').disabled = !state.more;
  const n = state.items.length;
  const first = state.page * state.k + 1;
  $('page-label').textContent = n ? `${first}–${first + state.k - 1} · page ${state.page + 1}` : '';
  const hidden = state.hidden.length;
  $('view-note').textContent = hidden ? `${hidden} near-duplicate${hidden === 1 ? '' : 's'} hidden` : '';
  $('label-duplicates-row').hidden = !$('hide-duplicates').checked;
  const labelling = !!state.items.length;
  $('all-pos').disabled = !labelling;
  $('rest-neg').disabled = !labelling;
  const c = state.concept;
  $('bar-pos').textContent = `+${c ? c.positive : 0}`;
  $('bar-neg').textContent = `−${c ? c.negative : 0}`;
  const h = state.history;
  $('undo').disabled = !c || (h && !h.can_undo);
  $('redo').disabled = !c || !h || !h.can_redo;
  $('selection').hidden = state.selected.size === 0;
  $('selection-count').textContent = `${state.selected.size} selected`;
}

function dataDir() {
  const dir = state.info && state.info.dir;
  return dir ? dir.replace(/\/collections\/[^/]+$/, '') : null;
}

function renderEmpty() {
  const empty = $('empty');
  const info = state.info;
  let html = '';
  if (info && info.count === 0) {
    const c = info.collection || 'default';
    const data = dataDir() ? ` --data ${escapeHtml(shellQuote(dataDir()))}` : '';
    html = `<h2>This collection has no items yet</h2>
      <p>Fill it with <code>vdx ingest</code>, for example with the Unsplash Lite dataset or a folder of images:</p>
      <pre>vdx ingest unsplash unsplash-research-dataset-lite-latest.zip --collection ${escapeHtml(c)}${data}
vdx ingest folder ~/Pictures --collection ${escapeHtml(c)}${data}</pre>
      <p>This page looks again every few seconds: items appear here while the ingest runs.</p>`;
  } else if (state.filterError) {
    html = '<h2>The filter has an error</h2><p>Fix it (see the message under the filter box) to see results.</p>';
  } else if (!state.items.length && state.view === 'search' && !state.query) {
    html = `<h2>Search the collection by meaning</h2>
      <p>Type what you are looking for, pick an example prompt above, or drop an image anywhere on the page.</p>
      <p>Then mark results positive <kbd>1</kbd> or negative <kbd>2</kbd> and press <kbd>Enter</kbd>: vdx trains a
      classifier for the idea and shows the next best candidates.</p>`;
  } else if (!state.items.length) {
    html = state.view === 'positives'
      ? '<h2>Nothing above the threshold</h2><p>Drag the threshold in the histogram to the left, or fit it to your labels.</p>'
      : '<h2>No results</h2><p>Every item may already be labelled, or the filter matches nothing.</p>';
  }
  empty.innerHTML = html;
  empty.hidden = !html;
}

function shellQuote(s) { return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`; }

function focusTile(index) {
  const tiles = $('grid').querySelectorAll('.tile');
  if (!tiles.length) return;
  index = Math.max(0, Math.min(tiles.length - 1, index));
  tiles.forEach((t, i) => { t.tabIndex = i === index ? 0 : -1; });
  state.focus = index;
  tiles[index].focus();
}

function gridColumns() {
  const tiles = $('grid').querySelectorAll('.tile');
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  let n = 0;
  while (n < tiles.length && tiles[n].offsetTop === top) n++;
  return n;
}

// Shows a list of items; a new entry in the browser's history (Back returns here).
function setView(view, title, items, more, hidden) {
  state.view = view;
  state.items = items;
  state.more = more;
  state.hidden = hidden || [];
  state.selected.clear();
  state.anchor = null;
  $('view-title').textContent = title;
  renderQueryThumb();
  renderGrid(true);
  saveHash(true);
}

// The query image beside "More like this" / an image search.
function renderQueryThumb() {
  const img = $('query-thumb');
  const q = state.query;
  const src = state.view === 'search' && q ? (q.like ? thumbUrl(q.like) : q.url || '') : '';
  img.hidden = !src;
  if (src) { img.src = src; img.alt = q.like ? `The item ${q.like}` : 'Your image'; }
}

// ---- Search ------------------------------------------------------------------------
async function runSearch(page = 0) {
  const q = state.query;
  if (!q) return;
  const t0 = performance.now();
  let data;
  try {
    if (q.image) {
      const where = filterValue() ? `&where=${enc(filterValue())}` : '';
      data = await api('POST', `/api/search/image?k=${state.k}&offset=${page * state.k}${where}`, undefined, q.image);
    } else {
      const body = { k: state.k, offset: page * state.k };
      if (filterValue()) body.where = filterValue();
      if (q.text) body.text = q.text; else body.like = q.like;
      data = await api('POST', '/api/search', body);
    }
  } catch (e) { return filterFailed(e); }
  clearFilterError();
  state.page = page;
  const title = q.text ? `“${q.text}”` : q.like ? `More like ${q.like}` : `Like ${q.name || 'your image'}`;
  state.focus = 0;
  setView('search', title, data.items, data.items.length === state.k);
  say(`${data.items.length} results in ${Math.round(performance.now() - t0)} ms`);
}

function searchText(text) {
  text = text.trim();
  if (!text) return undefined;
  $('q').value = text;
  state.query = { text };
  return guarded(() => runSearch(0));
}
function searchLike(id) {
  state.query = { like: id };
  $('q').value = '';
  if ($('detail').open) $('detail').close();
  return guarded(() => runSearch(0));
}
function searchImage(file) {
  if (!file || !file.type.startsWith('image/')) { say('That is not an image file', true); return undefined; }
  if (state.query && state.query.url) URL.revokeObjectURL(state.query.url);
  state.query = { image: file, name: file.name, url: URL.createObjectURL(file) };
  $('q').value = '';
  return guarded(() => runSearch(0));
}

// The opening view: a random sample of the collection (a random concept-free draw).
async function showSample() {
  if (!state.info || !state.info.count) { state.items = []; renderGrid(); return; }
  const data = await api('GET', `/api/sample?k=${state.k}`);
  state.page = 0;
  setView('sample', 'A random sample of the collection', data.items, false);
  state.view = 'sample';
}

// ---- Filter: errors in place, with a hint; stale results are cleared -------------------
function filterValue() { return $('where').value.trim(); }

function closestColumn(word) {
  const columns = (state.info && state.info.columns) || [];
  let best = null, bestDistance = Infinity;
  for (const c of columns) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  return best && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}
function editDistance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return row[b.length];
}

// A request refused because of the filter: the message goes under the box (without the
// list of every column), the box is marked, and the old results go.
function filterFailed(e) {
  if (!filterValue() || e.status !== 400 || !/filter|column|where|byte/i.test(e.message)) throw e;
  let message = e.message.replace(/\s*\((known )?columns?:[^)]*\)/i, '');
  const unknown = message.match(/unknown column '([^']+)'/i) || message.match(/no column '([^']+)'/i);
  const hint = unknown && closestColumn(unknown[1]);
  if (hint) message += ` — did you mean '${hint}'?`;
  const where = $('where');
  where.setAttribute('aria-invalid', 'true');
  $('where-error').textContent = message;
  $('where-error').hidden = false;
  state.filterError = message;
  state.items = [];
  state.hidden = [];
  renderGrid();
  return undefined;
}
// Column names completed at the cursor: the word being typed, when it starts a column.
function wordAtCursor() {
  const input = $('where');
  const end = input.selectionStart;
  const m = input.value.slice(0, end).match(/[A-Za-z_][A-Za-z0-9_]*$/);
  return m ? { start: end - m[0].length, end, word: m[0] } : null;
}
function suggestColumns() {
  const list = $('where-suggest');
  const at = wordAtCursor();
  const columns = (state.info && state.info.columns) || [];
  const matches = at ? columns.filter((c) => c.toLowerCase().startsWith(at.word.toLowerCase()) && c !== at.word).slice(0, 8) : [];
  list.replaceChildren(...matches.map((c, i) => {
    const li = document.createElement('li');
    li.setAttribute('role', 'option');
    li.id = `where-suggest-${i}`;
    li.textContent = c;
    li.onmousedown = (ev) => { ev.preventDefault(); completeColumn(c); };
    return li;
  }));
  list.hidden = !matches.length;
}
function completeColumn(column) {
  const input = $('where');
  const at = wordAtCursor();
  if (!at) return;
  input.value = input.value.slice(0, at.start) + column + ' ' + input.value.slice(at.end);
  const cursor = at.start + column.length + 1;
  input.setSelectionRange(cursor, cursor);
  $('where-suggest').hidden = true;
}

function clearFilterError() {
  state.filterError = null;
  $('where').removeAttribute('aria-invalid');
  $('where-error').hidden = true;
}

// ---- Concepts ----------------------------------------------------------------------
async function loadConcepts() {
  state.concepts = await api('GET', '/api/concepts');
  renderConceptList();
}

function renderConceptList() {
  const ul = $('concepts');
  ul.replaceChildren(...state.concepts.map((c) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.setAttribute('aria-current', state.concept && state.concept.name === c.name ? 'true' : 'false');
    b.innerHTML = `<span>${escapeHtml(c.name)}</span><span class="n"><span class="pos">+${c.positive}</span> <span class="neg">−${c.negative}</span></span>`;
    b.onclick = () => { closeDrawer(); guarded(() => selectConcept(c.name, true)); };
    li.append(b);
    return li;
  }));
  $('concepts-empty').hidden = state.concepts.length > 0;
}

async function selectConcept(name, showCandidates) {
  const [concept, labels] = await Promise.all([
    api('GET', conceptPath(name)), api('GET', conceptPath(name, '/labels'))]);
  state.concept = concept;
  state.labels = new Map(labels.map((l) => [l.id, l.label]));
  renderConceptList();
  renderConcept();
  refreshEvaluation();
  refreshHistory();
  if (showCandidates) await showCandidatesPage(0);
  else { renderGrid(); saveHash(false); }
}

function clearConcept() {
  state.concept = null;
  state.labels = new Map();
  state.evaluation = null;
  state.history = null;
  $('concept-panel').hidden = true;
  renderConceptList();
  renderGrid();
  saveHash(false);
}

function uniqueName(base) {
  base = base.trim().slice(0, 120) || 'concept';
  const names = new Set(state.concepts.map((c) => c.name));
  if (!names.has(base)) return base;
  for (let i = 2; ; i++) if (!names.has(`${base} (${i})`)) return `${base} (${i})`;
}

// A concept from the current query: its prompt, or the item of "more like this".
async function createConcept(name, examples) {
  const q = state.query || {};
  const body = { name };
  if (q.text) body.prompt = q.text;
  const ex = examples || (q.like ? [q.like] : []);
  if (ex.length) body.examples = ex;
  if (!body.prompt && !ex.length) throw new Error('Search for something first: a concept starts from a prompt or an example');
  const concept = await api('POST', '/api/concepts', body);
  await loadConcepts();
  await selectConcept(concept.name, false);
  say(`Concept “${concept.name}” created`);
}

function renderConcept() {
  const c = state.concept;
  $('concept-panel').hidden = !c;
  renderPager();
  if (!c) return;
  $('concept-name').textContent = c.name;
  $('count-pos').textContent = c.positive;
  $('count-neg').textContent = c.negative;
  $('count-pending').textContent = c.pending ? `(${c.pending} change${c.pending === 1 ? '' : 's'} since the last round)` : '';
  $('undo-round').disabled = !c.rounds;
  $('trainer').value = c.trainer;
  // an automatic trainer says which one the next round runs
  $('next-trainer').hidden = c.trainer !== 'auto';
  $('next-trainer').dataset.trainer = c.next_trainer;
  $('next-trainer').textContent = c.next_trainer === 'anchored'
    ? 'Next round: anchored to the prompt (20 or more audit labels)'
    : 'Next round: original; anchored to the prompt from 20 audit labels';
  $('history').replaceChildren(...c.history.slice().reverse().map((r) => {
    const tr = document.createElement('tr');
    const loss = r.losses && r.losses.length ? r.losses[r.losses.length - 1] : null;
    const cv = r.cross_validation || {};
    tr.innerHTML = `<td>${r.round}</td><td>+${r.positive} −${r.negative}</td><td>${fmt(loss)}</td>` +
      `<td>${pct(r.training_accuracy)}</td><td>${pct(cv.precision)}</td><td>${pct(cv.recall)}</td><td>${pct(cv.f1)}</td>`;
    tr.title = r.trainer === 'anchored' ? 'Trained anchored to the prompt' : 'Trained as the original explorer did';
    if (!r.cross_validation) tr.title += ' · no cross-validation: fewer than 2 labels of a class when this round was trained';
    return tr;
  }));
  if (!c.history.length) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="7" class="hint">No rounds yet: label some results and press Enter.</td>';
    $('history').append(tr);
  }
  const base = conceptPath(c.name, '/export');
  $('export-labels-csv').href = withCollection(`${base}?what=labels&format=csv`);
  $('export-labels-jsonl').href = withCollection(`${base}?what=labels&format=jsonl`);
  $('export-scores-csv').href = withCollection(`${base}?what=scores&format=csv`);
  $('export-scores-jsonl').href = withCollection(`${base}?what=scores&format=jsonl`);
  $('export-classifier').href = withCollection(`${base}?what=classifier&format=json`);
}

async function refreshConceptSummary() {
  const c = await api('GET', conceptPath(state.concept.name));
  state.concept = c;
  const entry = state.concepts.find((x) => x.name === c.name);
  if (entry) { entry.positive = c.positive; entry.negative = c.negative; }
  renderConceptList();
  renderConcept();
}

// ---- Label history: every action, any of them revertable -----------------------------
async function refreshHistory() {
  if (!state.concept) return;
  const name = state.concept.name;
  const h = await guarded(() => api('GET', conceptPath(name, '/history?limit=50')));
  if (!h || !state.concept || state.concept.name !== name) return;
  state.history = h;
  const sign = (l) => (l === 1 ? '+' : l === 0 ? '−' : '~');
  $('actions').replaceChildren(...h.actions.map((a) => {
    const li = document.createElement('li');
    li.className = a.undone ? 'undone' : '';
    const shown = a.changes.slice(0, 6).map((c) => `${sign(c.label)}${c.id}`).join(' ');
    const more = a.changes.length > 6 ? ` … (${a.changes.length} labels)` : '';
    const time = a.time ? a.time.slice(11, 19) : '';
    li.innerHTML = `<span class="what">${escapeHtml(shown + more)}</span>
      <span class="when">#${a.action} · ${escapeHtml(time)} · round ${a.round}${a.undone ? ' · undone' : ''}</span>`;
    if (!a.undone) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Revert';
      b.title = 'Put these items back to their labels before this action (a new action, undoable)';
      b.onclick = () => guarded(() => revertAction(a.action));
      li.append(b);
    }
    return li;
  }));
  if (!h.actions.length) {
    const li = document.createElement('li');
    li.className = 'hint';
    li.textContent = 'No labels yet.';
    $('actions').append(li);
  }
  renderPager();
}

// Label actions, undo, redo and revert reach the server in the order they were made (each
// request waits for the one before): two quick clicks, or a label and then Ctrl+Z, must
// not cross on the way, or the undo would take back the wrong action.
let labelChain = Promise.resolve();
function inOrder(send) {
  const sent = labelChain.then(send, send);
  labelChain = sent.catch(() => {});
  return sent;
}

// Applies the label changes an undo, redo or revert answered with, and redraws.
async function afterLabelChange(result) {
  for (const c of result.changes || []) {
    if (c.label === null) state.labels.delete(c.id); else state.labels.set(c.id, c.label);
  }
  if (result.positive !== undefined) {
    state.concept.positive = result.positive;
    state.concept.negative = result.negative;
    state.concept.pending = result.pending;
  }
  renderGrid();
  await refreshConceptSummary();
  refreshHistory();
  refreshEvaluation();
}

function describeChanges(changes) {
  const sign = (l) => (l === 1 ? '+' : l === 0 ? '−' : 'cleared ');
  const shown = changes.slice(0, 3).map((c) => `${sign(c.label)}${c.id}`).join(', ');
  return changes.length > 3 ? `${shown} and ${changes.length - 3} more` : shown;
}

async function undo() {
  if (!state.concept) return;
  await guarded(async () => {
    const r = await inOrder(() => api('POST', conceptPath(state.concept.name, '/undo'), {}));
    await afterLabelChange(r);
    say(`Undone: ${r.labels_reverted} label${r.labels_reverted === 1 ? '' : 's'} back (${describeChanges(r.changes)})`);
  });
}
async function redo() {
  if (!state.concept) return;
  await guarded(async () => {
    const r = await inOrder(() => api('POST', conceptPath(state.concept.name, '/redo'), {}));
    await afterLabelChange(r);
    say(`Redone: ${describeChanges(r.changes)}`);
  });
}
async function revertAction(action) {
  const r = await inOrder(() => api('POST', conceptPath(state.concept.name, '/revert'), { action }));
  const labels = await api('GET', conceptPath(state.concept.name, '/labels'));
  state.labels = new Map(labels.map((l) => [l.id, l.label]));
  await afterLabelChange(r);
  say(`Action #${action} reverted (${r.changed} label${r.changed === 1 ? '' : 's'}; Ctrl+Z brings them back)`);
}
async function undoRound() {
  const c = state.concept;
  if (!c || !c.rounds) return;
  const previous = c.rounds > 1 ? `round ${c.rounds - 1}'s` : 'the starting (prompt)';
  const ok = await ask(`Undo round ${c.rounds}?`,
    `The classifier goes back to ${previous} weight. Your labels stay and count for the next round.`,
    null, 'Undo round', 'Also take back the labels given since the round before');
  if (!ok) return;
  await guarded(async () => {
    const r = await api('POST', conceptPath(c.name, '/undo'), { round: true, revert_labels: ok === 'checked' });
    const labels = await api('GET', conceptPath(c.name, '/labels'));
    state.labels = new Map(labels.map((l) => [l.id, l.label]));
    await afterLabelChange(r);
    say(`Round ${r.round} undone: weight back to ${r.weight}; ` + (r.labels_reverted
      ? `${r.labels_reverted} label change${r.labels_reverted === 1 ? '' : 's'} taken back`
      : `${r.labels_kept} label change${r.labels_kept === 1 ? '' : 's'} kept for the next round`));
    if (state.view === 'candidates') await showCandidatesPage(0);
  });
}

// ---- Labels, training --------------------------------------------------------------
function setLabel(index, label) {
  const item = state.items[index];
  if (item) return labelItems([item.id], label);
  return undefined;
}

// Without a concept, the first label starts one from the current query; labels given
// while it is being created wait for it (fast keyboard use must not create two).
async function ensureConcept(id, label) {
  if (state.concept) return true;
  if (!state.creating) {
    if (label === null) return false;
    const q = state.query || {};
    if (!q.text && !q.like && label !== 1) {
      say('Mark a positive first: a concept from an uploaded image starts from its first positive', true);
      return false;
    }
    state.creating = guarded(() => createConcept(uniqueName(q.text || `like ${q.like || id}`),
      q.text || q.like ? undefined : [id]).then(() => true))
      .finally(() => { state.creating = null; });
  }
  return !!(await state.creating);
}

// The hidden near-duplicates of the given ids, when they are to be labelled along.
function withDuplicates(ids) {
  if (!$('hide-duplicates').checked || !$('label-duplicates').checked) return ids;
  const set = new Set(ids);
  const extra = state.hidden.filter((h) => set.has(h.duplicate_of)).map((h) => h.id);
  return ids.concat(extra.filter((id) => !set.has(id)));
}

// One request, one label action (one undo step), however many ids.
async function labelItems(ids, label, what) {
  if (!ids.length) return;
  if (!(await ensureConcept(ids[0], label))) return;
  ids = withDuplicates(ids);
  const previous = new Map(ids.map((id) => [id, state.labels.has(id) ? state.labels.get(id) : null]));
  const changed = ids.filter((id) => previous.get(id) !== label);
  if (!changed.length) return;
  for (const id of changed) { if (label === null) state.labels.delete(id); else state.labels.set(id, label); }
  changed.forEach(updateTileOf);
  try {
    const name = state.concept.name;
    const result = await inOrder(() => api('POST', conceptPath(name, '/labels'),
      { labels: changed.map((id) => ({ id, label })) }));
    state.concept.positive = result.positive;
    state.concept.negative = result.negative;
    state.concept.pending = result.pending;
    state.concept.next_trainer = result.next_trainer; // audit labels can change it
    const entry = state.concepts.find((x) => x.name === state.concept.name);
    if (entry) { entry.positive = result.positive; entry.negative = result.negative; }
    renderConceptList();
    renderConcept();
    refreshHistory();
    refreshEvaluationSoon();
    const word = label === 1 ? 'positive' : label === 0 ? 'negative' : 'cleared';
    say(what ? `${what}: ${changed.length} ${word} (one undo step)` :
      changed.length === 1 ? (label === 1 ? 'Positive' : label === 0 ? 'Negative' : 'Label cleared')
        : `${changed.length} labels ${word} (one undo step)`);
  } catch (e) {
    for (const id of changed) {
      const p = previous.get(id);
      if (p === null) state.labels.delete(id); else state.labels.set(id, p);
    }
    changed.forEach(updateTileOf);
    say(e.message, true);
  }
}

function labelRange(from, to, label) {
  const [a, b] = from < to ? [from, to] : [to, from];
  return labelItems(state.items.slice(a, b + 1).map((i) => i.id), label, `Items ${a + 1}–${b + 1}`);
}
function labelAllPositive() {
  return labelItems(state.items.map((i) => i.id), 1, 'All of the page');
}
function labelRestNegative() {
  return labelItems(state.items.filter((i) => labelOf(i) === null).map((i) => i.id), 0, 'The rest of the page');
}
function labelSelected(label) {
  const ids = [...state.selected];
  state.selected.clear();
  return labelItems(ids, label, 'The selection').then(() => renderGrid());
}
function toggleSelected(id, on) {
  if (on === undefined) on = !state.selected.has(id);
  if (on) state.selected.add(id); else state.selected.delete(id);
  updateTileOf(id);
  renderPager();
}

function updateTileOf(id) {
  const index = state.items.findIndex((item) => item.id === id);
  const old = $('grid').querySelector(`.tile[data-index="${index}"]`);
  if (index < 0 || !old) return;
  const hadFocus = old === document.activeElement || old.contains(document.activeElement);
  const fresh = tile(state.items[index], index);
  old.replaceWith(fresh);
  if (hadFocus) fresh.focus();
}

function candidateOptions(page) {
  const audit = $('mode').value === 'audit'; // 20 at a time, from the whole collection
  const o = { mode: $('mode').value, k: audit ? 20 : state.k, page: audit ? 0 : page, hide_duplicates: $('hide-duplicates').checked };
  if (filterValue() && !audit) o.where = filterValue();
  return o;
}
function candidateQuery(o) {
  return `mode=${o.mode}&k=${o.k}&page=${o.page}&hide_duplicates=${o.hide_duplicates ? 1 : 0}` +
    (o.where ? `&where=${enc(o.where)}` : '');
}

async function trainAndNext() {
  if (!state.concept) { say('Label a few results first (1 = positive, 2 = negative)', true); return; }
  if (state.busy) return;
  state.busy = true;
  $('train').disabled = true;
  try {
    const t0 = performance.now();
    let out;
    try {
      out = await api('POST', conceptPath(state.concept.name, '/train'), { next: candidateOptions(0) });
    } catch (e) { if (!filterFailed(e)) return; }
    const ms = Math.round(performance.now() - t0);
    state.page = 0;
    state.focus = 0;
    showCandidateResult(out.candidates);
    await refreshConceptSummary();
    await refreshEvaluation();
    refreshHistory();
    const loss = out.round.losses[out.round.losses.length - 1];
    const cv = out.round.cross_validation;
    say(`Round ${out.round.round}: loss ${fmt(loss)}, training accuracy ${pct(out.round.training_accuracy)}` +
      (cv ? `, cross-validated precision ${pct(cv.precision)} recall ${pct(cv.recall)}` : '') + ` (${ms} ms)`);
  } catch (e) {
    say(e.message, true);
  } finally {
    state.busy = false;
    $('train').disabled = false;
  }
}

function showCandidateResult(c) {
  const names = { nearest: 'Nearest unlabelled', boundary: 'At the threshold', random: 'Random sample', audit: 'Audit sample: label all to estimate quality' };
  state.page = c.page;
  setView('candidates', `${names[c.mode] || 'Candidates'} for “${state.concept.name}” (round ${c.round})`, c.items, !!c.more, c.hidden);
}

async function showCandidatesPage(page) {
  state.focus = 0;
  const o = candidateOptions(page);
  let c;
  try {
    c = await api('GET', conceptPath(state.concept.name, `/candidates?${candidateQuery(o)}`));
  } catch (e) { return filterFailed(e); }
  clearFilterError();
  showCandidateResult(c);
  return undefined;
}

async function showPositives(page) {
  state.focus = 0;
  const where = filterValue() ? `&where=${enc(filterValue())}` : '';
  let r;
  try {
    r = await api('GET', conceptPath(state.concept.name, `/scores?top=${state.k}&offset=${page * state.k}${where}`));
  } catch (e) { return filterFailed(e); }
  clearFilterError();
  state.page = page;
  setView('positives', `Above the threshold for “${state.concept.name}” (${r.above_threshold})`,
    r.items, (page + 1) * state.k < r.above_threshold);
  return undefined;
}

// ---- Quality: metrics, warnings, histogram with the labels as ticks, threshold ------------
// After labels change: the balance, ticks and warnings follow (once the clicks pause).
let evaluationTimer = 0;
function refreshEvaluationSoon() {
  clearTimeout(evaluationTimer);
  evaluationTimer = setTimeout(refreshEvaluation, 700);
}

async function refreshEvaluation() {
  if (!state.concept) return;
  const name = state.concept.name;
  const e = await guarded(() => api('GET', conceptPath(name, '/evaluate?bins=40')));
  if (!e || !state.concept || state.concept.name !== name) return;
  state.evaluation = e;
  renderMetrics();
  // the histogram and the slider are on the calibrated probability axis; the server keeps
  // the threshold as a logit (thresholdLogit converts)
  state.range = { lo: 0.001, hi: 0.999 };
  const slider = $('threshold');
  slider.min = state.range.lo;
  slider.max = state.range.hi;
  // a threshold being moved (not yet sent) is kept: an evaluation that lands meanwhile
  // must not throw the person's move away
  if (!state.moved || state.movedFor !== name) {
    slider.value = e.threshold_probability; // the server's threshold: its count is exact
    slider.dataset.logit = String(e.threshold);
    state.moved = false;
  }
  drawHistogram();
}

// The logit threshold of a calibrated probability (the concept's calibration, p = σ(a·s + b)).
function thresholdLogit(p) {
  const c = (state.evaluation && state.evaluation.calibration) || { a: 1, b: 0 };
  const q = Math.min(state.range.hi, Math.max(state.range.lo, p));
  return (Math.log(q / (1 - q)) - c.b) / c.a;
}

// "8 [6–30]" / "75% [41–100%]": an audited estimate with its 95% interval.
function estimateText(x, percent) {
  if (!x) return 'unknown';
  const f = percent ? (v) => pct(v) : (v) => Math.round(v).toLocaleString();
  return `${f(x.value)} [${percent ? f(x.lo).replace('%', '') : f(x.lo)}–${f(x.hi)}]`;
}

function renderMetrics() {
  const e = state.evaluation;
  const cv = e.cross_validation;
  const t = e.training || {};
  const b = e.balance || {};
  const rows = [
    ['Cross-validated', cv ? `precision ${pct(cv.precision)} · recall ${pct(cv.recall)} · F1 ${pct(cv.f1)}` : '– (needs 2 positives and 2 negatives)',
      cv ? `${cv.method} over ${cv.labels} labels: each label predicted by a classifier trained without it` : ''],
    ['On your labels', e.training_accuracy === null ? '–' : `accuracy ${pct(e.training_accuracy)} · precision ${pct(t.precision)} · recall ${pct(t.recall)}`,
      'the current classifier on the labels it was trained on: optimistic'],
    ['Balance', `${b.positive || 0} positive · ${b.negative || 0} negative` + (b.positive_share === null || b.positive_share === undefined ? '' : ` (${pct(b.positive_share)} positive)`), ''],
  ];
  const est = e.estimates;
  if (est && est.status === 'estimated') {
    rows.push(['Estimated (audit)', `${estimateText(est.positives)} positives · precision ${estimateText(est.precision, true)} · recall ${estimateText(est.recall, true)}`,
      `from ${est.audit_labels} random audit labels (each standing for ${fmt(est.weight, 1)} items on average) and your other labels; 95% intervals`]);
  } else {
    rows.push(['Estimated (audit)', 'unknown: label a random audit sample first', 'the hard cases you labelled are not a sample of the collection']);
  }
  $('metrics').replaceChildren(...rows.flatMap(([k, v, title]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    if (title) dd.title = title;
    if (k === 'Estimated (audit)') {
      dd.id = 'estimates';
      dd.dataset.status = est ? est.status : 'unknown';
      const audit = document.createElement('button');
      audit.type = 'button';
      audit.id = 'audit';
      audit.textContent = est && est.status === 'estimated' ? 'Label 20 more random items' : 'Label 20 random items to estimate quality';
      audit.onclick = () => showAudit();
      dd.append(' ', audit);
    }
    return [dt, dd];
  }));
  $('warnings').replaceChildren(...(e.warnings || []).map((w) => {
    const li = document.createElement('li');
    li.dataset.code = w.code;
    li.textContent = w.message;
    if (w.code === 'no_positive_above' || w.code === 'nothing_above' || w.code === 'low_recall') {
      const b2 = document.createElement('button');
      b2.type = 'button';
      b2.textContent = 'Fit threshold (best F1)';
      b2.onclick = () => fitThreshold('f1');
      li.append(' ', b2);
    }
    if (w.code === 'try_anchored') {
      const b2 = document.createElement('button');
      b2.type = 'button';
      b2.textContent = 'Use the anchored trainer';
      b2.onclick = () => { $('trainer').value = 'anchored'; $('trainer').dispatchEvent(new Event('change')); };
      li.append(' ', b2);
    }
    return li;
  }));
}

// The audit sample: 20 items drawn at random, stratified by score, kept until labelled;
// their labels (and only theirs) estimate positives, precision and recall.
async function showAudit() {
  if (!state.concept) return;
  state.focus = 0;
  $('mode').value = 'audit';
  saveHash(false);
  await guarded(async () => showCandidateResult(await api('GET', conceptPath(state.concept.name, `/candidates?${candidateQuery(candidateOptions(0))}`))));
}

async function fitThreshold(target) {
  if (!state.concept) return;
  const body = target === 'f1' ? { target: 'f1' } : { target: 'precision', precision: Number(target) };
  await guarded(async () => {
    const r = await api('POST', conceptPath(state.concept.name, '/threshold/fit'), body);
    await refreshEvaluation();
    await refreshConceptSummary();
    say(r.source === 'calibration'
      ? `Threshold ${fmt(r.threshold_probability, 2)} (calibrated): expected precision ${pct(r.precision)}, recall ${pct(r.recall)}, F1 ${pct(r.f1)} over the ${r.items.toLocaleString()} items` +
        (r.estimates && r.estimates.status === 'estimated' ? `; audited precision ${estimateText(r.estimates.precision, true)}` : '; audited estimates unknown')
      : `Threshold ${fmt(r.threshold_probability, 2)}: precision ${pct(r.precision)}, recall ${pct(r.recall)}, F1 ${pct(r.f1)} on your ${r.labels} labels`);
    if (state.view === 'positives') await showPositives(0);
  });
}

// Items above t, estimated from the histogram while dragging (the server's count once it
// is committed).
function aboveEstimate(threshold) {
  const h = state.evaluation.probability_histogram;
  let n = 0;
  h.counts.forEach((count, i) => {
    const lo = h.min + i * h.bin_width;
    if (lo >= threshold) n += count;
    else if (lo + h.bin_width > threshold) n += count * (lo + h.bin_width - threshold) / h.bin_width;
  });
  return Math.round(n);
}

function drawHistogram() {
  const e = state.evaluation;
  const canvas = $('histogram');
  const ctx = canvas.getContext('2d');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 280, hgt = canvas.clientHeight || 110;
  canvas.width = w * ratio;
  canvas.height = hgt * ratio;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  if (!e) return;
  const h = e.probability_histogram;
  const t = Number($('threshold').value);
  const styles = getComputedStyle(document.documentElement);
  const max = Math.max(1, ...h.counts);
  const { lo: rlo, hi: rhi } = state.range;
  const toX = (v) => ((v - rlo) / (rhi - rlo)) * w;
  const bw = (h.bin_width / (rhi - rlo)) * w;
  const ticks = 12;
  h.counts.forEach((count, i) => {
    const lo = h.min + i * h.bin_width;
    const barH = count ? Math.max(1.5, Math.sqrt(count / max) * (hgt - 14 - ticks)) : 0;
    ctx.fillStyle = lo + h.bin_width / 2 > t ? styles.getPropertyValue('--pos') : styles.getPropertyValue('--muted');
    ctx.globalAlpha = lo + h.bin_width / 2 > t ? 0.9 : 0.45;
    ctx.fillRect(toX(lo) + 0.5, hgt - ticks - barH, Math.max(1, bw - 1), barH);
  });
  ctx.globalAlpha = 0.85;
  for (const l of e.labelled || []) {
    ctx.fillStyle = styles.getPropertyValue(l.label === 1 ? '--pos' : '--neg');
    const x = toX(l.probability);
    ctx.fillRect(x - 0.75, l.label === 1 ? hgt - ticks : hgt - ticks / 2, 1.5, ticks / 2);
  }
  ctx.globalAlpha = 1;
  const x = toX(t);
  ctx.strokeStyle = styles.getPropertyValue('--focus');
  ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, hgt); ctx.stroke();
  const exact = !state.moved;
  const above = exact ? e.above_threshold : aboveEstimate(t);
  // a large collection's scores may come from its index's codes: then the count is close, not exact
  const fromIndex = e.scores && e.scores.source === 'index';
  $('above').textContent = `${exact && !fromIndex ? '' : '≈ '}${above.toLocaleString()} of ${e.count.toLocaleString()} items above the threshold ${fmt(t, 2)} (calibrated probability${e.calibration ? '' : ', none fitted yet'}${fromIndex ? `; scores from the index, each within ${fmt(e.scores.max_error, 3)}` : ''})`;
  $('above').dataset.count = exact ? String(above) : '';
}

let thresholdTimer = 0;
function thresholdChanged(commitNow) {
  state.moved = true;
  state.movedFor = state.concept && state.concept.name;
  state.moves = (state.moves || 0) + 1;
  $('threshold').dataset.logit = String(thresholdLogit(Number($('threshold').value)));
  drawHistogram();
  clearTimeout(thresholdTimer);
  thresholdTimer = setTimeout(commitThreshold, commitNow ? 0 : 400);
}
async function commitThreshold() {
  if (!state.concept) return;
  const t = thresholdLogit(Number($('threshold').value)), moves = state.moves;
  $('threshold').dataset.logit = String(t);
  await guarded(async () => {
    await api('PATCH', conceptPath(state.concept.name), { threshold: t });
    if (state.moves === moves) state.moved = false; // sent, and not moved since
    await refreshEvaluation();
    if (state.view === 'positives') await showPositives(0);
  });
}

function setupHistogramDrag() {
  const canvas = $('histogram');
  const move = (ev) => {
    const e = state.evaluation;
    if (!e) return;
    const rect = canvas.getBoundingClientRect();
    const f = Math.max(0, Math.min(1, (ev.clientX - rect.left) / rect.width));
    $('threshold').value = state.range.lo + f * (state.range.hi - state.range.lo);
    state.moved = true;
    drawHistogram();
  };
  canvas.addEventListener('pointerdown', (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    move(ev);
    canvas.onpointermove = move;
  });
  canvas.addEventListener('pointerup', (ev) => {
    canvas.onpointermove = null;
    canvas.releasePointerCapture(ev.pointerId);
    thresholdChanged(true);
  });
  // the arrow keys of a step="any" range move by 1/100 of its width
  $('threshold').addEventListener('keydown', (ev) => {
    const d = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[ev.key];
    if (!d || !state.range) return;
    ev.preventDefault();
    const s = $('threshold');
    s.value = Math.max(state.range.lo, Math.min(state.range.hi, Number(s.value) + d * (state.range.hi - state.range.lo) / 100));
    thresholdChanged(false);
  });
  $('threshold').addEventListener('input', () => thresholdChanged(false));
}

// ---- Item detail: a large view, ← → between items, 1 2 0 to label -----------------------
function detailItemId() {
  return typeof state.detail === 'number' ? state.items[state.detail] && state.items[state.detail].id : state.detail;
}
function openDetail(indexOrId) {
  state.detail = indexOrId;
  return renderDetail();
}
async function renderDetail() {
  const id = detailItemId();
  if (!id) return;
  const item = await guarded(() => api('GET', `/api/items/${enc(id)}?neighbours=12`));
  if (!item || detailItemId() !== id) return;
  const m = item.metadata || {};
  // the thumbnail at once, the large rendition (made by vdx from the original) when it comes
  const img = $('detail-image');
  img.src = thumbUrl(id);
  img.alt = m.photo_description || m.ai_description || id;
  img.classList.add('preview-pending');
  img.title = '';
  serverFetch(`/api/items/${enc(id)}/preview`).then(async (r) => {
    if (!r.ok || detailItemId() !== id) return;
    const fallback = r.headers.get('X-Vdx-Preview');
    const blob = await r.blob();
    if (detailItemId() !== id) return;
    if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    if (fallback) img.title = `No larger picture: ${fallback.replace(/^thumbnail; /, '')}`;
  }).catch(() => {}).finally(() => img.classList.remove('preview-pending'));
  $('detail-title').textContent = id;
  const listed = typeof state.detail === 'number' ? state.items[state.detail] : null;
  const label = state.labels.has(id) ? state.labels.get(id) : null;
  let scoreText = '';
  if (listed && (state.view === 'candidates' || state.view === 'positives')) {
    scoreText = `${likely(listed.probability)} (logit ${fmt(listed.score)})`;
  } else if (listed) scoreText = `similarity ${fmt(listed.score)}`;
  scoreText += label === 1 ? ' · labelled positive' : label === 0 ? ' · labelled negative' : state.concept ? ' · not labelled' : '';
  $('detail-score').textContent = scoreText;
  const inList = typeof state.detail === 'number';
  $('detail-prev').disabled = !inList || state.detail <= 0;
  $('detail-next').disabled = !inList || state.detail >= state.items.length - 1;
  $('detail-position').textContent = inList ? `${state.detail + 1} of ${state.items.length}` : '';
  $('detail-description').textContent = m.photo_description || m.ai_description || '';
  const attribution = $('detail-attribution');
  attribution.replaceChildren();
  const who = [m.photographer_first_name, m.photographer_last_name].filter(Boolean).join(' ') || m.photographer_username;
  // metadata comes from the dataset: only https links are followed (never javascript:)
  const photoUrl = m.photo_url && /^https:\/\//.test(m.photo_url) ? m.photo_url : null;
  if (who || photoUrl) {
    const utm = '?utm_source=vdx&utm_medium=referral';
    attribution.append('Photo');
    if (who) {
      attribution.append(' by ');
      const a = document.createElement('a');
      a.textContent = who;
      a.href = m.photographer_username ? `https://unsplash.com/@${enc(m.photographer_username)}${utm}` : (photoUrl || '#');
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      attribution.append(a);
    }
    if (photoUrl) {
      attribution.append(' on ');
      const a = document.createElement('a');
      a.textContent = 'Unsplash';
      a.href = photoUrl + utm;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      attribution.append(a);
    }
  }
  const actions = $('detail-actions');
  actions.replaceChildren();
  for (const [text, value] of [['+ Positive', 1], ['− Negative', 0], ['Clear', null]]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-pressed', String(label === value && value !== null));
    b.disabled = value === null && label === null;
    b.onclick = async () => { await labelItems([id], value); renderDetail(); };
    actions.append(b);
  }
  const like = document.createElement('button');
  like.type = 'button';
  like.textContent = 'More like this';
  like.onclick = () => searchLike(id);
  actions.append(like);
  const rows = [['id', item.id], ['url', item.url], ['size', item.width && item.height ? `${item.width} × ${item.height}` : ''],
    ['ingested', item.ingested_at], ...Object.entries(m)];
  $('detail-meta').replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = k;
    const td = document.createElement('td');
    if (/^https:\/\//.test(String(v))) {
      const a = document.createElement('a');
      a.href = v; a.textContent = v; a.rel = 'noopener noreferrer'; a.target = '_blank';
      td.append(a);
    } else td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
  // neighbours with their similarity and inline +/−
  $('detail-neighbours').replaceChildren(...item.neighbours.map((n) => {
    const nl = state.labels.has(n.id) ? state.labels.get(n.id) : null;
    const el = document.createElement('div');
    el.className = 'neighbour' + (nl === null ? '' : ` label-${nl}`);
    el.dataset.id = n.id;
    el.innerHTML = `<button type="button" class="thumb" aria-label="Details of ${escapeHtml(n.id)} (similarity ${fmt(n.score)})">
      <img loading="lazy" alt="" src="${thumbUrl(n.id)}"></button>
      <div class="nb-bar"><span class="nb-score" title="cosine similarity">${fmt(n.score, 2)}</span>
      <button type="button" class="b-pos" aria-pressed="${nl === 1}" aria-label="Mark ${escapeHtml(n.id)} positive">+</button>
      <button type="button" class="b-neg" aria-pressed="${nl === 0}" aria-label="Mark ${escapeHtml(n.id)} negative">−</button></div>`;
    el.querySelector('.thumb').onclick = () => openDetail(n.id);
    el.querySelector('.b-pos').onclick = async () => { await labelItems([n.id], nl === 1 ? null : 1); renderDetail(); };
    el.querySelector('.b-neg').onclick = async () => { await labelItems([n.id], nl === 0 ? null : 0); renderDetail(); };
    return el;
  }));
  if (!$('detail').open) $('detail').showModal();
}

function detailKey(ev) {
  if (!$('detail').open || ev.target.matches('input, select, textarea')) return;
  const inList = typeof state.detail === 'number';
  if (ev.key === 'ArrowLeft' && inList && state.detail > 0) { ev.preventDefault(); state.detail--; focusTile(state.detail); renderDetail(); }
  else if (ev.key === 'ArrowRight' && inList && state.detail < state.items.length - 1) { ev.preventDefault(); state.detail++; focusTile(state.detail); renderDetail(); }
  else if (ev.key in { 1: 1, 2: 1, 0: 1 } && !ev.ctrlKey && !ev.metaKey) {
    ev.preventDefault();
    const id = detailItemId();
    labelItems([id], { 1: 1, 2: 0, 0: null }[ev.key]).then(renderDetail);
  }
}

// ---- Small dialog for names and confirmations ---------------------------------------
// Resolves to the text (initial !== null), true / 'checked' (a confirmation, with the
// checkbox ticked), or null when cancelled.
function ask(title, text, initial, okText, checkText) {
  return new Promise((resolve) => {
    const d = $('ask');
    $('ask-title').textContent = title;
    $('ask-text').textContent = text || '';
    const input = $('ask-input');
    const wantsInput = initial !== null;
    input.hidden = !wantsInput;
    $('ask-label').textContent = wantsInput ? 'Name' : '';
    input.value = initial || '';
    $('ask-check-row').hidden = !checkText;
    $('ask-check').checked = false;
    $('ask-check-text').textContent = checkText || '';
    $('ask-ok').textContent = okText || 'OK';
    $('ask-ok').disabled = false;
    d.returnValue = '';
    d.onclose = () => {
      if (d.returnValue !== 'ok') resolve(null);
      else if (wantsInput) resolve(input.value.trim());
      else resolve(checkText && $('ask-check').checked ? 'checked' : true);
    };
    d.showModal();
    if (wantsInput) { input.focus(); input.select(); }
  });
}

// ---- Collection info, ingest progress and failures -----------------------------------
// Example prompts: in several languages when a multilingual text model is loaded, else
// drawn from the collection's own metadata (descriptions of a random sample) when it has
// some, else neutral ones.
const NEUTRAL_EXAMPLES = ['a person', 'an animal', 'a building', 'food on a plate', 'a landscape', 'text or a document', 'a vehicle', 'at night'];
async function examplePrompts() {
  const info = state.info || {};
  if (info.text_model && info.text_model.multilingual) return MULTILINGUAL_EXAMPLES;
  const columns = info.columns || [];
  const describing = ['ai_description', 'photo_description', 'description', 'caption', 'title'].find((c) => columns.includes(c));
  let prompts = [];
  if (describing && info.count) {
    const sample = await api('GET', `/api/sample?k=24&metadata=${enc(describing)}`).catch(() => null);
    prompts = (sample ? sample.items : []).map((i) => (i.metadata || {})[describing])
      .filter((t) => typeof t === 'string' && t.length >= 8 && t.length <= 48)
      .map((t) => t.toLowerCase().replace(/[.\s]+$/, ''));
  }
  prompts = [...new Set(prompts)].slice(0, 6);
  return prompts.length >= 3 ? prompts : NEUTRAL_EXAMPLES;
}
async function renderExamples() {
  const prompts = await examplePrompts();
  $('examples').replaceChildren(...prompts.map((text) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.onclick = () => searchText(text);
    return b;
  }));
  const multilingual = state.info && state.info.text_model && state.info.text_model.multilingual;
  if (!$('q').disabled) {
    $('q').placeholder = multilingual ? '用任何语言描述 · describe it in any language' : `Describe an image… e.g. ${prompts[0]}`;
  }
  const columns = (state.info && state.info.columns) || [];
  const example = columns.includes('photo_featured') ? "photo_featured = 't'" : columns.length ? `${columns[0]} = '…'` : "column = 'value'";
  $('where').placeholder = `e.g. ${example}`;
}

let lastProgressState = null;
async function loadInfo() {
  const before = state.info ? state.info.count : null;
  state.info = await api('GET', '/api/info');
  const i = state.info;
  const many = document.body.classList.contains('many-collections'); // the switcher names it
  $('collection').textContent = `${many ? '' : `${i.collection} · `}${Number(i.count).toLocaleString()} items`;
  renderProgress(i.progress);
  showTextModel(i.text_model);
  if (!i.text_search) {
    $('q').disabled = true;
    $('q').placeholder = 'Text search needs the CLIP model: start vdx serve with --model';
  }
  if (i.failed) loadFailures(i.failed);
  // an empty collection is watched until items arrive
  if (!i.count) setTimeout(() => guarded(loadInfo), 3000);
  if (before === 0 && i.count > 0 && state.view === 'sample') { await guarded(showSample); renderExamples(); }
  else if (before === 0 || (before === null && !i.count)) renderEmpty();
}

async function loadFailures(count) {
  const f = await guarded(() => api('GET', '/api/failures?limit=50'));
  if (!f) return;
  $('failures').hidden = !f.count;
  $('failures-summary').textContent = `${f.count.toLocaleString()} item${f.count === 1 ? '' : 's'} could not be added` +
    (f.count > f.failures.length ? ` (the first ${f.failures.length} below; vdx info --failures lists them all)` : '');
  $('failures-list').replaceChildren(...f.failures.map((x) => {
    const tr = document.createElement('tr');
    for (const v of [x.id, x.url, x.reason]) {
      const td = document.createElement('td');
      td.textContent = v || '';
      tr.append(td);
    }
    return tr;
  }));
  return count;
}

// A multilingual text tower takes prompts in any language: say so once, and offer
// example prompts in Chinese and other languages.
function showTextModel(tm) {
  if (!tm || !tm.multilingual || $('text-model-notice')) return;
  const note = document.createElement('p');
  note.id = 'text-model-notice';
  note.className = 'text-model-notice';
  note.textContent = `Prompts in any language (中文, العربية, Español, …): ${tm.name}`;
  $('examples').before(note);
}

let progressTimer = 0;
function renderProgress(p) {
  const box = $('progress');
  const running = p && p.state === 'running';
  clearTimeout(progressTimer);
  if (lastProgressState === 'running' && p && p.state !== 'running') {
    // the end of an ingest stays on the page for a while, and is announced
    const text = p.state === 'done'
      ? `Ingest done: ${Number(state.info.count).toLocaleString()} items${p.failed ? `, ${p.failed} failed (listed below)` : ''}`
      : `Ingest ${p.state}: ${Number(state.info.count).toLocaleString()} items`;
    lastProgressState = p.state;
    $('progress-text').textContent = text;
    $('progress-bar').firstElementChild.style.width = '100%';
    say(text);
    progressTimer = setTimeout(() => { box.hidden = true; }, 15000);
    return;
  }
  lastProgressState = p ? p.state : null;
  box.hidden = !running;
  if (!running) return;
  const pct2 = p.total ? Math.min(100, (100 * p.done) / p.total) : 0;
  const eta = p.eta_s ? ` · about ${Math.ceil(p.eta_s / 60)} min left` : '';
  $('progress-text').textContent = `Ingest running: ${Number(p.done).toLocaleString()} of ${Number(p.total || 0).toLocaleString()} images` +
    `${p.rate ? ` · ${Number(p.rate).toFixed(1)}/s` : ''}${eta}${p.failed ? ` · ${p.failed} failed` : ''}`;
  $('progress-bar').setAttribute('aria-valuenow', Math.round(pct2));
  $('progress-bar').firstElementChild.style.width = pct2 + '%';
  progressTimer = setTimeout(() => guarded(loadInfo), 2000);
}

// ---- Drawer (narrow screens) -----------------------------------------------------------
// Opening it moves the focus into it (to the current concept, else "+ New"), so that a
// keyboard or screen-reader user lands where it opened; closing it while the focus is
// inside gives the focus back to the toggle rather than to the page's start.
function openDrawer(open) {
  const sidebar = $('sidebar'), hadFocus = sidebar.contains(document.activeElement);
  sidebar.classList.toggle('open', open);
  $('scrim').hidden = !open;
  $('drawer-toggle').setAttribute('aria-expanded', String(open));
  if (open) {
    drawHistogram();
    (sidebar.querySelector('.concepts button[aria-current="true"]') || $('new-concept')).focus();
  } else if (hadFocus) {
    $('drawer-toggle').focus();
  }
}
function closeDrawer() { if ($('sidebar').classList.contains('open')) openDrawer(false); }

// ---- Keyboard ----------------------------------------------------------------------
function onKey(ev) {
  if ($('detail').open) { detailKey(ev); return; }
  if (document.querySelector('dialog[open]')) return;
  const target = ev.target;
  const typing = target.matches('input, select, textarea') && target.type !== 'range' && target.type !== 'checkbox';
  if (ev.key === '/' && !typing) { ev.preventDefault(); $('q').focus(); $('q').select(); return; }
  if ((ev.ctrlKey || ev.metaKey) && !typing && (ev.key === 'z' || ev.key === 'Z' || ev.key === 'y')) {
    ev.preventDefault();
    if (ev.shiftKey || ev.key === 'y') redo(); else undo();
    return;
  }
  if (ev.key === 'Escape') { closeDrawer(); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const inGrid = $('grid').contains(target);
  if (ev.key === 'Enter' && !target.matches('button, a, input, select')) { ev.preventDefault(); trainAndNext(); return; }
  if (ev.shiftKey && (ev.code === 'Digit1' || ev.code === 'Digit2') && state.items.length) {
    ev.preventDefault();
    if (ev.code === 'Digit1') labelAllPositive(); else labelRestNegative();
    return;
  }
  if (!inGrid) return;
  const cols = gridColumns();
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols };
  if (ev.key in moves) { ev.preventDefault(); focusTile(state.focus + moves[ev.key]); return; }
  if (ev.key === 'Home') { ev.preventDefault(); focusTile(0); return; }
  if (ev.key === 'End') { ev.preventDefault(); focusTile(state.items.length - 1); return; }
  const labels = { 1: 1, 2: 0, 0: null };
  if (ev.key in labels) { ev.preventDefault(); setLabel(state.focus, labels[ev.key]); return; }
  const item = state.items[state.focus];
  if (ev.key === 'x' && item) { ev.preventDefault(); toggleSelected(item.id); focusTile(state.focus); return; }
  if (ev.key === 'm' && item) { ev.preventDefault(); searchLike(item.id); return; }
  if (ev.key === 'o' && item) { ev.preventDefault(); openDetail(state.focus); }
}

// ---- Wiring ------------------------------------------------------------------------
// "Fit": a page is as many tiles as fill the grid's width (at the tile size of the
// density slider) and the window's height below the grid's top, at least two rows, so
// that a wide screen is filled; it follows the window and the slider.
function fitK() {
  const grid = $('grid');
  const width = grid.clientWidth || window.innerWidth;
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 14;
  // the columns the grid has at this width (auto-fill: whatever the number of tiles)
  const cols = Math.max(1, getComputedStyle(grid).gridTemplateColumns.split(' ').length);
  const tileWidth = (width - gap * (cols - 1)) / cols;
  const tileHeight = tileWidth * 0.75 + 44; // the thumbnail (4:3) and the tile's buttons
  const top = grid.getBoundingClientRect().top + window.scrollY;
  const room = window.innerHeight - Math.min(top, window.innerHeight / 2) - $('actionbar').offsetHeight;
  const rows = Math.max(2, Math.floor((room + gap) / (tileHeight + gap)));
  return Math.max(2, Math.min(200, cols * rows));
}
// The tiles' size from the slider (0: the default), shared through the URL as size=.
function setDensity(px) {
  state.density = px || undefined;
  $('density').value = px || 200;
  if (px) $('grid').style.setProperty('--tile-min', `${px}px`);
  else $('grid').style.removeProperty('--tile-min');
}
// A new page size keeps the first item shown on the page.
function refit() {
  if (!state.fit) return;
  const k = fitK();
  if (k === state.k) return;
  const page = Math.floor((state.page * state.k) / k);
  state.k = k;
  pageTo(page);
}

function pageTo(page) {
  if (page < 0) return;
  guarded(() => state.view === 'candidates' ? showCandidatesPage(page)
    : state.view === 'positives' ? showPositives(page)
      : state.query ? runSearch(page) : showSample());
}

// A dropped file: an image searches by it, a classifier JSON is imported.
async function dropped(file) {
  if (!file) return;
  if (file.type === 'application/json' || /\.json$/i.test(file.name)) {
    await guarded(async () => {
      const concept = await api('POST', '/api/concepts/import', undefined, new Blob([await file.text()], { type: 'application/json' }));
      await loadConcepts();
      await selectConcept(concept.name, false);
      say(`Imported concept “${concept.name}” (${concept.rounds} round${concept.rounds === 1 ? '' : 's'})`);
    });
    return;
  }
  searchImage(file);
}

function setup() {
  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchText($('q').value); });
  $('image-input').addEventListener('change', (ev) => { searchImage(ev.target.files[0]); ev.target.value = ''; });
  $('k').addEventListener('change', () => {
    state.fit = $('k').value === 'fit';
    setGridClass(); // Fit measures the columns of the page it will fill, not the 3×3 block's
    state.k = state.fit ? fitK() : Number($('k').value);
    pageTo(0);
  });
  $('density').addEventListener('input', () => {
    setDensity(Number($('density').value));
    renderGrid();
    refit();
    saveHash(false);
  });
  let resizing = 0;
  window.addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(refit, 200); });
  $('prev').onclick = () => pageTo(state.page - 1);
  $('next').onclick = () => pageTo(state.page + 1);
  $('train').onclick = trainAndNext;
  $('undo').onclick = undo;
  $('redo').onclick = redo;
  $('undo-round').onclick = undoRound;
  $('all-pos').onclick = labelAllPositive;
  $('rest-neg').onclick = labelRestNegative;
  $('sel-pos').onclick = () => labelSelected(1);
  $('sel-neg').onclick = () => labelSelected(0);
  $('sel-none').onclick = () => { state.selected.clear(); renderGrid(); };
  $('fit-threshold').onclick = () => fitThreshold($('fit-target').value);
  $('browse').onclick = () => { closeDrawer(); guarded(() => showPositives(0)); };
  $('show-candidates').onclick = () => { closeDrawer(); guarded(() => showCandidatesPage(0)); };
  $('mode').addEventListener('change', () => guarded(() => showCandidatesPage(0)));
  $('trainer').addEventListener('change', async () => {
    await guarded(async () => {
      const trainer = $('trainer').value;
      state.concept = await api('PATCH', conceptPath(state.concept.name), { trainer });
      await refreshEvaluation(); // its suggestion of a trainer follows
      const how = {
        seed: 'as the original explorer did',
        anchored: 'anchored to the prompt',
        auto: 'as the original explorer did until 20 audit labels, then anchored to the prompt',
      };
      say(`Rounds of “${state.concept.name}” now train ${how[trainer]}`);
    });
    renderConcept(); // the select shows what the server holds, also after a refusal
  });
  $('hide-duplicates').addEventListener('change', () => guarded(() => showCandidatesPage(0)));
  $('filter-form').addEventListener('submit', (ev) => { ev.preventDefault(); clearFilterError(); pageTo(0); });
  $('where').addEventListener('input', () => {
    if (state.filterError) $('where').removeAttribute('aria-invalid');
    suggestColumns();
  });
  $('where').addEventListener('keydown', (ev) => {
    const first = $('where-suggest').firstElementChild;
    if (ev.key === 'Tab' && !ev.shiftKey && first && !$('where-suggest').hidden) { ev.preventDefault(); completeColumn(first.textContent); }
    if (ev.key === 'Escape') $('where-suggest').hidden = true;
  });
  $('where').addEventListener('blur', () => { $('where-suggest').hidden = true; });
  $('drawer-toggle').onclick = () => openDrawer(!$('sidebar').classList.contains('open'));
  $('scrim').onclick = () => openDrawer(false);
  $('detail-prev').onclick = () => detailKey({ key: 'ArrowLeft', target: document.body, preventDefault() {} });
  $('detail-next').onclick = () => detailKey({ key: 'ArrowRight', target: document.body, preventDefault() {} });
  $('new-concept').onclick = async () => {
    const q = state.query || {};
    if (!q.text && !q.like) {
      say('Search for something first: a concept starts from the prompt (or the item of “Similar”)', true);
      $('q').focus();
      return;
    }
    const name = await ask('New concept', q.text ? `Starts from the prompt “${q.text}”.` : `Starts from item ${q.like}.`,
      uniqueName(q.text || `like ${q.like}`), 'Create');
    if (name) guarded(() => createConcept(name));
  };
  $('rename').onclick = async () => {
    const old = state.concept.name;
    const name = await ask('Rename concept', '', old, 'Rename');
    if (!name || name === old) return;
    guarded(async () => {
      await api('PATCH', conceptPath(old), { name });
      await loadConcepts();
      await selectConcept(name, false);
      say(`Renamed to “${name}”`);
    });
  };
  $('delete').onclick = async () => {
    const name = state.concept.name;
    if (!(await ask('Delete concept?', `“${name}” and its ${state.concept.positive + state.concept.negative} labels will be deleted.`, null, 'Delete'))) return;
    guarded(async () => {
      await api('DELETE', conceptPath(name));
      clearConcept();
      await loadConcepts();
      say(`Deleted “${name}”`);
    });
  };
  $('detail').addEventListener('close', () => {
    if (typeof state.detail === 'number') focusTile(state.detail);
    state.detail = null;
  });
  document.addEventListener('keydown', onKey);
  setupHistogramDrag();
  window.addEventListener('resize', drawHistogram);
  window.addEventListener('hashchange', () => applyHash());
  window.addEventListener('popstate', () => applyHash());
  // drag and drop an image or a classifier anywhere
  let depth = 0;
  const hasFile = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types).includes('Files');
  document.addEventListener('dragenter', (ev) => { if (hasFile(ev)) { depth++; $('drop').hidden = false; } });
  document.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; $('drop').hidden = true; } });
  document.addEventListener('dragover', (ev) => { if (hasFile(ev)) ev.preventDefault(); });
  document.addEventListener('drop', (ev) => {
    if (!hasFile(ev)) return;
    ev.preventDefault();
    depth = 0;
    $('drop').hidden = true;
    dropped(ev.dataTransfer.files[0]);
  });
}

// The collection switcher: the collections of the server's data directory that it can
// serve (same model); shown when there is more than one. Choosing one is a new view in
// the URL (#collection=NAME), loaded afresh; Back returns to the previous collection.
async function loadCollections() {
  const list = await api('GET', '/api/collections');
  const select = $('collection-select');
  const current = state.collection || list.default;
  if (state.collection && !list.collections.some((c) => c.name === state.collection && c.available)) {
    const wanted = list.collections.find((c) => c.name === state.collection);
    say(`Collection “${state.collection}” ${wanted ? `cannot be shown here: ${wanted.reason}` : 'does not exist'}; showing “${list.default}”`, true);
    state.collection = null;
    saveHash(false);
  }
  select.replaceChildren(...list.collections.map((c) => {
    const o = document.createElement('option');
    o.value = c.name;
    o.textContent = c.available ? c.name : `${c.name} (another model)`;
    o.title = c.available ? `${Number(c.count).toLocaleString()} items` : c.reason;
    o.disabled = !c.available;
    o.selected = c.name === (state.collection || list.default);
    return o;
  }));
  select.hidden = list.collections.filter((c) => c.available).length < 2;
  document.body.classList.toggle('many-collections', !select.hidden);
  select.onchange = () => {
    if (select.value === current) return;
    history.pushState(null, '', `#collection=${encodeURIComponent(select.value)}`);
    location.reload();
  };
}

async function start() {
  state.collection = new URLSearchParams(location.hash.slice(1)).get('collection') || null;
  setup();
  await guarded(loadCollections);
  await Promise.all([guarded(loadInfo), guarded(loadConcepts)]);
  await guarded(renderExamples);
  await applyHash();
  if (!location.hash) saveHash(false);
  document.body.dataset.ready = '1';
}

start();
