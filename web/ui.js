// Small building blocks every page uses: element creation, dialogs, forms with field errors,
// loading/empty/error states, toasts, formatting and sparklines. No inline styles (the CSP
// forbids them): everything looks the way app.css says.

/** `h('button', {class: 'primary', onclick}, 'Save')`. Attributes starting with `on` are listeners. */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'polyline', 'polygon', 'line'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

let uid = 0;
export function id(prefix = 'f') { uid += 1; return `${prefix}-${uid}`; }

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}`, testid: 'toast' }, message);
  box.append(t);
  setTimeout(() => t.remove(), 5000);
}

// ---- states ----

export function loading(text = 'Loading…') {
  return h('div', { class: 'state', role: 'status', testid: 'loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('p', {}, text));
}

export function empty(title, text, ...actions) {
  return h('div', { class: 'state', testid: 'empty' }, h('h2', {}, title), h('p', {}, text),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

export function failure(err, retry) {
  const status = err?.status === 0 ? 'Souk is unreachable' : err?.status === 403 ? 'Not allowed' : 'Something went wrong';
  return h('div', { class: 'state error', role: 'alert', testid: 'error' },
    h('h2', {}, status), h('p', {}, err?.message || String(err)),
    retry ? h('div', { class: 'actions' }, h('button', { type: 'button', onclick: retry }, 'Try again')) : null);
}

// ---- formatting ----

export function date(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function ago(s) {
  if (!s) return 'never';
  const secs = Math.round((Date.now() - new Date(s).getTime()) / 1000);
  if (secs < 60) return 'just now';
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return date(s);
}

export function duration(secs) {
  const d = Math.floor(secs / 86400), hr = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${m} min`;
  if (m) return `${m} min ${secs % 60} s`;
  return `${secs} s`;
}

export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** How many minor units a currency has (2 for USD, 0 for JPY). */
export function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch { return 2; }
}

export function money(minor, currency = 'USD') {
  const digits = minorDigits(currency);
  const units = minor / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(units);
  } catch { return `${units.toFixed(digits)} ${currency}`; }
}

/** "19.99" → 1999 minor units; null when it is not a price. */
export function toMinor(text, currency = 'USD') {
  const t = String(text).trim().replace(',', '.');
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  const digits = minorDigits(currency);
  const [whole, frac = ''] = t.split('.');
  if (frac.length > digits) return null;
  return Number(whole) * 10 ** digits + Number((frac + '0'.repeat(digits)).slice(0, digits) || 0);
}

export function toUnits(minor, currency = 'USD') {
  const digits = minorDigits(currency);
  return (minor / 10 ** digits).toFixed(digits);
}

export function badge(text, kind = '') { return h('span', { class: `badge ${kind}` }, text); }

export function debounce(fn, ms = 250) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

// ---- sparklines ----

