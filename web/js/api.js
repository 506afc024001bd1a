// The one place the browser talks HTTP to the gateway's JSON API.
//
// Authentication rides on the HttpOnly cookie set by POST /api/auth/login; the
// token in the login answer is deliberately not kept in script-readable storage,
// so a script injected into the page cannot lift it.

/** An HTTP error from the API, carrying the status and the server's {error, detail}. */
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;      // HTTP status, or 0 when the gateway could not be reached
    this.error = error || '';  // the machine-readable `error` field, if any
    this.detail = detail || '';
  }
}

// A hung gateway must not leave the page spinning forever.
const TIMEOUT_MS = 15000;

/**
 * Call the API and return the decoded JSON body (null for an empty body).
 * Throws ApiError for a non-2xx answer, a network failure or a timeout.
 */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    const timedOut = err && err.name === 'TimeoutError';
    throw new ApiError(0, timedOut ? 'timeout' : 'network',
      timedOut ? 'The gateway did not answer in time.' : 'The gateway cannot be reached.');
  }

  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      // A proxy error page or similar: not our JSON. Only fatal if the call failed.
      if (response.ok) throw new ApiError(response.status, 'bad_response', 'The gateway sent an unreadable answer.');
    }
  }
  if (!response.ok) {
    const error = data && typeof data.error === 'string' ? data.error : '';
    const detail = data && typeof data.detail === 'string' ? data.detail : '';
    throw new ApiError(response.status, error, detail);
  }
  return data;
}

export const login = (username, password) => api('POST', '/api/auth/login', { username, password });
export const secondFactor = (ticket, code) => api('POST', '/api/auth/mfa', { ticket, code });
export const signInProviders = () => api('GET', '/api/auth/providers');
export const logout = () => api('POST', '/api/auth/logout');
export const me = () => api('GET', '/api/auth/me');
export const listConnections = () => api('GET', '/api/connections');
// Just-in-time access (issue 14): ask for a window on a connection that needs one; your requests.
export const requestAccess = (connectionId, reason, startsAt, endsAt) =>
  api('POST', `/api/connections/${encodeURIComponent(connectionId)}/access-requests`,
    { reason, starts_at: startsAt.toISOString(), ends_at: endsAt.toISOString() });
export const myAccessRequests = () => api('GET', '/api/access-requests');
export const tunnelToken = (connectionId, consentVersion) =>
  api('POST', `/api/connections/${encodeURIComponent(connectionId)}/tunnel-token`,
    consentVersion ? { consent_version: consentVersion } : undefined);
// The connection's notice to accept before a session (issue 14): {required, text, version}.
export const connectionConsent = (connectionId) =>
  api('GET', `/api/connections/${encodeURIComponent(connectionId)}/consent`);
