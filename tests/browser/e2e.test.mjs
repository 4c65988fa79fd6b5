// The job form in a real browser: Debian's headless Chromium, driven by playwright-core,
// against wasm/web served on 127.0.0.1 with a stub of the create-job API.
//
// Every test fixes the browser's clock at Friday 2026-11-27 06:00 UTC and its time zone at
// Europe/Berlin (UTC+1 in November), so next runs and local times are known. Screenshots go
// to tests/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO, UNKNOWN_CLUSTER, serve } from './serve.mjs';

const ARTIFACTS = join(REPO, 'tests', 'artifacts');
const NOW = '2026-11-27T06:00:00Z';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser;
let server;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await serve({ api: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh page with the form loaded and its WebAssembly checks ready. */
async function openForm({ width = 1024, height = 1400, query = '' } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    locale: 'en-GB',
    timezoneId: 'Europe/Berlin',
    reducedMotion: 'reduce',
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  await page.clock.setFixedTime(new Date(NOW));
  await page.goto(`${server.url}/${query}`);
  await page.waitForSelector('html[data-ready="true"]', { timeout: 15000 });
  return {
    page,
    problems,
    close: async () => {
      // The browser logs every 4xx answer (the stub has no cluster look-up, and refuses an
      // unknown cluster on purpose); anything else logged is a fault of the page.
      const unexpected = problems.filter((p) => !/Failed to load resource: .* status of 40[04]/.test(p));
      await context.close();
      assert.deepEqual(unexpected, [], 'the page logged no errors');
    },
  };
}

/** Replaces an input's text by typing it, key by key, as a person would. */
async function type(page, selector, text) {
  const input = page.locator(selector);
  await input.fill('');
  await input.pressSequentially(text);
}

async function fillValidJob(page) {
  await type(page, '#description', 'Nightly backup of orders');
  await type(page, '#cluster-id', 'c196ogto0aeqohe3ommq');
  await type(page, '#schedule', '0 12 * * 1');
  await type(page, '#template', '{cluster} weekly {datetime:rfc3339}');
  await type(page, '#max-backup-count', '4');
}

const attr = (page, selector, name) => page.locator(selector).getAttribute(name);

test('*/30 * * * * shows too_frequent under the schedule, marks the minute field and disables submit', async () => {
  const { page, close } = await openForm();
  await fillValidJob(page);
  assert.equal(await page.locator('#submit').isDisabled(), false, 'a valid job can be submitted');

  // WHEN the operator types a schedule that runs every 30 minutes
  await type(page, '#schedule', '*/30 * * * *');

  // THEN the too_frequent message is under the schedule field
  const error = page.locator('#schedule-error li[data-code="too_frequent"]');
  await error.waitFor();
  assert.match(await error.innerText(), /at most once an hour/);
  // AND the offending characters, the minute field, are marked
  assert.deepEqual(await page.locator('#schedule-error mark').allInnerTexts(), ['*/30']);
  // AND the field is invalid and described by the message
  assert.equal(await attr(page, '#schedule', 'aria-invalid'), 'true');
  assert.ok((await attr(page, '#schedule', 'aria-describedby')).split(' ').includes('schedule-error'));
  // AND nothing else is flagged, the preview is gone, and submit is disabled
  assert.equal(await page.locator('.error:not(:empty)').count(), 1);
  assert.equal(await page.locator('#schedule-preview').isHidden(), true);
  assert.equal(await page.locator('#submit').isDisabled(), true);
  assert.match(await page.locator('#submit-status').innerText(), /Schedule/);
  await page.screenshot({ path: join(ARTIFACTS, 'form-too-frequent.png'), fullPage: true });
  await close();
});

test('0 12 * * 1 shows the next five Mondays at 12:00 UTC, local times and cron(0 12 ? * MON *)', async () => {
  const { page, close } = await openForm();
  await type(page, '#schedule', '0 12 * * 1');

  assert.equal(await page.locator('#schedule-description').innerText(), 'At 12:00 on Monday (UTC).');
  const utc = page.locator('#next-runs tr td:first-child time');
  const instants = await utc.evaluateAll((times) => times.map((t) => t.dateTime));
  assert.deepEqual(instants, [
    '2026-11-30T12:00:00Z',
    '2026-12-07T12:00:00Z',
    '2026-12-14T12:00:00Z',
    '2026-12-21T12:00:00Z',
    '2026-12-28T12:00:00Z',
  ]);
  const utcTexts = await utc.allInnerTexts();
  assert.equal(utcTexts.length, 5);
  for (const text of utcTexts) assert.match(text, /^Mon.*12:00$/);
  assert.equal(utcTexts[0], 'Mon, 30 Nov 2026, 12:00');
  // Europe/Berlin is UTC+1 in winter.
  const local = await page.locator('#next-runs tr td:nth-child(2) time').allInnerTexts();
  for (const text of local) assert.match(text, /^Mon.*13:00$/);
  assert.match(await page.locator('#local-zone-heading').innerText(), /Europe\/Berlin/);
  assert.deepEqual(await page.locator('#eventbridge li').allInnerTexts(), ['cron(0 12 ? * MON *)']);
  assert.equal(await attr(page, '#schedule', 'aria-invalid'), 'false');
  // AND the backup label example is rendered for the first of those runs
  assert.match(await page.locator('#template-example .rendered').innerText(), /2026-11-30T12:00:00Z$/);
  await close();
});

test('the quick form writes the cron expression and reads it back', async () => {
  const { page, close } = await openForm();
  const cron = () => page.locator('#schedule').inputValue();

  // GIVEN the default (every hour at minute 0)
  assert.equal(await cron(), '0 * * * *');
  assert.equal(await page.locator('#quick-unit').inputValue(), 'hours');

  // WHEN the quick form says every 6 hours at 15 past THEN the cron field follows
  await type(page, '#quick-every', '6');
  await type(page, '#quick-minute', '15');
  assert.equal(await cron(), '15 */6 * * *');
  assert.equal(
    await page.locator('#schedule-description').innerText(),
    'At 00:15, 06:15, 12:15 and 18:15 every day (UTC).',
  );

  // WHEN days, at 03:15 THEN a daily expression
  await page.selectOption('#quick-unit', 'days');
  await page.selectOption('#quick-hour', '3');
  assert.equal(await cron(), '15 3 */6 * *');
  await type(page, '#quick-every', '1');
  assert.equal(await cron(), '15 3 * * *');

  // WHEN weeks, on Friday THEN a weekly expression and the number is fixed at 1
  await page.selectOption('#quick-unit', 'weeks');
  await page.selectOption('#quick-weekday', '5');
  assert.equal(await cron(), '15 3 * * 5');
  assert.equal(await page.locator('#quick-every').getAttribute('aria-readonly'), 'true');
  assert.deepEqual(await page.locator('#eventbridge li').allInnerTexts(), ['cron(15 3 ? * FRI *)']);

  // WHEN the cron field is typed THEN the quick form reads it back
  await type(page, '#schedule', '30 4 */2 * *');
  assert.equal(await page.locator('#quick-unit').inputValue(), 'days');
  assert.equal(await page.locator('#quick-every').inputValue(), '2');
  assert.equal(await page.locator('#quick-minute').inputValue(), '30');
  assert.equal(await page.locator('#quick-hour').inputValue(), '4');
  assert.equal(await page.locator('.quick').getAttribute('class'), 'quick');

  await type(page, '#schedule', '0 9 * * MON');
  assert.equal(await page.locator('#quick-unit').inputValue(), 'weeks');
  assert.equal(await page.locator('#quick-weekday').inputValue(), '1');
  assert.equal(await page.locator('#quick-hour').inputValue(), '9');

  await type(page, '#schedule', '@daily');
  assert.equal(await page.locator('#quick-unit').inputValue(), 'days');
  assert.equal(await page.locator('#quick-hour').inputValue(), '0');

  // WHEN the expression has no quick form THEN the quick form says so, and the cron stays
  await type(page, '#schedule', '0 0 1 * *');
  assert.match(await page.locator('#quick-note').innerText(), /no quick form/);
  assert.match(await page.locator('.quick').getAttribute('class'), /is-custom/);
  assert.equal(await cron(), '0 0 1 * *');
  assert.match(await page.locator('#schedule-description').innerText(), /day 1/);

  // AND a quick form value out of range is reported by the core, under the schedule
  await page.selectOption('#quick-unit', 'hours');
  await type(page, '#quick-minute', '75');
  assert.equal(await cron(), '75 * * * *');
  assert.equal(await page.locator('#schedule-error li').first().getAttribute('data-code'), 'out_of_range');
  assert.deepEqual(await page.locator('#schedule-error mark').allInnerTexts(), ['75']);
  await close();
});

test('a bad template placeholder is marked and explained under the label field', async () => {
  const { page, close } = await openForm();
  await type(page, '#template', 'Orders {cluster} {foo} {datetime:unix}');
  const error = page.locator('#template-error li').first();
  assert.equal(await error.getAttribute('data-code'), 'unknown_placeholder');
  assert.match(await error.innerText(), /is not a known placeholder/);
  assert.deepEqual(await page.locator('#template-error mark').allInnerTexts(), ['{foo}']);
  assert.equal(await attr(page, '#template', 'aria-invalid'), 'true');
  assert.ok((await attr(page, '#template', 'aria-describedby')).split(' ').includes('template-error'));
  assert.equal(await page.locator('#template-example').innerText(), '');

  // WHEN an unclosed brace THEN the span runs from it to the end
  await type(page, '#template', 'Orders {index');
  assert.deepEqual(await page.locator('#template-error mark').allInnerTexts(), ['{index']);

  // WHEN fixed THEN the error goes and the example shows the rendered label
  await type(page, '#template', 'Orders #{index} {datetime:rfc3339}');
  assert.equal(await attr(page, '#template', 'aria-invalid'), 'false');
  assert.equal(await page.locator('#template-error').innerHTML(), '');
  assert.equal(
    await page.locator('#template-example .rendered').innerText(),
    'Orders #1 2026-11-27T07:00:00Z',
  );
  await close();
});

test('a keyboard alone fills in the form and submits the SPEC §7 body', async () => {
  const { page, close } = await openForm();
  const focused = () => page.evaluate(() => document.activeElement?.id ?? '');
  // GIVEN only the keyboard: tab from the top of the page to the first field
  for (let i = 0; i < 12 && (await focused()) !== 'description'; i += 1) await page.keyboard.press('Tab');
  assert.equal(await focused(), 'description');
  // AND the focused field shows a visible focus ring
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none');

  await page.keyboard.type('Orders, weekly');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'cluster-id');
  await page.keyboard.type('c196ogto0aeqohe3ommq');
  // The quick form: every [1] [weeks] on [Monday] at [0] past [12:00]
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'quick-every');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'quick-unit');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.locator('#quick-unit').inputValue(), 'weeks');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'quick-weekday');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'quick-minute');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'quick-hour');
  for (let i = 0; i < 12; i += 1) await page.keyboard.press('ArrowDown');
  assert.equal(await page.locator('#schedule').inputValue(), '0 12 * * 1');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'schedule');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'template');
  await page.keyboard.press('End');
  await page.keyboard.type(' #{index}');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'max-backup-count');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('12');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'submit');

  // WHEN Enter is pressed on the button
  const before = server.received.length;
  await page.keyboard.press('Enter');
  await page.locator('#form-success').waitFor();

  // THEN the API got the create-job body, and the page says which job was made
  assert.equal(server.received.length, before + 1);
  const sent = server.received.at(-1);
  assert.equal(sent.path, '/orchestrate/v1/organizations/default/projects/default/jobs');
  assert.equal(sent.contentType, 'application/json');
  assert.deepEqual(sent.body, {
    description: 'Orders, weekly',
    schedule: '0 12 * * 1',
    type: 'ScheduledBackup',
    data: {
      clusterId: 'c196ogto0aeqohe3ommq',
      description: '{cluster} backup {datetime:rfc3339} #{index}',
      maxBackupCount: 12,
    },
  });
  assert.match(await page.locator('#form-success').innerText(), /Created job job-\d+/);
  assert.equal(await focused(), 'form-success');
  await close();
});

