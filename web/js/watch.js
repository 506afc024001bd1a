// Live, read-only view of a running session (auditors, admins): the gateway
// joins the user's guacd connection read-only; nothing typed here is sent.

import { api } from './api.js';
import { $, can, enterPage } from './common.js';
import { describeApiError } from './status.js';

const sessionId = new URLSearchParams(location.search).get('session') || '';

function setState(state, message) {
  document.body.dataset.state = state;
  $('status-message').textContent = message;
}

async function main() {
  const user = await enterPage('session.watch');
  if (!user) return;
  $('terminate').hidden = !can(user, 'session.terminate');
  document.body.dataset.view = 'watch';
  let session;
  try {
    session = await api('GET', `/api/sessions/${encodeURIComponent(sessionId)}`);
    $('title').textContent = `Live: ${session.user} on ${session.connection_name}`;
    const { token } = await api('POST', `/api/sessions/${encodeURIComponent(sessionId)}/watch-token`);
    connect(token);
  } catch (err) {
    setState('error', describeApiError(err, { 404: 'This session is not running (it may have ended).' }));
  }
  $('terminate').addEventListener('click', async () => {
    const reason = window.prompt('End this session for the user? Reason (optional):', '');
    if (reason === null) return;
    try {
      await api('POST', `/api/sessions/${encodeURIComponent(sessionId)}/terminate`, { reason });
      // The end may already have reached this page: never overwrite it.
      if (document.body.dataset.state === 'connected') $('status-message').textContent = 'Ending the session…';
    } catch (err) {
      $('status-message').textContent = describeApiError(err);
    }
  });
}

function connect(token) {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/watch';
  const tunnel = new Guacamole.WebSocketTunnel(url);
  const client = new Guacamole.Client(tunnel);
  window.guiRecorder = { client };
  const display = client.getDisplay();
  $('display').append(display.getElement());
  // Fit the whole remote screen in the window, width and height; never enlarge
  // (an upscaled terminal is blurry, and the auditor reads text).
  const fit = () => {
    const width = display.getWidth();
    const height = display.getHeight();
    if (!width || !height) return;
    const box = $('display');
    const room = window.innerHeight - box.getBoundingClientRect().top - window.scrollY - 16;
    display.scale(Math.min(1, (box.parentElement.clientWidth - 4) / width, Math.max(0.1, room / height)));
  };
  display.onresize = fit;
  window.addEventListener('resize', fit);
  let ended = false;
  client.onstatechange = (state) => {
    if (state === Guacamole.Client.State.CONNECTED) setState('connected', 'Watching live. Your keyboard and mouse are not sent.');
    if (state === Guacamole.Client.State.DISCONNECTED && !ended) {
      ended = true;
      if (document.body.dataset.state !== 'error') setState('disconnected', 'The session has ended.');
    }
  };
  const fail = (status) => {
    if (ended) return;
    ended = true;
    const closed = status.code === Guacamole.Status.Code.SESSION_CLOSED;
    setState(closed ? 'disconnected' : 'error', closed ? 'The session has ended.' : `Live view ended: ${status.message || status.code}`);
  };
  client.onerror = fail;
  tunnel.onerror = fail;
  client.connect(new URLSearchParams({ token, width: '1024', height: '768' }).toString());
  window.addEventListener('beforeunload', () => client.disconnect());
}

main();
