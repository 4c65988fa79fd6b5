// The form against the real server: `backupctl serve` on 127.0.0.1 (port 0) serves the
// form at `/` and answers its POST. Shows that
// - `validateJob(body).fields` in the browser is exactly the `fields` of the server's 400
//   for the same body (one core, two places), and
// - a job typed into the form is created, and an unknown cluster's 400 lands under the
//   cluster id field;
// - the sign-in of SPEC §12: the page takes the token from the sign-in URL's fragment, keeps
//   it in sessionStorage (no cookie) and clears the address bar; without a token it asks for
//   one; and it works against another server started with `--cors-origin`.
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
let token;
let signInUrl;
let data;
let browser;
const others = [];

/**
 * Starts `backupctl serve` on 127.0.0.1 port 0 with `args`; resolves to its process, its
 * address and its token, read from the `listening on` and `sign in:` lines.
 */
async function startServer(dataDir, args = []) {
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
    cwd: REPO,
    env: { ...process.env, BACKUPCTL_WEB_DIR: join(REPO, 'wasm', 'web'), RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`backupctl serve did not start: ${out}`)), 30000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const address = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      const signIn = /sign in: (\S+#token=(\S+))/.exec(out);
      if (address && signIn) {
        clearTimeout(timer);
        resolve({ url: address[1], signInUrl: signIn[1], token: signIn[2] });
      }
    });
    child.on('exit', (code) => reject(new Error(`backupctl serve exited with ${code}: ${out}`)));
  });
  return { child, ...started };
}

async function stopServer(child) {
  if (child && child.exitCode === null) {
    const exited = new Promise((done) => child.on('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
}

/** `fetch` with this server's token. */
const authed = (path, init = {}, bearer = token) =>
  fetch(`${url}${path}`, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${bearer}` } });

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'backup-form-'));
  ({ child: server, url, token, signInUrl } = await startServer(join(data, 'state')));
  const clusterData = join(data, 'orders-data');
  mkdirSync(clusterData);
  writeFileSync(join(clusterData, 'db'), 'orders');
  execFileSync(BIN, [
    'clusters', 'register', '--url', url, '--token', token, '--cluster-id', 'orders',
    '--description', 'Orders', '--provider', 'directory', '--path', clusterData,
  ]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  for (const other of others) await stopServer(other);
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
    const response = await authed(JOBS, {
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
  // The sign-in URL that backupctl serve printed.
  await page.goto(signInUrl);
  await page.waitForSelector('html[data-ready="true"]');
  // THEN the token left the address bar for sessionStorage, no cookie was set, and no
  // sign-in prompt is shown
  assert.equal(await page.evaluate(() => location.hash), '');
  assert.equal(await page.evaluate(() => location.href), `${url}/`);
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal((await context.cookies()).length, 0);
  assert.equal(await page.locator('#sign-in-area').isHidden(), true);
  assert.match(await page.evaluate(() => JSON.stringify(Object.values(sessionStorage))), new RegExp(token));

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
  const { job } = await (await authed(`${JOBS}/${encodeURIComponent(id)}`)).json();
  assert.equal(job.description, 'Nightly orders');
  assert.equal(job.schedule, '0 2 * * *');
  assert.deepEqual(job.data, { clusterId: 'orders', description: '{cluster} backup {datetime:rfc3339}', maxBackupCount: 7 });
  await context.close();
});

test('without a token the form asks for one, and creates nothing until signed in', async () => {
  const context = await browser.newContext({ locale: 'en-GB', timezoneId: 'UTC', viewport: { width: 1024, height: 1400 } });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('html[data-ready="true"]');
  // GIVEN no token THEN the sign-in prompt shows
  const prompt = page.locator('#sign-in-area');
  assert.equal(await prompt.isVisible(), true);
  const before = (await (await authed(JOBS)).json()).jobs.length;

  // WHEN a valid job is submitted anyway THEN the 401 is explained and nothing is created
  await page.locator('#description').fill('Unsigned');
  await page.locator('#cluster-id').fill('orders');
  await page.locator('#schedule').fill('0 3 * * *');
  await page.locator('#submit').click();
  await page.locator('#form-alert').getByText(/sign in/).waitFor();
  assert.equal((await (await authed(JOBS)).json()).jobs.length, before);

  // WHEN the sign-in URL is pasted into the prompt THEN the prompt goes and the job is created
  await page.getByLabel('Token or sign-in URL').fill(signInUrl);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await prompt.waitFor({ state: 'hidden' });
  await page.locator('#submit').click();
  await page.locator('#form-success').waitFor();
  assert.equal((await (await authed(JOBS)).json()).jobs.length, before + 1);
  assert.equal((await context.cookies()).length, 0);
  await context.close();
});

test('the form works against another server started with --cors-origin', async () => {
  // GIVEN a second server that lets pages of the first server's origin call it
  const other = await startServer(join(data, 'other'), ['--cors-origin', url]);
  others.push(other.child);
  const context = await browser.newContext({ locale: 'en-GB', timezoneId: 'UTC', viewport: { width: 1024, height: 1400 } });
  const page = await context.newPage();
  // WHEN the form of the first server is pointed at the second, signed in with its URL
  await page.goto(`${url}/?api=${encodeURIComponent(other.url)}`);
  await page.waitForSelector('html[data-ready="true"]');
  await page.getByLabel('Token or sign-in URL').fill(other.signInUrl);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-area').waitFor({ state: 'hidden' });
  await page.locator('#description').fill('Cross-origin');
  await page.locator('#cluster-id').fill('c196ogto0aeqohe3ommq');
  await page.locator('#schedule').fill('0 4 * * *');
  await page.locator('#submit').click();
  // THEN the second server answered (its 400 for an unknown cluster, under the field):
  // the preflight allowed Authorization and the token was accepted
  await page.locator('#cluster-id-error li').waitFor();
  assert.match(await page.locator('#cluster-id-error').innerText(), /c196ogto0aeqohe3ommq/);
  assert.equal(await page.locator('#sign-in-area').isHidden(), true);
  await context.close();
});