test("the server's 400 fields appear under the same fields", async () => {
  const { page, close } = await openForm();
  await fillValidJob(page);
  await type(page, '#cluster-id', UNKNOWN_CLUSTER);
  await page.locator('#submit').click();

  // THEN the problem's `fields` entry is under the cluster id, which gets the focus
  const error = page.locator('#cluster-id-error');
  await error.getByText('No cluster').waitFor();
  assert.match(await error.innerText(), /register it with backupctl clusters register/);
  assert.equal(await attr(page, '#cluster-id', 'aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'cluster-id');
  assert.match(await page.locator('#form-alert').innerText(), /The job was not created/);
  await page.screenshot({ path: join(ARTIFACTS, 'form-server-error.png'), fullPage: true });

  // WHEN the field is edited THEN the server's message goes
  await type(page, '#cluster-id', 'c196ogto0aeqohe3ommq');
  assert.equal(await error.innerHTML(), '');
  assert.equal(await attr(page, '#cluster-id', 'aria-invalid'), 'false');
  await close();
});

test('every field shows its own errors at once, and the API base URL is configurable', async () => {
  const { page, close } = await openForm();
  await type(page, '#description', ' ');
  await type(page, '#cluster-id', 'my cluster/1');
  await type(page, '#max-backup-count', '0');
  await page.locator('#description').fill('');
  await page.locator('#description').blur();
  const codes = async (id) => page.locator(`#${id} li`).evaluateAll((items) => items.map((i) => i.dataset.code));
  assert.deepEqual(await codes('description-error'), ['required']);
  assert.deepEqual(await codes('cluster-id-error'), ['invalid_value']);
  assert.deepEqual(await page.locator('#cluster-id-error mark').allInnerTexts(), [' cluster/']);
  assert.deepEqual(await codes('max-backup-count-error'), ['invalid_value']);
  await type(page, '#max-backup-count', 'ten');
  assert.match(await page.locator('#max-backup-count-error').innerText(), /whole number from 1 to 1000/);
  assert.equal(await page.locator('#submit').isDisabled(), true);

  // The API base URL: stored, and used for the POST.
  await page.locator('#settings summary').click();
  await page.locator('#api-base').fill(`${server.url}/`);
  await page.locator('#settings-form button').click();
  assert.equal(await page.evaluate(() => localStorage.getItem('apiBase')), server.url);
  assert.equal(
    await page.locator('#api-endpoint').innerText(),
    `${server.url}/orchestrate/v1/organizations/default/projects/default/jobs`,
  );
  await close();
});

test('the filled form is readable at 360 px and on a desktop (screenshots)', async () => {
  for (const [name, width] of [['form-filled-narrow.png', 360], ['form-filled.png', 1024]]) {
    const { page, close } = await openForm({ width, height: 900 });
    await fillValidJob(page);
    await type(page, '#template', '{cluster} weekly {datetime:rfc3339} {oops}');
    // Nothing is wider than the screen.
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= width, `page is ${scrollWidth}px wide at ${width}px`);
    await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
    await type(page, '#template', '{cluster} weekly {datetime:rfc3339}');
    await page.screenshot({ path: join(ARTIFACTS, name.replace('.png', '-valid.png')), fullPage: true });
    await close();
  }
});
