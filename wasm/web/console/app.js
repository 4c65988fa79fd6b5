// The console's shared module: where the API is, how to call it, and how pages show
// instants, statuses, errors, dialogs and live updates.
//
// No framework and no build step: every page is a static HTML file that imports this module
// and its own page module. The console talks only to the HTTP API of SPEC §7, so it works
// against `backupctl serve` (same origin, the default) or a deployed API (set its address in
// the "API" dialog; it is kept in localStorage under `apiBase`, as the job form keeps it).

import { authHeaders, captureToken, signInForm, tokenFor } from '../auth.js';

// The sign-in URL's `#token=…` leaves the address bar before anything else runs (SPEC §12).
captureToken();

// ----- configuration ------------------------------------------------------------------

/** localStorage keys. `apiBase` is shared with the job form at `/`. */
export const STORAGE = { apiBase: 'apiBase', org: 'orgId', project: 'projectId' };

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled: fall back to defaults
  }
}

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    /* storage disabled: the setting lasts until the page is left */
  }
}

/**
 * Where the API is and which organization and project the console shows. `?api=URL`,
 * `?org=` and `?project=` on a page's address override the stored settings for that visit.
 */
export const config = {
  get apiBase() {
    const fromQuery = new URLSearchParams(location.search).get('api');
    return trimBase(fromQuery ?? stored(STORAGE.apiBase) ?? '');
  },
  get org() {
    return new URLSearchParams(location.search).get('org') || stored(STORAGE.org) || 'default';
  },
  get project() {
    return (
      new URLSearchParams(location.search).get('project') || stored(STORAGE.project) || 'default'
    );
  },
  save({ apiBase, org, project }) {
    store(STORAGE.apiBase, trimBase(apiBase ?? ''));
    store(STORAGE.org, org && org !== 'default' ? org : '');
    store(STORAGE.project, project && project !== 'default' ? project : '');
  },
};

function trimBase(url) {
  return url.trim().replace(/\/+$/, '');
}

// ----- the API client --------------------------------------------------------------------

/** A failed API call: an RFC 7807 problem, or a network failure (`status` 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || null;
    this.fields = problem.fields || {};
  }
}

const TIMEOUT_MS = 15000;

async function call(method, path, body) {
  const url = `${config.apiBase}${path}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? { accept: 'application/json', ...authHeaders(config.apiBase) } : {
        accept: 'application/json',
        'content-type': 'application/json',
        ...authHeaders(config.apiBase),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch (error) {
    const where = config.apiBase || location.origin;
    const why = error.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : error.message;
    throw new ApiError(0, {
      title: 'The API cannot be reached',
      detail: `The API at ${where} cannot be reached (${why}). Check that backupctl serve is running there, or set the API address with the “API” button.`,
      code: 'unreachable',
    });
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const problem = json && typeof json === 'object' ? json : {};
    if (!problem.detail && !problem.title) {
      problem.title = `${response.status} ${response.statusText}`;
      problem.detail = `The API answered ${response.status} ${response.statusText} to ${method} ${path}.`;
    }
    throw new ApiError(response.status, problem);
  }
  return json ?? {};
}

const enc = encodeURIComponent;
const orchestrate = () =>
  `/orchestrate/v1/organizations/${enc(config.org)}/projects/${enc(config.project)}`;
const mesdb = () => `/mesdb/v1/organizations/${enc(config.org)}/projects/${enc(config.project)}`;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The calls of SPEC §7 the console makes, answering the API's own JSON shapes. */
export const api = {
  listJobs: async () => (await call('GET', `${orchestrate()}/jobs`)).jobs ?? [],
  getJob: async (id) => (await call('GET', `${orchestrate()}/jobs/${enc(id)}`)).job,
  deleteJob: (id) => call('DELETE', `${orchestrate()}/jobs/${enc(id)}`),
  runJob: (id) => call('POST', `${orchestrate()}/jobs/${enc(id)}/run`),
  listHistory: async (jobId) =>
    (await call('GET', `${orchestrate()}/history${query({ jobId })}`)).items ?? [],
  listBackups: async ({ jobId, clusterId } = {}) =>
    (await call('GET', `${mesdb()}/backups${query({ jobId, clusterId })}`)).backups ?? [],
  createBackup: (sourceClusterId, description) =>
    call('POST', `${mesdb()}/backups`, { description, sourceClusterId }),
  deleteBackup: (id) => call('DELETE', `${mesdb()}/backups/${enc(id)}`),
  verifyBackup: (id) => call('POST', `${mesdb()}/backups/${enc(id)}/verify`),
  listClusters: async () => (await call('GET', `${mesdb()}/clusters`)).clusters ?? [],
  getCluster: async (id) => (await call('GET', `${mesdb()}/clusters/${enc(id)}`)).cluster,
  /** A restore (SPEC §14): `{id, description, sourceBackupId, path | availabilityZone}`. */
  restoreBackup: (body) => call('POST', `${mesdb()}/clusters`, body),
  lockCluster: (id, operation, ttlSeconds) =>
    call('POST', `${mesdb()}/clusters/${enc(id)}/lock`, ttlSeconds ? { operation, ttlSeconds } : { operation }),
  unlockCluster: (id) => call('DELETE', `${mesdb()}/clusters/${enc(id)}/lock`),
};

