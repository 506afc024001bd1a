// The admin console: users, groups, connections (with test-connect), grants, runtime settings.
// Every list and choice comes from the API (roles, sources and protocols from /api/vocabulary); the
// connections' credentials are write-only: the form never shows a stored one, only whether it is set.

import { api } from './api.js';
import { $, can, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

const TABS = ['users', 'groups', 'connections', 'grants', 'settings'];
let user = null;
let words = null;
let editing = null; // the connection being edited, or null for a new one

const list = (text) => String(text || '').split(',').map((s) => s.trim()).filter(Boolean);
const enc = encodeURIComponent;

function showError(text) {
  $('page-error').textContent = text;
  $('page-error').hidden = !text;
}

function notice(text) {
  $('page-notice').textContent = text;
  $('page-notice').hidden = !text;
}

/** Run an API action; show its error, or its notice and reload the section. */
async function act(what, done, reload) {
  try {
    await what();
    showError('');
    notice(done);
    await reload();
  } catch (err) {
    showError(describeApiError(err));
  }
}

function button(label, className, onclick) {
  return el('button', { type: 'button', className: `button ${className}`, textContent: label, onclick });
}

// -- users --------------------------------------------------------------------------------------------

function roleSelect(u) {
  const select = el('select', { className: 'role-select', ariaLabel: `Role of ${u.username}` },
    ...words.roles.map((r) => el('option', { value: r, textContent: r, selected: r === u.role })));
  select.addEventListener('change', () => act(
    () => api('PUT', `/api/admin/users/${enc(u.username)}/role`, { role: select.value }),
    `${u.username} is now ${select.value}.`, loadUsers));
  return select;
}

function userRow(u) {
  const actions = el('div', { className: 'actions' });
  actions.append(u.disabled
    ? button('Enable', 'button-ghost enable', () => act(() => api('POST', `/api/admin/users/${enc(u.username)}/enable`),
      `${u.username} may sign in again.`, loadUsers))
    : button('Disable', 'button-danger disable', () => act(() => api('POST', `/api/admin/users/${enc(u.username)}/disable`),
      `${u.username} is disabled: signed out, live sessions ended.`, loadUsers)));
  if (u.source === 'local') {
    actions.append(button('Reset password', 'button-ghost reset-password', () => {
      $('pw-user').textContent = u.username;
      $('password-form').hidden = false;
      $('pw-password').focus();
    }));
  }
  actions.append(button('Groups', 'button-ghost set-groups', () => {
    const groups = window.prompt(`Groups of ${u.username} (comma-separated):`, u.groups.join(', '));
    if (groups === null) return;
    act(() => api('PUT', `/api/admin/users/${enc(u.username)}/groups`, { groups: list(groups) }),
      `Groups of ${u.username} saved.`, loadUsers);
  }));
  actions.append(button('Scope', 'button-ghost set-scope', () => {
    const tags = window.prompt(`${u.username} oversees only sessions of connections tagged (comma-separated; `
      + 'empty: every session):', u.scope_tags.join(', '));
    if (tags === null) return;
    act(() => api('PUT', `/api/admin/users/${enc(u.username)}/scope`, { tags: list(tags) }),
      `Scope of ${u.username} saved.`, loadUsers);
  }));
  actions.append(button('Delete', 'button-ghost delete-user', () => {
    if (!window.confirm(`Delete ${u.username}? Their recorded sessions stay.`)) return;
    act(() => api('DELETE', `/api/admin/users/${enc(u.username)}`), `${u.username} deleted.`, loadUsers);
  }));
  return el('tr', { dataset: { username: u.username, disabled: String(u.disabled) } },
    el('td', { textContent: u.username }), el('td', {}, roleSelect(u)), el('td', { textContent: u.source }),
    el('td', {}, el('span', { className: `status-pill ${u.disabled ? 'status-terminated' : 'status-active'}`,
      textContent: u.disabled ? 'disabled' : 'enabled' })),
    el('td', { textContent: u.last_sign_in_at ? when(u.last_sign_in_at) : 'never' }),
    el('td', { textContent: u.groups.join(', ') }),
    el('td', { className: 'oversees', textContent: u.oversees.length ? u.oversees.join(', ') : 'all' }),
    el('td', {}, actions));
}

async function loadUsers() {
  const users = await api('GET', '/api/admin/users');
  $('users-body').replaceChildren(...users.map(userRow));
}

function sourceChanged() {
  const local = $('u-source').value === 'local';
  $('u-password-label').hidden = !local;
  $('u-password').required = local;
}

function createUser(event) {
  event.preventDefault();
  const local = $('u-source').value === 'local';
  const body = { username: $('u-name').value.trim(), role: $('u-role').value, source: $('u-source').value,
    groups: list($('u-groups').value) };
  if (local) body.password = $('u-password').value;
  act(async () => {
    await api('POST', '/api/admin/users', body);
    $('user-form').reset();
    sourceChanged();
  }, `${body.username} created.`, loadUsers);
}

function savePassword(event) {
  event.preventDefault();
  const name = $('pw-user').textContent;
  act(async () => {
    await api('PUT', `/api/admin/users/${enc(name)}/password`, { password: $('pw-password').value });
    $('password-form').reset();
    $('password-form').hidden = true;
  }, `New password set for ${name}; their sign-ins ended.`, loadUsers);
}

// -- groups -------------------------------------------------------------------------------------------

let groupsByName = new Map();

function groupRow(g) {
  return el('tr', { dataset: { group: g.name } },
    el('td', { textContent: g.name }), el('td', { textContent: g.description }),
    el('td', { textContent: g.members.join(', ') }),
    el('td', { textContent: g.scope_tags.length ? g.scope_tags.join(', ') : 'all' }),
    el('td', {}, el('div', { className: 'actions' },
      button('Edit', 'button-ghost edit-group', () => {
        $('g-name').value = g.name;
        $('g-description').value = g.description;
        $('g-members').value = g.members.join(', ');
        $('g-scope').value = g.scope_tags.join(', ');
      }),
      button('Delete', 'button-ghost delete-group', () => {
        if (!window.confirm(`Delete the group ${g.name} and its grants?`)) return;
        act(() => api('DELETE', `/api/admin/groups/${enc(g.name)}`), `${g.name} deleted.`, loadGroups);
      }))));
}

async function loadGroups() {
  const groups = await api('GET', '/api/admin/groups');
  groupsByName = new Map(groups.map((g) => [g.name, g]));
  $('groups-body').replaceChildren(...groups.map(groupRow));
}

function saveGroup(event) {
  event.preventDefault();
  const body = { name: $('g-name').value.trim(), description: $('g-description').value,
    members: list($('g-members').value), scope_tags: list($('g-scope').value) };
  const exists = groupsByName.has(body.name);
  act(async () => {
    await api(exists ? 'PUT' : 'POST', exists ? `/api/admin/groups/${enc(body.name)}` : '/api/admin/groups', body);
    $('group-form').reset();
  }, `${body.name} saved.`, loadGroups);
}

// -- connections --------------------------------------------------------------------------------------

function credentials(c) {
  const set = [['username', c.has_username], ['password', c.has_password], ['domain', c.has_domain]]
    .filter(([, on]) => on).map(([name]) => name);
  return [...set, ...c.secret_parameters].join(', ') || 'none';
}

function showTest(c, result) {
  const box = $('test-result');
  box.hidden = false;
  box.dataset.ok = String(result.ok);
  box.dataset.status = String(result.status);
  box.className = `panel test-result ${result.ok ? 'test-ok' : 'test-failed'}`;
  const hex = `0x${result.status.toString(16).padStart(4, '0').toUpperCase()}`;
  box.replaceChildren(
    el('strong', { textContent: `${c.name}: ${result.ok ? 'connected' : 'failed'}` }),
    el('span', { textContent: ` — guacd status ${hex} (${result.status_text}). ${result.message}` }),
    el('span', { className: 'muted', textContent: ` ${result.seconds.toFixed(2)} s` }));
}

async function testConnection(c, btn) {
  btn.disabled = true;
  $('test-result').hidden = false;
  $('test-result').textContent = `Testing ${c.name}: guacd is connecting to ${c.host}:${c.port}…`;
  delete $('test-result').dataset.ok;
  try {
    showTest(c, await api('POST', `/api/admin/connections/${enc(c.id)}/test`));
  } catch (err) {
    showError(describeApiError(err));
  } finally {
    btn.disabled = false;
  }
}

function editConnection(c) {
  editing = c;
  $('c-title').textContent = `Edit ${c.name}`;
  $('c-id').value = c.id;
  $('c-id').readOnly = true;
  $('c-name').value = c.name;
  $('c-protocol').value = c.protocol;
  $('c-host').value = c.host;
  $('c-port').value = c.port;
  $('c-tags').value = c.tags.join(', ');
  $('c-parameters').value = Object.entries(c.parameters).map(([k, v]) => `${k}=${v}`).join(', ');
  for (const field of ['username', 'password', 'domain']) {
    $(`c-${field}`).value = ''; // write-only: never shown, only whether one is stored
    $(`c-${field}`).placeholder = c[`has_${field}`] ? '(set; empty keeps it)' : '(not set)';
  }
  $('c-name').focus();
}

function newConnection() {
  editing = null;
  $('conn-form').reset();
  $('c-title').textContent = 'New connection';
  $('c-id').readOnly = false;
  for (const field of ['username', 'password', 'domain']) $(`c-${field}`).placeholder = '';
}

function connectionRow(c) {
  const test = button('Test', 'button-ghost test-connection', () => testConnection(c, test));
  return el('tr', { dataset: { connectionId: c.id } },
    el('td', { textContent: `${c.name} (${c.id})` }),
    el('td', {}, el('span', { className: `badge badge-${c.protocol}`, textContent: c.protocol })),
    el('td', { textContent: `${c.host}:${c.port}` }), el('td', { textContent: c.tags.join(', ') }),
    el('td', { className: 'credentials', textContent: credentials(c) }),
    el('td', {}, el('div', { className: 'actions' }, button('Edit', 'button-ghost edit-connection',
      () => editConnection(c)), test,
    button('Delete', 'button-ghost delete-connection', () => {
      if (!window.confirm(`Delete the connection ${c.name}? Its recorded sessions stay.`)) return;
      act(() => api('DELETE', `/api/admin/connections/${enc(c.id)}`), `${c.name} deleted.`, loadConnections);
    }))));
}

async function loadConnections() {
  const rows = await api('GET', '/api/admin/connections');
  $('connections-body').replaceChildren(...rows.map(connectionRow));
  const tags = [...new Set(rows.flatMap((c) => c.tags))];
  $('gr-what-list').replaceChildren(...rows.map((c) => el('option', { value: c.id, label: c.name })),
    ...tags.map((t) => el('option', { value: t, label: `tag ${t}` })));
}

function saveConnection(event) {
  event.preventDefault();
  const parameters = Object.fromEntries(list($('c-parameters').value).map((pair) => {
    const at = pair.indexOf('=');
    return at < 0 ? [pair, ''] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
  }));
  const body = { id: $('c-id').value.trim(), name: $('c-name').value.trim(), protocol: $('c-protocol').value,
    host: $('c-host').value.trim(), port: Number($('c-port').value), tags: list($('c-tags').value), parameters };
  if (editing) {
    // What an admin sets on a connection beyond this form stays as it is.
    Object.assign(body, { allowed_users: editing.allowed_users, allowed_roles: editing.allowed_roles,
      recording_policy: editing.recording_policy });
  }
  for (const field of ['username', 'password', 'domain']) {
    if ($(`c-${field}`).value) body[field] = $(`c-${field}`).value; // empty: keep (edit) or none (new)
  }
  const wasEditing = editing;
  act(async () => {
    await api(wasEditing ? 'PUT' : 'POST',
      wasEditing ? `/api/admin/connections/${enc(body.id)}` : '/api/admin/connections', body);
    newConnection();
  }, `${body.name} saved.`, loadConnections);
}

// -- grants -------------------------------------------------------------------------------------------

function grantRow(g) {
  return el('tr', { dataset: { grantId: String(g.id) } },
    el('td', { textContent: g.user ? `user ${g.user}` : `group ${g.group}` }),
    el('td', { textContent: g.connection ? `connection ${g.connection}` : `tag ${g.tag}` }),
    el('td', { textContent: when(g.created_at) }), el('td', { textContent: g.created_by || '' }),
    el('td', {}, button('Revoke', 'button-ghost revoke-grant',
      () => act(() => api('DELETE', `/api/admin/grants/${g.id}`), 'Grant revoked.', loadGrants))));
}

let whoChoices = { user: [], group: [] };

function whoOptions() {
  $('gr-who-list').replaceChildren(...whoChoices[$('gr-who-kind').value].map((name) => el('option', { value: name })));
}

async function loadGrants() {
  const [grants, users, groups] = await Promise.all([api('GET', '/api/admin/grants'),
    api('GET', '/api/admin/users'), api('GET', '/api/admin/groups')]);
  $('grants-body').replaceChildren(...grants.map(grantRow));
  whoChoices = { user: users.map((u) => u.username), group: groups.map((g) => g.name) };
  whoOptions();
  await loadConnections(); // the connections and tags a grant can name
}

function createGrant(event) {
  event.preventDefault();
  const body = { [$('gr-who-kind').value]: $('gr-who').value.trim(),
    [$('gr-what-kind').value]: $('gr-what').value.trim() };
  act(async () => {
    await api('POST', '/api/admin/grants', body);
    $('grant-form').reset();
  }, 'Granted.', loadGrants);
}

// -- settings -----------------------------------------------------------------------------------------

async function loadSettings() {
  const rows = await api('GET', '/api/admin/settings');
  $('settings-body').replaceChildren(...rows.map((r) => el('tr', { dataset: { variable: r.variable } },
    el('td', {}, el('code', { textContent: r.variable })), el('td', { className: 'setting-value', textContent: r.value }),
    el('td', { className: 'muted', textContent: r.default }), el('td', { textContent: r.description }))));
}

// -- the page -----------------------------------------------------------------------------------------

const LOADERS = { users: loadUsers, groups: loadGroups, connections: loadConnections, grants: loadGrants,
  settings: loadSettings };
const NEEDS = { users: 'user.admin', groups: 'user.admin', connections: 'connection.admin',
  grants: 'connection.admin', settings: 'ops.read' };

async function show(tab) {
  document.body.dataset.tab = tab;
  for (const name of TABS) {
    $(`section-${name}`).hidden = name !== tab;
    $(`tab-${name}`).setAttribute('aria-selected', String(name === tab));
  }
  notice('');
  try {
    await LOADERS[tab]();
    showError('');
    document.body.dataset.view = `admin-${tab}`;
  } catch (err) {
    showError(describeApiError(err));
  }
}

async function main() {
  user = await enterPage('user.admin');
  if (!user) return;
  words = await api('GET', '/api/vocabulary');
  $('u-role').append(...words.roles.map((r) => el('option', { value: r, textContent: r })));
  $('u-source').append(...words.user_sources.map((s) => el('option', { value: s, textContent: s })));
  $('c-protocol').append(...words.protocols.map((p) => el('option', { value: p, textContent: p })));
  for (const name of TABS) {
    $(`tab-${name}`).hidden = !can(user, NEEDS[name]);
    $(`tab-${name}`).addEventListener('click', () => {
      window.history.replaceState(null, '', `#${name}`);
      show(name);
    });
  }
  $('u-source').addEventListener('change', sourceChanged);
  $('user-form').addEventListener('submit', createUser);
  $('password-form').addEventListener('submit', savePassword);
  $('pw-cancel').addEventListener('click', () => { $('password-form').reset(); $('password-form').hidden = true; });
  $('group-form').addEventListener('submit', saveGroup);
  $('conn-form').addEventListener('submit', saveConnection);
  $('c-new').addEventListener('click', newConnection);
  $('grant-form').addEventListener('submit', createGrant);
  $('gr-who-kind').addEventListener('change', whoOptions);
  sourceChanged();
  const wanted = window.location.hash.slice(1);
  await show(TABS.includes(wanted) ? wanted : 'users');
}

main();
