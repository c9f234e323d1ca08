// vdx explorer: the page's behaviour, plain JavaScript over the JSON API (docs/api.md).
// One state object, small render functions, every server call through api(). The
// current concept and query live in the URL hash so a reload comes back to them.
'use strict';

const $ = (id) => document.getElementById(id);
const EXAMPLES = ['a dog on a beach', 'mountains at sunset', 'a red car', 'people laughing',
  'a bowl of fruit', 'city street at night', 'snow', 'flowers close up'];
// Shown instead when a multilingual text model (M-CLIP) is loaded.
const MULTILINGUAL_EXAMPLES = ['海滩上的狗', '日落时的山', '一辆红色的汽车', '夜晚的城市街道',
  'a bowl of fruit', 'perros en la playa', 'Blumen in Nahaufnahme', 'قطة على الأريكة'];

const state = {
  info: null,
  concepts: [],
  concept: null,          // the active concept (GET /api/concepts/NAME)
  labels: new Map(),      // id → 1 | 0 in the active concept
  evaluation: null,       // GET .../evaluate
  query: null,            // {text} | {image: Blob, name} | {like: id}
  view: 'search',         // 'search' | 'candidates' | 'positives'
  items: [],
  page: 0,
  more: false,
  k: 9,
  focus: 0,
  busy: false,
};

// ---- Server calls ------------------------------------------------------------------
async function api(method, path, body, raw) {
  const opts = { method, headers: {} };
  if (raw) {
    opts.headers['Content-Type'] = raw.type || 'application/octet-stream';
    opts.body = raw;
  } else if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const response = await fetch(path, opts);
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}
const enc = encodeURIComponent;
const conceptPath = (name, rest = '') => `/api/concepts/${enc(name)}${rest}`;
const thumbUrl = (id) => `/api/items/${enc(id)}/thumbnail`;

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
  try { return await fn(); } catch (e) { say(e.message, true); return undefined; }
}

// ---- URL hash: concept + query survive a reload -----------------------------------
function saveHash() {
  const p = new URLSearchParams();
  if (state.concept) p.set('concept', state.concept.name);
  if (state.query && state.query.text) p.set('q', state.query.text);
  if (state.query && state.query.like) p.set('like', state.query.like);
  p.set('view', state.view);
  if (state.k !== 9) p.set('k', state.k);
  history.replaceState(null, '', '#' + p.toString());
}

// ---- Results grid ------------------------------------------------------------------
function fmt(x, digits = 3) { return x === null || x === undefined ? '–' : Number(x).toFixed(digits); }

