// The "create backup schedule" form.
//
// Every rule comes from the core through the WebAssembly package (`pkg/`): this file only
// reads the fields, calls `validateJob`, `validateSchedule` and `renderTemplate`, and shows
// their answers. It never decides what is valid; it decides only how things look, and how
// the quick form ("Backup every N hours at M past") writes and reads a cron expression.
//
// No framework and no build step: a static page that `backupctl serve` serves at `/`.

import init, { limits, renderTemplate, validateJob, validateSchedule } from './pkg/backup_wasm.js';
import { authHeaders, captureToken, signInForm, tokenFor } from './auth.js';

// The sign-in URL's `#token=…` leaves the address bar before anything else runs (SPEC §12).
captureToken();

const $ = (id) => document.getElementById(id);

/** The form's fields, by the key the core and the API use for them (SPEC §7 JSON paths). */
const FIELDS = {
  description: { input: $('description'), error: $('description-error'), label: 'Job description' },
  'data.clusterId': { input: $('cluster-id'), error: $('cluster-id-error'), label: 'Cluster id' },
  schedule: { input: $('schedule'), error: $('schedule-error'), label: 'Schedule' },
  'data.description': { input: $('template'), error: $('template-error'), label: 'Backup label' },
  'data.maxBackupCount': {
    input: $('max-backup-count'),
    error: $('max-backup-count-error'),
    label: 'Number of backups to keep',
  },
};

const form = $('job-form');
const submit = $('submit');
const submitStatus = $('submit-status');
const alertBox = $('form-alert');
const successBox = $('form-success');

/** Keys of the fields the operator has edited (or all, after a submit attempt). */
const touched = new Set();
/** Problems the server reported, shown until the field is edited: key → {message, value}. */
let serverErrors = {};
let core = null;
let limit = null;

// ----- settings: where the API is (shared with the console through localStorage) --------

const STORAGE = { apiBase: 'apiBase', org: 'orgId', project: 'projectId' };

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
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

const settings = {
  get apiBase() {
    const fromQuery = new URLSearchParams(location.search).get('api');
    return (fromQuery ?? stored(STORAGE.apiBase) ?? '').trim().replace(/\/+$/, '');
  },
  get org() {
    return stored(STORAGE.org) || 'default';
  },
  get project() {
    return stored(STORAGE.project) || 'default';
  },
  endpoint() {
    const base = this.apiBase || location.origin;
    const org = encodeURIComponent(this.org);
    const project = encodeURIComponent(this.project);
    return `${base}/orchestrate/v1/organizations/${org}/projects/${project}/jobs`;
  },
};

function initSettings() {
  const base = $('api-base');
  const org = $('api-org');
  const project = $('api-project');
  const show = () => {
    base.value = settings.apiBase;
    base.placeholder = location.origin;
    org.value = settings.org;
    project.value = settings.project;
    $('api-endpoint').textContent = settings.endpoint();
  };
  show();
  $('settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    store(STORAGE.apiBase, base.value.trim().replace(/\/+$/, ''));
    store(STORAGE.org, org.value.trim() === 'default' ? '' : org.value.trim());
    store(STORAGE.project, project.value.trim() === 'default' ? '' : project.value.trim());
    show();
    showSignIn();
    $('settings-saved').textContent = 'Saved.';
    setTimeout(() => ($('settings-saved').textContent = ''), 3000);
  });
}

// ----- the quick form ---------------------------------------------------------------------
//
// The quick form is a way of writing a few common cron expressions; the cron field is what
// is checked and sent. Quick → cron writes the expression; cron → quick reads it back when
// it has one of the shapes the quick form writes, and otherwise says it has none.

const quick = {
  every: $('quick-every'),
  unit: $('quick-unit'),
  weekday: $('quick-weekday'),
  minute: $('quick-minute'),
  hour: $('quick-hour'),
  note: $('quick-note'),
  group: document.querySelector('.quick'),
};

for (let h = 0; h < 24; h += 1) {
  const option = document.createElement('option');
  option.value = String(h);
  option.textContent = `${String(h).padStart(2, '0')}:00`;
  quick.hour.append(option);
}

const WEEKDAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** The cron expression the quick form's current values write (unchecked text). */
function quickToCron() {
  const every = quick.every.value.trim();
  const minute = quick.minute.value.trim();
  const hour = quick.hour.value;
  const step = (n) => (n === '1' ? '*' : `*/${n}`);
  switch (quick.unit.value) {
    case 'hours':
      return `${minute} ${step(every)} * * *`;
    case 'days':
      return `${minute} ${hour} ${step(every)} * *`;
    default:
      return `${minute} ${hour} * * ${quick.weekday.value}`;
  }
}

const MACROS = {
  '@hourly': { unit: 'hours', every: '1', minute: '0' },
  '@daily': { unit: 'days', every: '1', minute: '0', hour: '0' },
  '@midnight': { unit: 'days', every: '1', minute: '0', hour: '0' },
  '@weekly': { unit: 'weeks', every: '1', minute: '0', hour: '0', weekday: '0' },
};

/** The quick-form values that write `expr`'s shape, or null when it has no quick form. */
function cronToQuick(expr) {
  const text = expr.trim();
  const macro = MACROS[text.toLowerCase()];
  if (macro) return macro;
  const parts = text.split(/\s+/);
  if (parts.length !== 5) return null;
  const [minute, hour, dom, month, dow] = parts;
  const number = (s, max) => /^\d{1,2}$/.test(s) && Number(s) <= max;
  const stepOf = (s, max) => {
    if (s === '*') return '1';
    const m = /^\*\/(\d{1,2})$/.exec(s);
    return m && Number(m[1]) >= 1 && Number(m[1]) <= max ? String(Number(m[1])) : null;
  };
  if (!number(minute, 59) || month !== '*') return null;
  const m = String(Number(minute));
  if (dom === '*' && (dow === '*' || dow === '?')) {
    const every = stepOf(hour, 23);
    if (every) return { unit: 'hours', every, minute: m };
  }
  if (!number(hour, 23)) return null;
  const h = String(Number(hour));
  if (dow === '*' || dow === '?') {
    const every = stepOf(dom, 31);
    if (every) return { unit: 'days', every, minute: m, hour: h };
  }
  if (dom === '*' || dom === '?') {
    let day = WEEKDAY_NAMES.indexOf(dow.toUpperCase());
    if (day < 0 && /^[0-7]$/.test(dow)) day = Number(dow) % 7;
    if (day >= 0) return { unit: 'weeks', every: '1', minute: m, hour: h, weekday: String(day) };
  }
  return null;
}

function showQuickParts() {
  const unit = quick.unit.value;
  for (const part of quick.group.querySelectorAll('.quick-part')) {
    part.hidden = !part.dataset.units.split(' ').includes(unit);
  }
  // Cron repeats weekly at most: "every 2 weeks" has no cron expression.
  const weekly = unit === 'weeks';
  quick.every.readOnly = weekly;
  quick.every.setAttribute('aria-readonly', String(weekly));
  if (weekly) quick.every.value = '1';
}

function setQuick(values) {
  quick.unit.value = values.unit;
  quick.every.value = values.every;
  quick.minute.value = values.minute;
  if (values.hour !== undefined) quick.hour.value = values.hour;
  if (values.weekday !== undefined) quick.weekday.value = values.weekday;
  showQuickParts();
}

/** Reads the cron field back into the quick form, or says the quick form cannot show it. */
function syncQuickFromCron() {
  const values = cronToQuick(FIELDS.schedule.input.value);
  if (values) setQuick(values);
  quick.group.classList.toggle('is-custom', !values);
  quick.note.textContent = values
    ? 'The quick form and the cron expression below stay in step.'
    : 'This cron expression has no quick form; edit it below, or change the quick form to replace it.';
}

function onQuickInput() {
  showQuickParts();
  FIELDS.schedule.input.value = quickToCron();
  edited('schedule');
  syncQuickFromCron();
  update();
}

// ----- reading the form -------------------------------------------------------------------

/** `data.maxBackupCount` as the request carries it, or a local problem with the text. */
function readCount() {
  const text = FIELDS['data.maxBackupCount'].input.value.trim();
  if (text === '') return { value: null };
  // Up to 15 digits is exact in a JavaScript number; longer is out of range anyway.
  if (/^[+-]?\d{1,15}$/.test(text)) return { value: Number(text) };
  const { minBackupCount: min, maxBackupCount: max } = limit;
  return {
    value: null,
    error: {
      code: 'invalid_value',
      field: 'maxBackupCount',
      start: 0,
      end: Array.from(FIELDS['data.maxBackupCount'].input.value).length,
      message: `maxBackupCount must be a whole number from ${min} to ${max}; \`${text}\` is not.`,
    },
  };
}

