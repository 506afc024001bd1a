// Search across sessions; each hit opens the player at its moment.

import { api } from './api.js';
import { $, clock, el, enterPage, snippetNode, when } from './common.js';
import { describeApiError } from './status.js';

function result(hit, q) {
  const moment = new Date(new Date(hit.started_at).getTime() + hit.offset_ms);
  const link = el('a', {
    className: 'search-result',
    href: `player.html?session=${encodeURIComponent(hit.session_id)}&t=${hit.offset_ms}&q=${encodeURIComponent(q)}`,
    dataset: { sessionId: hit.session_id, offsetMs: String(hit.offset_ms) },
  });
  const img = el('img', { src: hit.thumbnail_url, alt: '', loading: 'lazy' });
  img.addEventListener('error', () => { img.style.visibility = 'hidden'; });
  link.append(img, el('div', {},
    el('p', {}, el('span', { className: `badge`, textContent: hit.source }), ' ', snippetNode(hit.snippet)),
    el('p', { className: 'muted', textContent: `${hit.user} on ${hit.connection} · ${when(moment)} · at ${clock(hit.offset_ms)} into the session` })));
  return el('li', {}, link);
}

async function run(event) {
  if (event) event.preventDefault();
  const q = $('q').value.trim();
  if (!q) return;
  const params = new URLSearchParams({ q, limit: '50' });
  for (const [key, id] of [['user', 'f-user'], ['connection', 'f-connection'], ['source', 'f-source']]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  if ($('f-since').value) params.set('since', new Date($('f-since').value).toISOString());
  if ($('f-until').value) params.set('until', new Date($('f-until').value).toISOString());
  history.replaceState(null, '', `?${params}`);
  $('search-status').textContent = 'Searching…';
  try {
    const body = await api('GET', `/api/search?${params}`);
    $('page-error').hidden = true;
    $('results').replaceChildren(...body.results.map((hit) => result(hit, q)));
    const n = body.results.length;
    $('search-status').textContent = n ? `${n} moment${n === 1 ? '' : 's'} found.` : 'Nothing found.';
  } catch (err) {
    $('page-error').textContent = describeApiError(err);
    $('page-error').hidden = false;
    $('search-status').textContent = '';
  }
}

async function main() {
  const user = await enterPage('search');
  if (!user) return;
  document.body.dataset.view = 'search';
  $('search-form').addEventListener('submit', run);
  const initial = new URLSearchParams(location.search);
  if (initial.get('q')) {
    $('q').value = initial.get('q');
    await run();
  }
}

main();