function tile(item, index) {
  const label = state.labels.has(item.id) ? state.labels.get(item.id) : null;
  const el = document.createElement('div');
  el.className = 'tile' + (label === null ? '' : ` label-${label}`);
  el.setAttribute('role', 'listitem');
  el.tabIndex = index === state.focus ? 0 : -1;
  el.dataset.index = index;
  el.dataset.id = item.id;
  const scoreText = state.view === 'search'
    ? fmt(item.score)
    : `p ${fmt(item.probability, 2)} · ${fmt(item.score, 2)}`;
  const scoreTitle = state.view === 'search' ? 'cosine similarity to the query'
    : 'probability of the concept · score (logit)';
  el.setAttribute('aria-label', `${item.id}, ${state.view === 'search' ? 'similarity' : 'probability'} ` +
    `${state.view === 'search' ? fmt(item.score) : fmt(item.probability, 2)}` +
    (label === 1 ? ', positive' : label === 0 ? ', negative' : ''));
  el.innerHTML = `
    <button class="thumb" type="button" tabindex="-1" aria-label="Details of ${escapeHtml(item.id)}">
      <img loading="lazy" decoding="async" alt="" src="${thumbUrl(item.id)}"></button>
    <span class="badge">${label === 1 ? '+ positive' : label === 0 ? '− negative' : ''}</span>
    <span class="score" title="${scoreTitle}">${scoreText}</span>
    <div class="tile-bar">
      <button type="button" class="b-pos" tabindex="-1" aria-pressed="${label === 1}" title="Positive (1)">+</button>
      <button type="button" class="b-neg" tabindex="-1" aria-pressed="${label === 0}" title="Negative (2)">−</button>
      <button type="button" class="b-clear" tabindex="-1" title="Clear (0)" ${label === null ? 'disabled' : ''}>×</button>
      <button type="button" class="b-like" tabindex="-1" title="More like this (m)">Similar</button>
    </div>`;
  el.querySelector('.thumb').onclick = () => openDetail(item.id);
  el.querySelector('.b-pos').onclick = () => setLabel(index, 1);
  el.querySelector('.b-neg').onclick = () => setLabel(index, 0);
  el.querySelector('.b-clear').onclick = () => setLabel(index, null);
  el.querySelector('.b-like').onclick = () => searchLike(item.id);
  el.addEventListener('focus', () => { state.focus = index; });
  return el;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function renderGrid(keepFocus) {
  const grid = $('grid');
  const hadFocus = grid.contains(document.activeElement);
  grid.className = 'grid' + (state.k === 9 ? ' k9' : '');
  grid.replaceChildren(...state.items.map(tile));
  if (state.focus >= state.items.length) state.focus = Math.max(0, state.items.length - 1);
  if ((keepFocus || hadFocus) && state.items.length) focusTile(state.focus);
  $('prev').disabled = state.page === 0;
  $('next').disabled = !state.more;
  $('page-label').textContent = state.items.length ? `page ${state.page + 1}` : '';
  renderEmpty();
}

function renderEmpty() {
  const empty = $('empty');
  const info = state.info;
  let html = '';
  if (info && info.count === 0) {
    const c = info.collection || 'default';
    html = `<h2>This collection has no items yet</h2>
      <p>Fill it with <code>vdx ingest</code>, for example with the Unsplash Lite dataset or a folder of images:</p>
      <pre>vdx ingest unsplash unsplash-research-dataset-lite-latest.zip --collection ${escapeHtml(c)}
vdx ingest folder ~/Pictures --collection ${escapeHtml(c)}</pre>
      <p>Items appear here while the ingest runs.</p>`;
  } else if (!state.items.length && state.view === 'search' && !state.query) {
    html = `<h2>Search the collection by meaning</h2>
      <p>Type what you are looking for, pick an example prompt above, or drop an image anywhere on the page.</p>
      <p>Then mark results positive <kbd>1</kbd> or negative <kbd>2</kbd> and press <kbd>Enter</kbd>: vdx trains a
      classifier for the idea and shows the next best candidates.</p>`;
  } else if (!state.items.length) {
    html = state.view === 'positives'
      ? '<h2>Nothing above the threshold</h2><p>Drag the threshold in the histogram to the left to include more items.</p>'
      : '<h2>No results</h2><p>Every item may already be labelled, or the filter matches nothing.</p>';
  }
  empty.innerHTML = html;
  empty.hidden = !html;
}

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

function setView(view, title, items, more) {
  state.view = view;
  state.items = items;
  state.more = more;
  $('view-title').textContent = title;
  renderGrid(true);
  saveHash();
}

// ---- Search ------------------------------------------------------------------------
async function runSearch(page = 0) {
  const q = state.query;
  if (!q) return;
  state.page = page;
  const t0 = performance.now();
  let data;
  if (q.image) {
    const where = filterValue() ? `&where=${enc(filterValue())}` : '';
    data = await api('POST', `/api/search/image?k=${state.k}&offset=${page * state.k}${where}`, undefined, q.image);
  } else {
    const body = { k: state.k, offset: page * state.k };
    if (filterValue()) body.where = filterValue();
    if (q.text) body.text = q.text; else body.like = q.like;
    data = await api('POST', '/api/search', body);
  }
  const title = q.text ? `“${q.text}”` : q.like ? `More like ${q.like}` : `Like ${q.name || 'your image'}`;
  state.focus = 0;
  setView('search', title, data.items, data.items.length === state.k);
  say(`${data.items.length} results in ${Math.round(performance.now() - t0)} ms`);
}

function searchText(text) {
  text = text.trim();
  if (!text) return;
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
  if (!file || !file.type.startsWith('image/')) { say('That is not an image file', true); return; }
  state.query = { image: file, name: file.name };
  $('q').value = '';
  return guarded(() => runSearch(0));
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
    b.onclick = () => guarded(() => selectConcept(c.name, true));
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
  if (showCandidates) await showCandidatesPage(0);
  else { renderGrid(); saveHash(); }
}

function clearConcept() {
  state.concept = null;
  state.labels = new Map();
  state.evaluation = null;
  $('concept-panel').hidden = true;
  renderConceptList();
  renderGrid();
  saveHash();
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
  if (!c) return;
  $('concept-name').textContent = c.name;
  $('count-pos').textContent = c.positive;
  $('count-neg').textContent = c.negative;
  $('count-pending').textContent = c.pending ? `(${c.pending} new since the last round)` : '';
  const precision = loadPrecisions(c.name);
  $('history').replaceChildren(...c.history.slice().reverse().map((r) => {
    const tr = document.createElement('tr');
    const loss = r.losses && r.losses.length ? r.losses[r.losses.length - 1] : null;
    tr.innerHTML = `<td>${r.round}</td><td>+${r.positive} −${r.negative}</td><td>${fmt(loss)}</td>` +
      `<td>${r.training_accuracy === null ? '–' : Math.round(r.training_accuracy * 100) + '%'}</td>` +
      `<td>${precision[r.round] === undefined || precision[r.round] === null ? '–' : Math.round(precision[r.round] * 100) + '%'}</td>`;
    return tr;
  }));
  if (!c.history.length) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="5" class="hint">No rounds yet: label some results and press Enter.</td>';
    $('history').append(tr);
  }
  const base = conceptPath(c.name, '/export');
  $('export-labels-csv').href = `${base}?what=labels&format=csv`;
  $('export-labels-jsonl').href = `${base}?what=labels&format=jsonl`;
  $('export-scores-csv').href = `${base}?what=scores&format=csv`;
  $('export-scores-jsonl').href = `${base}?what=scores&format=jsonl`;
  $('export-classifier').href = `${base}?what=classifier&format=json`;
}

