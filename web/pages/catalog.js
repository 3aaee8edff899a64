// The catalog as a buyer searches it: the read model (listings joined with their seller's name),
// full text, filters and sort. It follows the write side within moments.

import { api } from '../api.js';
import { h, clear, loading, failure, empty, badge, money, toMinor, toUnits } from '../ui.js';

const SORTS = [['newest', 'Newest first'], ['price_asc', 'Price, low to high'], ['price_desc', 'Price, high to low'], ['relevance', 'Best match']];

export function render(main, { params }) {
  const input = (name, label, attrs = {}) => {
    const el = h('input', { id: `cat-${name}`, name, value: params.get(name) || '', testid: `catalog-${name}`, autocomplete: 'off', ...attrs });
    return { el, node: h('div', { class: `field ${attrs.type === 'search' ? 'wide' : 'narrow'}` }, h('label', { for: `cat-${name}` }, label), el) };
  };
  const select = (name, label, options, value) => {
    const el = h('select', { id: `cat-${name}`, name, testid: `catalog-${name}` }, options.map(([v, l]) => h('option', { value: v }, l)));
    el.value = value;
    return { el, node: h('div', { class: 'field narrow' }, h('label', { for: `cat-${name}` }, label), el) };
  };
  const q = input('q', 'Search', { type: 'search', placeholder: 'Words in the title or description…' });
  const type = select('listing_type', 'Type', [['', 'Sale or rent'], ['sale', 'For sale'], ['rent', 'For rent']], params.get('listing_type') || '');
  const status = select('status', 'Status', [['', 'Active'], ['reserved', 'Reserved'], ['sold', 'Sold'], ['archived', 'Archived']], params.get('status') || '');
  const minP = input('min_price', 'Min price', { inputmode: 'decimal', placeholder: '0.00' });
  const maxP = input('max_price', 'Max price', { inputmode: 'decimal', placeholder: 'any' });
  for (const f of [minP, maxP]) if (f.el.value) f.el.value = toUnits(Number(f.el.value));
  const sort = select('sort', 'Sort', SORTS, params.get('sort') || 'newest');
  const results = h('div', { testid: 'catalog-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'toolbar', role: 'search', testid: 'catalog-form' },
    q.node, type.node, status.node, minP.node, maxP.node, sort.node,
    h('button', { type: 'submit', class: 'primary', testid: 'catalog-submit' }, 'Search'));

  main.append(
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Catalog'), h('p', {}, 'What buyers see: every active listing with its seller, searchable. It follows changes within moments.'))),
    form, results);

  let cursors = [null];
  let index = 0;
  let ticket = 0;

  function query() {
    const min = minP.el.value.trim() ? toMinor(minP.el.value) : undefined;
    const max = maxP.el.value.trim() ? toMinor(maxP.el.value) : undefined;
    return { q: q.el.value.trim(), listing_type: type.el.value, status: status.el.value, min_price: min ?? undefined, max_price: max ?? undefined, sort: sort.el.value };
  }

  async function load() {
    const mine = ++ticket;
    const qp = query();
    const url = new URLSearchParams(Object.entries(qp).filter(([k, v]) => v !== undefined && v !== '' && !(k === 'sort' && v === 'newest')));
    history.replaceState(null, '', `/catalog${url.size ? `?${url}` : ''}`);
    if (!results.firstChild) clear(results, loading('Searching…'));
    results.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await api('GET', '/api/catalog', { query: { ...qp, cursor: cursors[index], limit: 24 } });
    } catch (err) {
      if (mine === ticket) clear(results, failure(err, load));
      return;
    } finally {
      if (mine === ticket) results.removeAttribute('aria-busy');
    }
    if (mine !== ticket) return;
    cursors = cursors.slice(0, index + 1);
    if (page.next_cursor) cursors.push(page.next_cursor);
    if (!page.items.length && index === 0) {
      clear(results, qp.q || qp.listing_type || qp.status || qp.min_price !== undefined || qp.max_price !== undefined
        ? empty('Nothing found', 'No listing matches these words and filters. Try fewer words, or widen the price range.')
        : empty('The catalog is empty', 'Active listings show here. Create one on the Listings page.', h('a', { href: '/listings', 'data-link': true, class: 'button primary' }, 'Go to listings')));
      return;
    }
    clear(results,
      h('p', { class: 'muted', testid: 'catalog-total' }, `${page.total} ${page.total === 1 ? 'listing' : 'listings'}`),
      h('div', { class: 'results' }, page.items.map(card)),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('span', { class: 'muted' }, `Page ${index + 1}`),
        h('button', { type: 'button', class: 'small', disabled: index === 0, onclick: () => { index -= 1; load(); } }, '← Previous'),
        h('button', { type: 'button', class: 'small', disabled: !page.next_cursor, onclick: () => { index += 1; load(); } }, 'Next →')));
  }

  function card(item) {
    return h('article', { class: 'card item', testid: 'catalog-item', 'data-id': item.id },
      h('h3', { testid: 'catalog-item-title' }, item.title),
      h('div', { class: 'price' }, money(item.price, item.currency), item.listing_type === 'rent' ? h('span', { class: 'muted' }, ' to rent') : null),
      h('div', { class: 'seller' }, 'Sold by ', h('strong', { testid: 'catalog-item-seller' }, item.seller?.name || 'unknown')),
      item.description ? h('p', { class: 'desc' }, item.description.length > 160 ? `${item.description.slice(0, 160)}…` : item.description) : null,
      h('div', { class: 'meta' }, badge(item.status, item.status === 'active' ? 'ok' : 'warn'), badge(`${item.quantity} in stock`)));
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); cursors = [null]; index = 0; load(); });
  for (const s of [type.el, status.el, sort.el]) s.addEventListener('change', () => { cursors = [null]; index = 0; load(); });
  load();
}
