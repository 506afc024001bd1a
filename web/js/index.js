// The start page: sign in, then the list of connections this user may open.
// document.body.dataset.view says which view is showing ('loading' | 'login' | 'mfa' |
// 'connections'), for the stylesheet and for tests.
//
// Sign-in is a password (local or directory), then a TOTP code when the account's role needs one
// (enrolment shows the QR code the gateway made, then the recovery codes once), or single sign-on:
// a link to the provider, which sends the browser back here signed in, or with `#sso-error=...`.

import { listConnections, login, logout, me, myAccessRequests, requestAccess, secondFactor,
  signInProviders } from './api.js';
import { describeApiError } from './status.js';

// Who may review recordings comes from /api/auth/me (`capabilities`); the API enforces it,
// the link is a convenience.
const REVIEW_CAPABILITY = 'session.view_all';

// Protocols we know get their own badge colour; anything else gets the neutral one.
const KNOWN_PROTOCOLS = new Set(['rdp', 'vnc']);
// How long an access window may be asked for from this page (the API allows up to its own maximum).
const WINDOW_HOURS = [1, 2, 4, 8, 24];

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
  requestsSection: $('requests-section'),
  requests: $('request-list'),
  sso: $('sso'),
  ssoLogin: $('sso-login'),
  mfaView: $('mfa-view'),
  mfaIntro: $('mfa-intro'),
  mfaEnrol: $('mfa-enrol'),
  mfaQr: $('mfa-qr'),
  mfaSecret: $('mfa-secret'),
  mfaForm: $('mfa-form'),
  mfaCode: $('mfa-code'),
  mfaSubmit: $('mfa-submit'),
  mfaError: $('mfa-error'),
  mfaRecovery: $('mfa-recovery'),
  mfaRecoveryCodes: $('mfa-recovery-codes'),
  mfaContinue: $('mfa-continue'),
  mfaCancel: $('mfa-cancel'),
};

// The second step of a sign-in in progress: the ticket the password gave.
let mfaTicket = null;