// Cross-validated precision per round, remembered by this browser (the server reports
// the current one; the table shows how it moved).
function precisionKey(name) { return `vdx-precision:${state.info ? state.info.collection : ''}:${name}`; }
function loadPrecisions(name) {
  try { return JSON.parse(localStorage.getItem(precisionKey(name)) || '{}'); } catch { return {}; }
}
function savePrecision(name, round, value) {
  const all = loadPrecisions(name);
  all[round] = value;
  try { localStorage.setItem(precisionKey(name), JSON.stringify(all)); } catch { /* storage full or off */ }
}

async function refreshConceptSummary() {
  const c = await api('GET', conceptPath(state.concept.name));
  state.concept = c;
  const entry = state.concepts.find((x) => x.name === c.name);
  if (entry) { entry.positive = c.positive; entry.negative = c.negative; }
  renderConceptList();
  renderConcept();
}

// ---- Labels, training --------------------------------------------------------------
function setLabel(index, label) {
  const item = state.items[index];
  if (item) return labelItem(item.id, label);
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

async function labelItem(id, label) {
  if (!(await ensureConcept(id, label))) return;
  const previous = state.labels.has(id) ? state.labels.get(id) : null;
  if (previous === label) return;
  if (label === null) state.labels.delete(id); else state.labels.set(id, label);
  updateTileOf(id);
  try {
    const result = await api('POST', conceptPath(state.concept.name, '/labels'), { labels: [{ id, label }] });
    state.concept.positive = result.positive;
    state.concept.negative = result.negative;
    state.concept.pending = result.pending;
    const entry = state.concepts.find((x) => x.name === state.concept.name);
    if (entry) { entry.positive = result.positive; entry.negative = result.negative; }
    renderConceptList();
    renderConcept();
    say(label === 1 ? 'Positive' : label === 0 ? 'Negative' : 'Label cleared');
  } catch (e) {
    if (previous === null) state.labels.delete(id); else state.labels.set(id, previous);
    updateTileOf(id);
    say(e.message, true);
  }
}

function updateTileOf(id) {
  const index = state.items.findIndex((item) => item.id === id);
  const old = $('grid').querySelector(`.tile[data-index="${index}"]`);
  if (index < 0 || !old) return;
  const hadFocus = old === document.activeElement;
  const fresh = tile(state.items[index], index);
  old.replaceWith(fresh);
  if (hadFocus) fresh.focus();
}

function filterValue() { return $('where').value.trim(); }

function candidateOptions(page) {
  const o = { mode: $('mode').value, k: state.k, page, hide_duplicates: $('hide-duplicates').checked };
  if (filterValue()) o.where = filterValue();
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
    const out = await api('POST', conceptPath(state.concept.name, '/train'), { next: candidateOptions(0) });
    const ms = Math.round(performance.now() - t0);
    state.page = 0;
    state.focus = 0;
    showCandidateResult(out.candidates);
    await refreshConceptSummary();
    await refreshEvaluation(out.round.round);
    const loss = out.round.losses[out.round.losses.length - 1];
    say(`Round ${out.round.round}: loss ${fmt(loss)}, accuracy ${Math.round(out.round.training_accuracy * 100)}% (${ms} ms)`);
  } catch (e) {
    say(e.message, true);
  } finally {
    state.busy = false;
    $('train').disabled = false;
  }
}

