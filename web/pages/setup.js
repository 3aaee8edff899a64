// First run: no admin account exists yet. Souk printed a one-time setup link in its log
// (`http://…/setup#token=…`); the token comes prefilled from the link.

import { api } from '../api.js';
import { h, field, resetErrors, showError, values, invalid } from '../ui.js';
import { asset } from '../app.js';

export function render(root, { signedIn }) {
  document.title = 'Set up · Souk';
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  const alert = h('div', { class: 'alert form-alert', role: 'alert', testid: 'form-alert' });
  const button = h('button', { type: 'submit', class: 'primary', testid: 'setup-submit' }, 'Create the admin account');
  const form = h('form', { novalidate: true, testid: 'setup-form' },
    alert,
    field({ name: 'setup_token', label: 'Setup token', value: token, required: true, hint: 'Printed in Souk’s log at start, in the setup link. It works once.', attrs: { autocomplete: 'off', spellcheck: 'false' } }),
    field({ name: 'email', label: 'Your email', type: 'email', required: true, attrs: { autocomplete: 'username' } }),
    field({ name: 'password', label: 'Password', type: 'password', required: true, hint: 'At least 12 characters.', attrs: { autocomplete: 'new-password' } }),
    field({ name: 'confirm', label: 'Password again', type: 'password', required: true, attrs: { autocomplete: 'new-password' } }),
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    resetErrors(form);
    const v = values(form);
    if (v.password !== v.confirm) { invalid(form, 'confirm', 'The two passwords differ.'); return; }
    button.disabled = true;
    try {
      const who = await api('POST', '/api/auth/setup', {
        body: { setup_token: v.setup_token.trim(), email: v.email, password: v.password }, quiet401: true,
      });
      history.replaceState(null, '', '/'); // drop the token from the address bar
      signedIn(who, '/');
    } catch (err) {
      if (err.status === 401) err.errors = [{ field: 'setup_token', message: err.message }];
      if (err.status === 409) err.message = 'Souk already has an admin account. Sign in instead.';
      showError(form, err);
    } finally {
      button.disabled = false;
    }
  });
  root.append(h('div', { class: 'auth-screen' }, h('main', { class: 'card auth-card' },
    h('div', { class: 'auth-logo' }, h('img', { src: asset('logo.svg'), alt: 'Souk', width: 174, height: 48 })),
    h('h1', {}, 'Welcome to Souk'),
    h('p', { class: 'lead' }, 'Create the first admin account. You can add more people later.'),
    form)));
  form.querySelector(token ? '[name=email]' : 'input').focus();
}
