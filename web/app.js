// The console's shell: who is signed in, the navigation, and which page shows for which path.
// A page is a module with `render(main, ctx)` that may return a cleanup function. To add a page,
// add a line to PAGES.

import { api, setCsrf, onSessionLost } from './api.js';
import { h, clear, loading, failure, toast, field, formDialog, values, invalid } from './ui.js';

const ROLES = { viewer: 1, editor: 2, admin: 3 };

const PAGES = [
  { path: '/', title: 'Dashboard', group: 'Overview', module: './pages/dashboard.js' },
  { path: '/users', title: 'Users', group: 'Marketplace', module: './pages/users.js' },
  { path: '/listings', title: 'Listings', group: 'Marketplace', module: './pages/listings.js' },
  { path: '/catalog', title: 'Catalog', group: 'Marketplace', module: './pages/catalog.js' },
  { path: '/events', title: 'Events', group: 'Operations', module: './pages/events.js' },
  { path: '/dead-letters', title: 'Dead letters', group: 'Operations', module: './pages/deadletters.js' },
  { path: '/projections', title: 'Projections', group: 'Operations', module: './pages/projections.js' },
  { path: '/accounts', title: 'Accounts', group: 'Administration', module: './pages/accounts.js', role: 'admin' },
  { path: '/tokens', title: 'API tokens', group: 'Administration', module: './pages/tokens.js', role: 'admin' },
];
const PUBLIC = {
  '/login': './pages/login.js',
  '/setup': './pages/setup.js',
};

const base = new URL('.', import.meta.url).pathname;
const root = document.getElementById('app');
let session = null;
let cleanup = null;
let shell = null;

export function asset(name) { return `${base}${name}`; }
export function can(role) { return session && ROLES[session.role] >= ROLES[role]; }
export function me() { return session; }

/** Goes to `path` (with its query) without reloading. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

/** After signing in or setting up. */
export function signedIn(who, next) {
  session = who;
  setCsrf(who.csrf_token);
  shell = null;
  navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
}

export async function signOut() {
  try { await api('POST', '/api/auth/logout', { quiet401: true }); } catch { /* signed out either way */ }
  session = null;
  setCsrf(null);
  shell = null;
  navigate('/login?signed_out=1', { replace: true });
}

onSessionLost(() => {
  if (!session) return;
  session = null;
  setCsrf(null);
  shell = null;
  const here = location.pathname + location.search;
  navigate(`/login?expired=1&next=${encodeURIComponent(here)}`, { replace: true });
});

function buildShell() {
  const nav = h('nav', { 'aria-label': 'Main' });
  let group = null;
  for (const p of PAGES) {
    if (p.role && !can(p.role)) continue;
    if (p.group !== group) { group = p.group; nav.append(h('div', { class: 'nav-group' }, group)); }
    nav.append(h('a', { href: p.path, 'data-link': true, testid: `nav-${p.path.slice(1) || 'dashboard'}` }, p.title));
  }
  const sidebar = h('aside', { class: 'sidebar', id: 'sidebar' }, nav);
  const toggle = h('button', {
    type: 'button', class: 'menu-toggle', 'aria-controls': 'sidebar', 'aria-expanded': 'false',
    onclick: () => {
      const open = sidebar.classList.toggle('open');
      toggle.setAttribute('aria-expanded', String(open));
    },
  }, 'Menu');
  const main = h('main', { id: 'main', tabindex: '-1' });
  const top = h('header', { class: 'topbar' },
    toggle,
    h('a', { class: 'brand', href: '/', 'data-link': true, 'aria-label': 'Souk console: dashboard' },
      h('img', { src: asset('favicon.svg'), alt: '' }), h('span', { class: 'brand-name' }, 'Souk'), h('small', {}, 'console')),
    h('div', { class: 'spacer' }),
    h('div', { class: 'whoami' },
      h('span', { class: 'email', testid: 'whoami' }, session.email || session.id),
      h('span', { class: 'badge brand' }, session.role),
      session.id.startsWith('acc_') ? h('button', { type: 'button', class: 'small', testid: 'change-password', onclick: changePassword }, 'Password') : null,
      h('button', { type: 'button', class: 'small', testid: 'logout', onclick: signOut }, 'Sign out')));
  clear(root, h('a', { href: '#main', class: 'visually-hidden' }, 'Skip to content'), h('div', { class: 'shell' }, top, sidebar, main));
  return { main, nav, sidebar, toggle };
}