function showCandidateResult(c) {
  const names = { nearest: 'Nearest unlabelled', boundary: 'At the threshold', random: 'Random sample' };
  setView('candidates', `${names[c.mode] || 'Candidates'} for “${state.concept.name}”`, c.items, !!c.more);
}

async function showCandidatesPage(page) {
  state.page = page;
  state.focus = 0;
  const o = candidateOptions(page);
  const c = await api('GET', conceptPath(state.concept.name, `/candidates?${candidateQuery(o)}`));
  showCandidateResult(c);
}

async function showPositives(page) {
  state.page = page;
  state.focus = 0;
  const where = filterValue() ? `&where=${enc(filterValue())}` : '';
  const r = await api('GET', conceptPath(state.concept.name, `/scores?top=${state.k}&offset=${page * state.k}${where}`));
  setView('positives', `Above the threshold for “${state.concept.name}” (${r.above_threshold})`,
    r.items, (page + 1) * state.k < r.above_threshold);
}

async function undo() {
  if (!state.concept) return;
  await guarded(async () => {
    const r = await api('POST', conceptPath(state.concept.name, '/undo'), {});
    const labels = await api('GET', conceptPath(state.concept.name, '/labels'));
    state.labels = new Map(labels.map((l) => [l.id, l.label]));
    await refreshConceptSummary();
    refreshEvaluation();
    renderGrid();
    say(r.undone === 'round' ? `Round ${r.round} undone` : `${r.labels_reverted} label change(s) undone`);
  });
}

// ---- Histogram and threshold -------------------------------------------------------
async function refreshEvaluation(round) {
  if (!state.concept) return;
  const name = state.concept.name;
  const e = await guarded(() => api('GET', conceptPath(name, '/evaluate?bins=40')));
  if (!e || !state.concept || state.concept.name !== name) return;
  state.evaluation = e;
  if (round && e.cross_validation) savePrecision(name, round, e.cross_validation.precision);
  if (round) renderConcept();
  const h = e.histogram;
  // the threshold may move a little past the scores on both sides
  const pad = 0.08 * ((h.max - h.min) || 1);
  state.range = { lo: Math.min(h.min, e.threshold) - pad, hi: Math.max(h.max, e.threshold) + pad };
  const slider = $('threshold');
  slider.min = state.range.lo;
  slider.max = state.range.hi;
  slider.step = (state.range.hi - state.range.lo) / 200;
  slider.value = e.threshold;
  drawHistogram();
}

function aboveCount(threshold) {
  const h = state.evaluation.histogram;
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
  const h = e.histogram;
  const t = Number($('threshold').value);
  const styles = getComputedStyle(document.documentElement);
  const max = Math.max(1, ...h.counts);
  const { lo: rlo, hi: rhi } = state.range;
  const toX = (v) => ((v - rlo) / (rhi - rlo)) * w;
  const bw = (h.bin_width / (rhi - rlo)) * w;
  h.counts.forEach((count, i) => {
    const lo = h.min + i * h.bin_width;
    const barH = count ? Math.max(1.5, Math.sqrt(count / max) * (hgt - 14)) : 0;
    ctx.fillStyle = lo + h.bin_width / 2 > t ? styles.getPropertyValue('--pos') : styles.getPropertyValue('--muted');
    ctx.globalAlpha = lo + h.bin_width / 2 > t ? 0.9 : 0.45;
    ctx.fillRect(toX(lo) + 0.5, hgt - barH, Math.max(1, bw - 1), barH);
  });
  ctx.globalAlpha = 1;
  const x = toX(t);
  ctx.strokeStyle = styles.getPropertyValue('--focus');
  ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, hgt); ctx.stroke();
  const above = t === e.threshold ? e.above_threshold : aboveCount(t);
  $('above').textContent = `${above.toLocaleString()} of ${e.count.toLocaleString()} items above the threshold ${fmt(t, 2)} (p ${fmt(1 / (1 + Math.exp(-t)), 2)})`;
}

