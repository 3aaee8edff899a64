// Projections (read models): how far each has applied its streams, how far behind it is, and a
// rebuild from the start of the streams with its progress.

import { api } from '../api.js';
import { h, clear, loading, failure, empty, confirm, toast, badge, date } from '../ui.js';

export function render(main, { can }) {
  const admin = can('admin');
  const body = h('div', { testid: 'projections' }, loading());
  main.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Projections'),
    h('p', {}, 'Read models built from events. A rebuild replays every event beside the live model, then swaps it in.'))), body);
  let timer = null;

  async function load() {
    clearTimeout(timer);
    let data;
    try { data = await api('GET', '/api/admin/projections'); } catch (err) { clear(body, failure(err, load)); return; }
    const items = data.items || [];
    if (!items.length) { clear(body, empty('No projections', 'This Souk runs no read models.')); return; }
    clear(body, items.map(card));
    if (items.some((p) => p.rebuild?.state === 'running')) timer = setTimeout(load, 1000);
  }

  // The catalog's in-memory search index: searches use SQLite FTS5 (slower) until it is ready.
  function searchIndex(ix) {
    if (!ix) return null;
    const text = ix.state === 'ready' ? `Search index ready: ${ix.rows} listings, ${ix.words} words`
      : ix.state === 'building' ? 'Search index building… (searches use SQLite meanwhile)'
        : 'Search index off: searches use SQLite (see the log)';
    return h('p', { class: 'muted', testid: 'search-index' }, text);
  }

  function card(p) {
    const r = p.rebuild || {};
    const lag = Object.values(p.lag || {}).reduce((a, b) => a + b, 0);
    const running = r.state === 'running';
    return h('section', { class: 'card', testid: 'projection', 'data-name': p.name },
      h('div', { class: 'page-head' },
        h('div', {}, h('h2', {}, p.name), h('p', { class: 'mono' }, p.file || ''), searchIndex(p.search_index)),
        h('div', { class: 'spacer' }),
        lag ? badge(`${lag} behind`, 'warn') : badge('caught up', 'ok'),
        admin ? h('button', { type: 'button', testid: 'rebuild', disabled: running, onclick: () => rebuild(p) }, running ? 'Rebuilding…' : 'Rebuild') : null),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stream'), h('th', { scope: 'col', class: 'num' }, 'Applied up to'))),
        h('tbody', {}, Object.entries(p.positions || {}).map(([s, pos]) => h('tr', {}, h('td', { class: 'mono' }, s), h('td', { class: 'num' }, String(pos))))))),
      r.state && r.state !== 'idle' ? h('div', { class: 'field rebuild', testid: 'rebuild-progress' },
        h('p', {}, `Rebuild ${r.state}: ${r.applied} of ${r.total} events`, r.events_per_second ? ` · ${r.events_per_second}/s` : '', r.finished_at ? ` · finished ${date(r.finished_at)}` : ''),
        h('progress', { max: String(Math.max(1, r.total)), value: String(r.applied), 'aria-label': 'Rebuild progress' }),
        r.error ? h('p', { class: 'field-error' }, r.error) : null) : null);
  }

  async function rebuild(p) {
    if (!await confirm({ title: `Rebuild ${p.name}?`, text: 'Every event is replayed into a new copy; the live one keeps answering until the copy has caught up.', action: 'Rebuild', danger: false })) return;
    try { await api('POST', `/api/admin/projections/${p.name}/rebuild`); toast(`Rebuilding ${p.name}…`); } catch (err) { toast(err.message, 'bad'); }
    load();
  }

  load();
  return () => clearTimeout(timer);
}
