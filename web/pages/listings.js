// Listings: filter by seller and status, create (with a seller picker and the price in currency
// units), edit, delete.

import { api } from '../api.js';
import { h, field, formDialog, confirm, toast, empty, badge, date, money, toMinor, toUnits, minorDigits, debounce, values, invalid, id } from '../ui.js';
import { pagedTable } from '../list.js';

const STATUSES = ['active', 'reserved', 'sold', 'archived'];
const STATUS_KIND = { active: 'ok', reserved: 'warn', sold: 'brand', archived: '' };
const sellers = new Map(); // id → name, for the table

async function sellerName(sellerId) {
  if (!sellers.has(sellerId)) {
    sellers.set(sellerId, api('GET', `/api/users/${sellerId}`).then((u) => u.name).catch(() => 'unknown seller'));
  }
  return sellers.get(sellerId);
}

/** A search box and a select of the users it finds: the seller picker. */
export function sellerPicker({ name = 'seller_id', label = 'Seller', required = true, any = false } = {}) {
  const sid = id('seller');
  const findId = id('seller-find');
  const select = h('select', { id: sid, name, required, testid: `field-${name}`, 'aria-describedby': `${sid}-error` });
  const find = h('input', { type: 'search', id: findId, testid: 'seller-search', placeholder: 'Type a name or email…', autocomplete: 'off' });
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  let latest = 0; // the newest search: answers to older ones arrive late and are dropped
  async function fill() {
    const asked = ++latest;
    status.textContent = 'Searching…';
    try {
      const page = await api('GET', '/api/users', { query: { q: find.value.trim(), limit: 50 } });
      if (asked !== latest) return;
      const keep = select.value;
      const options = page.items.filter((u) => u.enabled || u.id === keep)
        .map((u) => h('option', { value: u.id }, u.email ? `${u.name} · ${u.email}` : u.name));
      select.replaceChildren(any ? h('option', { value: '' }, 'Any seller') : h('option', { value: '' }, options.length ? 'Choose a seller…' : 'No sellers found'), ...options);
      if ([...select.options].some((o) => o.value === keep)) select.value = keep;
      else if (!any && options.length === 1) select.value = options[0].value;
      status.textContent = options.length ? `${options.length} found` : 'Nobody matches; add the user on the Users page first.';
      select.dispatchEvent(new Event('change'));
    } catch (err) {
      if (asked === latest) status.textContent = err.message;
    }
  }
  find.addEventListener('input', debounce(fill));
  fill();
  return {
    select,
    node: h('div', { class: 'picker' },
      h('div', { class: 'field' }, h('label', { for: findId }, `Find a ${label.toLowerCase()}`), find, status),
      h('div', { class: 'field' }, h('label', { for: sid }, label), select,
        h('p', { class: 'field-error', id: `${sid}-error`, 'data-error-for': name, testid: `error-${name}` }))),
  };
}