let thresholdTimer = 0;
function thresholdChanged(commitNow) {
  drawHistogram();
  clearTimeout(thresholdTimer);
  thresholdTimer = setTimeout(commitThreshold, commitNow ? 0 : 400);
}
async function commitThreshold() {
  if (!state.concept) return;
  const t = Number($('threshold').value);
  await guarded(async () => {
    await api('PATCH', conceptPath(state.concept.name), { threshold: t });
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
  $('threshold').addEventListener('input', () => thresholdChanged(false));
}

// ---- Item detail -------------------------------------------------------------------
async function openDetail(id) {
  const item = await guarded(() => api('GET', `/api/items/${enc(id)}?neighbours=12`));
  if (!item) return;
  const m = item.metadata || {};
  $('detail-image').src = thumbUrl(id);
  $('detail-image').alt = m.photo_description || m.ai_description || id;
  $('detail-title').textContent = id;
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
  const label = state.labels.has(id) ? state.labels.get(id) : null;
  for (const [text, value] of [['+ Positive', 1], ['− Negative', 0], ['Clear', null]]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-pressed', String(label === value && value !== null));
    b.disabled = value === null && label === null;
    b.onclick = async () => { await labelItem(id, value); openDetail(id); };
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
  $('detail-neighbours').replaceChildren(...item.neighbours.map((n) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'thumb';
    b.setAttribute('aria-label', `Details of ${n.id} (similarity ${fmt(n.score)})`);
    b.innerHTML = `<img loading="lazy" alt="" src="${thumbUrl(n.id)}">`;
    b.onclick = () => openDetail(n.id);
    return b;
  }));
  if (!$('detail').open) $('detail').showModal();
}

// ---- Small dialog for names and confirmations ---------------------------------------
function ask(title, text, initial, okText) {
  return new Promise((resolve) => {
    const d = $('ask');
    $('ask-title').textContent = title;
    $('ask-text').textContent = text || '';
    const input = $('ask-input');
    const wantsInput = initial !== null;
    input.hidden = !wantsInput;
    $('ask-label').textContent = wantsInput ? 'Name' : '';
    input.value = initial || '';
    $('ask-ok').textContent = okText || 'OK';
    d.returnValue = '';
    d.onclose = () => resolve(d.returnValue === 'ok' ? (wantsInput ? input.value.trim() : true) : null);
    d.showModal();
    if (wantsInput) { input.focus(); input.select(); }
  });
}

// ---- Ingest progress and collection info -------------------------------------------
async function loadInfo() {
  state.info = await api('GET', '/api/info');
  const i = state.info;
  $('collection').textContent = `${i.collection} · ${Number(i.count).toLocaleString()} items`;
  renderProgress(i.progress);
  showTextModel(i.text_model);
  if (!i.text_search) {
    $('q').disabled = true;
    $('q').placeholder = 'Text search needs the CLIP model: start vdx serve with --model';
  }
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
  renderExamples(MULTILINGUAL_EXAMPLES);
  $('q').placeholder = '用任何语言描述 · describe it in any language';
}

function renderExamples(list) {
  $('examples').replaceChildren(...list.map((text) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.onclick = () => searchText(text);
    return b;
  }));
}

let progressTimer = 0;
function renderProgress(p) {
  const box = $('progress');
  const running = p && p.state === 'running';
  box.hidden = !running;
  clearTimeout(progressTimer);
  if (!running) return;
  const pct = p.total ? Math.min(100, (100 * p.done) / p.total) : 0;
  const eta = p.eta_s ? ` · about ${Math.ceil(p.eta_s / 60)} min left` : '';
  $('progress-text').textContent = `Ingest running: ${Number(p.done).toLocaleString()} of ${Number(p.total || 0).toLocaleString()} images` +
    `${p.rate ? ` · ${Number(p.rate).toFixed(1)}/s` : ''}${eta}${p.failed ? ` · ${p.failed} failed` : ''}`;
  $('progress-bar').setAttribute('aria-valuenow', Math.round(pct));
  $('progress-bar').firstElementChild.style.width = pct + '%';
  progressTimer = setTimeout(() => guarded(loadInfo), 2000);
}

// ---- Keyboard ----------------------------------------------------------------------
function onKey(ev) {
  if (document.querySelector('dialog[open]')) return;
  const target = ev.target;
  const typing = target.matches('input, select, textarea') && target.type !== 'range';
  if (ev.key === '/' && !typing) { ev.preventDefault(); $('q').focus(); return; }
  if ((ev.ctrlKey || ev.metaKey) && ev.key === 'z' && !typing) { ev.preventDefault(); undo(); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const inGrid = $('grid').contains(target);
  if (ev.key === 'Enter' && !target.matches('button, a, input, select')) { ev.preventDefault(); trainAndNext(); return; }
  if (!inGrid) return;
  const cols = gridColumns();
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols };
  if (ev.key in moves) { ev.preventDefault(); focusTile(state.focus + moves[ev.key]); return; }
  if (ev.key === 'Home') { ev.preventDefault(); focusTile(0); return; }
  if (ev.key === 'End') { ev.preventDefault(); focusTile(state.items.length - 1); return; }
  const labels = { 1: 1, 2: 0, 0: null };
  if (ev.key in labels) { ev.preventDefault(); setLabel(state.focus, labels[ev.key]); return; }
  const item = state.items[state.focus];
  if (ev.key === 'm' && item) { ev.preventDefault(); searchLike(item.id); return; }
  if (ev.key === 'o' && item) { ev.preventDefault(); openDetail(item.id); }
}

// ---- Wiring ------------------------------------------------------------------------
function pageTo(page) {
  if (page < 0) return;
  guarded(() => state.view === 'candidates' ? showCandidatesPage(page)
    : state.view === 'positives' ? showPositives(page) : runSearch(page));
}

function setup() {
  renderExamples(EXAMPLES);
  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchText($('q').value); });
  $('image-input').addEventListener('change', (ev) => { searchImage(ev.target.files[0]); ev.target.value = ''; });
  $('k').addEventListener('change', () => { state.k = Number($('k').value); pageTo(0); });
  $('prev').onclick = () => pageTo(state.page - 1);
  $('next').onclick = () => pageTo(state.page + 1);
  $('train').onclick = trainAndNext;
  $('undo').onclick = undo;
  $('browse').onclick = () => guarded(() => showPositives(0));
  $('show-candidates').onclick = () => guarded(() => showCandidatesPage(0));
  $('mode').addEventListener('change', () => guarded(() => showCandidatesPage(0)));
  $('hide-duplicates').addEventListener('change', () => guarded(() => showCandidatesPage(0)));
  $('filter-form').addEventListener('submit', (ev) => { ev.preventDefault(); pageTo(0); });
  $('new-concept').onclick = async () => {
    const q = state.query || {};
    const name = await ask('New concept', q.text ? `Starts from the prompt “${q.text}”.` :
      q.like ? `Starts from item ${q.like}.` : 'Search for something first: the concept starts from the prompt.',
    uniqueName(q.text || (q.like ? `like ${q.like}` : '')), 'Create');
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
  document.addEventListener('keydown', onKey);
  setupHistogramDrag();
  window.addEventListener('resize', drawHistogram);
  // drag and drop an image anywhere
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
    searchImage(ev.dataTransfer.files[0]);
  });
}

async function start() {
  setup();
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get('k') && [9, 24, 48].includes(Number(p.get('k')))) { state.k = Number(p.get('k')); $('k').value = state.k; }
  await Promise.all([guarded(loadInfo), guarded(loadConcepts)]);
  if (p.get('q')) { state.query = { text: p.get('q') }; $('q').value = p.get('q'); }
  else if (p.get('like')) state.query = { like: p.get('like') };
  const name = p.get('concept');
  if (name && state.concepts.some((c) => c.name === name)) {
    await guarded(() => selectConcept(name, false));
  }
  const view = p.get('view');
  if (state.concept && view === 'candidates') await guarded(() => showCandidatesPage(0));
  else if (state.concept && view === 'positives') await guarded(() => showPositives(0));
  else if (state.query) await guarded(() => runSearch(0));
  else renderGrid();
  document.body.dataset.ready = '1';
}

start();
