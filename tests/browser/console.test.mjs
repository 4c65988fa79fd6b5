// End to end: the web console (wasm/web/console/) in headless Debian Chromium against a real
// `backupctl serve` on 127.0.0.1, as an operator would use it.
//
// GIVEN a fresh server with one `directory` cluster, THEN the operator creates a job through
// the form, runs it now and watches it succeed in History without reloading, finds its
// backup grouped under the job on the Backups page, runs it past `maxBackupCount` and sees
// the oldest backup disappear, holds a maintenance lock and sees the next run fail naming
// the holder, sees a manual backup refused clearly while the lock is held, and deletes the
// job after a confirmation that says its history and backups are kept. Along the way it
// verifies a backup (ok), flips a byte of the backup's copy on disk, and verifies it again
// (failed, naming the file).
//
// Screenshots of every page go to tests/artifacts/console/ (gitignored), to be looked at.
//
// Environment: BACKUPCTL_BIN (default target/debug/backupctl, built by
// scripts/test-console.sh), CHROMIUM (default /usr/bin/chromium).

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.BACKUPCTL_BIN ?? path.join(root, 'target/debug/backupctl');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(root, 'tests/artifacts/console');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const ORCH = '/orchestrate/v1/organizations/default/projects/default';
const MESDB = '/mesdb/v1/organizations/default/projects/default';

const CLUSTER = 'orders-db';
// Hourly, at the minute half an hour from now: the schedule never fires during the test,
// so every run the test sees is one it started.
const MINUTE = (new Date().getUTCMinutes() + 30) % 60;
const JOB = {
  description: 'Orders hourly',
  schedule: `${MINUTE} */1 * * *`,
  template: '{cluster} Hourly Backup {index} {datetime:RFC3339}',
  maxBackupCount: 2,
};
// Every wait is bounded: a page settles in seconds, a local backup in well under this.
const WAIT = 20_000;

let server;
let base;
let token; // the API token, from the `sign in:` line (SPEC §12)
let tmp;
let browser;
let context;
let page;
let jobId;
const backupIds = []; // in the order the runs made them
const shots = [];
const pageErrors = [];

async function startServer() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'backupctl-console-'));
  const data = path.join(tmp, 'data');
  const source = path.join(tmp, 'orders');
  fs.mkdirSync(path.join(source, 'pg_wal'), { recursive: true });
  fs.writeFileSync(path.join(source, 'PG_VERSION'), '16\n');
  fs.writeFileSync(path.join(source, 'orders.dat'), 'order 1\norder 2\norder 3\n'.repeat(2000));
  fs.writeFileSync(path.join(source, 'pg_wal', '000000010000000000000001'), Buffer.alloc(64 * 1024, 7));

  assert.ok(fs.existsSync(BIN), `${BIN} is missing: build it with \`cargo build -p backupctl\``);
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', data], {
    cwd: root,
    env: { ...process.env, BACKUPCTL_WEB_DIR: path.join(root, 'wasm/web'), RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = fs.createWriteStream(path.join(ARTIFACTS, 'server.log'));
  server.stderr.pipe(log);
  // Every line is queued as it arrives: the address and the sign-in lines often come in one
  // chunk, and readline emits both at once, before a second `once(lines, 'line')` could be
  // listening.
  const lines = readline.createInterface({ input: server.stdout });
  const queued = [];
  let waiting = null;
  lines.on('line', (line) => {
    log.write(`[stdout] ${line}\n`);
    if (waiting) { const resolve = waiting; waiting = null; resolve(line); } else queued.push(line);
  });
  const nextLine = () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => { waiting = resolve; }));
  const first = await Promise.race([
    nextLine(),
    once(server, 'exit').then(([code]) => {
      throw new Error(`backupctl serve exited with ${code} before listening; see ${ARTIFACTS}/server.log`);
    }),
    timeout(30_000, 'backupctl serve did not print its address within 30 s'),
  ]);
  const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(first);
  assert.ok(match, `unexpected first line from backupctl serve: ${first}`);
  base = match[1];
  const second = await Promise.race([
    nextLine(),
    timeout(30_000, 'backupctl serve did not print its sign-in URL within 30 s'),
  ]);
  const signIn = /^sign in: (http:\/\/127\.0\.0\.1:\d+)\/#token=(\S+)$/.exec(second);
  assert.ok(signIn, `unexpected second line from backupctl serve: ${second}`);
  token = signIn[2];
  return source;
}

