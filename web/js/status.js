// Human messages for every way a session can end.
//
// Two sources report Guacamole status codes and they do not mean the same thing
// by every code: guacd reports what the remote desktop did (an `error`
// instruction, e.g. 0x0301 when the RDP server refuses the credentials), while
// the gateway's WebSocket close reason reports what the gateway decided (0x0301
// there means our own one-time tunnel token was missing or expired). The table
// below therefore has an optional `remote` text used only for guacd's reports.

/** Where a status came from: guacd's `error` instruction or the tunnel closing. */
export const Source = Object.freeze({ REMOTE: 'remote', TUNNEL: 'tunnel' });

// One row per Guacamole status code (C:Status.js, S:protocol-types.h).
const MESSAGES = new Map([
  [0x0100, { text: 'The remote desktop does not support this operation.' }],
  [0x0200, { text: 'The gateway hit an internal error. Try again, or contact your administrator.' }],
  [0x0201, { text: 'The gateway is too busy right now. Try again in a moment.' }],
  [0x0202, { text: 'The remote desktop did not answer in time (timeout).' }],
  [0x0203, { text: 'The remote desktop reported an error and the connection ended.' }],
  [0x0204, { text: 'This connection no longer exists.' }],
  [0x0205, { text: 'This connection is in use and cannot be opened right now.' }],
  [0x0206, { text: 'The connection has been closed.' }],
  [0x0207, { text: 'The remote desktop rejected the credentials or cannot be reached.' }],
  [0x0208, { text: 'The remote desktop is unavailable: it is busy or refusing connections.' }],
  [0x0209, { text: 'This session was taken over by another connection.' }],
  [0x020A, { text: 'The session ended because it was idle for too long.' }],
  [0x020B, { text: 'Session ended by an auditor or administrator.' }],
  [0x0300, { text: 'The gateway refused a forbidden instruction and ended the session.' }],
  [0x0301, {
    text: 'You are not signed in, or the request to open this connection expired. Sign in and open the connection again.',
    remote: 'The remote desktop rejected the credentials.',
  }],
  [0x0303, {
    text: 'You are not allowed to open this connection.',
    remote: 'The remote desktop refused access to this account.',
  }],
  [0x0308, { text: 'The session ended because this browser stopped responding (client timeout).' }],
  [0x030D, { text: 'This browser sent too much data at once; the session was ended.' }],
  [0x030F, { text: 'This browser sent data of a type the gateway does not accept.' }],
  [0x031D, { text: 'Too many sessions are open. Close one and try again.' }],
]);

/** Format a status code the way Guacamole documents them: 0x0207. */
export function formatCode(code) {
  if (!Number.isInteger(code) || code < 0) return String(code);
  return '0x' + code.toString(16).toUpperCase().padStart(4, '0');
}

// Codes nobody listed still get a sentence that says whose side failed.
function fallback(code) {
  if (code >= 0x0100 && code < 0x0200) return 'The remote desktop does not support this operation.';
  if (code >= 0x0200 && code < 0x0300) return 'The connection failed on the gateway or remote desktop side.';
  if (code >= 0x0300 && code < 0x0400) return 'The gateway refused a request from this browser.';
  return 'The connection ended unexpectedly.';
}

/** True when a Guacamole status code reports a failure (same rule as Guacamole.Status.isError). */
export function isErrorCode(code) {
  return !Number.isInteger(code) || code < 0 || code > 0x00FF;
}

/**
 * The sentence to show for a Guacamole status `code` reported by `source`.
 * Always returns text, for any input, so a strange close never leaves the page blank.
 */
export function describeStatus(code, source = Source.TUNNEL) {
  if (!Number.isInteger(code)) return 'The connection ended unexpectedly.';
  const row = MESSAGES.get(code);
  if (!row) return fallback(code);
  return (source === Source.REMOTE && row.remote) || row.text;
}

/**
 * The sentence to show when an API call (see api.js ApiError) fails.
 * `byStatus` overrides the text for HTTP statuses whose meaning depends on the call.
 */
export function describeApiError(err, byStatus = {}) {
  const status = err && err.status;
  if (Object.prototype.hasOwnProperty.call(byStatus, status)) return byStatus[status];
  switch (status) {
    case 0: return err.detail || 'The gateway cannot be reached.';
    case 401: return 'Your sign-in has expired. Sign in again.';
    case 403: return 'You are not allowed to do this.';
    case 404: return 'The gateway does not know this address (HTTP 404).';
    case 429: return 'Too many attempts. Wait a moment and try again.';
    default:
      if (err && err.status >= 500) return 'The gateway hit an internal error. Try again, or contact your administrator.';
      return (err && err.detail) || 'The request failed.';
  }
}
