// Is everything healthy? nats-server, each service, each consumer's lag, outbox backlogs, dead
// letters; live throughput (from the event stream) and lag (polled) as sparklines.

import { api, stream } from '../api.js';
import { h, clear, loading, failure, badge, sparkline, duration, bytes } from '../ui.js';

const WINDOW = 60; // seconds of history in the sparklines
const POLL_MS = 3000;

export function render(main) {
  const body = h('div', { testid: 'dashboard' }, loading('Checking every part of Souk…'));
  const liveState = h('span', { class: 'live', testid: 'live-state' }, h('span', { class: 'dot' }), 'connecting…');
  main.append(
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Dashboard'), h('p', {}, 'The health of this Souk, updated live.')),
      h('div', { class: 'spacer' }), liveState),
    body);

  const perSecond = new Array(WINDOW).fill(0);
  let thisSecond = 0;
  let totalEvents = 0;
  const lagHistory = new Map(); // consumer → [lag…]
  let last = null;
  let ticket = 0;

  const stop = stream('/api/events/live', {}, () => { thisSecond += 1; totalEvents += 1; }, (state, err) => {
    const ok = state === 'open';
    clear(liveState, h('span', { class: `dot ${ok ? 'ok' : 'bad'}` }),
      ok ? 'live' : state === 'error' ? `live updates stopped: ${err?.message || 'error'}` : 'reconnecting…');
  });
  const tick = setInterval(() => {
    perSecond.push(thisSecond);
    perSecond.shift();
    thisSecond = 0;
    const slot = body.querySelector('[data-slot="throughput"]');
    if (slot) clear(slot, throughput());
  }, 1000);

  async function refresh() {
    const mine = ++ticket;
    try {
      const [overview, ready] = await Promise.all([
        api('GET', '/api/admin/overview'),
        fetch('/readyz', { credentials: 'same-origin' }).then((r) => r.json().then((j) => ({ ok: r.ok, ...j })), () => ({ ok: false })),
      ]);
      if (mine !== ticket) return;
      last = { overview, ready };
      for (const s of overview.streams || []) {
        for (const c of s.consumers || []) {
          const hist = lagHistory.get(c.name) || [];
          hist.push(c.lag);
          if (hist.length > WINDOW / (POLL_MS / 1000)) hist.shift();
          lagHistory.set(c.name, hist);
        }
      }
      draw();
    } catch (err) {
      if (mine !== ticket) return;
      if (!last) clear(body, failure(err, refresh));
      else body.prepend(h('div', { class: 'alert', role: 'alert' }, `Could not refresh: ${err.message}`));
    }
  }
  const poll = setInterval(refresh, POLL_MS);
  refresh();

  function throughput() {
    const now = perSecond.slice(-5).reduce((a, b) => a + b, 0) / 5;
    return [
      h('div', { class: 'stat' }, h('div', { class: 'value', testid: 'events-per-second' }, `${now.toFixed(1)}/s`), h('div', { class: 'label' }, `events on the bus · ${totalEvents} since you opened this page`)),
      sparkline(perSecond, { label: `events per second over the last ${WINDOW} seconds` }),
    ];
  }

  function draw() {
    const { overview: o, ready } = last;
    const checks = Object.entries(o.checks || {});
    const failing = checks.filter(([, c]) => !c.ok);
    const healthy = o.ready && ready.ok && failing.length === 0;
    const consumers = (o.streams || []).flatMap((s) => (s.consumers || []).map((c) => ({ ...c, stream: s.name })));
    const totalLag = consumers.reduce((a, c) => a + c.lag, 0);
    const backlog = (o.outboxes || []).reduce((a, b) => a + b.backlog, 0);
    const dead = o.dead_letters?.total || 0;

    clear(body,
      h('section', { class: 'card overall', 'aria-labelledby': 'overall' },
        h('span', { class: `dot ${healthy ? 'ok' : 'bad'}`, 'aria-hidden': 'true' }),
        h('div', {},
          h('h2', { id: 'overall', testid: 'overall-status', 'data-healthy': String(healthy) },
            healthy ? 'All systems healthy' : `${failing.length || 'Some'} ${failing.length === 1 ? 'part needs' : 'parts need'} attention`),
          h('p', { class: 'muted' }, healthy ? 'nats-server, every service and every consumer are up and caught up.'
            : failing.map(([n, c]) => `${n}: ${c.detail}`).join(' · ') || 'Souk is not ready yet.'))),
      h('div', { class: 'grid' },
        h('section', { class: 'card', 'data-slot': 'throughput', 'aria-label': 'Throughput' }, throughput()),
        h('section', { class: 'card stat', 'aria-label': 'Consumer lag' },
          h('div', { class: 'value', testid: 'total-lag' }, String(totalLag)), h('div', { class: 'label' }, 'events the consumers still owe'),
          sparkline(sumSeries([...lagHistory.values()]), { label: 'total consumer lag over time', kind: 'lag' })),
        h('section', { class: 'card stat', 'aria-label': 'Outbox and dead letters' },
          h('div', { class: 'value' }, String(backlog)), h('div', { class: 'label' }, 'events waiting in outboxes'),
          h('p', {}, dead
            ? h('a', { href: '/dead-letters', 'data-link': true, testid: 'dead-letter-count' }, `${dead} dead ${dead === 1 ? 'letter' : 'letters'} to look at`)
            : h('span', { class: 'muted', testid: 'dead-letter-count' }, 'No dead letters.'))),
        h('section', { class: 'card stat', 'aria-label': 'Uptime and versions' },
          h('div', { class: 'value', testid: 'uptime' }, duration(o.uptime_seconds)), h('div', { class: 'label' }, 'up'),
          h('p', { class: 'muted' }, `Souk ${o.version} · nats-server ${o.nats_server || 'external'}`))),
      h('div', { class: 'grid' },
        h('section', { class: 'card', 'aria-labelledby': 'checks-h' }, h('h2', { id: 'checks-h' }, 'Health checks'),
          h('ul', { class: 'health-list', testid: 'checks' }, checks.map(([name, c]) =>
            h('li', { testid: 'check', 'data-name': name, 'data-ok': String(c.ok) },
              h('div', {}, h('div', { class: 'name' }, name), h('div', { class: 'detail' }, c.detail)),
              c.ok ? badge('healthy', 'ok') : badge('failing', 'bad'))))),
        h('section', { class: 'card', 'aria-labelledby': 'services-h' }, h('h2', { id: 'services-h' }, 'Services'),
          (o.services || []).length
            ? h('ul', { class: 'health-list', testid: 'services' }, o.services.map((s) => {
              const eps = s.endpoints || [];
              const reqs = eps.reduce((a, e) => a + (e.num_requests || 0), 0);
              const errs = eps.reduce((a, e) => a + (e.num_errors || 0), 0);
              return h('li', { testid: 'service', 'data-name': s.name },
                h('div', {}, h('div', { class: 'name' }, s.name), h('div', { class: 'detail' }, `v${s.version} · ${reqs} ${reqs === 1 ? 'request' : 'requests'} · ${errs} ${errs === 1 ? 'error' : 'errors'}`)),
                badge('healthy', 'ok'));
            }))
            : h('p', { class: 'muted' }, 'No service answered. Is the bus connected?'))),
      h('section', { class: 'card', 'aria-labelledby': 'consumers-h' }, h('h2', { id: 'consumers-h' }, 'Consumers'),
        consumers.length ? h('div', { class: 'table-wrap' }, h('table', { testid: 'consumers' },
          h('thead', {}, h('tr', {}, ['Consumer', 'Stream', 'Lag', 'Trend', 'Redelivered'].map((t, i) => h('th', { scope: 'col', class: [2, 4].includes(i) ? 'num' : '' }, t)))),
          h('tbody', {}, consumers.map((c) => h('tr', {},
            h('td', { class: 'mono' }, c.name), h('td', { class: 'mono' }, c.stream),
            h('td', { class: 'num' }, c.lag ? badge(String(c.lag), c.lag > 100 ? 'bad' : 'warn') : badge('0', 'ok')),
            h('td', {}, sparkline(lagHistory.get(c.name) || [], { label: `lag of ${c.name}`, kind: 'lag', small: true })),
            h('td', { class: 'num' }, String(c.redelivered))))))) : h('p', { class: 'muted' }, 'No consumers yet.')),
      h('div', { class: 'grid' },
        h('section', { class: 'card', 'aria-labelledby': 'outbox-h' }, h('h2', { id: 'outbox-h' }, 'Outboxes'),
          h('ul', { class: 'health-list' }, (o.outboxes || []).map((b) => h('li', {}, h('span', { class: 'name' }, b.service),
            b.backlog ? badge(`${b.backlog} waiting`, 'warn') : badge('empty', 'ok'))))),
        h('section', { class: 'card', 'aria-labelledby': 'stores-h' }, h('h2', { id: 'stores-h' }, 'Stores'),
          h('ul', { class: 'health-list' }, (o.stores || []).map((s) => h('li', {}, h('span', { class: 'name mono' }, s.file), h('span', { class: 'muted' }, bytes(s.bytes))))),
          h('ul', { class: 'health-list' }, (o.streams || []).map((s) => h('li', {}, h('span', { class: 'name mono' }, s.name), h('span', { class: 'muted' }, `${s.messages} events · ${bytes(s.bytes)}`)))))));
  }

  return () => { stop(); clearInterval(tick); clearInterval(poll); };
}

function sumSeries(series) {
  const n = Math.max(0, ...series.map((s) => s.length));
  return Array.from({ length: n }, (_, i) => series.reduce((a, s) => a + (s[s.length - n + i] || 0), 0));
}
