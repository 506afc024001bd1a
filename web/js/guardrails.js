// Guardrails (issue 14): alerts (acknowledge with a note), the policies (admins) and the access
// requests waiting for an approver. What each section needs comes from /api/auth/me.

import { api } from './api.js';
import { $, can, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

let user = null;
let words = null;

function showError(err) {
  $('page-error').textContent = err ? describeApiError(err) : '';
  $('page-error').hidden = !err;
}

const list = (value) => value.split(',').map((v) => v.trim()).filter(Boolean);
const options = (select, values) => select.append(...values.map((v) => el('option', { value: v, textContent: v })));

async function acknowledge(alert) {
  const note = window.prompt(`Acknowledge the alert "${alert.rule}" on ${alert.user}'s session. Note:`, '');
  if (note === null) return;
  try {
    await api('POST', `/api/alerts/${alert.id}/ack`, { note });
    await loadAlerts();
  } catch (err) { showError(err); }
}

async function loadAlerts(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  for (const [key, id] of [['severity', 'a-severity'], ['rule', 'a-rule'], ['user', 'a-user'],
    ['connection', 'a-connection'], ['acknowledged', 'a-ack']]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  try {
    const body = await api('GET', `/api/alerts?${params}`);
    $('alerts-body').replaceChildren(...body.alerts.map((a) => {
      const ack = a.acknowledged ? el('span', { textContent: `${a.acknowledged_by}: ${a.note || ''}` })
        : (can(user, 'alert.ack') ? el('button', { className: 'button button-ghost', type: 'button',
          textContent: 'Acknowledge', onclick: () => acknowledge(a) }) : el('span', { textContent: 'no' }));
      return el('tr', { dataset: { alertId: String(a.id), severity: a.severity } },
        el('td', { textContent: when(a.at) }), el('td', { textContent: a.severity }),
        el('td', { textContent: a.rule }), el('td', { textContent: a.blocked ? 'blocked' : a.action }),
        el('td', { textContent: a.user }), el('td', { textContent: a.text }),
        el('td', {}, el('a', { href: `player.html?session=${encodeURIComponent(a.session_id)}&t=${a.offset_ms || 0}`,
          textContent: a.session_id.slice(0, 8) })),
        el('td', {}, ack));
    }));
  } catch (err) { showError(err); }
}

async function deletePolicy(policy) {
  if (!window.confirm(`Delete the rule "${policy.name}"?`)) return;
  try {
    await api('DELETE', `/api/admin/policies/${policy.id}`);
    await loadPolicies();
  } catch (err) { showError(err); }
}

async function loadPolicies() {
  const policies = await api('GET', '/api/admin/policies');
  $('policies-body').replaceChildren(...policies.map((p) => {
    const scope = Object.entries(p.scope).filter(([, v]) => v.length).map(([k, v]) => `${k}: ${v.join(', ')}`).join('; ');
    return el('tr', { dataset: { policyId: String(p.id) } },
      el('td', { textContent: p.name }), el('td', { textContent: `${p.match_kind}: ${p.match_value.join(' | ')}` }),
      el('td', { textContent: p.source }), el('td', { textContent: scope || 'all' }),
      el('td', { textContent: p.severity }), el('td', { textContent: p.action }),
      el('td', {}, el('button', { className: 'button button-danger', type: 'button', textContent: 'Delete',
        onclick: () => deletePolicy(p) })));
  }));
}

async function savePolicy(event) {
  event.preventDefault();
  const kind = $('p-kind').value;
  const raw = $('p-value').value;
  const spec = {
    name: $('p-name').value, match_kind: kind,
    match_value: kind === 'words' ? raw.split('\n').map((w) => w.trim()).filter(Boolean) : [raw.trim()],
    source: $('p-source').value, severity: $('p-severity').value, action: $('p-action').value,
    scope: { connections: list($('p-connections').value), roles: list($('p-roles').value), users: list($('p-users').value),
             tags: list($('p-tags').value) },
  };
  try {
    await api('POST', '/api/admin/policies', spec);
    showError(null);
    $('policy-form').reset();
    await loadPolicies();
  } catch (err) { showError(err); }
}

async function decide(request, approve) {
  const note = window.prompt(`${approve ? 'Approve' : 'Deny'} ${request.user}'s access to ${request.connection_id}. Note:`, '');
  if (note === null) return;
  try {
    await api('POST', `/api/admin/access-requests/${request.id}/decision`, { approve, note });
    await loadAccess();
  } catch (err) { showError(err); }
}

async function loadAccess() {
  const pending = await api('GET', '/api/admin/access-requests?status=pending');
  $('access-body').replaceChildren(...pending.map((r) => el('tr', { dataset: { requestId: String(r.id) } },
    el('td', { textContent: r.user }), el('td', { textContent: r.connection_id }),
    el('td', { textContent: `${when(r.starts_at)} – ${when(r.ends_at)}` }), el('td', { textContent: r.reason }),
    el('td', {}, el('button', { className: 'button button-primary', type: 'button', textContent: 'Approve',
      onclick: () => decide(r, true) }), el('button', { className: 'button button-danger', type: 'button',
      textContent: 'Deny', onclick: () => decide(r, false) })))));
}

async function main() {
  user = await enterPage('alert.read');
  if (!user) return;
  words = await api('GET', '/api/vocabulary');
  options($('a-severity'), words.severities);
  $('alert-filters').addEventListener('submit', loadAlerts);
  try {
    await loadAlerts();
    if (can(user, 'policy.admin')) {
      options($('p-kind'), words.match_kinds);
      options($('p-source'), words.rule_sources);
      options($('p-severity'), words.severities);
      options($('p-action'), words.rule_actions);
      const presets = await api('GET', '/api/admin/policies/presets');
      $('presets').textContent = 'Presets: ' + Object.entries(presets).map(([n, p]) => `${n} (${p.description})`).join('; ');
      $('policy-form').addEventListener('submit', savePolicy);
      $('policies-section').hidden = false;
      await loadPolicies();
    }
    if (can(user, 'access.approve')) {
      $('access-section').hidden = false;
      await loadAccess();
    }
    document.body.dataset.view = 'guardrails';
  } catch (err) { showError(err); }
}

main();
