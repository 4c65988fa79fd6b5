// Parity: the WebAssembly module (under Node) and `backupctl` answer every input with the
// same JSON, byte for byte: `JSON.stringify(validateSchedule(..))` is the line
// `backupctl schedule check --json` prints, and likewise for templates. Key order included.
//
// Inputs: every schedule and template example of SPEC §2–§3 (fixtures/spec-examples.json,
// checked against SPEC.md when it is at hand) and a few hundred generated ones.
//
// Needs: wasm/pkg (scripts/build-wasm.sh) and the backupctl binary (BACKUPCTL_BIN, or
// target/debug/backupctl; scripts/test-wasm.sh builds it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from './serve.mjs';

const pkg = join(REPO, 'wasm', 'pkg');
const wasm = await import(join(pkg, 'backup_wasm.js'));
wasm.initSync({ module: readFileSync(join(pkg, 'backup_wasm_bg.wasm')) });

const backupctl =
  process.env.BACKUPCTL_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'debug', 'backupctl');
const examples = JSON.parse(readFileSync(new URL('./fixtures/spec-examples.json', import.meta.url)));

/** Runs backupctl and returns its stdout lines (exit 1 just means "some input invalid"). */
function cli(args) {
  let stdout;
  try {
    stdout = execFileSync(backupctl, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (error) {
    if (error.status !== 1) throw error;
    stdout = error.stdout;
  }
  return stdout.split('\n').slice(0, -1);
}

// ----- generated inputs (seeded, so a failure is reproducible) -----------------------------

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELD_RANGES = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'sun', 'Mon'];

function generateSchedules(count, seed) {
  const random = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = (list) => list[int(0, list.length - 1)];
  // Mostly in range, sometimes just outside, so errors are exercised too.
  const value = (field) => {
    const [lo, hi] = FIELD_RANGES[field];
    const r = random();
    if (r < 0.06) return String(hi + int(1, 5));
    if (field === 3 && r < 0.2) return pick(MONTHS);
    if (field === 4 && r < 0.2) return pick(DAYS);
    return String(int(lo, hi));
  };
  const item = (field) => {
    const r = random();
    if (r < 0.45) return value(field);
    if (r < 0.6) return `${value(field)}-${value(field)}`;
    if (r < 0.72) return `*/${int(0, 13)}`;
    if (r < 0.8) return `${value(field)}-${value(field)}/${int(1, 7)}`;
    if (r < 0.86) return `${value(field)}/${int(1, 9)}`;
    if (r < 0.9) return pick(['L', 'W', '1#2', '15W', '5L', '', 'x', '-', '1,', ',2']);
    return `${value(field)},${value(field)}`;
  };
  const field = (i) => {
    const r = random();
    if (i === 0) return r < 0.75 ? value(0) : r < 0.9 ? item(0) : '*';
    if ((i === 2 || i === 4) && r < 0.1) return '?';
    if (r < 0.45) return '*';
    return random() < 0.85 ? item(i) : `${item(i)},${item(i)}`;
  };
  const out = new Set();
  while (out.size < count) {
    const r = random();
    let expr;
    if (r < 0.04) expr = pick(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@reboot', '@every 2h', '@Daily']);
    else if (r < 0.08) expr = Array.from({ length: pick([4, 6, 7]) }, (_, i) => field(i % 5)).join(' ');
    else {
      const sep = random() < 0.9 ? ' ' : pick(['  ', '\t', ' \t ']);
      expr = [0, 1, 2, 3, 4].map(field).join(sep);
      if (random() < 0.05) expr = ` ${expr} `;
    }
    out.add(expr);
  }
  return [...out];
}

function generateTemplates(count, seed) {
  const random = mulberry32(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const pieces = [
    '{cluster}', '{cluster:id}', '{Cluster:Region}', '{cluster:provider}', '{index}', '{index:hex}',
    '{index:decimal}', '{datetime}', '{datetime:rfc822}', '{datetime:JSON}', '{datetime:unix}',
    '{datetime:rfc3339}', ' backup ', '-', ' ', 'Sauvegarde ', 'バックアップ', '🙂', '{{', '}}',
    '{', '}', '{nope}', '{cluster:zone}', '{index:octal}', '{ index }', '{}', '{:}',
  ];
  const out = new Set();
  while (out.size < count) {
    const n = 1 + Math.floor(random() * 6);
    out.add(Array.from({ length: n }, () => pick(pieces)).join(''));
  }
  out.add('x'.repeat(257));
  out.add(`${'{cluster}'.repeat(30)}`);
  return [...out];
}

// ----- the comparisons -------------------------------------------------------------------

function assertScheduleParity(schedules, afterRfc3339, count) {
  const lines = cli(['schedule', 'check', '--json', '--after', afterRfc3339, '--count', String(count), '--', ...schedules]);
  assert.equal(lines.length, schedules.length, 'one CLI line per schedule');
  const after = Date.parse(afterRfc3339);
  schedules.forEach((expr, i) => {
    const ours = JSON.stringify(wasm.validateSchedule(expr, after, count));
    assert.equal(ours, lines[i], `schedule ${JSON.stringify(expr)}`);
  });
}

const CONTEXTS = [
  { clusterId: 'c196ogto0aeqohe3ommq', clusterDescription: 'Orders', clusterProvider: 'directory', clusterRegion: 'local', index: 1, datetime: '2026-11-27T05:00:00Z' },
  { clusterId: 'prod-eu_1', clusterDescription: 'Commandes « été » 🙂', clusterProvider: 'aws-ebs', clusterRegion: 'eu-west-1', index: 255, datetime: '2024-02-29T23:59:00Z' },
];

function assertTemplateParity(templates, context) {
  const lines = cli([
    'template', 'render', '--json',
    '--cluster-id', context.clusterId,
    '--cluster-description', context.clusterDescription,
    '--cluster-provider', context.clusterProvider,
    '--cluster-region', context.clusterRegion,
    '--index', String(context.index),
    '--datetime', context.datetime,
    '--', ...templates,
  ]);
  assert.equal(lines.length, templates.length, 'one CLI line per template');
  templates.forEach((template, i) => {
    const ours = JSON.stringify(wasm.renderTemplate(template, context));
    assert.equal(ours, lines[i], `template ${JSON.stringify(template)}`);
  });
}

test('the module reads no clock: it imports only JSON, errors and wasm-bindgen plumbing', () => {
  const module = new WebAssembly.Module(readFileSync(join(pkg, 'backup_wasm_bg.wasm')));
  const imports = WebAssembly.Module.imports(module).map((i) => i.name);
  assert.ok(imports.length > 0);
  for (const name of imports) {
    assert.doesNotMatch(name, /now|date|time|random|crypto|performance/i, `imports ${name}`);
  }
});

test('the backupctl binary is there', () => {
  assert.ok(existsSync(backupctl), `no ${backupctl}: build it with cargo build -p backupctl`);
});

test('every SPEC §2 schedule example: wasm JSON equals backupctl JSON', () => {
  assertScheduleParity(examples.schedules, '2026-11-27T06:00:00Z', 5);
  assertScheduleParity(examples.schedules, '2024-02-28T23:59:30Z', 12);
});

test('300 generated schedules: wasm JSON equals backupctl JSON', () => {
  const schedules = generateSchedules(300, 20261127);
  const valid = schedules.filter((s) => wasm.validateSchedule(s, 0, 1).valid).length;
  // The generator must exercise both answers, or the test proves little.
  assert.ok(valid >= 60 && schedules.length - valid >= 60, `${valid} of ${schedules.length} valid`);
  assertScheduleParity(schedules, '2026-11-27T06:00:00Z', 5);
  assertScheduleParity(schedules, '1999-12-31T23:00:00Z', 3);
});

test('every SPEC §3 template example: wasm JSON equals backupctl JSON', () => {
  for (const context of CONTEXTS) assertTemplateParity(examples.templates, context);
});

test('150 generated templates: wasm JSON equals backupctl JSON', () => {
  const templates = generateTemplates(150, 3);
  for (const context of CONTEXTS) assertTemplateParity(templates, context);
});

// The fixture must hold what the SPEC shows; shared/SPEC.md sits beside the repository.
const specPath = [process.env.SPEC_MD, join(REPO, '..', 'shared', 'SPEC.md'), resolve(REPO, '../../shared/SPEC.md')]
  .filter(Boolean)
  .find((p) => existsSync(p));

test('the fixture lists every example of SPEC §2–§3', { skip: specPath ? false : 'SPEC.md is not beside the repository' }, () => {
  const spec = readFileSync(specPath, 'utf8');
  const section = (from, to) => spec.slice(spec.indexOf(from), spec.indexOf(to));
  const ticked = (text) => [...text.matchAll(/`([^`]*)`/g)].map((m) => (m[1] === '""' ? '' : m[1]));
  const lastCells = (table) =>
    table.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---')).map((l) => l.split('|').at(-2));
  const firstCells = (table) =>
    table.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---')).map((l) => l.split('|')[1]);

  const schedules = [
    ...lastCells(section('### 2.2', '### 2.3')).flatMap(ticked),
    ...ticked(section('### 2.1', '### 2.2')).filter((t) => t.startsWith('@')),
  ];
  const templates = firstCells(section('## 3.', '## 4.')).flatMap(ticked);
  assert.ok(schedules.length >= 14 && templates.length >= 14, 'the SPEC tables were found');
  for (const s of schedules) assert.ok(examples.schedules.includes(s), `schedule example ${JSON.stringify(s)} missing`);
  for (const t of templates) assert.ok(examples.templates.includes(t), `template example ${JSON.stringify(t)} missing`);
});