function showError(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

function setView(view) {
  document.body.dataset.view = view;
  ui.loginView.hidden = view !== 'login';
  ui.mfaView.hidden = view !== 'mfa';
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

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

function badgeFor(protocol) {
  const badge = document.createElement('span');
  badge.className = 'badge' + (KNOWN_PROTOCOLS.has(protocol) ? ` badge-${protocol}` : '');
  badge.textContent = protocol || '?';
  badge.title = `Protocol: ${protocol ? protocol.toUpperCase() : 'unknown'}`;
  return badge;
}

function nameFor(conn) {
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = String(conn.name ?? conn.id); // textContent: names are never HTML
  return name;
}

/** One list item: a link to the client page with the name and a protocol badge; a connection that
 * needs an approved access window and has none open gets a request form instead of the link. */
function connectionItem(conn) {
  const protocol = String(conn.protocol || '').toLowerCase();
  const li = document.createElement('li');
  if (conn.requires_approval && !conn.access_until) {
    li.append(requestItem(conn, protocol));
    return li;
  }
  const a = document.createElement('a');
  a.className = 'connection';
  a.href = `client.html?id=${encodeURIComponent(String(conn.id))}`;
  a.dataset.connectionId = String(conn.id);
  const badge = badgeFor(protocol);
  const name = nameFor(conn);

  const open = document.createElement('span');
  open.className = 'open';
  open.setAttribute('aria-hidden', 'true');
  open.textContent = 'Open →';

  a.setAttribute('aria-label', `Open ${name.textContent} (${badge.textContent.toUpperCase()}, recorded)`
    + (conn.access_until ? `, access until ${when(conn.access_until)}` : ''));
  if (conn.access_until) {
    const until = Object.assign(document.createElement('small'), { className: 'until muted' });
    until.textContent = `access until ${when(conn.access_until)}`;
    name.append(until);
  }
  a.append(badge, name, open);
  li.append(a);
  return li;
}

/** A connection behind approval: why it cannot be opened, and the form to ask for a window. */
function requestItem(conn, protocol) {
  const box = document.createElement('div');
  box.className = 'connection connection-gated';
  box.dataset.connectionId = String(conn.id);
  const head = document.createElement('div');
  head.className = 'connection-head';
  const needs = document.createElement('span');
  needs.className = 'muted';
  needs.textContent = 'Needs an approved access window';
  head.append(badgeFor(protocol), nameFor(conn), needs);

  const form = document.createElement('form');
  form.className = 'request-form';
  form.noValidate = true;
  const reasonId = `reason-${conn.id}`;
  const hoursId = `hours-${conn.id}`;
  const reasonLabel = Object.assign(document.createElement('label'), { htmlFor: reasonId, textContent: 'Reason' });
  const reason = Object.assign(document.createElement('textarea'), { id: reasonId, name: 'reason', rows: 2,
    maxLength: 2000, required: true, placeholder: 'What you will do, and the ticket it is for' });
  const hoursLabel = Object.assign(document.createElement('label'), { htmlFor: hoursId, textContent: 'For' });
  const hours = Object.assign(document.createElement('select'), { id: hoursId, name: 'hours' });
  hours.append(...WINDOW_HOURS.map((h) => Object.assign(document.createElement('option'),
    { value: String(h), textContent: h === 1 ? '1 hour, from now' : `${h} hours, from now` })));
  const error = Object.assign(document.createElement('div'), { className: 'alert', hidden: true });
  error.setAttribute('role', 'alert');
  const submit = Object.assign(document.createElement('button'), { type: 'submit', className: 'button button-primary',
    textContent: 'Request access' });
  form.append(reasonLabel, reason, hoursLabel, hours, error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = reason.value.trim();
    if (text.length < 3) { showError(error, 'Say why you need access (a few words at least).'); reason.focus(); return; }
    submit.disabled = true;
    try {
      const start = new Date();
      await requestAccess(String(conn.id), text, start, new Date(start.getTime() + Number(hours.value) * 3600_000));
      showError(error, '');
      reason.value = '';
      await loadRequests();
    } catch (err) {
      if (err.status === 401) { showLogin('Your sign-in has expired. Sign in again.'); return; }
      showError(error, describeApiError(err));
    } finally {
      submit.disabled = false;
    }
  });
  box.append(head, form);
  return box;
}

/** The user's access requests: pending, approved (with the window) or denied (with the note). */
async function loadRequests() {
  let requests;
  try {
    requests = await myAccessRequests();
  } catch {
    ui.requestsSection.hidden = true; // the list of connections still stands
    return;
  }
  const items = Array.isArray(requests) ? requests : [];
  ui.requestsSection.hidden = items.length === 0;
  ui.requests.replaceChildren(...items.map((r) => {
    const li = document.createElement('li');
    li.className = `request request-${String(r.status)}`;
    li.dataset.requestId = String(r.id);
    li.dataset.status = String(r.status);
    const status = Object.assign(document.createElement('strong'), { textContent: String(r.status) });
    const what = document.createElement('span');
    what.textContent = ` ${r.connection_id}, ${when(r.starts_at)} to ${when(r.ends_at)}: ${r.reason}`;
    li.append(status, what);
    if (r.decided_by) {
      const by = Object.assign(document.createElement('span'), { className: 'muted' });
      by.textContent = ` (by ${r.decided_by}${r.note ? `: ${r.note}` : ''})`;
      li.append(by);
    }
    return li;
  }));
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
  await Promise.all([loadConnections(), loadRequests()]);
}

/** The code step after a right password: enrolment (QR code and key) or a code from the app. */
function showSecondFactor(answer) {
  mfaTicket = answer.ticket;
  const enrolling = answer.mfa === 'enroll';
  ui.mfaIntro.textContent = enrolling
    ? 'Your role needs a second factor. Scan this QR code with an authenticator app, then enter the 6-digit code it shows.'
    : 'Enter the 6-digit code your authenticator app shows for gui-recorder, or a recovery code.';
  ui.mfaEnrol.hidden = !enrolling;
  if (enrolling) {
    ui.mfaQr.src = String(answer.qr_svg || '');
    let key = '';
    try { key = new URL(String(answer.otpauth_uri)).searchParams.get('secret') || ''; } catch { key = ''; }
    ui.mfaSecret.textContent = key.replace(/(.{4})/g, '$1 ').trim();
  }
  ui.mfaForm.hidden = false;
  ui.mfaRecovery.hidden = true;
  ui.mfaCancel.hidden = false;
  ui.mfaCode.value = '';
  showError(ui.mfaError, '');
  setView('mfa');
  ui.mfaCode.focus();
}

ui.mfaForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = ui.mfaCode.value.trim();
  if (!code) { showError(ui.mfaError, 'Enter the code from your authenticator app.'); ui.mfaCode.focus(); return; }
  ui.mfaSubmit.disabled = true;
  try {
    const answer = await secondFactor(mfaTicket, code);
    mfaTicket = null;
    const codes = Array.isArray(answer.recovery_codes) ? answer.recovery_codes : [];
    if (codes.length) {
      // Shown once: the user continues when they have saved them.
      ui.mfaRecoveryCodes.replaceChildren(...codes.map((c) => {
        const li = document.createElement('li');
        li.textContent = String(c);
        return li;
      }));
      ui.mfaForm.hidden = true;
      ui.mfaEnrol.hidden = true;
      ui.mfaIntro.textContent = 'Your authenticator app is set up.';
      ui.mfaRecovery.hidden = false;
      ui.mfaCancel.hidden = true; // signed in already: nothing to start again
      ui.mfaContinue.focus();
      return;
    }
    await showConnections(await me());
  } catch (err) {
    if (err.status === 401 && /sign in again/.test(err.detail)) { mfaTicket = null; showLogin(err.detail); return; }
    showError(ui.mfaError, err.status === 401 ? 'That code is not right. Wait for the next one and try again.'
      : describeApiError(err));
    ui.mfaCode.select();
  } finally {
    ui.mfaSubmit.disabled = false;
  }
});

