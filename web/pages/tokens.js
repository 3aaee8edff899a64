// API tokens (admin only): for scripts and other systems. The secret is shown once, at creation.

import { api } from '../api.js';
import { h, field, formDialog, confirm, toast, empty, badge, date, ago, values, notice } from '../ui.js';
import { pagedTable } from '../list.js';

export function render(main) {
  const body = h('div', { testid: 'tokens' });
  main.append(h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, 'API tokens'), h('p', {}, 'For scripts and other systems: send one as Authorization: Bearer <token>.')),
    h('div', { class: 'spacer' }), h('button', { type: 'button', class: 'primary', testid: 'new-token', onclick: create }, '+ New token')), body);
  const table = pagedTable(body, {
    testid: 'tokens-table',
    caption: 'API tokens',
    fetchPage: (cursor) => api('GET', '/api/admin/tokens', { query: { cursor } }),
    columns: [
      { label: 'Name', cell: (t) => h('strong', {}, t.name) },
      { label: 'Role', cell: (t) => badge(t.role, t.role === 'admin' ? 'brand' : '') },
      { label: 'Created', cell: (t) => date(t.created_at) },
      { label: 'Last used', cell: (t) => ago(t.last_used_at) },
      { label: 'Expires', cell: (t) => t.expires_at ? date(t.expires_at) : h('span', { class: 'muted' }, 'never') },
      { label: h('span', { class: 'visually-hidden' }, 'Actions'), class: 'actions', cell: (t) => h('button', { type: 'button', class: 'small danger', onclick: () => revoke(t) }, 'Revoke') },
    ],
    empty: () => empty('No API tokens', 'Create one for each script or system that calls Souk’s API, so you can revoke them one by one.'),
  });
  table.reset();

  async function create() {
    const made = await formDialog({
      title: 'New API token',
      action: 'Create token',
      testid: 'token-form',
      fields: [
        field({ name: 'name', label: 'Name', required: true, hint: 'What uses it, e.g. “nightly import”.', attrs: { autocomplete: 'off' } }),
        field({ name: 'role', label: 'Role', type: 'select', value: 'viewer', options: [['viewer', 'Viewer'], ['editor', 'Editor'], ['admin', 'Admin']] }),
        field({ name: 'expires_at', label: 'Expires on', type: 'date', hint: 'Optional.' }),
      ],
      submit: (form) => {
        const v = values(form);
        const body = { name: v.name.trim(), role: v.role };
        if (v.expires_at) body.expires_at = new Date(`${v.expires_at}T00:00:00Z`).toISOString().replace(/\.\d+Z$/, 'Z');
        return api('POST', '/api/admin/tokens', { body });
      },
    });
    if (!made) return;
    table.reload();
    const copy = h('button', { type: 'button', class: 'small', onclick: async () => {
      try { await navigator.clipboard.writeText(made.token); toast('Copied.'); } catch { toast('Select the token and copy it.', 'bad'); }
    } }, 'Copy');
    await notice(`Token “${made.name}” created`,
      h('p', {}, 'Copy it now: Souk keeps only its hash, so this is the only time it is shown.'),
      h('code', { class: 'secret', testid: 'token-secret' }, made.token), h('p', {}, copy));
  }

  async function revoke(t) {
    if (!await confirm({ title: `Revoke “${t.name}”?`, text: 'Whatever uses it stops working at once.', action: 'Revoke' })) return;
    try { await api('DELETE', `/api/admin/tokens/${t.id}`); toast('Revoked.'); } catch (err) { toast(err.message, 'bad'); }
    table.reload();
  }
}