async function changePassword() {
  const done = await formDialog({
    title: 'Change your password',
    action: 'Change password',
    testid: 'password-form',
    fields: [
      field({ name: 'current_password', label: 'Current password', type: 'password', required: true, attrs: { autocomplete: 'current-password' } }),
      field({ name: 'new_password', label: 'New password', type: 'password', required: true, hint: 'At least 12 characters.', attrs: { autocomplete: 'new-password' } }),
      field({ name: 'confirm', label: 'New password again', type: 'password', required: true, attrs: { autocomplete: 'new-password' } }),
    ],
    submit: async (form) => {
      const v = values(form);
      if (v.new_password !== v.confirm) throw invalid(form, 'confirm', 'The two passwords differ.');
      try {
        await api('POST', '/api/auth/password', { body: { current_password: v.current_password, new_password: v.new_password }, quiet401: true });
      } catch (err) {
        if (err.status === 401) err.errors = [{ field: 'current_password', message: 'This is not your current password.' }];
        throw err;
      }
      return true;
    },
  });
  if (done) toast('Password changed. Your other sessions were signed out.');
}

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* a page failing to clean up must not block the next */ } cleanup = null; }
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const params = new URLSearchParams(location.search);
  if (path === '/login' && session) {
    const next = params.get('next') || '/';
    navigate(next.startsWith('/') && !next.startsWith('//') && next !== '/login' ? next : '/', { replace: true });
    return;
  }
  if (PUBLIC[path]) {
    shell = null;
    const mod = await import(PUBLIC[path]);
    clear(root);
    cleanup = mod.render(root, { params, navigate, signedIn }) || null;
    return;
  }
  if (!session) {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  if (!shell) shell = buildShell();
  const page = PAGES.find((p) => p.path === path);
  for (const a of shell.nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  shell.sidebar.classList.remove('open');
  shell.toggle.setAttribute('aria-expanded', 'false');
  const main = shell.main;
  if (!page) {
    document.title = 'Not found · Souk';
    clear(main, h('div', { class: 'state' }, h('h2', {}, 'No such page'),
      h('p', {}, `There is nothing at ${path}.`), h('div', { class: 'actions' }, h('a', { href: '/', 'data-link': true, class: 'button' }, 'Go to the dashboard'))));
    return;
  }
  document.title = `${page.title} · Souk`;
  if (page.role && !can(page.role)) {
    clear(main, h('div', { class: 'state' }, h('h2', {}, 'Admins only'), h('p', {}, `${page.title} needs the admin role; you are ${session.role}.`)));
    return;
  }
  clear(main, loading());
  try {
    const mod = await import(page.module);
    clear(main);
    cleanup = mod.render(main, { params, navigate, can, me: session }) || null;
  } catch (e) {
    clear(main, failure(e, () => route()));
  }
}

// Same-origin links marked data-link change the page without reloading.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest?.('a[data-link]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
  document.getElementById('main')?.focus({ preventScroll: true });
});
window.addEventListener('popstate', route);

async function boot() {
  try {
    const status = await api('GET', '/api/auth/setup', { quiet401: true });
    if (status?.setup_needed) {
      if (location.pathname !== '/setup') navigate(`/setup${location.hash}`, { replace: true });
      else route();
      return;
    }
    if (location.pathname === '/setup') { history.replaceState(null, '', '/login'); }
    try {
      const who = await api('GET', '/api/auth/me', { quiet401: true });
      session = who;
      setCsrf(who.csrf_token);
    } catch (e) {
      if (e.status !== 401) throw e;
    }
    route();
  } catch (e) {
    clear(root, h('div', { class: 'auth-screen' }, h('div', { class: 'card auth-card' }, failure(e, boot))));
    toast(e.message, 'bad');
  }
}

boot();