// ----- DOM helpers -----------------------------------------------------------------------

/**
 * `h('a', {href: 'x', class: 'y'}, 'text', child…)`: an element. Attributes starting with
 * `on` are listeners; `null`, `undefined` and `false` attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces `container`'s children, keeping focus on the element with the same `data-key`. */
export function replaceKeepingFocus(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  for (const table of container.querySelectorAll('table.responsive')) keepTableSemantics(table);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/**
 * Spells out a table's roles, because narrow screens show `table.responsive` as stacked
 * cards (`display: block`), which makes browsers drop the implicit table semantics.
 */
function keepTableSemantics(table) {
  table.setAttribute('role', 'table');
  for (const group of table.querySelectorAll('thead, tbody, tfoot')) group.setAttribute('role', 'rowgroup');
  for (const row of table.rows) {
    row.setAttribute('role', 'row');
    for (const cell of row.cells) {
      let role = 'cell';
      if (cell.tagName === 'TH') role = cell.getAttribute('scope') === 'row' ? 'rowheader' : 'columnheader';
      cell.setAttribute('role', role);
    }
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

// ----- instants --------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');

/** `2026-11-27 06:00 UTC` (with `:SS` when `seconds`). */
export function formatUtc(date, { seconds = false } = {}) {
  const d = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  const t = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}${seconds ? `:${pad(date.getUTCSeconds())}` : ''}`;
  return `${d} ${t} UTC`;
}

/** The local time of `date`, with its date when it is not the UTC date; null when local is UTC. */
export function formatLocal(date, { seconds = false } = {}) {
  if (localIsUtc()) return null;
  const sameDay =
    date.getFullYear() === date.getUTCFullYear() &&
    date.getMonth() === date.getUTCMonth() &&
    date.getDate() === date.getUTCDate();
  const options = {
    hour: '2-digit',
    minute: '2-digit',
    second: seconds ? '2-digit' : undefined,
    hourCycle: 'h23',
    timeZoneName: 'short',
  };
  if (!sameDay) Object.assign(options, { month: 'short', day: 'numeric' });
  return new Intl.DateTimeFormat(undefined, options).format(date);
}

function localIsUtc() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  return /^(Etc\/)?(UTC|UCT|Universal|Zulu|GMT|Greenwich)$/i.test(zone);
}

/** "in 5 min", "3 h ago". */
export function relative(date, now = Date.now()) {
  const diff = date.getTime() - now;
  const abs = Math.abs(diff) / 1000;
  let text;
  if (abs < 45) text = `${Math.max(1, Math.round(abs))} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400 * 2) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} days`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * An instant as `<time>`: the UTC time, and the local time beside it (omitted when the
 * browser's zone is UTC). `relativeTo` adds "in 5 min" / "3 h ago".
 */
export function timeEl(iso, { seconds = false, rel = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, iso);
  const local = formatLocal(date, { seconds });
  return h(
    'time',
    { datetime: iso, class: 'instant', title: `${iso} (${date.toString()})` },
    h('span', { class: 'utc' }, formatUtc(date, { seconds })),
    local ? h('span', { class: 'local' }, h('span', { class: 'visually-hidden' }, 'local time '), local) : null,
    rel ? h('span', { class: 'relative' }, relative(date)) : null,
  );
}

// ----- statuses ----------------------------------------------------------------------------

const BADGE_TEXT = {
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  active: 'Active',
  deleted: 'Deleted',
  creating: 'Creating',
  available: 'Available',
  defunct: 'Defunct',
  deleting: 'Deleting',
  locked: 'Locked',
  unlocked: 'Unlocked',
  never: 'Never ran',
  verified: 'Verified ok',
};

/** A status badge: colour and an icon-like glyph, never colour alone. */
export function badge(status, text) {
  return h(
    'span',
    { class: `badge badge-${status}`, dataset: { status } },
    h('span', { class: 'badge-dot', 'aria-hidden': 'true' }),
    text ?? BADGE_TEXT[status] ?? status,
  );
}

/** "operation expand-disk" / "scheduled-backup of job J (run R)", as the engine says it. */
export function holderPhrase(lock) {
  let text = `operation ${lock.operation}`;
  if (lock.jobId && lock.runId) text += ` of job ${lock.jobId} (run ${lock.runId})`;
  else if (lock.jobId) text += ` of job ${lock.jobId}`;
  else if (lock.runId) text += ` (run ${lock.runId})`;
  return text;
}

export const jobHref = (id, tab) => `job.html?id=${encodeURIComponent(id)}${tab ? `#${tab}` : ''}`;

// ----- notices, live announcements and errors -------------------------------------------

/** Says `message` to screen readers through the page's polite live region. */
export function announce(message) {
  const region = $('#live');
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick is announced even when the text repeats.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/**
 * Shows a notice at the top of the main content: `kind` is `success`, `error` or `info`.
 * Errors use role=alert; the rest are announced politely.
 */
export function notify(kind, title, detail, extra) {
  const area = $('#notices');
  if (!area) return;
  const close = h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×');
  const notice = h(
    'div',
    { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('div', { class: 'notice-body' }, h('strong', {}, title), detail ? h('p', {}, detail) : null, extra ?? null),
    close,
  );
  close.addEventListener('click', () => notice.remove());
  // The same notice again replaces the old one instead of stacking up.
  for (const old of area.querySelectorAll('.notice')) {
    if (old.dataset.title === title) old.remove();
  }
  notice.dataset.title = title;
  area.prepend(notice);
  while (area.children.length > 3) area.lastElementChild.remove();
  if (kind === 'success') setTimeout(() => notice.remove(), 12000);
  return notice;
}

/** A problem's message with its code, for notices. */
export function problemText(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  const fields = Object.entries(error.fields ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join(' ');
  const detail = error.problem.detail || error.problem.title || error.message;
  return fields && !detail.includes(fields) ? `${detail} ${fields}` : detail;
}

/** The block shown in place of a table when loading it failed. */
export function errorState(error, retry) {
  if (error?.status === 401) {
    // No token or a wrong one: the sign-in prompt above the page asks for one.
    showSignIn('The API refused the request: it needs this server’s token.');
    return h(
      'div',
      { class: 'state state-error', role: 'alert' },
      h('h2', {}, 'Sign in to see this'),
      h('p', {}, problemText(error)),
    );
  }
  return h(
    'div',
    { class: 'state state-error', role: 'alert' },
    h('h2', {}, error.status === 0 ? 'The API cannot be reached' : 'This could not be loaded'),
    h('p', {}, problemText(error)),
    retry ? h('button', { type: 'button', class: 'button', 'data-key': 'retry', onclick: retry }, 'Try again') : null,
  );
}

/** An empty state: what is missing and what to do next. */
export function emptyState(title, ...body) {
  return h('div', { class: 'state state-empty' }, h('h2', {}, title), ...body);
}

// ----- dialogs --------------------------------------------------------------------------

/**
 * A modal confirmation (`<dialog>`): resolves true when the operator confirms. The cancel
 * button has focus first, so Enter never destroys anything by accident.
 */
export function confirmDialog({ title, body, confirm, danger = true }) {
  return new Promise((resolve) => {
    const cancelButton = h('button', { type: 'button', class: 'button', value: 'cancel', autofocus: true }, 'Cancel');
    const confirmButton = h(
      'button',
      { type: 'button', class: `button ${danger ? 'button-danger' : 'button-primary'}`, value: 'confirm' },
      confirm,
    );
    const dialog = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      ...(Array.isArray(body) ? body : [body]).map((p) => (p instanceof Node ? p : h('p', {}, p))),
      h('div', { class: 'dialog-actions' }, cancelButton, confirmButton),
    );
    let answer = false;
    cancelButton.addEventListener('click', () => dialog.close());
    confirmButton.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}

/** Opens the "API" settings dialog (address, organization, project). */
export function settingsDialog() {
  const base = h('input', { id: 'settings-api', name: 'apiBase', type: 'url', value: config.apiBase, placeholder: location.origin, autocomplete: 'url' });
  const org = h('input', { id: 'settings-org', name: 'org', value: config.org, required: true });
  const project = h('input', { id: 'settings-project', name: 'project', value: config.project, required: true });
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: 'settings-title' }, 'API settings'),
    h('p', { class: 'muted' }, 'Leave the address empty to use the server that serves this console.'),
    h('div', { class: 'field' }, h('label', { for: 'settings-api' }, 'API address'), base),
    h('div', { class: 'field-row' },
      h('div', { class: 'field' }, h('label', { for: 'settings-org' }, 'Organization'), org),
      h('div', { class: 'field' }, h('label', { for: 'settings-project' }, 'Project'), project)),
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'submit', class: 'button', value: 'cancel', formnovalidate: true }, 'Cancel'),
      h('button', { type: 'submit', class: 'button button-primary', value: 'save' }, 'Save')),
  );
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'settings-title' }, form);
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') {
      config.save({ apiBase: base.value, org: org.value.trim(), project: project.value.trim() });
      location.reload();
    }
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}

// ----- signing in (SPEC §12) ----------------------------------------------------------------

let signInArea = null;

/**
 * Shows the sign-in prompt above the page's notices. Shown again for the same reason, it is
 * left alone, so a poll does not wipe what the operator is typing.
 */
export function showSignIn(reason = '') {
  if (!signInArea) {
    signInArea = h('div', { id: 'sign-in-area' });
    const notices = $('#notices');
    if (notices) notices.before(signInArea);
    else $('#main')?.prepend(signInArea);
  }
  if (signInArea.firstChild && signInArea.dataset.reason === reason) return;
  signInArea.dataset.reason = reason;
  signInArea.replaceChildren(
    signInForm({ base: config.apiBase, reason: reason || undefined, onSignedIn: () => location.reload() }),
  );
}

// ----- the page frame ---------------------------------------------------------------------

/**
 * Wires the parts every page shares: the API button (showing where the console points) and
 * the "last updated" line. Call once per page.
 */
export function initFrame() {
  const button = $('#api-settings');
  if (button) {
    let where = 'this server';
    if (config.apiBase) {
      try {
        where = new URL(config.apiBase, location.href).host;
      } catch {
        where = config.apiBase;
      }
    }
    const scope = config.org === 'default' && config.project === 'default' ? '' : ` · ${config.org}/${config.project}`;
    button.querySelector('.api-where').textContent = `${where}${scope}`;
    button.addEventListener('click', settingsDialog);
  }
  if (!tokenFor(config.apiBase)) showSignIn();
  const zoneNote = $('#zone-note');
  if (zoneNote) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    zoneNote.textContent = localIsUtc()
      ? 'Times are in UTC, which is also your browser’s time zone.'
      : `Times are in UTC, with your local time (${zone}) beside them.`;
  }
}

/** Updates the "Updated hh:mm:ss" indicator in the page header. */
export function markUpdated(ok, live) {
  const el = $('#updated');
  if (!el) return;
  const now = new Date();
  el.dataset.state = ok ? (live ? 'live' : 'idle') : 'error';
  el.textContent = ok
    ? `${live ? 'Live: refreshing every 2 s' : 'Auto-refresh on'} · updated ${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())} UTC`
    : 'Refresh failed; retrying';
}

// ----- polling ------------------------------------------------------------------------------

/**
 * Calls `tick` now and again: every `fast` ms while it answers true (something is running),
 * every `slow` ms otherwise, and not while the tab is hidden. `poller.now()` refreshes at once
 * (after an action). Ticks never overlap.
 */
export function poll(tick, { fast = 2000, slow = 10000 } = {}) {
  let timer = null;
  let busy = false;
  let again = false;
  let active = false;
  async function run() {
    clearTimeout(timer);
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      active = Boolean(await tick());
      markUpdated(true, active);
    } catch (error) {
      console.error(error);
      markUpdated(false, false);
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      return run();
    }
    if (!document.hidden) timer = setTimeout(run, active ? fast : slow);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) run();
    else clearTimeout(timer);
  });
  run();
  return { now: run };
}

// ----- schedule descriptions (the core, through the WebAssembly package) ----------------

let wasm;

/**
 * The English description of a schedule, from the same core the server uses, loaded from
 * the job form's WebAssembly package. Resolves null when the package is not there.
 */
export async function describeSchedule(schedule) {
  if (described.has(schedule)) return described.get(schedule);
  wasm ??= loadWasm();
  const mod = await wasm;
  let description = null;
  if (mod) {
    try {
      const result = mod.validateSchedule(schedule, Date.now(), 1);
      const value = typeof result === 'string' ? JSON.parse(result) : result;
      description = value && value.valid ? value.description : null;
    } catch {
      description = null;
    }
  }
  described.set(schedule, description);
  return description;
}

const described = new Map();

async function loadWasm() {
  for (const path of WASM_MODULES) {
    try {
      const mod = await import(path);
      if (typeof mod.default === 'function') await mod.default();
      if (typeof mod.validateSchedule === 'function') return mod;
    } catch {
      /* try the next name */
    }
  }
  return null;
}

/** Where `scripts/build-wasm.sh` puts the package (wasm-bindgen `--target web`). */
const WASM_MODULES = ['../pkg/backup_wasm.js'];
