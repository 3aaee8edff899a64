// Dead letters: events a consumer gave up on, with the reason. Retry hands one back to its
// consumer's handler; discard drops it.

import { api } from '../api.js';
import { h, confirm, toast, empty, badge, date, notice } from '../ui.js';
import { pagedTable } from '../list.js';

export function render(main, { can }) {
  const admin = can('admin');
  const body = h('div', { testid: 'dead-letters' });
  main.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Dead letters'),
    h('p', {}, 'Events a consumer could not handle after every retry. Fix the cause, then retry them.'))), body);
  const table = pagedTable(body, {
    testid: 'dead-letters-table',
    caption: 'Dead letters',
    fetchPage: (cursor) => api('GET', '/api/admin/dead-letters', { query: { cursor, limit: 50 } }),
    columns: [
      { label: 'Event', cell: (d) => h('span', {}, h('strong', {}, d.event?.type || d.letter.subject), h('br'), h('span', { class: 'muted mono' }, d.event?.aggregate_id || '')) },
      { label: 'Consumer', cell: (d) => h('span', { class: 'mono' }, d.letter.consumer) },
      { label: 'Reason', cell: (d) => d.letter.reason },
      { label: 'Attempts', num: true, cell: (d) => badge(String(d.letter.attempts), 'bad') },
      { label: 'When', cell: (d) => date(d.dead_lettered_at) },
      { label: h('span', { class: 'visually-hidden' }, 'Actions'), class: 'actions', cell: (d) => [
        h('button', { type: 'button', class: 'small', onclick: () => notice(d.event?.type || 'Event', h('pre', { class: 'json' }, JSON.stringify(d, null, 2))) }, 'View'),
        admin ? h('button', { type: 'button', class: 'small', testid: 'retry', onclick: () => retry(d) }, 'Retry') : null,
        admin ? h('button', { type: 'button', class: 'small danger', testid: 'discard', onclick: () => discard(d) }, 'Discard') : null,
      ] },
    ],
    empty: () => empty('No dead letters', 'Every consumer handled every event. When one gives up on an event, it shows here to retry or discard.'),
  });
  table.reset();

  async function retry(d) {
    try {
      const r = await api('POST', `/api/admin/dead-letters/${d.id}/retry`);
      toast(r.retried ? 'Handled this time; the dead letter is gone.' : 'Retried, but it failed again.', r.retried ? 'info' : 'bad');
    } catch (err) { toast(err.message, 'bad'); }
    table.reload();
  }

  async function discard(d) {
    if (!await confirm({ title: 'Discard this dead letter?', text: `${d.letter.consumer} will never handle this ${d.event?.type || 'event'}. This cannot be undone.`, action: 'Discard' })) return;
    try { await api('DELETE', `/api/admin/dead-letters/${d.id}`); toast('Discarded.'); } catch (err) { toast(err.message, 'bad'); }
    table.reload();
  }
}
