// The session player: the rendered video, scrubbing with thumbnails, markers for
// typed and screen text (and the search hit that brought us here), a text
// timeline that seeks, speeds, idle skipping, shortcuts, review and export.

import { api, ApiError } from './api.js';
import { $, bytes, can, clock, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

const params = new URLSearchParams(location.search);
const sessionId = params.get('session') || '';
const startAt = Number(params.get('t') || 0);
const query = params.get('q') || '';
const base = `/api/sessions/${encodeURIComponent(sessionId)}`;
const video = $('video');
let info = null;
let thumbs = null;
let items = [];
let alerts = [];  // guardrail alerts of this session, markers on the timeline

const durationMs = () => (info && info.duration_ms) || (video.duration * 1000) || 0;

function seek(ms) {
  const target = Math.max(0, Math.min(durationMs(), ms));
  video.currentTime = target / 1000;
}
window.player = { video, seek };

async function loadVideo() {
  try {
    info = await api('GET', `${base}/video-info`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
      // A cold session without media is rendered again on opening: the gateway says how far it got.
      const progress = /(\d+)% rendered/.exec(err.detail || '');
      $('player-status').textContent = progress
        ? `Rendering the video from the recording: ${progress[1]}%.`
        : 'The video is being rendered; this page checks again every 2 s.';
      if (progress) document.body.dataset.rendering = progress[1];
      setTimeout(loadVideo, 2000);
      return;
    }
    $('player-status').textContent = describeApiError(err);
    return;
  }
  video.src = `${base}/video`;
  video.addEventListener('loadedmetadata', () => {
    if (startAt) seek(startAt);
    $('player-status').textContent = '';
    document.body.dataset.ready = 'true';
    drawMarkers();
  }, { once: true });
  try {
    thumbs = await api('GET', `${base}/thumbnails`);
  } catch { thumbs = null; }
}

function drawMarkers() {
  const total = durationMs();
  if (!total) return;
  const box = $('markers');
  box.replaceChildren();
  const add = (ms, kind, title) => box.append(el('span', {
    className: `marker marker-${kind}`, title, style: `left:${(100 * ms) / total}%`,
  }));
  for (const item of items) add(item.offset_ms, item.source, item.text);
  // Guardrail alerts (issue 14): a blocked command, a screen rule that matched.
  for (const a of alerts) {
    if (a.offset_ms !== null) add(a.offset_ms, 'alert', `${a.blocked ? 'BLOCKED' : a.action} (${a.severity}, ${a.rule}): ${a.text}`);
  }
  if (startAt && query) add(startAt, 'hit', `search hit: ${query}`);
}

function renderText(filter = '') {
  const needle = filter.toLowerCase();
  const list = $('text-list');
  list.replaceChildren(...items.filter((i) => !needle || i.text.toLowerCase().includes(needle)).map((item) => {
    const li = el('li', { tabIndex: 0, dataset: { offsetMs: String(item.offset_ms) } },
      el('span', { className: 'src', textContent: item.source }),
      el('span', { className: 'muted', textContent: `${clock(item.offset_ms)} ` }),
      el('span', { textContent: item.text }));
    li.addEventListener('click', () => seek(item.offset_ms));
    li.addEventListener('keydown', (event) => { if (event.key === 'Enter') seek(item.offset_ms); });
    return li;
  }));
}

function highlightCurrent() {
  const now = video.currentTime * 1000;
  let current = null;
  for (const li of $('text-list').children) {
    li.classList.remove('current');
    if (Number(li.dataset.offsetMs) <= now) current = li;
  }
  if (current) current.classList.add('current');
}

async function loadAlerts() {
  try {
    alerts = (await api('GET', `${base}/alerts`)).alerts || [];
  } catch { alerts = []; }
  drawMarkers();
}

async function loadText() {
  try {
    const body = await api('GET', `${base}/text`);
    items = body.items || [];
  } catch { items = []; }
  renderText($('text-filter').value);
  drawMarkers();
}

function renderFacts(s) {
  $('title').textContent = `${s.user} on ${s.connection_name}`;
  const facts = [
    ['User', s.user], ['Connection', `${s.connection_name} (${String(s.protocol).toUpperCase()})`],
    ['Client address', s.client_addr || '—'], ['Started', when(s.started_at)], ['Ended', when(s.ended_at)],
    ['End reason', s.end_reason || '—'], ['Traffic', `${bytes(s.bytes_to_client)} to the user, ${bytes(s.bytes_from_client)} from the user`],
    ['Storage tier', s.tier], ['Legal hold', s.legal_hold ? 'yes' : 'no'],
  ];
  $('facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: v })]));
  $('reviews').textContent = (s.reviews || []).map((r) => `Reviewed by ${r.reviewed_by} on ${when(r.reviewed_at)}${r.comment ? `: “${r.comment}”` : ''}`).join(' · ') || 'Not reviewed yet.';
}

function wireControls() {
  $('play').addEventListener('click', () => (video.paused ? video.play() : video.pause()));
  video.addEventListener('play', () => { $('play').textContent = 'Pause'; });
  video.addEventListener('pause', () => { $('play').textContent = 'Play'; });
  video.addEventListener('timeupdate', () => {
    const total = durationMs();
    $('scrub').value = total ? String(Math.round((1000 * video.currentTime * 1000) / total)) : '0';
    $('time').textContent = `${clock(video.currentTime * 1000)} / ${clock(total)}`;
    highlightCurrent();
    if ($('skip-idle').checked && info) {
      const now = video.currentTime * 1000;
      const stretch = (info.idle || []).find(([a, b]) => now >= a && now < b - 500);
      if (stretch) seek(stretch[1] - 250);
    }
  });
  $('scrub').addEventListener('input', () => seek((Number($('scrub').value) / 1000) * durationMs()));
  $('speed').addEventListener('change', () => { video.playbackRate = Number($('speed').value); });
  $('fullscreen').addEventListener('click', () => video.requestFullscreen?.());
  $('timeline').addEventListener('mousemove', (event) => showPreview(event));
  $('timeline').addEventListener('mouseleave', () => { $('preview').hidden = true; });
  $('text-filter').addEventListener('input', () => renderText($('text-filter').value));
  $('help').addEventListener('click', () => { $('help-overlay').hidden = false; });
  $('help-close').addEventListener('click', () => { $('help-overlay').hidden = true; });
  $('export').href = `${base}/export`;
  $('review-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', `${base}/review`, { comment: $('review-comment').value });
      $('review-comment').value = '';
      renderFacts(await api('GET', base));
    } catch (err) {
      $('reviews').textContent = describeApiError(err);
    }
  });
  document.addEventListener('keydown', onKey);
}