ui.mfaContinue.addEventListener('click', async () => {
  ui.mfaRecoveryCodes.replaceChildren();
  await showConnections(await me());
});

ui.mfaCancel.addEventListener('click', () => { mfaTicket = null; showLogin(''); });

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
    const answer = await login(username, password);
    showError(ui.loginError, '');
    ui.password.value = '';
    if (answer && answer.mfa) { showSecondFactor(answer); return; }
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

ui.refresh.addEventListener('click', () => Promise.all([loadConnections(), loadRequests()]));

/** The single sign-on button, when the gateway has a provider configured. */
async function offerSingleSignOn() {
  try {
    const providers = await signInProviders();
    if (providers && providers.oidc && providers.oidc_login_url) {
      ui.ssoLogin.href = String(providers.oidc_login_url);
      ui.ssoLogin.textContent = String(providers.oidc_label || 'Sign in with single sign-on');
      ui.sso.hidden = false;
    }
  } catch {
    // No button then: the password form still works.
  }
}

/** A refusal the gateway sent back from single sign-on, in the fragment (never sent to a server). */
function ssoErrorFromFragment() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const message = params.get('sso-error');
  if (message !== null) history.replaceState(null, '', window.location.pathname + window.location.search);
  return message;
}

async function start() {
  const ssoError = ssoErrorFromFragment();
  offerSingleSignOn();
  let user;
  try {
    user = await me();
  } catch (err) {
    showLogin(ssoError ? `Single sign-on failed: ${ssoError}` : err.status === 401 ? '' : describeApiError(err));
    return;
  }
  await showConnections(user || {});
}

start();
