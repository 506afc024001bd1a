// The auditors' list of sessions (GET /api/sessions), newest first.
// A plain table: searching, scrubbing and live view live elsewhere.

import { api } from './api.js';
import { describeApiError } from './status.js';

// The table is for reading, not for paging through everything the API holds.
const MAX_ROWS = 500;

const $ = (id) => document.getElementById(id);

function when(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function cell(text, className) {
  const td = document.createElement('td');
  if (className) {
    const span = document.createElement('span');
    span.className = className;
    span.textContent = text;
    td.append(span);
  } else {
    td.textContent = text; // textContent: values from the API are never HTML
  }
  return td;
}

function row(s) {
  const tr = document.createElement('tr');
  tr.dataset.sessionId = String(s.id ?? '');
  const status = String(s.status ?? '');
  tr.append(
    cell(when(s.started_at)),
    cell(String(s.username ?? '')),
    cell(String(s.connection_name ?? s.connection_id ?? '')),
    cell(String(s.protocol ?? '').toUpperCase()),
    cell(status, `status-pill status-${status.replace(/[^a-z]/gi, '')}`),
    cell(when(s.ended_at)),
    cell(String(s.end_reason ?? '')),
  );
  return tr;
}

async function load() {
  document.body.dataset.view = 'loading';
  $('page-error').hidden = true;
  let data;
  try {
    data = await api('GET', '/api/sessions');
  } catch (err) {
    if (err.status === 401) { location.assign('./'); return; }
    $('sessions-status').textContent = '';
    $('page-error').textContent = describeApiError(err, { 403: 'Only auditors and administrators may see recorded sessions.' });
    $('page-error').hidden = false;
    document.body.dataset.view = 'error';
    return;
  }
  // Accept a bare list or a {sessions: [...]} page.
  const list = Array.isArray(data) ? data : (data && Array.isArray(data.sessions) ? data.sessions : []);
  const shown = list.slice(0, MAX_ROWS);
  $('sessions-body').replaceChildren(...shown.map(row));
  $('sessions-table').hidden = shown.length === 0;
  $('sessions-status').textContent = shown.length === 0 ? 'No sessions have been recorded yet.'
    : `${list.length} session${list.length === 1 ? '' : 's'}${list.length > MAX_ROWS ? `, the newest ${MAX_ROWS} shown` : ''}.`;
  document.body.dataset.view = 'sessions';
}

$('refresh').addEventListener('click', load);
load();