/** The SPEC §7 create-job body, exactly as it will be sent. */
function requestBody() {
  const count = readCount();
  return {
    body: {
      description: FIELDS.description.input.value,
      schedule: FIELDS.schedule.input.value,
      type: 'ScheduledBackup',
      data: {
        clusterId: FIELDS['data.clusterId'].input.value,
        description: FIELDS['data.description'].input.value,
        maxBackupCount: count.value,
      },
    },
    countError: count.error,
  };
}

// ----- showing problems -------------------------------------------------------------------

/** Appends `text` to `parent`, with `code spans` as <code>. */
function appendMessage(parent, text) {
  text.split('`').forEach((piece, i) => {
    if (!piece) return;
    if (i % 2) {
      const code = document.createElement('code');
      code.textContent = piece;
      parent.append(code);
    } else {
      parent.append(piece);
    }
  });
}

/**
 * The input's text with each error's span marked, as the CLI underlines it. Spans count
 * Unicode characters (`Array.from`), as the core does.
 */
function markedEcho(text, errors) {
  const chars = Array.from(text);
  const marked = new Array(chars.length + 1).fill(false);
  let any = false;
  for (const e of errors) {
    for (let i = e.start; i < Math.min(e.end, chars.length); i += 1) {
      marked[i] = true;
      any = true;
    }
  }
  if (!any) return null;
  const echo = document.createElement('p');
  echo.className = 'echo';
  // The messages say the same in words; the echo is for the eye.
  echo.setAttribute('aria-hidden', 'true');
  const code = document.createElement('code');
  let i = 0;
  while (i < chars.length) {
    const on = marked[i];
    let j = i;
    while (j < chars.length && marked[j] === on) j += 1;
    const piece = chars.slice(i, j).join('');
    if (on) {
      const mark = document.createElement('mark');
      mark.textContent = piece;
      code.append(mark);
    } else {
      code.append(piece);
    }
    i = j;
  }
  echo.append(code);
  return echo;
}

/** Shows `errors` under field `key` (or clears it), with aria-invalid on its input. */
function showErrors(key, errors) {
  const { input, error } = FIELDS[key];
  error.replaceChildren();
  const invalid = errors.length > 0;
  input.setAttribute('aria-invalid', String(invalid));
  input.closest('.field').classList.toggle('has-error', invalid);
  if (!invalid) return;
  // A number needs no echo; text does, so the mistake is seen in place.
  const echo = input.inputMode === 'numeric' ? null : markedEcho(input.value, errors.filter((e) => e.start !== undefined));
  if (echo) error.append(echo);
  const list = document.createElement('ul');
  for (const e of errors) {
    const item = document.createElement('li');
    if (e.code) item.dataset.code = e.code;
    appendMessage(item, e.message);
    list.append(item);
  }
  error.append(list);
}

// ----- the previews -----------------------------------------------------------------------

const utcFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZone: 'UTC',
});
const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
const localFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

function timeCell(instant, format, label) {
  const cell = document.createElement('td');
  cell.dataset.label = label;
  const time = document.createElement('time');
  time.dateTime = instant;
  time.textContent = format.format(new Date(instant));
  cell.append(time);
  return cell;
}

function interval(minutes) {
  if (minutes % 1440 === 0) return `${minutes / 1440} ${minutes === 1440 ? 'day' : 'days'}`;
  if (minutes % 60 === 0) return `${minutes / 60} ${minutes === 60 ? 'hour' : 'hours'}`;
  return `${minutes} minutes`;
}

/** The schedule's description, next runs and EventBridge rules; returns its first run. */
function showSchedulePreview(now) {
  const preview = $('schedule-preview');
  const check = validateSchedule(FIELDS.schedule.input.value, now, 5);
  preview.hidden = !check.valid;
  if (!check.valid) {
    $('schedule-description').textContent = '';
    return null;
  }
  $('schedule-description').textContent = `${check.description} (UTC).`;
  $('schedule-interval').textContent = `At least ${interval(check.minIntervalMinutes)} between runs.`;
  $('local-zone-heading').textContent = `Your time (${localZone})`;
  const rows = check.next.map((instant) => {
    const row = document.createElement('tr');
    row.append(timeCell(instant, utcFormat, 'UTC'), timeCell(instant, localFormat, localZone));
    return row;
  });
  $('next-runs').replaceChildren(...rows);
  $('eventbridge').replaceChildren(
    ...check.eventbridge.map((rule) => {
      const item = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = rule;
      item.append(code);
      return item;
    }),
  );
  $('eventbridge-note').textContent =
    check.eventbridge.length > 1
      ? 'Two EventBridge rules, one per day field: EventBridge cannot say “either this day of the month or this weekday”.'
      : '';
  return check.next[0] ?? null;
}

