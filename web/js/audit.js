// The audit log (admins): who did what, when, from where.

import { api } from './api.js';
import { $, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

async function load(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({ limit: '500' });
  if ($('f-action').value) params.set('action', $('f-action').value);
  if ($('f-user').value) params.set('username', $('f-user').value);
  try {
    const events = await api('GET', `/api/audit?${params}`);
    $('audit-body').replaceChildren(...events.map((e) => el('tr', { dataset: { action: e.action } },
      el('td', { textContent: when(e.at) }), el('td', { textContent: e.username || 'system' }),
      el('td', { textContent: e.action }), el('td', { textContent: e.target || '' }),
      el('td', { textContent: e.client_addr || '' }), el('td', { textContent: JSON.stringify(e.detail) }))));
    document.body.dataset.view = 'audit';
  } catch (err) {
    $('page-error').textContent = describeApiError(err);
    $('page-error').hidden = false;
  }
}

async function main() {
  const user = await enterPage('audit.read');
  if (!user) return;
  $('filters').addEventListener('submit', load);
  await load();
}

main();
