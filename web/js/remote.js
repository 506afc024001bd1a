// One remote-desktop session in the page: Guacamole.Client over the gateway's
// WebSocket tunnel, its display fitted to a container, and local keyboard, mouse
// and touch forwarded to it.
//
// Guacamole.Client does not watch its tunnel (guacamole-client's ManagedClient
// does that), so this module does: a tunnel that closes ends the client, and the
// first failure reported, by guacd or by the tunnel, is the one the user sees.

/* global Guacamole */

import { Source, describeStatus, formatCode, isErrorCode } from './status.js';

/** The page-level states, also written to document.body.dataset.state. */
export const State = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
  ERROR: 'error',
});

// Resizing a window fires dozens of events; guacd and the remote desktop should
// see one size request once the user stops dragging.
const RESIZE_DEBOUNCE_MS = 250;

// guacamole-client caps automatic upscaling the same way: beyond this a small
// remote screen is just blurry.
const MAX_SCALE = 3;

// Guacamole.Client states (C:Client.js) mapped to ours; the disconnect states are
// decided in _clientStateChanged because they depend on whether an error came first.
const CLIENT_STATES = new Map([
  [0, State.CONNECTING],  // IDLE
  [1, State.CONNECTING],  // CONNECTING
  [2, State.CONNECTING],  // WAITING: tunnel open, no frame yet
  [3, State.CONNECTED],   // CONNECTED: first sync received
]);

/**
 * A connection failure, as shown to the user and exposed to tests.
 * `code` is the Guacamole status code (null for an API failure before the tunnel).
 */
export function makeError({ code = null, source, serverMessage = '', text, httpStatus = null }) {
  return {
    code,
    codeHex: code === null ? null : formatCode(code),
    source,
    serverMessage,
    httpStatus,
    message: text || describeStatus(code, source),
  };
}

export class RemoteSession {
  /**
   * @param {object} options
   * @param {HTMLElement} options.container  element the display fills
   * @param {(el: Element|null) => boolean} options.isLocalUiFocus  true when keys belong to the page, not the remote
   * @param {(session: RemoteSession) => void} options.onChange  told after every state change
   * @param {import('./clipboard.js').ClipboardBridge} [options.clipboard]
   */
  constructor({ container, isLocalUiFocus, onChange, clipboard }) {
    this.container = container;
    this.isLocalUiFocus = isLocalUiFocus || (() => false);
    this.onChange = onChange || (() => {});
    this.clipboard = clipboard || null;
    this.client = null;
    this.tunnel = null;
    this.keyboard = null;
    this.state = State.CONNECTING;
    this.lastError = null;
    this.userDisconnected = false;
    this.unstable = false;           // the tunnel has heard nothing for a while
    this.notice = '';                // the last guardrail notice from the gateway
    this._pressed = new Set();
    this._resizeTimer = null;
    this._onWindowResize = () => this._windowResized();
    this._onWindowBlur = () => this._releaseKeys();
  }

  /** Width, height and dpi to ask the remote desktop for: the container in device pixels. */
  optimalSize() {
    const ratio = window.devicePixelRatio || 1;
    return {
      width: Math.max(1, Math.floor(this.container.clientWidth * ratio)),
      height: Math.max(1, Math.floor(this.container.clientHeight * ratio)),
      dpi: Math.floor(96 * ratio),
    };
  }

  /** Open the tunnel with a one-time tunnel token from the API. */
  connect(token) {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/tunnel';
    const tunnel = new Guacamole.WebSocketTunnel(url);
    const client = new Guacamole.Client(tunnel);
    this.tunnel = tunnel;
    this.client = client;
    // Guardrail notices (issue 14: a command a policy blocked) come as `gr-notice`, an opcode guacd
    // never sends: shown to the user; every other instruction goes to the client as before.
    const forward = tunnel.oninstruction;
    tunnel.oninstruction = (opcode, args) => {
      if (opcode === 'gr-notice') {
        this.notice = args[1] || '';
        this.onChange(this);
        return;
      }
      forward(opcode, args);
    };

    client.onstatechange = (s) => this._clientStateChanged(s);
    // The gateway refuses a tunnel (bad token, no recording, guacd handshake
    // failed) with an `error` before the tunnel UUID; after the UUID, errors come
    // from the live session, where 0x0301 means the remote desktop refused the login.
    client.onerror = (status) => this._fail(status, tunnel.uuid ? Source.REMOTE : Source.TUNNEL);
    tunnel.onerror = (status) => this._fail(status, Source.TUNNEL);
    tunnel.onstatechange = (s) => {
      if (s === Guacamole.Tunnel.State.CLOSED) {
        client.disconnect();
        return;
      }
      // UNSTABLE: nothing received for a while (the tunnel gives up at its own
      // receive timeout); worth telling the user before the session drops.
      const unstable = s === Guacamole.Tunnel.State.UNSTABLE;
      if (unstable !== this.unstable) {
        this.unstable = unstable;
        this.onChange(this);
      }
    };

    this._attachDisplay(client);
    this._attachKeyboard(client);
    if (this.clipboard) this.clipboard.attach(client);
    window.addEventListener('resize', this._onWindowResize);
    window.addEventListener('blur', this._onWindowBlur);

    const size = this.optimalSize();
    const data = new URLSearchParams({
      token, width: String(size.width), height: String(size.height), dpi: String(size.dpi),
    });
    try {
      client.connect(data.toString());
    } catch (status) {
      // WebSocketTunnel does not throw today; a future tunnel might.
      this._fail(status instanceof Guacamole.Status ? status
        : new Guacamole.Status(Guacamole.Status.Code.SERVER_ERROR, String(status)), Source.TUNNEL);
      client.disconnect();
    }
  }

