// A paged table over a list endpoint (`{items, next_cursor}`): loading, error and empty states,
// previous/next by cursor. Pages describe their columns; this does the rest.

import { h, clear, loading, failure } from './ui.js';

/**
 * `fetchPage(cursor) → Promise<{items, next_cursor}>`; `columns: [{label, cell(item), num}]`;
 * `empty()` → the node shown when there is nothing (it should say what to do next).
 */
export function pagedTable(container, { fetchPage, columns, empty, testid, caption }) {
  let cursors = [null];
  let index = 0;
  let ticket = 0;

  async function load() {
    const mine = ++ticket;
    if (!container.querySelector('table')) clear(container, loading());
    container.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await fetchPage(cursors[index]);
    } catch (err) {
      if (mine === ticket) clear(container, failure(err, load));
      return;
    } finally {
      if (mine === ticket) container.removeAttribute('aria-busy');
    }
    if (mine !== ticket) return;
    const items = page?.items || [];
    if (!items.length && index === 0) { clear(container, empty()); return; }
    cursors = cursors.slice(0, index + 1);
    if (page.next_cursor) cursors.push(page.next_cursor);
    const table = h('table', { testid, class: 'stack' },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)))),
      h('tbody', {}, items.map((item) => h('tr', { 'data-id': item.id, testid: 'row' },
        columns.map((c) => h('td', { class: [c.num ? 'num' : '', c.class || ''].join(' ').trim() || null, 'data-label': typeof c.label === 'string' ? c.label : null }, c.cell(item)))))));
    const prev = h('button', { type: 'button', class: 'small', disabled: index === 0, testid: 'prev-page', onclick: () => { index -= 1; load(); } }, '← Previous');
    const next = h('button', { type: 'button', class: 'small', disabled: !page.next_cursor, testid: 'next-page', onclick: () => { index += 1; load(); } }, 'Next →');
    clear(container,
      h('div', { class: 'table-wrap' }, table),
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, h('span', { class: 'muted' }, `Page ${index + 1} · ${items.length} shown`), prev, next));
  }

  return {
    /** Reloads the current page (after an edit). */
    reload: load,
    /** Back to the first page (after a new search). */
    reset() { cursors = [null]; index = 0; return load(); },
  };
}
