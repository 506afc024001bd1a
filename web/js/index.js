// The start page: sign in, then the list of connections this user may open.
// document.body.dataset.view says which view is showing ('loading' | 'login' |
// 'connections'), for the stylesheet and for tests.

import { listConnections, login, logout, me } from './api.js';
import { describeApiError } from './status.js';

// Who may review recordings comes from /api/auth/me (`capabilities`); the API enforces it,
// the link is a convenience.
const REVIEW_CAPABILITY = 'session.view_all';

// Protocols we know get their own badge colour; anything else gets the neutral one.
const KNOWN_PROTOCOLS = new Set(['rdp', 'vnc']);

const $ = (id) => document.getElementById(id);
const ui = {
  loginView: $('login-view'),
  connectionsView: $('connections-view'),
  form: $('login-form'),
  username: $('username'),
  password: $('password'),
  submit: $('login-submit'),
  loginError: $('login-error'),
  pageError: $('page-error'),
  userNav: $('user-nav'),
  userName: $('user-name'),
  userRole: $('user-role'),
  sessionsLink: $('sessions-link'),
  logout: $('logout'),
  refresh: $('refresh'),
  list: $('connection-list'),
  listStatus: $('connections-status'),
};

function showError(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

function setView(view) {
  document.body.dataset.view = view;
  ui.loginView.hidden = view !== 'login';
  ui.connectionsView.hidden = view !== 'connections';
  ui.userNav.hidden = view !== 'connections';
}

function showLogin(message) {
  setView('login');
  showError(ui.loginError, message);
  ui.password.value = '';
  (ui.username.value ? ui.password : ui.username).focus();
}

function showUser(user) {
  ui.userName.textContent = user.username || '';
  const role = typeof user.role === 'string' ? user.role : '';
  ui.userRole.textContent = role;
  ui.userRole.hidden = !role;
  const capabilities = Array.isArray(user.capabilities) ? user.capabilities : [];
  ui.sessionsLink.hidden = !capabilities.includes(REVIEW_CAPABILITY);
}

/** One list item: a link to the client page with the name and a protocol badge. */
function connectionItem(conn) {
  const protocol = String(conn.protocol || '').toLowerCase();
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'connection';
  a.href = `client.html?id=${encodeURIComponent(String(conn.id))}`;
  a.dataset.connectionId = String(conn.id);

  const badge = document.createElement('span');
  badge.className = 'badge' + (KNOWN_PROTOCOLS.has(protocol) ? ` badge-${protocol}` : '');
  badge.textContent = protocol || '?';
  badge.title = `Protocol: ${protocol ? protocol.toUpperCase() : 'unknown'}`;

  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = String(conn.name ?? conn.id); // textContent: names are never HTML

  const open = document.createElement('span');
  open.className = 'open';
  open.setAttribute('aria-hidden', 'true');
  open.textContent = 'Open →';

  a.append(badge, name, open);
  a.setAttribute('aria-label', `Open ${name.textContent} (${badge.textContent.toUpperCase()}, recorded)`);
  li.append(a);
  return li;
}

async function loadConnections() {
  ui.listStatus.textContent = 'Loading your connections…';
  showError(ui.pageError, '');
  let connections;
  try {
    connections = await listConnections();
  } catch (err) {
    if (err.status === 401) { showLogin('Your sign-in has expired. Sign in again.'); return; }
    ui.listStatus.textContent = '';
    showError(ui.pageError, describeApiError(err));
    return;
  }
  const items = Array.isArray(connections) ? connections.filter((c) => c && c.id !== undefined && c.id !== null) : [];
  ui.list.replaceChildren(...items.map(connectionItem));
  if (items.length === 0) {
    ui.listStatus.textContent = '';
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'No connections are assigned to you. Ask your administrator for access.';
    ui.list.replaceChildren(empty);
  } else {
    ui.listStatus.textContent = `${items.length} connection${items.length === 1 ? '' : 's'} available.`;
  }
}

async function showConnections(user) {
  showUser(user);
  setView('connections');
  await loadConnections();
}

ui.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (!username || !password) {
    showError(ui.loginError, 'Enter your username and password.');
    (username ? ui.password : ui.username).focus();
    return;
  }
  ui.submit.disabled = true;
  ui.submit.textContent = 'Signing in…';
  try {
    await login(username, password);
    showError(ui.loginError, '');
    ui.password.value = '';
    // The sign-in answer names the user; what they may do is /api/auth/me's to say.
    await showConnections(await me());
  } catch (err) {
    showLogin(err.status === 401 ? 'Incorrect username or password.' : describeApiError(err));
  } finally {
    ui.submit.disabled = false;
    ui.submit.textContent = 'Sign in';
  }
});

ui.logout.addEventListener('click', async () => {
  try {
    await logout();
  } catch {
    // Signed out or not, the page forgets the user; the cookie expires anyway.
  }
  ui.list.replaceChildren();
  showLogin('');
});

ui.refresh.addEventListener('click', () => loadConnections());

async function start() {
  let user;
  try {
    user = await me();
  } catch (err) {
    showLogin(err.status === 401 ? '' : describeApiError(err));
    return;
  }
  await showConnections(user || {});
}

start();
