// Users: search by name or email prefix, page through, create, edit, disable/enable, delete.

import { api } from '../api.js';
import { h, field, formDialog, confirm, toast, empty, badge, date, debounce, values } from '../ui.js';
import { pagedTable } from '../list.js';

export function render(main, { params, can }) {
  const editor = can('editor');
  const search = h('input', { type: 'search', id: 'user-q', name: 'q', value: params.get('q') || '', testid: 'users-search', placeholder: 'Name or email…', autocomplete: 'off' });
  const body = h('div', { testid: 'users-list' });
  const create = h('button', { type: 'button', class: 'primary', testid: 'new-user', disabled: !editor, title: editor ? null : 'Needs the editor role', onclick: () => edit(null) }, '+ New user');

  main.append(
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Users'), h('p', {}, 'The people who buy and sell on your marketplace.')),
      h('div', { class: 'spacer' }), create),
    h('div', { class: 'toolbar', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'user-q' }, 'Search'), search)),
    body);

  const table = pagedTable(body, {
    testid: 'users-table',
    caption: 'Users',
    fetchPage: (cursor) => api('GET', '/api/users', { query: { q: search.value.trim(), cursor, limit: 25 } }),
    columns: [
      { label: 'Name', cell: (u) => h('span', { testid: 'user-name' }, u.name) },
      { label: 'Email', cell: (u) => u.email || h('span', { class: 'muted' }, '—') },
      { label: 'Status', cell: (u) => u.enabled ? badge('enabled', 'ok') : badge('disabled', 'warn') },
      { label: 'Created', cell: (u) => date(u.created_at) },
      { label: h('span', { class: 'visually-hidden' }, 'Actions'), class: 'actions', cell: actions },
    ],
    empty: () => search.value.trim()
      ? empty('No users match', `Nobody’s name or email starts with “${search.value.trim()}”. Try fewer letters.`)
      : empty('No users yet', 'Users appear here when they sign up through your API, or when you add one.',
        editor ? h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'Add the first user') : null),
  });
  table.reset();

  search.addEventListener('input', debounce(() => {
    const q = search.value.trim();
    history.replaceState(null, '', q ? `/users?q=${encodeURIComponent(q)}` : '/users');
    table.reset();
  }));

  function actions(u) {
    if (!editor) return null;
    return [
      h('button', { type: 'button', class: 'small', testid: 'edit-user', 'aria-label': `Edit ${u.name}`, onclick: () => edit(u) }, 'Edit'),
      h('button', { type: 'button', class: 'small', testid: u.enabled ? 'disable-user' : 'enable-user', 'aria-label': `${u.enabled ? 'Disable' : 'Enable'} ${u.name}`, onclick: () => toggle(u) }, u.enabled ? 'Disable' : 'Enable'),
      h('button', { type: 'button', class: 'small danger', testid: 'delete-user', 'aria-label': `Delete ${u.name}`, onclick: () => remove(u) }, 'Delete'),
    ];
  }

  function fields(u) {
    return [
      field({ name: 'name', label: 'Name', value: u?.name, required: true, attrs: { autocomplete: 'off' } }),
      field({ name: 'email', label: 'Email', type: 'email', value: u?.email || '', hint: 'Optional; unique when set.', attrs: { autocomplete: 'off' } }),
      field({ name: 'bio', label: 'Bio', type: 'textarea', value: u?.bio || '' }),
    ];
  }

  async function edit(user) {
    let current = user;
    const saved = await formDialog({
      title: user ? `Edit ${user.name}` : 'New user',
      action: user ? 'Save changes' : 'Create user',
      testid: 'user-form',
      fields: fields(user),
      reload: async (form) => {
        current = await api('GET', `/api/users/${current.id}`);
        form.elements.name.value = current.name;
        form.elements.email.value = current.email || '';
        form.elements.bio.value = current.bio || '';
        form.querySelector('.form-alert').replaceChildren();
        toast('Loaded the latest version.');
      },
      submit: (form) => {
        const v = values(form);
        const body = { name: v.name.trim(), email: v.email.trim() || null, bio: v.bio };
        return current
          ? api('PATCH', `/api/users/${current.id}`, { body, version: current.version })
          : api('POST', '/api/users', { body, idempotent: true });
      },
    });
    if (saved) {
      toast(user ? `Saved ${saved.name}.` : `Created ${saved.name}.`);
      table.reload();
    }
  }

  async function toggle(u) {
    try {
      const next = await api('POST', `/api/users/${u.id}/${u.enabled ? 'disable' : 'enable'}`, { version: u.version });
      toast(`${next.name} is ${next.enabled ? 'enabled' : 'disabled'}.`);
    } catch (err) {
      toast(err.status === 412 ? `${u.name} was changed by someone else — reload and try again.` : err.message, 'bad');
    }
    table.reload();
  }

  async function remove(u) {
    const ok = await confirm({
      title: `Delete ${u.name}?`,
      text: 'Their active listings are archived and they disappear from the catalog. This cannot be undone.',
      action: 'Delete user',
    });
    if (!ok) return;
    try {
      await api('DELETE', `/api/users/${u.id}`, { version: u.version });
      toast(`Deleted ${u.name}.`);
    } catch (err) {
      toast(err.status === 412 ? `${u.name} was changed by someone else — reload and try again.` : err.message, 'bad');
    }
    table.reload();
  }
}
