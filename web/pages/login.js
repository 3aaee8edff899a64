// Sign in. Arrives here on first visit, after signing out, and when a session ends mid-work
// (`?expired=1&next=…`: the user goes back where they were).

import { api } from '../api.js';
import { h, field, resetErrors, showError, values } from '../ui.js';
import { asset } from '../app.js';

export function render(root, { params, signedIn }) {
  document.title = 'Sign in · Souk';
  const next = params.get('next') || '/';
  const message = params.get('expired')
    ? h('div', { class: 'alert warn', role: 'status', testid: 'session-expired' }, 'Your session has ended. Sign in again to continue where you left off.')
    : params.get('signed_out')
      ? h('div', { class: 'alert info', role: 'status', testid: 'signed-out' }, 'You have signed out.')
      : null;
  const alert = h('div', { class: 'alert form-alert', role: 'alert', testid: 'form-alert' });
  const button = h('button', { type: 'submit', class: 'primary', testid: 'login-submit' }, 'Sign in');
  const form = h('form', { novalidate: true, testid: 'login-form' },
    alert,
    field({ name: 'email', label: 'Email', type: 'email', required: true, attrs: { autocomplete: 'username' } }),
    field({ name: 'password', label: 'Password', type: 'password', required: true, attrs: { autocomplete: 'current-password' } }),
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    resetErrors(form);
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const who = await api('POST', '/api/auth/login', { body: values(form), quiet401: true });
      signedIn(who, next);
    } catch (err) {
      if (err.status === 401) err.message = 'That email and password do not match an account.';
      if (err.status === 429) err.message = 'Too many failed attempts from here. Wait a few minutes, then try again.';
      showError(form, err);
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  root.append(h('div', { class: 'auth-screen' }, h('main', { class: 'card auth-card' },
    h('div', { class: 'auth-logo' }, h('img', { src: asset('logo.svg'), alt: 'Souk', width: 174, height: 48 })),
    h('h1', {}, 'Sign in'),
    h('p', { class: 'lead' }, 'to the Souk console'),
    message, form)));
  form.querySelector('input').focus();
}
