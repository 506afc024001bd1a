// The client page (client.html?id=<connection id>): gets a one-time tunnel token,
// opens the remote session full-window and keeps the status line, the recording
// notice and the end-of-session overlay truthful.

import { connectionConsent, listConnections, tunnelToken } from './api.js';
import { ClipboardBridge } from './clipboard.js';
import { RemoteSession, State, makeError } from './remote.js';
import { Source, describeApiError } from './status.js';

// The id comes from the address bar: anything longer than this is not one of ours.
const MAX_ID_LENGTH = 200;

// What an HTTP status means when asking for a connection's tunnel token.
const CONNECTION_ERRORS = {
  403: 'You are not allowed to open this connection.',
  404: 'This connection does not exist or is no longer assigned to you.',
};

const $ = (id) => document.getElementById(id);
const ui = {
  name: $('connection-name'),
  message: $('status-message'),
  detail: $('status-detail'),
  display: $('display'),
  disconnect: $('disconnect'),
  reconnect: $('reconnect'),
  overlay: $('overlay'),
  overlayTitle: $('overlay-title'),
  overlayMessage: $('overlay-message'),
  clipboardToggle: $('clipboard-toggle'),
  clipboardPanel: $('clipboard-panel'),
  clipboardText: $('clipboard-text'),
  clipboardNote: $('clipboard-note'),
  toolbar: $('toolbar'),
};

// Keys typed while the page's own controls have focus stay in the page.
function isLocalUiFocus(el) {
  if (!el || el === document.body || el === document.documentElement) return false;
  return ui.toolbar.contains(el) || ui.clipboardPanel.contains(el) || ui.overlay.contains(el);
}

const clipboard = new ClipboardBridge(ui.clipboardText, () => {
  ui.clipboardNote.textContent = clipboard.truncated
    ? 'Text received from the remote desktop (cut to the first million characters).'
    : 'Text received from the remote desktop.';
}, (status) => {
  ui.clipboardNote.textContent = status.code === 0x0303
    ? 'Sending text to the remote clipboard is not allowed on this connection.'
    : 'The gateway refused the clipboard text.';
});

const session = new RemoteSession({
  container: ui.display,
  isLocalUiFocus,
  clipboard,
  onChange: render,
});

// For tests and for the curious: the live objects behind the page.
window.guiRecorder = {
  session,
  get client() { return session.client; },
  get state() { return session.state; },
  get lastError() { return session.lastError; },
};

const TITLES = {
  [State.DISCONNECTED]: 'Disconnected',
  [State.ERROR]: 'Connection failed',
};

function statusText(s) {
  switch (s.state) {
    case State.CONNECTING: return 'Connecting…';
    case State.CONNECTED: return s.unstable ? 'Connected, but the network is slow or interrupted…' : 'Connected';
    case State.DISCONNECTED: return s.userDisconnected ? 'You disconnected.' : 'The session has ended.';
    default: return s.lastError ? s.lastError.message : 'The connection failed.';
  }
}

function errorDetail(err) {
  if (!err) return '';
  const parts = [];
  if (err.codeHex) parts.push(`code ${err.codeHex}`);
  if (err.httpStatus) parts.push(`HTTP ${err.httpStatus}`);
  // guacd's own words help an administrator; a bare number repeats the code.
  if (err.serverMessage && !/^\d+$/.test(err.serverMessage.trim())) parts.push(err.serverMessage);
  return parts.length ? `(${parts.join(' · ')})` : '';
}

function render(s) {
  document.body.dataset.state = s.state;
  const text = statusText(s);
  ui.message.textContent = text;
  ui.detail.textContent = s.state === State.ERROR ? errorDetail(s.lastError) : (s.notice || '');

  const ended = s.state === State.DISCONNECTED || s.state === State.ERROR;
  ui.disconnect.disabled = ended;
  ui.overlay.hidden = !ended;
  if (ended) {
    ui.overlayTitle.textContent = TITLES[s.state];
    ui.overlayMessage.textContent = text;
    ui.reconnect.textContent = needsSignIn(s.lastError) ? 'Sign in' : 'Reconnect';
    ui.reconnect.focus();
  }
}

function needsSignIn(err) {
  return err && (err.httpStatus === 401 || (err.code === 0x0301 && err.source === Source.TUNNEL));
}

async function showConnectionName(id) {
  try {
    const connections = await listConnections();
    const match = Array.isArray(connections) && connections.find((c) => String(c.id) === id);
    if (match && typeof match.name === 'string') {
      ui.name.textContent = match.name;
      document.title = `${match.name} · gui-recorder`;
    }
  } catch {
    // The name is decoration; the token request reports real problems.
  }
}

async function start() {
  const id = new URLSearchParams(location.search).get('id') || '';
  if (!id || id.length > MAX_ID_LENGTH) {
    session.failBeforeConnect(makeError({
      source: Source.TUNNEL, text: 'No connection was chosen. Go back and pick one of your connections.',
    }));
    return;
  }
  showConnectionName(id);

  let answer;
  try {
    // A connection's notice is accepted before each session; the acceptance is recorded with it.
    const notice = await connectionConsent(id);
    let consentVersion;
    if (notice && notice.required) {
      if (!window.confirm(`${notice.text}\n\nAccept this notice to start the session.`)) {
        session.failBeforeConnect(makeError({
          source: Source.TUNNEL, text: 'The notice was not accepted, so the session was not started.',
        }));
        return;
      }
      consentVersion = notice.version;
    }
    answer = await tunnelToken(id, consentVersion);
  } catch (err) {
    session.failBeforeConnect(makeError({
      source: Source.TUNNEL, httpStatus: err.status || null, serverMessage: err.detail || '', text: describeApiError(err, CONNECTION_ERRORS),
    }));
    return;
  }
  if (!answer || typeof answer.token !== 'string' || !answer.token) {
    session.failBeforeConnect(makeError({ source: Source.TUNNEL, text: 'The gateway sent an unreadable answer.' }));
    return;
  }
  session.connect(answer.token);
}

ui.disconnect.addEventListener('click', () => session.disconnect());

ui.reconnect.addEventListener('click', () => {
  // A sign-in problem cannot be fixed by retrying here: go to the sign-in page.
  if (needsSignIn(session.lastError)) location.assign('./');
  else location.reload(); // a fresh page gets a fresh one-time token
});

ui.clipboardToggle.addEventListener('click', () => {
  const open = ui.clipboardPanel.hidden;
  ui.clipboardPanel.hidden = !open;
  ui.clipboardToggle.setAttribute('aria-expanded', String(open));
  if (open) ui.clipboardText.focus();
});

// Closing the tab ends the session cleanly instead of waiting for a timeout.
window.addEventListener('pagehide', () => {
  if (session.client && session.state !== State.DISCONNECTED && session.state !== State.ERROR) session.disconnect();
});

render(session);
start();
