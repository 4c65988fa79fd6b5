// Size and speed of the job form's checks, against the JavaScript alternative
// (`scripts/bench-wasm.sh`).
//
// Size: every file the form loads (HTML, CSS, form.js, the wasm-bindgen glue, the .wasm), raw
// and gzipped (level 9, what a server's static gzip gives). Targets: ≤ 120 KB gzipped in all,
// and ≤ 37 KB gzipped for the checks themselves (the .wasm and its glue).
// The alternative: cron-parser + cronstrue bundled and minified by esbuild.
//
// Speed: in headless Chromium, 1,000 single calls of `validateSchedule(expr, now, 5)`, each
// timed on its own, over the schedule examples in turn; the median is the figure (target
// ≤ 10 µs). The page is cross-origin isolated, so `performance.now()` ticks in 5 µs steps
// instead of 100 µs. The alternative does the nearest work it can: parse, describe in
// English and list 5 next runs in UTC. It does not check the hourly limit or say which
// characters are wrong, and has no EventBridge translation, so it does less.
//
// Prints a table and writes tests/artifacts/bench.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { REPO, WEB_ROOT, serve } from './serve.mjs';

const CALLS = 1000;
const WARMUP = 300;
const TARGET_GZIP_BYTES = 120 * 1024;
const TARGET_CHECKS_GZIP_BYTES = 37 * 1024;
const TARGET_MEDIAN_MS = 0.01;
const SCHEDULES = ['0 12 * * 1', '0 */1 * * *', '15 3 * * *', '0 0 1,15 * *', '30 2 * * MON-FRI', '0 5 1 JAN *'];
const AFTER = Date.parse('2026-11-27T06:00:00Z');

const FORM_FILES = ['index.html', 'form.css', 'form.js', 'auth.js', 'pkg/backup_wasm.js', 'pkg/backup_wasm_bg.wasm'];