function timeout(ms, message) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref());
}

async function apiCall(method, route, body) {
  const response = await fetch(base + route, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text}`);
  return json;
}

/** Waits until the run `historyId` has `status`, through the API. */
async function waitForRun(historyId, status) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const { items } = await apiCall('GET', `${ORCH}/history`);
    const item = items.find((i) => i.id === historyId);
    if (item?.status === status) return item;
    if (Date.now() > deadline) throw new Error(`run ${historyId} is ${item?.status}, not ${status}, after ${WAIT} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A full-page screenshot, kept as a test artifact; console pages are also checked with axe. */
async function shot(name, p = page) {
  await p.evaluate(() => document.fonts?.ready);
  if (new URL(p.url()).pathname.startsWith('/console/')) await assertAccessible(name, p);
  const file = path.join(ARTIFACTS, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
  await p.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  shots.push(file);
}

/**
 * Runs axe-core's WCAG 2.1 A/AA rules on the page as it stands and fails on any serious or
 * critical violation, naming the rule and the elements.
 */
async function assertAccessible(name, p = page) {
  await p.addScriptTag({ path: AXE });
  const violations = await p.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${name}: accessibility violations`);
}

async function open(route) {
  await page.goto(base + route, { waitUntil: 'domcontentloaded', timeout: WAIT });
}

/**
 * Signs a tab in as an operator would: opens the sign-in URL (here the console's, so the
 * WebAssembly form need not load), whose token the page keeps in this tab's sessionStorage.
 */
async function signIn(p) {
  await p.goto(`${base}/console/#token=${token}`, { waitUntil: 'domcontentloaded', timeout: WAIT });
  await p.waitForFunction(() => location.hash === '', null, { timeout: WAIT });
}

const jobRow = () => page.locator(`#jobs-table tr[data-job-id="${jobId}"]`);
const historyRows = () => page.locator('#history-table tbody tr');

/** Marks the document, so a later check can tell that the page was not reloaded. */
async function markDocument() {
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
}

async function assertSameDocument() {
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true,
    'the page reloaded; updates must arrive without a reload');
}

/** On the job page: "Run backup job now", then wait for the new run to finish in History. */
async function runNowAndWait(expected) {
  const before = await historyRows().count().catch(() => 0);
  await markDocument();
  await page.getByRole('button', { name: 'Run backup job now' }).first().click();
  await page.waitForFunction((n) => document.querySelectorAll('#history-table tbody tr').length > n, before, { timeout: WAIT });
  const newest = historyRows().first();
  await newest.locator(`[data-status="${expected}"]`).first().waitFor({ timeout: WAIT });
  await assertSameDocument();
  return newest;
}

async function backupsOfJob() {
  const { backups } = await apiCall('GET', `${MESDB}/backups?jobId=${jobId}`);
  return backups;
}

describe('web console against a real backupctl serve', { timeout: 180_000 }, () => {
  let source;

  before(async () => {
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    source = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
    // A zone away from UTC, so the local time shows beside the UTC one.
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, timezoneId: 'Europe/Berlin', locale: 'en-GB' });
    context.setDefaultTimeout(WAIT);
    // Loopback only: anything else the page tries to reach is refused.
    await context.route((url) => !['127.0.0.1'].includes(url.hostname), (route) => route.abort());
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await signIn(page);
  });

  afterEach(() => {
    assert.deepEqual(pageErrors.splice(0), [], 'the pages threw no uncaught error');
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await Promise.race([once(server, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (shots.length) console.log(`screenshots:\n${shots.map((s) => `  ${path.relative(root, s)}`).join('\n')}`);
  });

  test('with nothing registered, each page says what to do next', async () => {
    await open('/console/clusters.html');
    await page.getByRole('heading', { name: 'No clusters registered' }).waitFor();
    assert.match(await page.locator('#clusters').innerText(), /backupctl clusters register/);
    await shot('clusters-empty');

    await open('/console/');
    await page.getByRole('heading', { name: 'No jobs yet' }).waitFor();
    const create = page.locator('#jobs').getByRole('link', { name: 'Create a job' });
    assert.equal(await create.evaluate((a) => a.href), `${base}/`, 'the empty state links to the job form');
    await shot('jobs-empty');

    await open('/console/backups.html');
    await page.getByRole('heading', { name: 'No backups yet' }).waitFor();
  });

  test('a registered cluster is listed, unlocked', async () => {
    await apiCall('POST', `${MESDB}/clusters`, {
      id: CLUSTER, description: 'Orders DB', provider: 'directory', path: source,
    });
    await open('/console/clusters.html');
    const row = page.locator(`#clusters-table tr[data-cluster-id="${CLUSTER}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /Orders DB/);
    assert.match(await row.innerText(), /Unlocked/);
    assert.match(await row.innerText(), new RegExp(path.basename(source)));
  });

  test('a job created through the form appears in the jobs list with its schedule described', async () => {
    await open('/console/');
    await page.locator('.page-head').getByRole('link', { name: 'Create job' }).click();
    await page.waitForURL(`${base}/`, { timeout: WAIT });
    await shot('form');
    await createJobThroughForm();
    assert.ok(jobId, 'the job has an id');

    await open('/console/');
    await jobRow().waitFor();
    const text = await jobRow().innerText();
    assert.match(text, new RegExp(JOB.description));
    assert.ok(text.includes(JOB.schedule), 'the schedule shows');
    assert.match(text, new RegExp(CLUSTER));
    assert.match(text, /2 backups/);
    assert.match(text, /Never ran/);
    assert.match(text, new RegExp(`\\d{4}-\\d\\d-\\d\\d \\d\\d:${String(MINUTE).padStart(2, '0')} UTC`), 'the next run shows in UTC');
    assert.ok(await jobRow().locator('.instant .local').count(), 'the local time shows beside UTC');
    // The English description comes from the core through the form's WebAssembly package.
    await jobRow().locator('.schedule-description').waitFor({ timeout: WAIT });
    assert.match(await jobRow().locator('.schedule-description').innerText(), new RegExp(`minute ${MINUTE}\\b`, 'i'));
    await shot('jobs');
  });

  test('"Run now" succeeds, and History shows it without a reload', async () => {
    await open('/console/');
    await jobRow().waitFor();
    await markDocument();
    // Keyboard: focus the row's Run now button and press Enter.
    await jobRow().getByRole('button', { name: /Run now/ }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#notices').getByText(/Run started for|run of “Orders hourly” succeeded/i).first().waitFor();
    await jobRow().locator('[data-status="succeeded"]').waitFor({ timeout: WAIT });
    await assertSameDocument();
    await shot('jobs-after-run');

    await jobRow().getByRole('link', { name: JOB.description }).click();
    await page.waitForURL(/job\.html\?id=/);
    // Keyboard: the tabs follow the arrow keys.
    await page.getByRole('tab', { name: /Details/ }).focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getByRole('tab', { name: /History/ }).getAttribute('aria-selected'), 'true');
    const run = historyRows().first();
    await run.waitFor();
    assert.match(await run.innerText(), /Succeeded/);
    const backups = await backupsOfJob();
    assert.equal(backups.length, 1);
    backupIds.push(backups[0].id);
    assert.match(await run.innerText(), /Orders DB Hourly Backup 1 /, 'History names the backup the run made');
    assert.match(await run.innerText(), /UTC/);
    await shot('job-history-succeeded');

    await page.getByRole('tab', { name: /Details/ }).click();
    await page.locator('dl.details').waitFor();
    assert.match(await page.locator('dl.details').innerText(), /Orders DB|orders-db/);
    await shot('job-details');
  });

  test('the backup is grouped under its job on the Backups page, and the row expands', async () => {
    await open('/console/backups.html');
    const group = page.locator(`tbody.group[data-job-id="${jobId}"]`);
    await group.waitFor();
    const toggle = group.getByRole('button', { name: new RegExp(JOB.description) });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.match(await toggle.innerText(), /1 backup/);
    await toggle.focus();
    await page.keyboard.press('Enter');
    await group.locator(`tr[data-backup-id="${backupIds[0]}"]`).waitFor();
    assert.equal(await group.getByRole('button', { name: new RegExp(JOB.description) }).getAttribute('aria-expanded'), 'true');
    await shot('backups-grouped');
  });

  test('past maxBackupCount the oldest backup disappears', async () => {
    await open(`/console/job.html?id=${jobId}#history`);
    await historyRows().first().waitFor();
    for (let i = 0; i < 2; i++) {
      await runNowAndWait('succeeded');
      const available = (await backupsOfJob()).filter((b) => b.status === 'available');
      const newest = available.sort((a, b) => b.created.localeCompare(a.created) || b.id.localeCompare(a.id))[0];
      backupIds.push(newest.id);
    }
    const newest = historyRows().first();
    assert.match(await newest.innerText(), /Orders DB Hourly Backup 3 /);
    // The third run pruned the first backup, and says so.
    await newest.locator('td[data-label="Pruned"] a').first().waitFor();
    assert.match(await newest.locator('td[data-label="Pruned"]').innerText(), /Orders DB Hourly Backup 1 .*deleted/s);
    await shot('job-history-pruned');

    await page.getByRole('tab', { name: /Backups/ }).click();
    const rows = page.locator('#job-backups tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('#job-backups tbody tr').length === 2);
    assert.equal(await rows.count(), 2);
    assert.equal(await page.locator(`#job-backups tr[data-backup-id="${backupIds[0]}"]`).count(), 0);
    await shot('job-backups');

    await open('/console/backups.html');
    const group = page.locator(`tbody.group[data-job-id="${jobId}"]`);
    await group.waitFor();
    await group.getByRole('button', { name: new RegExp(JOB.description) }).click();
    await group.locator(`tr[data-backup-id="${backupIds[2]}"]`).waitFor();
    assert.equal(await group.locator('tr.child-row').count(), 2);
    assert.equal(await group.locator(`tr[data-backup-id="${backupIds[0]}"]`).count(), 0, 'the oldest backup is gone');
    assert.match(await group.locator('.group-row').innerText(), /2 backups/);
    await shot('backups-after-prune');

    await page.getByLabel('Show deleted backups').check();
    await group.locator(`tr[data-backup-id="${backupIds[0]}"]`).waitFor();
    assert.match(await group.locator(`tr[data-backup-id="${backupIds[0]}"]`).innerText(), /Deleted/);
    await page.getByLabel('Show deleted backups').uncheck();
  });

  test('an operator lock makes the next run fail, naming the holder', async () => {
    await open('/console/clusters.html');
    const row = page.locator(`#clusters-table tr[data-cluster-id="${CLUSTER}"]`);
    await row.getByRole('button', { name: /Lock for maintenance/ }).click();
    const dialog = page.getByRole('dialog', { name: /Lock orders-db for maintenance/ });
    await dialog.waitFor();
    await dialog.getByLabel('Operation').fill('expand-disk');
    await dialog.getByLabel('Lock for at most').selectOption({ label: '1 hour' });
    await shot('clusters-lock-dialog');
    await dialog.getByRole('button', { name: 'Lock cluster' }).click();
    await row.getByText('Locked for maintenance').waitFor();
    const lockText = await row.innerText();
    assert.match(lockText, /expand-disk/);
    assert.match(lockText, /Since[\s\S]*UTC/);
    assert.match(lockText, /Until[\s\S]*UTC/);
    await shot('clusters-locked');

    await open(`/console/job.html?id=${jobId}#history`);
    await historyRows().first().waitFor();
    const failed = await runNowAndWait('failed');
    const notice = page.locator('#notices .notice-error').first();
    await notice.waitFor();
    assert.equal(await notice.getAttribute('role'), 'alert');
    assert.match(await notice.innerText(), /failed[\s\S]*expand-disk/);
    const text = await failed.innerText();
    assert.match(text, /Failed/);
    assert.match(text, /expand-disk/, 'the failure names the holder');
    assert.match(text, /cluster_locked/);
    assert.equal(await failed.locator('td[data-label="Backup made"]').innerText(), 'None');
    await shot('job-history-locked');

    await open('/console/');
    await jobRow().locator('[data-status="failed"]').waitFor();
    assert.match(await jobRow().innerText(), /expand-disk/);
  });

  test('a manual backup reports the lock conflict clearly, and succeeds once unlocked', async () => {
    await open('/console/backups.html');
    await page.locator(`#backup-cluster option[value="${CLUSTER}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Cluster', { exact: true }).first().selectOption(CLUSTER);
    await page.getByRole('button', { name: 'Create backup' }).click();
    const conflict = page.locator('.lock-conflict');
    await conflict.waitFor();
    assert.equal(await conflict.getAttribute('role'), 'alert');
    assert.match(await conflict.innerText(), /Cluster orders-db is locked, so no backup was made/);
    assert.match(await conflict.innerText(), /expand-disk/);
    await shot('backups-lock-conflict');

    await open('/console/clusters.html');
    const row = page.locator(`#clusters-table tr[data-cluster-id="${CLUSTER}"]`);
    await row.getByRole('button', { name: /Unlock/ }).click();
    await row.getByText('Unlocked').waitFor();
    await shot('clusters-unlocked');

    await open('/console/backups.html');
    await page.locator(`#backup-cluster option[value="${CLUSTER}"]`).waitFor({ state: 'attached' });
    await markDocument();
    await page.getByRole('button', { name: 'Create backup' }).click();
    await page.locator('#create-result').getByText(/started/).waitFor();
    const manual = page.locator('tbody.manual tr.manual-row').first();
    await manual.waitFor();
    await manual.locator('[data-status="available"]').waitFor({ timeout: WAIT });
    await assertSameDocument();
    assert.match(await manual.innerText(), /Manual/);
    assert.equal(await page.locator(`tbody.group[data-job-id="${jobId}"]`).count(), 1, 'manual and scheduled side by side');
    await shot('backups-manual-and-scheduled');

    // Deleting a backup asks first; the deleted record is hidden unless asked for.
    const manualId = await manual.getAttribute('data-backup-id');
    await manual.getByRole('button', { name: /Delete backup/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /cannot be restored/);
    await dialog.getByRole('button', { name: 'Delete backup' }).click();
    await page.locator(`tr[data-backup-id="${manualId}"]`).waitFor({ state: 'detached' });
    const { backups } = await apiCall('GET', `${MESDB}/backups?clusterId=${CLUSTER}`);
    assert.equal(backups.find((b) => b.id === manualId)?.status, 'deleted');
  });

  test('"Verify" shows a backup ok, then failed naming a file whose byte flipped on disk', async () => {
    // GIVEN the job's newest backup, available
    const id = backupIds[2];
    await open('/console/backups.html');
    const group = page.locator(`tbody.group[data-job-id="${jobId}"]`);
    await group.waitFor();
    const toggle = group.getByRole('button', { name: new RegExp(JOB.description) });
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    const row = group.locator(`tr[data-backup-id="${id}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-verification]').count(), 0, 'never verified yet');
    // WHEN the operator verifies it THEN its row says ok, and when
    await row.getByRole('button', { name: /^Verify backup/ }).click();
    const ok = row.locator('[data-verification="ok"]');
    await ok.waitFor();
    assert.match(await ok.innerText(), /Verified ok[\s\S]*checked[\s\S]*UTC/);
    await page.locator('#notices').getByText(/verified: ok/).first().waitFor();
    await shot('backups-verified-ok');

    // WHEN one byte of one of its files flips on disk, behind the server's back
    const file = path.join(tmp, 'data', 'backups', id, 'data', 'orders.dat');
    const fd = fs.openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, 100);
    byte[0] ^= 0x01;
    fs.writeSync(fd, byte, 0, 1, 100);
    fs.closeSync(fd);
    // AND it is verified again from the job's Backups tab
    await open(`/console/job.html?id=${jobId}`);
    await page.getByRole('tab', { name: /Backups/ }).click();
    const jobRowOfBackup = page.locator(`#job-backups tr[data-backup-id="${id}"]`);
    await jobRowOfBackup.locator('[data-verification="ok"]').waitFor();
    await jobRowOfBackup.getByRole('button', { name: /^Verify backup/ }).click();
    // THEN the row says failed, naming the file and what is wrong with it
    const failed = jobRowOfBackup.locator('[data-verification="failed"]');
    await failed.waitFor();
    const text = await failed.innerText();
    assert.match(text, /Verify failed/);
    assert.match(text, /orders\.dat: the content does not match its BLAKE3 checksum/);
    const alert = page.locator('#notices .notice-error').first();
    await alert.waitFor();
    assert.equal(await alert.getAttribute('role'), 'alert');
    assert.match(await alert.innerText(), /failed its verify[\s\S]*orders\.dat/);
    await shot('job-backups-verify-failed');
    // AND the result is stored: the Backups page shows it too, and the backup stays available
    await open('/console/backups.html');
    await group.waitFor();
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    await row.locator('[data-verification="failed"]').waitFor();
    assert.match(await row.innerText(), /orders\.dat/);
    await row.locator('[data-status="available"]').waitFor();
    await shot('backups-verify-failed');
  });

  test('"Restore" on an available backup makes a new cluster and shows its status until it is available', async () => {
    // GIVEN an available manual backup of the cluster
    const { id: backupId } = await apiCall('POST', `${MESDB}/backups`, { sourceClusterId: CLUSTER, description: 'before restore' });
    const deadline = Date.now() + WAIT;
    while ((await apiCall('GET', `${MESDB}/backups`)).backups.find((b) => b.id === backupId)?.status !== 'available') {
      if (Date.now() > deadline) throw new Error(`backup ${backupId} did not become available`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await open('/console/backups.html');
    const row = page.locator(`tr[data-backup-id="${backupId}"]`);
    await row.waitFor();
    // WHEN the operator opens Restore and names a directory that is not empty
    await row.getByRole('button', { name: /Restore backup/ }).click();
    const dialog = page.locator('dialog.restore-dialog');
    await dialog.waitFor();
    await dialog.getByLabel('New cluster id').fill('orders-restored');
    await dialog.getByLabel('Path', { exact: true }).fill(source);
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
    // THEN the path is refused under its field, and nothing was made
    const pathError = dialog.locator('#restore-path-error');
    await pathError.waitFor({ state: 'visible' });
    assert.match(await pathError.innerText(), /not empty/);
    assert.equal(await dialog.getByLabel('Path', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal((await apiCall('GET', `${MESDB}/clusters`)).clusters.some((c) => c.id === 'orders-restored'), false);
    await shot('restore-dialog-refused');
    // WHEN it names a new path THEN the dialog shows the new cluster available
    const target = path.join(tmp, 'orders-restored');
    await dialog.getByLabel('Path', { exact: true }).fill(target);
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
    await dialog.getByText('Cluster orders-restored is available.').waitFor();
    assert.match(await dialog.locator('#restore-status').innerText(), /Available/);
    assert.equal(await dialog.getByRole('button', { name: 'Restore', exact: true }).count(), 0, 'a restore is made once');
    await shot('restore-dialog-available');
    // AND the files are there, copied
    assert.deepEqual(fs.readFileSync(path.join(target, 'orders.dat')), fs.readFileSync(path.join(source, 'orders.dat')));
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    // AND the Clusters page lists it available, restored from the backup
    await open('/console/clusters.html');
    const restored = page.locator('#clusters-table tr[data-cluster-id="orders-restored"]');
    await restored.waitFor();
    assert.match(await restored.innerText(), /Available/);
    assert.match(await restored.innerText(), new RegExp(`Restored from ${backupId}`));
    await shot('clusters-restored');
  });

  test('an unreachable API is reported with what to do, and the API address can be set', async () => {
    await open('/console/');
    await page.getByRole('button', { name: /API: this server/ }).click();
    const dialog = page.getByRole('dialog', { name: 'API settings' });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('Organization').inputValue(), 'default');
    // Port 9 (discard) on the loopback: nothing listens there.
    await dialog.getByLabel('API address').fill('http://127.0.0.1:9');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.waitForLoadState('domcontentloaded');
    const state = page.locator('#jobs .state-error');
    await state.waitFor();
    assert.match(await state.innerText(), /cannot be reached[\s\S]*backupctl serve is running/);
    assert.match(await page.locator('#api-settings').innerText(), /127\.0\.0\.1:9/);
    await shot('jobs-api-unreachable');
    // The form reads the same setting.
    assert.equal(await page.evaluate(() => localStorage.getItem('apiBase')), 'http://127.0.0.1:9');

    await page.locator('#api-settings').click();
    await page.getByLabel('API address').fill('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForLoadState('domcontentloaded');
    await jobRow().waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('apiBase')), null);
  });

  test('a tab without the token asks for it, and signs in with the pasted token', async () => {
    const fresh = await context.newPage();
    fresh.on('pageerror', (error) => pageErrors.push(error.message));
    // GIVEN a tab that never opened the sign-in URL
    await fresh.goto(`${base}/console/`, { waitUntil: 'domcontentloaded', timeout: WAIT });
    // THEN the list says why it is empty and the prompt asks for the token
    await fresh.locator('#jobs').getByRole('heading', { name: 'Sign in to see this' }).waitFor();
    const input = fresh.getByLabel('Token or sign-in URL');
    await input.waitFor();
    await shot('console-sign-in', fresh);
    // WHEN the token is pasted THEN the page reloads signed in, with no cookie
    await input.fill(token);
    await fresh.getByRole('button', { name: 'Sign in' }).click();
    await fresh.locator('#jobs-table').waitFor();
    assert.equal(await fresh.locator('#sign-in-area form').count(), 0);
    assert.equal((await context.cookies()).length, 0);
    await fresh.close();
  });

  test('the pages read on a 360 px wide screen', async () => {
    const narrow = await context.newPage();
    narrow.on('pageerror', (error) => pageErrors.push(error.message));
    await narrow.setViewportSize({ width: 360, height: 780 });
    await signIn(narrow);
    for (const [route, name, ready] of [
      ['/console/', 'narrow-jobs', '#jobs-table'],
      [`/console/job.html?id=${jobId}#history`, 'narrow-job-history', '#history-table'],
      ['/console/backups.html', 'narrow-backups', '#backups-table'],
      ['/console/clusters.html', 'narrow-clusters', '#clusters-table'],
    ]) {
      await narrow.goto(base + route, { waitUntil: 'domcontentloaded', timeout: WAIT });
      await narrow.locator(ready).waitFor();
      const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${route} scrolls sideways by ${overflow}px at 360px`);
      await shot(name, narrow);
    }
    await narrow.close();
  });

  test('the dark colour scheme keeps its contrast', async () => {
    const dark = await context.newPage();
    dark.on('pageerror', (error) => pageErrors.push(error.message));
    await dark.emulateMedia({ colorScheme: 'dark' });
    await signIn(dark);
    for (const [route, name, ready] of [
      [`/console/job.html?id=${jobId}#history`, 'dark-job-history', '#history-table'],
      ['/console/backups.html', 'dark-backups', '#backups-table'],
    ]) {
      await dark.goto(base + route, { waitUntil: 'domcontentloaded', timeout: WAIT });
      await dark.locator(ready).waitFor();
      await shot(name, dark);
    }
    await dark.close();
  });

  test('the jobs table fits a 1280 px window whatever its contents', async () => {
    // GIVEN a job whose every column is as wide as the API allows: a 64-character cluster id,
    // a 256-character description without a space, a long schedule, and a failed last run
    // whose reason names a long lock operation
    const wide = `c${'0123456789'.repeat(6)}abc`;
    await apiCall('POST', `${MESDB}/clusters`, {
      id: wide, description: 'W'.repeat(256), provider: 'directory', path: source,
    });
    const { id: wideJob } = await apiCall('POST', `${ORCH}/jobs`, {
      description: 'Nightly'.repeat(36) + 'Back',
      schedule: '0 0,2,4,6,8,10,12,14,16,18,20,22 1,5,9,13,17,21,25 JAN,MAR,MAY,JUL,SEP,NOV MON-FRI',
      type: 'ScheduledBackup',
      data: { clusterId: wide, description: '{cluster} {datetime}', maxBackupCount: 1000 },
    });
    try {
      await apiCall('POST', `${MESDB}/clusters/${wide}/lock`, { operation: 'x'.repeat(64) });
      const { historyId } = await apiCall('POST', `${ORCH}/jobs/${wideJob}/run`);
      await waitForRun(historyId, 'failed');
      await apiCall('DELETE', `${MESDB}/clusters/${wide}/lock`);
      await fitsAt1280(wideJob);
    } finally {
      await apiCall('DELETE', `${ORCH}/jobs/${wideJob}`);
      await apiCall('DELETE', `${MESDB}/clusters/${wide}`);
    }
  });

  async function fitsAt1280(wideJob) {
    // WHEN the jobs page shows it in a 1280 px window
    await open('/console/');
    const row = page.locator(`#jobs-table tr[data-job-id="${wideJob}"]`);
    await row.locator('[data-status="failed"]').waitFor();
    // THEN neither the page nor the table scrolls sideways, and the actions are in view
    const overflow = await page.evaluate(() => {
      const wrap = document.querySelector('#jobs .table-wrap');
      return {
        page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        table: wrap.scrollWidth - wrap.clientWidth,
      };
    });
    assert.deepEqual(overflow, { page: 0, table: 0 }, 'the jobs table scrolls sideways at 1280 px');
    const actions = await row.getByRole('button', { name: /^Delete:/ }).boundingBox();
    assert.ok(actions && actions.x + actions.width <= 1280, `the Delete button is cut off: ${JSON.stringify(actions)}`);
    await shot('jobs-1280-widest');
  }

  test('deleting a job asks first and says its history and backups are kept', async () => {
    await open('/console/');
    await jobRow().getByRole('button', { name: /Delete/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const text = await dialog.innerText();
    assert.match(text, /history and its 2 backups are kept/i);
    // Cancel has focus, so Enter or Escape never deletes by accident.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await shot('jobs-delete-dialog');
    await dialog.getByRole('button', { name: 'Delete job' }).click();
    await page.getByRole('heading', { name: 'No jobs yet' }).waitFor();
    const { job } = await apiCall('GET', `${ORCH}/jobs/${jobId}`);
    assert.equal(job.status, 'deleted');
    assert.equal((await backupsOfJob()).filter((b) => b.status === 'available').length, 2, 'its backups are kept');
    await page.getByLabel(/Show deleted jobs/).check();
    await jobRow().getByText('Deleted').waitFor();
    await shot('jobs-deleted');

    await open(`/console/job.html?id=${jobId}#history`);
    await historyRows().first().waitFor();
    assert.equal(await historyRows().count(), 4, 'its history is kept');
  });
});

/**
 * Fills the job form at `/` (wasm/web/index.html) as an operator would, submits it, and
 * follows its link to the new job's page in the console.
 */
async function createJobThroughForm() {
  const submit = page.locator('#job-form #submit');
  await submit.waitFor();
  // The form checks as the operator types once its WebAssembly checks have loaded.
  await page.locator('#schedule-description').filter({ hasText: /\S/ }).waitFor();
  await page.getByLabel('Job description').fill(JOB.description);
  await page.getByLabel('Cluster id').fill(CLUSTER);
  await page.getByLabel('Cron expression').fill(JOB.schedule);
  await page.getByLabel('Backup label').fill(JOB.template);
  await page.getByLabel('Number of backups to keep').fill(String(JOB.maxBackupCount));
  // The submit button is enabled once every field is valid.
  await page.waitForFunction(() => !document.querySelector('#job-form #submit')?.disabled, null, { timeout: WAIT });
  await shot('form-filled');
  await submit.click();
  // The form's answer links to the job's page in the console.
  const link = page.locator('#form-success').getByRole('link', { name: 'See the job' });
  await link.waitFor();
  await shot('form-submitted');
  const { jobs } = await apiCall('GET', `${ORCH}/jobs`);
  const job = jobs.find((j) => j.description === JOB.description);
  assert.ok(job, 'the form created the job');
  jobId = job.id;
  assert.equal(job.schedule, JOB.schedule);
  assert.equal(job.data.clusterId, CLUSTER);
  assert.equal(job.data.description, JOB.template);
  assert.equal(job.data.maxBackupCount, JOB.maxBackupCount);
  await link.click();
  await page.waitForURL(/\/console\/job\.html\?id=/);
  await page.getByRole('heading', { level: 1, name: new RegExp(JOB.description) }).waitFor();
  await page.getByRole('tab', { name: /History/ }).click();
  await page.getByRole('heading', { name: 'No runs yet' }).waitFor();
  await shot('job-new');
}