/** An SVG sparkline of `values` (newest last). */
export function sparkline(values, { label, kind = '', small = false } = {}) {
  const w = 120, hgt = 40;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - (v / max) * (hgt - 2) - 1).toFixed(1)}`);
  const svg = h('svg', {
    class: `spark ${kind} ${small ? 'spark-small' : ''}`, viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': label || 'trend',
  });
  if (pts.length) {
    svg.append(h('polygon', { points: `0,${hgt} ${pts.join(' ')} ${((values.length - 1) * step).toFixed(1)},${hgt}` }));
    svg.append(h('polyline', { points: pts.join(' ') }));
  }
  return svg;
}

// ---- dialogs ----

function modal(content, { label }) {
  const dlg = h('dialog', { 'aria-label': label }, content);
  document.body.append(dlg);
  dlg.addEventListener('close', () => dlg.remove());
  dlg.showModal();
  return dlg;
}

/** Asks before something that cannot be undone. Resolves true when confirmed. */
export function confirm({ title, text, action = 'Delete', danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { type: 'button', class: danger ? 'danger solid' : 'primary', testid: 'confirm', onclick: () => { answer = true; dlg.close(); } }, action);
    const body = h('div', { class: 'dialog-body' },
      h('header', {}, h('h2', {}, title)),
      h('p', {}, text),
      h('footer', {}, h('button', { type: 'button', testid: 'cancel', onclick: () => dlg.close() }, 'Cancel'), yes));
    const dlg = modal(body, { label: title });
    dlg.addEventListener('close', () => resolve(answer));
    yes.focus();
  });
}

/** Shows a message (e.g. a secret shown once) with a single button. */
export function notice(title, ...content) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: 'primary', onclick: () => dlg.close() }, 'Done');
    const dlg = modal(h('div', { class: 'dialog-body' }, h('header', {}, h('h2', {}, title)), content, h('footer', {}, ok)), { label: title });
    dlg.addEventListener('close', () => resolve());
    ok.focus();
  });
}

// ---- forms ----

/**
 * A labelled input with a place for its error. `spec`: {name, label, type, value, required,
 * options: [[value, label]], hint, attrs}.
 */
export function field(spec) {
  const fid = id(spec.name);
  const errId = `${fid}-error`;
  const hintId = spec.hint ? `${fid}-hint` : null;
  const common = {
    id: fid, name: spec.name, required: spec.required, testid: `field-${spec.name}`,
    'aria-describedby': [hintId, errId].filter(Boolean).join(' '), ...(spec.attrs || {}),
  };
  let input;
  if (spec.type === 'select') {
    input = h('select', common, (spec.options || []).map(([v, l]) => h('option', { value: v }, l)));
    if (spec.value !== undefined) input.value = spec.value;
  } else if (spec.type === 'textarea') {
    input = h('textarea', common);
    input.value = spec.value ?? '';
  } else {
    input = h('input', { type: spec.type || 'text', ...common });
    input.value = spec.value ?? '';
  }
  return h('div', { class: `field ${spec.class || ''}` },
    h('label', { for: fid }, spec.label),
    spec.hint ? h('p', { class: 'hint', id: hintId }, spec.hint) : null,
    input,
    h('p', { class: 'field-error', id: errId, 'data-error-for': spec.name, testid: `error-${spec.name}` }));
}

/** Clears what the last attempt marked wrong. */
export function resetErrors(form) {
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  form.querySelectorAll('.field-error').forEach((el) => { el.textContent = ''; });
  const alert = form.querySelector('.form-alert');
  if (alert) alert.replaceChildren();
}

/** Puts an error next to its field; `null` when the form has no such field. */
export function fieldError(form, name, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!slot) return null;
  slot.textContent = message;
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input) input.setAttribute('aria-invalid', 'true');
  return slot;
}

/**
 * Shows an API error on a form: each `errors[]` entry next to its field, a 412 as "changed by
 * someone else", anything else above the fields. `reload` (optional) is offered on a conflict.
 */
export function showError(form, err, reload) {
  const alert = form.querySelector('.form-alert');
  let first = null;
  const rest = [];
  for (const e of err.errors || []) {
    const slot = fieldError(form, e.field, e.message);
    if (slot && !first) first = form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (!slot) rest.push(`${e.field}: ${e.message}`);
  }
  if (alert) {
    if (err.status === 412) {
      alert.className = 'alert warn form-alert';
      alert.replaceChildren(h('strong', {}, 'This was changed by someone else since you opened it. '),
        'Reload to see the latest version, then make your change again.',
        reload ? h('button', { type: 'button', class: 'small', testid: 'reload', onclick: reload }, 'Reload') : null);
    } else if (!first || rest.length) {
      alert.className = 'alert form-alert';
      alert.replaceChildren(rest.length ? rest.join('; ') : err.message);
    }
  }
  (first || alert)?.focus?.();
  if (!first && alert) alert.setAttribute('tabindex', '-1');
}

/**
 * A form in a dialog. `fields`: nodes (see `field`). `submit(form)` returns a promise; an
 * ApiError is shown on the form (the dialog stays open); success closes it and resolves with the
 * result. Cancel resolves null.
 */
export function formDialog({ title, fields, action = 'Save', submit, testid, reload }) {
  return new Promise((resolve) => {
    let result = null;
    const alert = h('div', { class: 'alert form-alert', role: 'alert', testid: 'form-alert' });
    const save = h('button', { type: 'submit', class: 'primary', testid: 'submit' }, action);
    const form = h('form', { novalidate: true, testid },
      h('header', {}, h('h2', {}, title)),
      alert,
      fields,
      h('footer', {}, h('button', { type: 'button', testid: 'cancel', onclick: () => dlg.close() }, 'Cancel'), save));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      resetErrors(form);
      save.disabled = true;
      save.textContent = 'Saving…';
      try {
        result = await submit(form);
        dlg.close();
      } catch (err) {
        if (err?.localOnly) { /* already shown next to the field */ } else showError(form, err, reload && (() => reload(form)));
      } finally {
        save.disabled = false;
        save.textContent = action;
      }
    });
    const dlg = modal(form, { label: title });
    dlg.addEventListener('close', () => resolve(result));
    form.querySelector('input, select, textarea')?.focus();
  });
}

/** A local (client-side) validation failure to throw from `submit`: shown next to its field. */
export function invalid(form, name, message) {
  fieldError(form, name, message);
  form.querySelector(`[name="${CSS.escape(name)}"]`)?.focus();
  const e = new Error(message);
  e.localOnly = true;
  return e;
}

export function values(form) {
  return Object.fromEntries(new FormData(form).entries());
}