/** Cluster details for the label example, looked up from the API when it knows the id. */
const clusterInfo = { id: null, cluster: null, timer: 0 };

function lookUpCluster(id) {
  if (id === clusterInfo.id) return;
  clusterInfo.id = id;
  clusterInfo.cluster = null;
  clearTimeout(clusterInfo.timer);
  if (!id) return;
  clusterInfo.timer = setTimeout(async () => {
    const base = settings.apiBase || location.origin;
    const url = `${base}/mesdb/v1/organizations/${encodeURIComponent(settings.org)}/projects/${encodeURIComponent(settings.project)}/clusters/${encodeURIComponent(id)}`;
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/json', ...authHeaders(settings.apiBase) },
      });
      if (!response.ok || clusterInfo.id !== id) return;
      const body = await response.json();
      clusterInfo.cluster = body.cluster ?? body;
      update();
    } catch {
      /* no API or no such cluster: the example uses sample values */
    }
  }, 400);
}

function showTemplateExample(firstRun, now, clusterIdValid) {
  const example = $('template-example');
  const id = FIELDS['data.clusterId'].input.value;
  if (clusterIdValid) lookUpCluster(id);
  const known = clusterIdValid && clusterInfo.id === id ? clusterInfo.cluster : null;
  const context = {
    clusterId: clusterIdValid ? id : 'c196ogto0aeqohe3ommq',
    clusterDescription: known?.description ?? 'My Cluster',
    clusterProvider: known?.provider ?? 'directory',
    clusterRegion: known?.region ?? 'local',
    index: 1,
    datetime: firstRun ?? new Date(Math.floor(now / 60000) * 60000).toISOString(),
  };
  const check = renderTemplate(FIELDS['data.description'].input.value, context);
  example.replaceChildren();
  if (!check.valid) return;
  const when = firstRun ? 'The first backup, at the next run, is named' : 'A backup made now would be named';
  example.append(`${when} `);
  const name = document.createElement('strong');
  name.className = 'rendered';
  name.textContent = check.rendered;
  example.append(name);
  if (!known) example.append(' (with sample values for the cluster’s description, provider and region).');
  else example.append('.');
}

// ----- checking everything ----------------------------------------------------------------

let lastStatus = '';

function update() {
  if (!core) return;
  const now = Date.now();
  const { body, countError } = requestBody();
  const check = validateJob(body);
  const problems = check.valid ? {} : { ...check.problems };
  if (countError) problems['data.maxBackupCount'] = [countError];

  for (const key of Object.keys(FIELDS)) {
    const own = touched.has(key) || FIELDS[key].input.value !== '' ? problems[key] ?? [] : [];
    const server = serverErrors[key];
    const fromServer =
      server && server.value === FIELDS[key].input.value ? [{ message: server.message }] : [];
    showErrors(key, own.length ? own : fromServer);
  }

  const firstRun = showSchedulePreview(now);
  showTemplateExample(firstRun, now, !problems['data.clusterId']);

  const invalid = Object.keys(FIELDS).filter((key) => problems[key]);
  submit.disabled = invalid.length > 0;
  const status = invalid.length
    ? `To create the job, fix or fill in: ${invalid.map((key) => FIELDS[key].label).join(', ')}.`
    : 'Ready to create the job.';
  // Only a change is announced, not every keystroke.
  if (status !== lastStatus) {
    submitStatus.textContent = status;
    lastStatus = status;
  }
}

function edited(key) {
  touched.add(key);
  delete serverErrors[key];
}

// ----- sending ----------------------------------------------------------------------------

function showAlert(title, detail) {
  alertBox.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = title;
  alertBox.append(strong);
  if (detail) {
    const p = document.createElement('p');
    appendMessage(p, detail);
    alertBox.append(p);
  }
  alertBox.hidden = false;
}

