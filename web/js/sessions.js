// Sessions: filters, live ones first; auditors watch, end and play them.

import { api } from './api.js';
import { $, can, clock, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

let user = null;
let alertCounts = {};  // session id -> {alerts, open, high_risk} (issue 14), for users who may read alerts

function isoOrEmpty(value) {
  return value ? new Date(value).toISOString() : '';
}

async function terminate(session) {
  const reason = window.prompt(`End the session of ${session.user} on ${session.connection_name}? Reason (optional):`, '');
  if (reason === null) return;
  try {
    await api('POST', `/api/sessions/${encodeURIComponent(session.id)}/terminate`, { reason });
    setTimeout(load, 1000);
  } catch (err) {
    showError(describeApiError(err));
  }
}

function actions(session) {
  const box = el('div', { className: 'actions' });
  if (session.status === 'active') {
    if (can(user, 'session.watch')) {
      box.append(el('a', { className: 'button button-ghost watch-live', href: `watch.html?session=${encodeURIComponent(session.id)}`, textContent: 'Watch live' }));
    }
    if (can(user, 'session.terminate')) {
      box.append(el('button', { className: 'button button-danger terminate', type: 'button', textContent: 'Terminate', onclick: () => terminate(session) }));
    }
  } else if (session.recording_complete && can(user, 'session.view_all')) {
    box.append(el('a', { className: 'button button-ghost play', href: `player.html?session=${encodeURIComponent(session.id)}`, textContent: 'Play' }));
  }
  return box;
}

function row(s) {
  const tr = el('tr', { dataset: { sessionId: s.id, status: s.status } });
  const status = el('td');
  if (s.status === 'active') status.append(el('span', { className: 'live-badge', textContent: 'LIVE' }));
  const counted = alertCounts[s.id];
  if (counted && counted.alerts) {
    status.append(el('span', {
      className: `alert-badge${counted.high_risk ? ' alert-high' : ''}`,
      textContent: `${counted.alerts} alert${counted.alerts === 1 ? '' : 's'}`,
      title: `${counted.open} not acknowledged, ${counted.high_risk} high-risk`,
    }));
  }
  status.append(el('span', { className: `status-pill status-${s.status}`, textContent: s.status }));
  const duration = s.ended_at ? ` (${clock(new Date(s.ended_at) - new Date(s.started_at))})` : '';
  tr.append(
    el('td', { textContent: when(s.started_at) }),
    el('td', { textContent: s.user }),
    el('td', { textContent: `${s.connection_name} · ${String(s.protocol).toUpperCase()}` }),
    status,
    el('td', { textContent: when(s.ended_at) + duration }),
    el('td', { textContent: s.end_reason || '' }),
    el('td', { textContent: s.reviews && s.reviews.length ? `yes (${s.reviews.at(-1).reviewed_by})` : '' }),
    el('td', {}, actions(s)),
  );
  return tr;
}

function showError(text) {
  $('page-error').textContent = text;
  $('page-error').hidden = !text;
}

async function load() {
  const params = new URLSearchParams();
  for (const [key, id] of [['user', 'f-user'], ['connection', 'f-connection'], ['status', 'f-status']]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  if ($('f-since').value) params.set('since', isoOrEmpty($('f-since').value));
  if ($('f-until').value) params.set('until', isoOrEmpty($('f-until').value));
  try {
    const sessions = await api('GET', `/api/sessions?${params}`);
    // Live sessions first (then newest first, as listed).
    sessions.sort((a, b) => (b.status === 'active') - (a.status === 'active'));
    if (can(user, 'alert.read') && sessions.length) {
      const ids = new URLSearchParams(sessions.slice(0, 500).map((s) => ['session', s.id]));
      try { alertCounts = await api('GET', `/api/alerts/counts?${ids}`); } catch { alertCounts = {}; }
    }
    showError('');
    $('sessions-body').replaceChildren(...sessions.map(row));
    $('sessions-table').hidden = sessions.length === 0;
    const live = sessions.filter((s) => s.status === 'active').length;
    $('sessions-status').textContent = sessions.length
      ? `${sessions.length} sessions, ${live} live.` : 'No session matches.';
    document.body.dataset.view = 'sessions';
  } catch (err) {
    showError(describeApiError(err));
  }
}

// The status filter lists the statuses the gateway defines (gui_recorder/vocabulary.py), not a copy.
async function statusOptions() {
  const words = await api('GET', '/api/vocabulary');
  $('f-status').append(...words.session_statuses.map((s) => el('option', { value: s, textContent: s })));
}

async function main() {
  user = await enterPage('session.view_own');
  if (!user) return;
  await statusOptions();
  $('filters').addEventListener('submit', (event) => { event.preventDefault(); load(); });
  $('refresh').addEventListener('click', load);
  await load();
  setInterval(load, 10000);
}

main();