function sizes(name, bytes) {
  return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

// ----- the JavaScript alternative, bundled -------------------------------------------------

const ALTERNATIVE = `
import { CronExpressionParser } from 'cron-parser';
import cronstrue from 'cronstrue';
export function validateSchedule(expr, afterEpochMillis, count) {
  try {
    const runs = CronExpressionParser.parse(expr, { currentDate: new Date(afterEpochMillis), tz: 'UTC' });
    const next = [];
    for (let i = 0; i < count; i += 1) next.push(runs.next().toISOString());
    return { valid: true, schedule: expr, description: cronstrue.toString(expr), next };
  } catch (error) {
    return { valid: false, schedule: expr, errors: [{ message: String(error.message ?? error) }] };
  }
}
`;

async function bundleAlternative() {
  const result = await build({
    stdin: { contents: ALTERNATIVE, resolveDir: new URL('.', import.meta.url).pathname, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    legalComments: 'none',
  });
  return Buffer.from(result.outputFiles[0].contents);
}

// ----- the page that times both ------------------------------------------------------------

const BENCH_PAGE = `<!doctype html><meta charset="utf-8"><title>bench</title>
<script type="module">
import init, { validateSchedule } from '/pkg/backup_wasm.js';
import * as alternative from '/alternative.js';
const schedules = ${JSON.stringify(SCHEDULES)};
function time(fn) {
  for (let i = 0; i < ${WARMUP}; i += 1) fn(schedules[i % schedules.length], ${AFTER}, 5);
  const samples = [];
  const all = performance.now();
  for (let i = 0; i < ${CALLS}; i += 1) {
    const expr = schedules[i % schedules.length];
    const t0 = performance.now();
    fn(expr, ${AFTER}, 5);
    samples.push(performance.now() - t0);
  }
  const total = performance.now() - all;
  samples.sort((a, b) => a - b);
  return {
    medianMs: samples[Math.floor(samples.length / 2)],
    p95Ms: samples[Math.floor(samples.length * 0.95)],
    meanMs: total / ${CALLS},
  };
}
const t0 = performance.now();
await init();
const initMs = performance.now() - t0;
const check = validateSchedule('0 12 * * 1', ${AFTER}, 5);
window.result = {
  crossOriginIsolated,
  initMs,
  wasm: time(validateSchedule),
  alternative: time(alternative.validateSchedule),
  sample: { wasm: check, alternative: alternative.validateSchedule('0 12 * * 1', ${AFTER}, 5) },
};
</script>`;

async function timeInChromium(alternativeBundle) {
  const server = await serve({
    isolated: true,
    pages: {
      '/bench.html': { type: 'text/html; charset=utf-8', body: BENCH_PAGE },
      '/alternative.js': { type: 'text/javascript; charset=utf-8', body: alternativeBundle },
    },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench.html`);
    await page.waitForFunction(() => window.result, null, { timeout: 120000 });
    return await page.evaluate(() => window.result);
  } finally {
    await browser.close();
    await server.close();
  }
}

// ----- report -------------------------------------------------------------------------------

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const ms = (value) => `${(value * 1000).toFixed(1)} µs`;

const form = FORM_FILES.map((file) => sizes(file, readFileSync(join(WEB_ROOT, file))));
const formTotal = form.reduce((sum, f) => ({ raw: sum.raw + f.raw, gzip: sum.gzip + f.gzip }), { raw: 0, gzip: 0 });
const alternativeBundle = await bundleAlternative();
const alternative = sizes('cron-parser + cronstrue (esbuild --bundle --minify)', alternativeBundle);
const speed = await timeInChromium(alternativeBundle);
const wasmFile = form.find((f) => f.name.endsWith('.wasm'));
const glue = form.find((f) => f.name === 'pkg/backup_wasm.js');

const lines = [
  'Size (bytes are exact; KB = 1024 bytes)',
  ...form.map((f) => `  ${f.name.padEnd(28)} ${kb(f.raw).padStart(10)} raw ${kb(f.gzip).padStart(10)} gzip`),
  `  ${'everything the form loads'.padEnd(28)} ${kb(formTotal.raw).padStart(10)} raw ${kb(formTotal.gzip).padStart(10)} gzip   target ≤ ${kb(TARGET_GZIP_BYTES)} gzip: ${formTotal.gzip <= TARGET_GZIP_BYTES ? 'met' : 'MISSED'}`,
  `  ${'the checks alone: .wasm + glue'.padEnd(28)} ${kb(wasmFile.raw + glue.raw).padStart(10)} raw ${kb(wasmFile.gzip + glue.gzip).padStart(10)} gzip   target ≤ ${kb(TARGET_CHECKS_GZIP_BYTES)} gzip: ${wasmFile.gzip + glue.gzip <= TARGET_CHECKS_GZIP_BYTES ? 'met' : 'MISSED'} (${wasmFile.gzip} + ${glue.gzip} = ${wasmFile.gzip + glue.gzip} bytes)`,
  `  ${'JS alternative bundle'.padEnd(28)} ${kb(alternative.raw).padStart(10)} raw ${kb(alternative.gzip).padStart(10)} gzip   (${alternative.name})`,
  '',
  `Speed in Chromium: ${CALLS} single calls, each timed (cross-origin isolated: ${speed.crossOriginIsolated})`,
  `  validateSchedule (wasm)      median ${ms(speed.wasm.medianMs)}, p95 ${ms(speed.wasm.p95Ms)}, mean ${ms(speed.wasm.meanMs)}   target median ≤ ${ms(TARGET_MEDIAN_MS)}: ${speed.wasm.medianMs <= TARGET_MEDIAN_MS ? 'met' : 'MISSED'}`,
  `  JS alternative               median ${ms(speed.alternative.medianMs)}, p95 ${ms(speed.alternative.p95Ms)}, mean ${ms(speed.alternative.meanMs)}`,
  `  wasm start-up (fetch, compile, instantiate): ${speed.initMs.toFixed(1)} ms`,
  '',
  'Same input, both answers:',
  `  wasm:        ${JSON.stringify(speed.sample.wasm)}`,
  `  alternative: ${JSON.stringify(speed.sample.alternative)}`,
];
console.log(lines.join('\n'));

const artifacts = join(REPO, 'tests', 'artifacts');
mkdirSync(artifacts, { recursive: true });
writeFileSync(
  join(artifacts, 'bench.json'),
  `${JSON.stringify({ form, formTotal, alternative, speed, calls: CALLS, schedules: SCHEDULES }, null, 2)}\n`,
);
console.log(`\nwritten: ${join(artifacts, 'bench.json')}`);
