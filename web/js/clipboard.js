// Clipboard both ways between this browser and the remote desktop.
//
// Browsers only let a page read the local clipboard on a user gesture or with a
// permission, so three paths feed the remote side: the visible text area (always
// works), a `paste` event (when the browser delivers one), and a silent read of
// navigator.clipboard when the window gains focus (works where permitted).
// Remote text is always put in the text area, and copied to the local clipboard
// when the browser allows it.

/* global Guacamole */

// Clipboard text comes from outside (the remote desktop or the user): cap it so a
// huge copy cannot grow the page's memory without bound.
export const MAX_CLIPBOARD_CHARS = 1024 * 1024;

const INPUT_DEBOUNCE_MS = 300;

export class ClipboardBridge {
  /**
   * @param {HTMLTextAreaElement} textarea  the clipboard panel's text area
   * @param {(text: string) => void} [onRemoteText]  told when remote text arrives
   * @param {(status: object) => void} [onRefused]  told once if the gateway refuses clipboard streams
   */
  constructor(textarea, onRemoteText, onRefused) {
    this.textarea = textarea;
    this.onRemoteText = onRemoteText || (() => {});
    this.onRefused = onRefused || (() => {});
    this.refused = null;       // the gateway's refusal (a Guacamole.Status), once it said no
    this.client = null;
    this.lastSent = null;      // what the remote side already has from us
    this.lastReceived = null;  // what the remote side last gave us
    this.truncated = false;

    // One clipboard stream per pause in typing, not one per keystroke.
    this._inputTimer = null;
    this._onInput = () => {
      clearTimeout(this._inputTimer);
      this._inputTimer = setTimeout(() => this.send(this.textarea.value), INPUT_DEBOUNCE_MS);
    };
    this._onPaste = (e) => this._handlePaste(e);
    this._onFocus = () => this.syncFromLocal();
  }

  /** Start bridging for `client` (a Guacamole.Client). */
  attach(client) {
    this.client = client;
    client.onclipboard = (stream, mimetype) => this._receive(stream, mimetype);
    this.textarea.addEventListener('input', this._onInput);
    document.addEventListener('paste', this._onPaste);
    window.addEventListener('focus', this._onFocus);
  }

  detach() {
    clearTimeout(this._inputTimer);
    if (this.client) this.client.onclipboard = null;
    this.client = null;
    this.textarea.removeEventListener('input', this._onInput);
    document.removeEventListener('paste', this._onPaste);
    window.removeEventListener('focus', this._onFocus);
  }

  /** Send `text` as the remote clipboard (no-op when unchanged or not attached). */
  send(text) {
    // Once the gateway refused clipboard streams (the connection's policy), more
    // attempts would only be refused and logged again.
    if (!this.client || this.refused || typeof text !== 'string') return false;
    const value = text.length > MAX_CLIPBOARD_CHARS ? text.slice(0, MAX_CLIPBOARD_CHARS) : text;
    if (value === this.lastSent) return false;
    const stream = this.client.createClipboardStream('text/plain');
    const writer = new Guacamole.StringWriter(stream);
    writer.onack = (status) => {
      if (status.isError() && !this.refused) {
        this.refused = status;
        this.lastSent = null;
        this.onRefused(status);
      }
    };
    writer.sendText(value);
    writer.sendEnd();
    this.lastSent = value;
    return true;
  }

  /** Read the local clipboard if the browser allows it and pass it on. */
  async syncFromLocal() {
    if (!navigator.clipboard || !navigator.clipboard.readText) return;
    let text;
    try {
      text = await navigator.clipboard.readText();
    } catch {
      return; // no permission or no focus: the text area remains the way in
    }
    // Do not echo back what the remote side just gave us.
    if (text && text !== this.lastReceived && this.send(text)) this.textarea.value = text;
  }

  _handlePaste(e) {
    // Pasting into the text area is handled by its `input` event.
    if (e.target === this.textarea) return;
    const text = e.clipboardData && e.clipboardData.getData('text/plain');
    if (text && this.send(text)) this.textarea.value = text;
  }

  _receive(stream, mimetype) {
    // Only text is shown; images and other types are refused politely so the
    // remote side does not wait on an ack.
    if (!/^text\//.test(mimetype)) {
      stream.sendAck('Unsupported clipboard type', 0x030F);
      return;
    }
    const reader = new Guacamole.StringReader(stream);
    const parts = [];
    let length = 0;
    let truncated = false;
    reader.ontext = (text) => {
      if (length >= MAX_CLIPBOARD_CHARS) { truncated = true; return; }
      const room = MAX_CLIPBOARD_CHARS - length;
      if (text.length > room) truncated = true;
      const kept = text.slice(0, room);
      parts.push(kept);
      length += kept.length;
    };
    reader.onend = () => {
      const text = parts.join('');
      this.truncated = truncated;
      this.lastReceived = text;
      this.lastSent = text; // the remote side already has it
      this.textarea.value = text;
      this._writeLocal(text);
      this.onRemoteText(text);
    };
  }

  _writeLocal(text) {
    if (!navigator.clipboard || !navigator.clipboard.writeText) return;
    // Fails without focus or permission; the text area still holds the text.
    navigator.clipboard.writeText(text).catch(() => {});
  }
}
