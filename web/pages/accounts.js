// Console accounts (admin only): who may sign in here, with which role.

import { api } from '../api.js';
import { h, field, formDialog, confirm, toast, empty, badge, date, ago, values } from '../ui.js';
import { pagedTable } from '../list.js';

const ROLES = [['viewer', 'Viewer — reads everything'], ['editor', 'Editor — also changes users and listings'], ['admin', 'Admin — also accounts, tokens and operations']];

export function render(main, { me }) {
  const body = h('div', { testid: 'accounts' });
  main.append(h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, 'Accounts'), h('p', {}, 'The people who may sign in to this console.')),
    h('div', { class: 'spacer' }), h('button', { type: 'button', class: 'primary', testid: 'new-account', onclick: () => edit(null) }, '+ New account')), body);
  const table = pagedTable(body, {
    testid: 'accounts-table',
    caption: 'Accounts',
    fetchPage: (cursor) => api('GET', '/api/admin/accounts', { query: { cursor } }),
    columns: [
      { label: 'Email', cell: (a) => [a.email, a.id === me.id ? h('span', { class: 'muted' }, ' (you)') : null] },
      { label: 'Role', cell: (a) => badge(a.role, a.role === 'admin' ? 'brand' : '') },
      { label: 'Created', cell: (a) => date(a.created_at) },
      { label: 'Last sign-in', cell: (a) => ago(a.last_login_at) },
      { label: h('span', { class: 'visually-hidden' }, 'Actions'), class: 'actions', cell: (a) => [
        h('button', { type: 'button', class: 'small', onclick: () => edit(a) }, 'Edit'),
        a.id === me.id ? null : h('button', { type: 'button', class: 'small danger', onclick: () => remove(a) }, 'Delete'),
      ] },
    ],
    empty: () => empty('No accounts', 'Add an account for each person who runs Souk.'),
  });
  table.reset();

  async function edit(a) {
    const saved = await formDialog({
      title: a ? `Edit ${a.email}` : 'New account',
      action: a ? 'Save changes' : 'Create account',
      fields: [
        a ? null : field({ name: 'email', label: 'Email', type: 'email', required: true, attrs: { autocomplete: 'off' } }),
        field({ name: 'role', label: 'Role', type: 'select', value: a?.role || 'viewer', options: ROLES }),
        field({ name: 'password', label: a ? 'New password' : 'Password', type: 'password', required: !a,
          hint: a ? 'Leave empty to keep it. A new password signs them out everywhere.' : 'At least 12 characters. Share it safely.', attrs: { autocomplete: 'new-password' } }),
      ],
      submit: (form) => {
        const v = values(form);
        if (!a) return api('POST', '/api/admin/accounts', { body: { email: v.email, password: v.password, role: v.role } });
        const body = { role: v.role };
        if (v.password) body.password = v.password;
        return api('PATCH', `/api/admin/accounts/${a.id}`, { body, version: a.version });
      },
    });
    if (saved) { toast(a ? 'Saved.' : `Created ${saved.email}.`); table.reload(); }
  }

  async function remove(a) {
    if (!await confirm({ title: `Delete ${a.email}?`, text: 'They are signed out and can no longer sign in.', action: 'Delete account' })) return;
    try { await api('DELETE', `/api/admin/accounts/${a.id}`, { version: a.version }); toast('Deleted.'); } catch (err) { toast(err.message, 'bad'); }
    table.reload();
  }
}
