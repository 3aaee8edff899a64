// Talking to Souk's HTTP API: JSON in and out, the session cookie, the CSRF token on every
// request that changes something, problem+json errors turned into ApiError, and any 401 handed
// to the app (which sends the user to the sign-in screen and back).

let csrfToken = null;
let sessionLost = () => {};

export function setCsrf(token) { csrfToken = token || null; }
export function onSessionLost(fn) { sessionLost = fn; }

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? 'unreachable' : 'error');
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
    this.problem = problem;
  }
  get conflict() { return this.status === 412; }
}

/** `api('GET', '/api/users', {query: {q}})`; `etag` is a version number sent as If-Match. */
export async function api(method, path, { body, query, version, signal, quiet401, idempotent } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  if (version !== undefined && version !== null) headers['If-Match'] = `"${version}"`;
  if (idempotent) headers['Idempotency-Key'] = crypto.randomUUID();
  let response;
  try {
    response = await fetch(url, {
      method, headers, signal, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { detail: 'Souk did not answer. Is it running? Check your connection and try again.' });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const err = new ApiError(response.status, data || { title: response.statusText });
    if (response.status === 401 && !quiet401) sessionLost(err);
    throw err;
  }
  return data;
}

/**
 * A Server-Sent Events stream read with fetch (so every event type arrives, whatever its name).
 * Calls `onEvent({type, data})`; returns a function that stops it. `onState(state, err)` hears
 * 'open', 'reconnecting' (after the stream broke or Souk restarted; it retries with backoff) and
 * 'error' (refused: it does not retry).
 */
export function stream(path, query, onEvent, onState = () => {}) {
  const ctrl = new AbortController();
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v) url.searchParams.set(k, v);

  // One connection: 'retry' when it broke, 'stop' when refused or stopped.
  async function once() {
    let response;
    try {
      response = await fetch(url, { credentials: 'same-origin', signal: ctrl.signal, headers: { Accept: 'text/event-stream' } });
    } catch (e) {
      return e.name === 'AbortError' ? 'stop' : 'retry';
    }
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      const err = new ApiError(response.status, data || {});
      if (response.status === 401) sessionLost(err);
      if (response.status >= 500 || response.status === 429) return 'retry';
      onState('error', err);
      return 'stop';
    }
    onState('open');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'retry';
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (data.length) onEvent({ type, data: data.join('\n') });
        }
      }
    } catch (e) {
      return e.name === 'AbortError' ? 'stop' : 'retry';
    }
  }

  (async () => {
    let wait = 1000;
    while (!ctrl.signal.aborted) {
      const opened = Date.now();
      if (await once() === 'stop' || ctrl.signal.aborted) return;
      if (Date.now() - opened > 30000) wait = 1000;
      onState('reconnecting');
      await new Promise((resolve) => {
        const t = setTimeout(resolve, wait);
        ctrl.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
      wait = Math.min(wait * 2, 15000);
    }
  })();
  return () => ctrl.abort();
}
