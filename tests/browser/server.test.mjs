// The form against the real server: `backupctl serve` on 127.0.0.1 (port 0) serves the
// form at `/` and answers its POST. Shows that
// - `validateJob(body).fields` in the browser is exactly the `fields` of the server's 400
//   for the same body (one core, two places), and
// - a job typed into the form is created, and an unknown cluster's 400 lands under the
//   cluster id field.
//
// Environment: BACKUPCTL_BIN (default target/debug/backupctl), CHROMIUM.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './serve.mjs';

const BIN = process.env.BACKUPCTL_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'debug', 'backupctl');
const JOBS = '/orchestrate/v1/organizations/default/projects/default/jobs';

const pkg = join(REPO, 'wasm', 'pkg');
const wasm = await import(join(pkg, 'backup_wasm.js'));
wasm.initSync({ module: readFileSync(join(pkg, 'backup_wasm_bg.wasm')) });

let server;
let url;
let data;
let browser;

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'backup-form-'));
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(data, 'state')], {
    cwd: REPO,
    env: { ...process.env, BACKUPCTL_WEB_DIR: join(REPO, 'wasm', 'web'), RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`backupctl serve did not start: ${out}`)), 30000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`backupctl serve exited with ${code}: ${out}`)));
  });
  const clusterData = join(data, 'orders-data');
  mkdirSync(clusterData);
  writeFileSync(join(clusterData, 'db'), 'orders');
  execFileSync(BIN, [
    'clusters', 'register', '--url', url, '--cluster-id', 'orders', '--description', 'Orders',
    '--provider', 'directory', '--path', clusterData,
  ]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((done) => server.on('exit', done));
    server.kill('SIGTERM');
    await exited;
  }
  if (data) rmSync(data, { recursive: true, force: true });
});

const seed = (changes = {}, dataChanges = {}) => ({
  description: 'Nightly orders',
  schedule: '0 2 * * *',
  type: 'ScheduledBackup',
  ...changes,
  data: { clusterId: 'orders', description: '{cluster} {datetime:rfc3339}', maxBackupCount: 7, ...dataChanges },
});

test("validateJob's fields are the server's 400 fields, for the same bodies", async () => {
  const bodies = [
    seed({ schedule: '*/30 * * * *' }),
    seed({ schedule: '0 0 30 2 *' }),
    seed({ schedule: '' }),
    seed({ description: '   ', type: 'Backup' }),
    seed({ description: 'é'.repeat(257) }),
    seed({}, { description: '{cluster} {foo} {index' }),
    seed({}, { maxBackupCount: 0 }),
    seed({}, { maxBackupCount: 1001, description: '' }),
    seed({ schedule: '60 24 * * 8' }, { description: 'x'.repeat(300) }),
  ];
  for (const body of bodies) {
    const response = await fetch(`${url}${JOBS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 400, JSON.stringify(body));
    const problem = await response.json();
    const ours = wasm.validateJob(body);
    assert.equal(ours.valid, false);
    assert.deepEqual(problem.fields, ours.fields, JSON.stringify(body));
    // Same keys in the same order, too.
    assert.equal(JSON.stringify(problem.fields), JSON.stringify(ours.fields));
  }
  // AND a body both accept
  assert.equal(wasm.validateJob(seed()).valid, true);
});

test('a job typed into the form served by backupctl serve is created', async () => {
  const context = await browser.newContext({ locale: 'en-GB', timezoneId: 'UTC', viewport: { width: 1024, height: 1400 } });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('html[data-ready="true"]');

  // GIVEN an unknown cluster WHEN submitted THEN the server's message is under the cluster id
  await page.locator('#description').fill('Nightly orders');
  await page.locator('#cluster-id').fill('not-registered');
  await page.locator('#schedule').fill('0 2 * * *');
  await page.locator('#submit').click();
  await page.locator('#cluster-id-error li').waitFor();
  assert.match(await page.locator('#cluster-id-error').innerText(), /not-registered/);
  assert.equal(await page.locator('#cluster-id').getAttribute('aria-invalid'), 'true');

  // WHEN the registered cluster is named THEN the label example uses its real description
  await page.locator('#cluster-id').fill('orders');
  await page.locator('#template-example .rendered').getByText(/^Orders /).waitFor();
  await page.locator('#submit').click();
  await page.locator('#form-success').waitFor();
  const id = await page.locator('#form-success code').innerText();

  // AND the job is there, as the form sent it
  const { job } = await (await fetch(`${url}${JOBS}/${encodeURIComponent(id)}`)).json();
  assert.equal(job.description, 'Nightly orders');
  assert.equal(job.schedule, '0 2 * * *');
  assert.deepEqual(job.data, { clusterId: 'orders', description: '{cluster} backup {datetime:rfc3339}', maxBackupCount: 7 });
  await context.close();
});