function showPreview(event) {
  const rect = $('scrub').getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
  const ms = fraction * durationMs();
  $('preview-time').textContent = clock(ms);
  const box = $('preview-img');
  box.replaceChildren();
  if (thumbs && thumbs.items && thumbs.items.length) {
    const item = thumbs.items.reduce((a, b) => (Math.abs(b.t_ms - ms) < Math.abs(a.t_ms - ms) ? b : a));
    const tile = el('div');
    Object.assign(tile.style, {
      width: `${item.w}px`, height: `${item.h}px`,
      backgroundImage: `url(${JSON.stringify(String(thumbs.sprite_url))})`,
      backgroundPosition: `-${item.x}px -${item.y}px`,
    });
    box.append(tile);
  }
  $('preview').style.left = `${fraction * 100}%`;
  $('preview').hidden = false;
}

const SPEEDS = ['0.5', '1', '2', '4', '8', '16'];

function onKey(event) {
  if (event.target.closest('input, textarea, select')) return;
  const key = event.key;
  const step = (s) => seek(video.currentTime * 1000 + s * 1000);
  const speed = (d) => {
    const i = Math.max(0, Math.min(SPEEDS.length - 1, SPEEDS.indexOf($('speed').value) + d));
    $('speed').value = SPEEDS[i];
    video.playbackRate = Number(SPEEDS[i]);
  };
  const actions = {
    ' ': () => $('play').click(), k: () => $('play').click(), j: () => step(-10), l: () => step(10),
    ArrowLeft: () => step(-5), ArrowRight: () => step(5), Home: () => seek(0), End: () => seek(durationMs()),
    '<': () => speed(-1), '>': () => speed(1), f: () => $('fullscreen').click(), m: () => $('review-comment').focus(),
    '?': () => { $('help-overlay').hidden = !$('help-overlay').hidden; },
  };
  if (/^[0-9]$/.test(key)) { seek((Number(key) / 10) * durationMs()); event.preventDefault(); return; }
  if (actions[key]) { actions[key](); event.preventDefault(); }
}

async function main() {
  const user = await enterPage('session.view_all');
  if (!user) return;
  // Buttons for what this user may do; the API refuses the rest anyway.
  $('export').hidden = !can(user, 'export');
  $('review-form').hidden = !can(user, 'session.review');
  document.body.dataset.view = 'player';
  wireControls();
  try {
    renderFacts(await api('GET', base));
  } catch (err) {
    $('player-status').textContent = describeApiError(err);
    return;
  }
  await Promise.all([loadVideo(), loadText(), loadAlerts()]);
}

main();