  /** End the session at the user's request. */
  disconnect() {
    this.userDisconnected = true;
    if (this.client) this.client.disconnect();
    else this._setState(State.DISCONNECTED);
  }

  /** Record a failure that happened before any tunnel existed (e.g. the token request). */
  failBeforeConnect(error) {
    this.lastError = error;
    this._setState(State.ERROR);
  }

  // --- state ---------------------------------------------------------------

  _fail(status, source) {
    // Only the first failure counts: once guacd reported why, the tunnel closing
    // afterwards is a consequence, not news.
    if (this.lastError || this.userDisconnected) return;
    const code = status && Number.isInteger(status.code) ? status.code : NaN;
    if (!isErrorCode(code)) return;
    this.lastError = makeError({ code, source, serverMessage: (status && status.message) || '' });
  }

  _clientStateChanged(clientState) {
    const mapped = CLIENT_STATES.get(clientState);
    if (mapped) {
      if (mapped === State.CONNECTED) this.fit();
      this._setState(mapped);
      return;
    }
    if (clientState === 5) { // DISCONNECTED
      this._teardown();
      this._setState(this.lastError ? State.ERROR : State.DISCONNECTED);
    }
    // DISCONNECTING (4) is transient: the DISCONNECTED that follows decides.
  }

  _setState(state) {
    this.state = state;
    this.onChange(this);
  }

  _teardown() {
    window.removeEventListener('resize', this._onWindowResize);
    window.removeEventListener('blur', this._onWindowBlur);
    clearTimeout(this._resizeTimer);
    if (this.keyboard) {
      this.keyboard.onkeydown = null;
      this.keyboard.onkeyup = null;
    }
    this._pressed.clear();
    if (this.clipboard) this.clipboard.detach();
  }

  // --- display -------------------------------------------------------------

  _attachDisplay(client) {
    const display = client.getDisplay();
    const element = display.getElement();
    element.classList.add('remote-display');
    this.container.replaceChildren(element);
    display.onresize = () => this.fit();

    const mouse = new Guacamole.Mouse(element);
    let localCursor = false;
    display.oncursor = (canvas, x, y) => {
      // A CSS cursor follows the pointer without lag; the drawn one is the fallback.
      localCursor = mouse.setCursor(canvas, x, y);
      display.showCursor(!localCursor);
    };
    const sendMouse = (e) => client.sendMouseState(e.state, true);
    mouse.onEach(['mousedown', 'mousemove', 'mouseup'], sendMouse);
    mouse.on('mouseout', () => { if (!localCursor) display.showCursor(false); });
    mouse.on('mousedown', () => this._focusRemote());

    const touch = new Guacamole.Mouse.Touchscreen(element);
    touch.onEach(['mousedown', 'mousemove', 'mouseup'], sendMouse);
  }

  /** Scale the remote display to fit the container, keeping its aspect ratio. */
  fit() {
    if (!this.client) return;
    const display = this.client.getDisplay();
    const w = display.getWidth();
    const h = display.getHeight();
    if (!w || !h) return;
    const scale = Math.min(this.container.clientWidth / w, this.container.clientHeight / h, MAX_SCALE);
    if (scale > 0 && Number.isFinite(scale)) display.scale(scale);
  }

  _windowResized() {
    this.fit();
    clearTimeout(this._resizeTimer);
    this._resizeTimer = setTimeout(() => {
      if (!this.client || this.state !== State.CONNECTED) return;
      const { width, height } = this.optimalSize();
      this.client.sendSize(width, height);
    }, RESIZE_DEBOUNCE_MS);
  }

  // --- keyboard ------------------------------------------------------------

  _attachKeyboard(client) {
    const keyboard = new Guacamole.Keyboard(document);
    this.keyboard = keyboard;
    keyboard.onkeydown = (keysym) => {
      // Typing into the page's own controls (clipboard box, buttons) stays local.
      if (this.isLocalUiFocus(document.activeElement)) return true;
      this._pressed.add(keysym);
      client.sendKeyEvent(1, keysym);
      return false;
    };
    keyboard.onkeyup = (keysym) => {
      // Only release what the remote side saw pressed.
      if (!this._pressed.delete(keysym)) return;
      client.sendKeyEvent(0, keysym);
    };
  }

  _releaseKeys() {
    // Alt+Tab away would otherwise leave Alt held down on the remote desktop.
    if (this.keyboard) this.keyboard.reset();
  }

  _focusRemote() {
    const active = document.activeElement;
    if (active && active !== document.body && typeof active.blur === 'function') active.blur();
  }
}