async function send(event) {
  event.preventDefault();
  for (const key of Object.keys(FIELDS)) touched.add(key);
  update();
  if (submit.disabled) {
    const first = Object.values(FIELDS).find((f) => f.input.getAttribute('aria-invalid') === 'true');
    first?.input.focus();
    return;
  }
  const { body } = requestBody();
  alertBox.hidden = true;
  successBox.hidden = true;
  submit.disabled = true;
  submit.textContent = 'Creating…';
  form.setAttribute('aria-busy', 'true');
  const url = settings.endpoint();
  try {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, application/problem+json',
          ...authHeaders(settings.apiBase),
        },
        body: JSON.stringify(body),
      });
    } catch (error) {
      showAlert('The job was not created: the API could not be reached.', `${url}: ${error.message}`);
      alertBox.focus();
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      successBox.replaceChildren();
      const text = document.createElement('p');
      text.append('Created job ');
      const id = document.createElement('code');
      id.textContent = answer.id ?? '';
      text.append(id, '. ');
      const link = document.createElement('a');
      link.href = `console/job.html?id=${encodeURIComponent(answer.id ?? '')}`;
      link.textContent = 'See the job';
      text.append(link, '.');
      successBox.append(text);
      successBox.hidden = false;
      successBox.focus();
      return;
    }
    if (response.status === 401) {
      // No token, or a wrong one: say so, and ask for one right here.
      showAlert('The job was not created: the API needs you to sign in.', answer.detail ?? '');
      showSignIn(answer.detail ? 'The API refused the request without a valid token.' : undefined);
      $('sign-in-area').querySelector('input')?.focus();
      return;
    }
    // An RFC 7807 problem: its `fields` go under their fields, the rest above the form.
    const fields = answer.fields ?? {};
    serverErrors = {};
    const elsewhere = [];
    for (const [key, message] of Object.entries(fields)) {
      if (FIELDS[key]) serverErrors[key] = { message, value: FIELDS[key].input.value };
      else elsewhere.push(`${key}: ${message}`);
    }
    const title = (answer.title || `The server answered ${response.status}`).replace(/[^.!?]$/, '$&.');
    const detail = [answer.detail, ...elsewhere].filter(Boolean).join(' ');
    showAlert(`The job was not created. ${title}`, detail);
    update();
    const first = Object.keys(FIELDS).find((key) => serverErrors[key]);
    (first ? FIELDS[first].input : alertBox).focus();
  } finally {
    submit.textContent = 'Create job';
    form.removeAttribute('aria-busy');
    update();
  }
}

// ----- signing in (SPEC §12) ----------------------------------------------------------------

/** Shows the sign-in prompt above the form (or hides it when a token is known and no reason is given). */
function showSignIn(reason) {
  const area = $('sign-in-area');
  if (!reason && tokenFor(settings.apiBase)) {
    area.replaceChildren();
    area.hidden = true;
    return;
  }
  area.replaceChildren(
    signInForm({
      base: settings.apiBase,
      reason,
      onSignedIn: () => {
        alertBox.hidden = true;
        showSignIn();
      },
    }),
  );
  area.hidden = false;
}

// ----- start ------------------------------------------------------------------------------

function wire() {
  for (const [key, { input }] of Object.entries(FIELDS)) {
    input.addEventListener('input', () => {
      edited(key);
      if (key === 'schedule') syncQuickFromCron();
      update();
    });
    input.addEventListener('blur', () => {
      if (!touched.has(key) && input.value === '') return;
      touched.add(key);
      update();
    });
  }
  for (const control of [quick.every, quick.minute]) control.addEventListener('input', onQuickInput);
  for (const control of [quick.unit, quick.weekday, quick.hour]) control.addEventListener('change', onQuickInput);
  form.addEventListener('submit', send);
}

async function start() {
  initSettings();
  showSignIn();
  syncQuickFromCron();
  wire();
  try {
    await init();
  } catch (error) {
    submitStatus.textContent = '';
    showAlert(
      'The form’s checks could not be loaded, so it cannot create jobs.',
      `Loading \`pkg/backup_wasm_bg.wasm\` failed (${error.message}); build it with \`scripts/build-wasm.sh\`.`,
    );
    return;
  }
  core = true;
  // No `maxlength`: an over-long paste is kept and its excess marked by the core's
  // `too_long` error, instead of being cut silently.
  limit = limits();
  update();
  document.documentElement.dataset.ready = 'true';
}

start();
