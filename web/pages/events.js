// A live tail of the bus: every event as it is published, filtered by subject, with pause. Click
// an event to see its whole envelope.

import { stream } from '../api.js';
import { h, clear, empty } from '../ui.js';

const MAX = 500;

export function render(main, { params }) {
  let subject = params.get('subject') || 'souk.events.>';
  let paused = false;
  let stop = () => {};
  let held = [];
  let selected = null;
  const events = [];

  const input = h('input', { id: 'ev-subject', name: 'subject', value: subject, testid: 'events-subject', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'ev-subject-hint' });
  const pause = h('button', { type: 'button', testid: 'events-pause', 'aria-pressed': 'false', onclick: togglePause }, 'Pause');
  const state = h('span', { class: 'live', testid: 'events-state' }, h('span', { class: 'dot' }), 'connecting…');
  const list = h('ul', { class: 'event-list', testid: 'events-list', 'aria-label': 'Events, newest first' });
  const listBox = h('div', { class: 'card' }, empty('Waiting for events', 'Events show here the moment they happen. Create or change a user or listing to see one.'));
  const detail = h('div', { class: 'card', testid: 'event-detail' }, h('p', { class: 'muted' }, 'Choose an event to see its envelope.'));
  const form = h('form', { class: 'toolbar', role: 'search' },
    h('div', { class: 'field' }, h('label', { for: 'ev-subject' }, 'Subject filter'),
      h('p', { class: 'hint', id: 'ev-subject-hint' }, 'NATS wildcards: souk.events.user.> or souk.events.*.created'), input),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'), pause,
    h('button', { type: 'button', onclick: () => { events.length = 0; held = []; draw(); } }, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    subject = input.value.trim() || 'souk.events.>';
    history.replaceState(null, '', `/events?subject=${encodeURIComponent(subject)}`);
    connect();
  });

  main.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Events'), h('p', {}, 'Everything that happens in Souk, as it happens.')), h('div', { class: 'spacer' }), state),
    form, h('div', { class: 'split' }, listBox, detail));

  function connect() {
    stop();
    clear(state, h('span', { class: 'dot' }), 'connecting…');
    stop = stream('/api/events/live', { subject }, (ev) => {
      let env;
      try { env = JSON.parse(ev.data); } catch { env = { type: ev.type, raw: ev.data }; }
      if (paused) { held.push(env); clear(pause, `Resume (${held.length} new)`); return; }
      add(env);
    }, (s, err) => {
      clear(state, h('span', { class: `dot ${s === 'open' ? 'ok' : 'bad'}` }),
        s === 'open' ? (paused ? 'paused' : 'live') : s === 'error' ? (err?.message || 'stopped') : 'reconnecting…');
    });
  }

  function add(env) {
    events.unshift(env);
    if (events.length > MAX) events.length = MAX;
    draw();
  }

  function togglePause() {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    clear(pause, paused ? 'Resume' : 'Pause');
    if (!paused) { held.forEach(add); held = []; }
    const label = state.lastChild;
    if (label && state.querySelector('.dot.ok')) label.textContent = paused ? 'paused' : 'live';
  }

  function draw() {
    if (!events.length) { clear(listBox, empty('Waiting for events', 'Events show here the moment they happen. Create or change a user or listing to see one.')); return; }
    clear(list, events.map((e) => h('li', {}, h('button', {
      type: 'button', testid: 'event', 'aria-pressed': String(selected === e), onclick: () => { selected = e; show(e); draw(); },
    }, h('span', { class: 'time' }, e.occurred_at ? new Date(e.occurred_at).toLocaleTimeString() : ''), h('span', { class: 'type' }, e.type || 'event'),
      h('span', { class: 'subject mono' }, `${e.aggregate_id || ''} · v${e.version ?? '?'} · by ${e.actor || '?'}`)))));
    if (listBox.firstChild !== list) clear(listBox, list);
  }

  function show(e) {
    clear(detail, h('h2', {}, e.type || 'event'), h('pre', { class: 'json', testid: 'event-json', tabindex: '0' }, JSON.stringify(e, null, 2)));
  }

  connect();
  return () => stop();
}
