// Shared by the auditor and ops pages: who is signed in, the top navigation,
// a not-allowed message for pages the user's capabilities do not open, and
// small formatters. What a user may do comes from /api/auth/me
// (`capabilities`), never from role names here: the server's table decides.

import { api, ApiError } from './api.js';

// Each page and the capability that opens it (the same names the API's routes declare).
const NAV = [
  { href: './', label: 'My connections', needs: 'connection.use' },
  { href: 'sessions.html', label: 'Sessions', needs: 'session.view_own' },
  { href: 'search.html', label: 'Search', needs: 'search' },
  { href: 'audit.html', label: 'Audit log', needs: 'audit.read' },
  { href: 'ops.html', label: 'Storage', needs: 'ops.read' },
  { href: 'admin.html', label: 'Admin', needs: 'user.admin' },
  { href: 'guardrails.html', label: 'Guardrails', needs: 'alert.read' },
];

export const $ = (id) => document.getElementById(id);

/** True when the signed-in user holds `capability` (from /api/auth/me). */
export function can(user, capability) {
  return Boolean(user) && Array.isArray(user.capabilities) && user.capabilities.includes(capability);
}

/** Sign-in check: returns {username, role, capabilities}, or sends the browser to the sign-in page. */
export async function whoAmI() {
  try {
    return await api('GET', '/api/auth/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      window.location.href = './';
      return new Promise(() => {});
    }
    throw err;
  }
}

/** The header navigation: the pages this user's capabilities open; the current page is marked. */
export function renderNav(user) {
  const nav = $('nav');
  if (!nav) return;
  nav.replaceChildren();
  const here = window.location.pathname.split('/').pop() || './';
  for (const item of NAV.filter((n) => can(user, n.needs))) {
    const a = document.createElement('a');
    a.href = item.href;
    a.textContent = item.label;
    a.className = 'nav-link';
    if (item.href === here) a.setAttribute('aria-current', 'page');
    nav.append(a);
  }
  const who = document.createElement('span');
  who.className = 'muted nav-user';
  who.textContent = `${user.username} (${user.role})`;
  nav.append(who);
}

/** Sign-in + nav + capability gate. Resolves to the user, or null after showing "not allowed". */
export async function enterPage(capability) {
  const user = await whoAmI();
  renderNav(user);
  if (!can(user, capability)) {
    document.body.dataset.view = 'forbidden';
    const main = document.querySelector('main');
    main.replaceChildren();
    const p = document.createElement('p');
    p.id = 'not-allowed';
    p.className = 'alert';
    p.textContent = `This page needs the capability “${capability}”, which your role (${user.role}) does not have; `
      + 'ask an administrator if you need it.';
    main.append(p);
    return null;
  }
  return user;
}

export function when(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A search snippet: only <mark> is markup, everything else shown as text. */
export function snippetNode(html) {
  const span = document.createElement('span');
  const parts = String(html).split(/(<mark>|<\/mark>)/);
  let marked = false;
  for (const part of parts) {
    if (part === '<mark>') { marked = true; continue; }
    if (part === '</mark>') { marked = false; continue; }
    const text = new DOMParser().parseFromString(part, 'text/html').documentElement.textContent;
    span.append(marked ? el('mark', { textContent: text }) : document.createTextNode(text));
  }
  return span;
}