export function render(main, { can }) {
  const editor = can('editor');
  const statusFilter = h('select', { id: 'listing-status', testid: 'listings-status' },
    h('option', { value: '' }, 'Any status'), STATUSES.map((s) => h('option', { value: s }, s)));
  const picker = sellerPicker({ name: 'filter_seller', label: 'Seller', required: false, any: true });
  const body = h('div', { testid: 'listings-list' });
  main.append(
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Listings'), h('p', {}, 'What sellers offer, as they wrote it (the write side).')),
      h('div', { class: 'spacer' }),
      h('button', { type: 'button', class: 'primary', testid: 'new-listing', disabled: !editor, onclick: () => edit(null) }, '+ New listing')),
    h('div', { class: 'toolbar', role: 'search' },
      picker.node,
      h('div', { class: 'field narrow' }, h('label', { for: 'listing-status' }, 'Status'), statusFilter)),
    body);

  const table = pagedTable(body, {
    testid: 'listings-table',
    caption: 'Listings',
    fetchPage: (cursor) => api('GET', '/api/listings', { query: { seller_id: picker.select.value, status: statusFilter.value, cursor, limit: 25 } }),
    columns: [
      { label: 'Title', cell: (l) => h('span', { testid: 'listing-title' }, l.title) },
      { label: 'Seller', cell: (l) => { const s = h('span', { class: 'muted' }, '…'); sellerName(l.seller_id).then((n) => { s.textContent = n; s.className = ''; }); return s; } },
      { label: 'Type', cell: (l) => l.listing_type },
      { label: 'Price', num: true, cell: (l) => money(l.price, l.currency) },
      { label: 'Stock', num: true, cell: (l) => l.quantity },
      { label: 'Status', cell: (l) => badge(l.status, STATUS_KIND[l.status]) },
      { label: 'Updated', cell: (l) => date(l.updated_at) },
      { label: h('span', { class: 'visually-hidden' }, 'Actions'), class: 'actions', cell: actions },
    ],
    empty: () => (picker.select.value || statusFilter.value)
      ? empty('No listings match', 'Nothing with this seller and status. Clear the filters to see every listing.')
      : empty('No listings yet', 'Listings appear here when sellers create them through your API, or when you add one.',
        editor ? h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'Add the first listing') : null),
  });
  table.reset();
  picker.select.addEventListener('change', () => table.reset());
  statusFilter.addEventListener('change', () => table.reset());

  function actions(l) {
    if (!editor) return null;
    return [
      h('button', { type: 'button', class: 'small', testid: 'edit-listing', 'aria-label': `Edit ${l.title}`, onclick: () => edit(l) }, 'Edit'),
      h('button', { type: 'button', class: 'small danger', testid: 'delete-listing', 'aria-label': `Delete ${l.title}`, onclick: () => remove(l) }, 'Delete'),
    ];
  }

  async function edit(listing) {
    let current = listing;
    const currency = listing?.currency || 'USD';
    const seller = listing ? null : sellerPicker();
    const fields = [
      seller ? seller.node : null,
      field({ name: 'title', label: 'Title', value: listing?.title, required: true }),
      field({ name: 'description', label: 'Description', type: 'textarea', value: listing?.description || '' }),
      h('div', { class: 'row' },
        listing ? null : field({ name: 'listing_type', label: 'Type', type: 'select', value: 'sale', options: [['sale', 'For sale'], ['rent', 'For rent']] }),
        field({ name: 'price', label: `Price (${currency})`, type: 'text', value: listing ? toUnits(listing.price, currency) : '', required: true, hint: minorDigits(currency) ? 'e.g. 19.99' : 'e.g. 1500', attrs: { inputmode: 'decimal', autocomplete: 'off' } }),
        listing ? null : field({ name: 'currency', label: 'Currency', value: 'USD', attrs: { maxlength: 3, autocomplete: 'off' } }),
        field({ name: 'quantity', label: 'Stock', type: 'number', value: listing ? listing.quantity : 1, attrs: { min: 0, step: 1 } }),
        listing ? field({ name: 'status', label: 'Status', type: 'select', value: listing.status, options: STATUSES.map((s) => [s, s]) }) : null),
    ];
    const saved = await formDialog({
      title: listing ? `Edit ${listing.title}` : 'New listing',
      action: listing ? 'Save changes' : 'Create listing',
      testid: 'listing-form',
      fields,
      reload: async (form) => {
        current = await api('GET', `/api/listings/${current.id}`);
        form.elements.title.value = current.title;
        form.elements.description.value = current.description;
        form.elements.price.value = toUnits(current.price, current.currency);
        form.elements.quantity.value = current.quantity;
        form.elements.status.value = current.status;
        form.querySelector('.form-alert').replaceChildren();
        toast('Loaded the latest version.');
      },
      submit: (form) => {
        const v = values(form);
        const cur = (v.currency || currency).trim().toUpperCase() || 'USD';
        const price = toMinor(v.price, cur);
        if (price === null) throw invalid(form, 'price', `Enter an amount in ${cur}, like ${minorDigits(cur) ? '19.99' : '1500'}.`);
        const quantity = v.quantity === '' ? undefined : Number(v.quantity);
        if (current) {
          return api('PATCH', `/api/listings/${current.id}`, {
            version: current.version,
            body: { title: v.title.trim(), description: v.description, price, quantity, status: v.status },
          });
        }
        return api('POST', '/api/listings', {
          idempotent: true,
          body: { seller_id: v.seller_id, title: v.title.trim(), description: v.description || undefined, listing_type: v.listing_type, price, currency: cur, quantity },
        });
      },
    });
    if (saved) {
      toast(listing ? `Saved ${saved.title}.` : `Created ${saved.title}.`);
      table.reload();
    }
  }

  async function remove(l) {
    const ok = await confirm({ title: `Delete ${l.title}?`, text: 'It disappears from the catalog. This cannot be undone.', action: 'Delete listing' });
    if (!ok) return;
    try {
      await api('DELETE', `/api/listings/${l.id}`, { version: l.version });
      toast(`Deleted ${l.title}.`);
    } catch (err) {
      toast(err.status === 412 ? `${l.title} was changed by someone else — reload and try again.` : err.message, 'bad');
    }
    table.reload();
  }
}
