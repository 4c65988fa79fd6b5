// The Jobs page: every job with its schedule, cluster, retention, next run and last run.

import {
  $, announce, api, badge, describeSchedule, emptyState, errorState, h, initFrame, jobHref,
  poll, replaceKeepingFocus, timeEl,
} from './app.js';
import { deleteJob, runJobNow } from './actions.js';

initFrame();

const container = $('#jobs');
let showDeleted = false;
let lastSignature = null;
/** History item id → status, to announce runs that finish while the page is open. */
const seen = new Map();

const poller = poll(async () => {
  let jobs, history;
  try {
    [jobs, history] = await Promise.all([api.listJobs(), api.listHistory()]);
  } catch (error) {
    container.removeAttribute('aria-busy');
    replaceKeepingFocus(container, errorState(error, () => poller.now()));
    lastSignature = null;
    throw error;
  }
  const descriptions = await describeAll(jobs);
  announceFinished(jobs, history);
  // The minute is part of it so that "in 5 min" stays true.
  const minute = Math.floor(Date.now() / 60000);
  const signature = JSON.stringify([jobs.map(withoutNextRuns), history, showDeleted, [...descriptions], minute]);
  if (signature !== lastSignature) {
    lastSignature = signature;
    container.removeAttribute('aria-busy');
    replaceKeepingFocus(container, render(jobs, history, descriptions));
  }
  return history.some((item) => item.status === 'running');
});

// `nextRuns` moves on by itself; only a change of the first next run needs a redraw.
function withoutNextRuns(job) {
  return { ...job, nextRuns: job.nextRuns?.slice(0, 1) };
}

async function describeAll(jobs) {
  const unique = [...new Set(jobs.map((j) => j.schedule))];
  const described = await Promise.all(unique.map(describeSchedule));
  return new Map(unique.map((s, i) => [s, described[i]]));
}

function announceFinished(jobs, history) {
  for (const item of history) {
    const before = seen.get(item.id);
    if (before === 'running' && item.status !== 'running') {
      const job = jobs.find((j) => j.id === item.jobId);
      announce(`Run of job ${job?.description ?? item.jobId} ${item.status}. ${item.details}`);
    }
    seen.set(item.id, item.status);
  }
}

function render(jobs, history, descriptions) {
  const lastRun = new Map();
  for (const item of history) if (!lastRun.has(item.jobId)) lastRun.set(item.jobId, item);
  const active = jobs.filter((j) => j.status !== 'deleted');
  const deleted = jobs.filter((j) => j.status === 'deleted');
  const shown = showDeleted ? jobs : active;

  const toggle = deleted.length
    ? h('label', { class: 'check' },
        h('input', {
          type: 'checkbox',
          'data-key': 'show-deleted',
          checked: showDeleted,
          onchange: (e) => {
            showDeleted = e.target.checked;
            poller.now();
          },
        }),
        ` Show deleted jobs (${deleted.length})`)
    : null;

  if (!shown.length) {
    return [
      emptyState(
        'No jobs yet',
        h('p', {}, 'A job backs a cluster up on a schedule and keeps its newest backups.'),
        h('p', {}, h('a', { class: 'button button-primary', href: '../' }, 'Create a job'),
          ' or, from a terminal, ', h('code', {}, 'backupctl jobs create …')),
        deleted.length ? h('p', { class: 'muted' }, `${deleted.length} deleted job(s) are hidden.`) : null,
      ),
      toggle ? h('div', { class: 'toolbar' }, toggle) : null,
    ];
  }

  const rows = shown.map((job) => row(job, lastRun.get(job.id), descriptions.get(job.schedule)));
  return [
    toggle ? h('div', { class: 'toolbar' }, toggle) : null,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'data responsive', id: 'jobs-table' },
        h('caption', {}, `${active.length} active job${active.length === 1 ? '' : 's'}`,
          deleted.length && !showDeleted ? h('span', { class: 'muted' }, ` · ${deleted.length} deleted hidden`) : null),
        h('thead', {}, h('tr', {},
          ['Job', 'Schedule (UTC)', 'Cluster', 'Keeps', 'Next run', 'Last run', 'Actions']
            .map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))),
  ];
}

function row(job, last, description) {
  const isDeleted = job.status === 'deleted';
  return h('tr', { 'data-job-id': job.id, class: isDeleted ? 'is-deleted' : null },
    h('th', { scope: 'row', 'data-label': 'Job' },
      h('a', { href: jobHref(job.id), class: 'strong', 'data-key': `open-${job.id}` }, job.description),
      isDeleted ? [' ', badge('deleted')] : null,
      h('div', { class: 'sub mono' }, job.id)),
    h('td', { 'data-label': 'Schedule' },
      h('code', { class: 'schedule' }, job.schedule),
      description ? h('div', { class: 'sub schedule-description' }, description) : null),
    h('td', { 'data-label': 'Cluster', class: 'nowrap' },
      h('a', { href: `clusters.html#cluster-${encodeURIComponent(job.data.clusterId)}` }, job.data.clusterId)),
    h('td', { 'data-label': 'Keeps', class: 'num' },
      `${job.data.maxBackupCount} backup${job.data.maxBackupCount === 1 ? '' : 's'}`),
    h('td', { 'data-label': 'Next run' },
      isDeleted || !job.nextRuns?.length ? h('span', { class: 'muted' }, isDeleted ? 'Not scheduled' : '—')
        : timeEl(job.nextRuns[0], { rel: true })),
    h('td', { 'data-label': 'Last run', class: 'last-run' },
      last
        ? [badge(last.status), ' ',
          h('a', { href: jobHref(job.id, 'history'), class: 'sub-link' }, timeEl(last.startTime, { seconds: true })),
          last.status === 'failed' ? h('div', { class: 'sub error-text', title: last.details }, last.details) : null]
        : badge('never')),
    h('td', { 'data-label': 'Actions', class: 'actions' },
      isDeleted ? h('span', { class: 'muted' }, 'History and backups kept') : [
        h('button', {
          type: 'button', class: 'button button-small', 'data-key': `run-${job.id}`,
          'aria-label': `Run now: ${job.description}`, title: 'Run backup job now',
          onclick: (e) => runJobNow(job, e.currentTarget, poller.now),
        }, 'Run now'),
        h('button', {
          type: 'button', class: 'button button-small button-danger-quiet', 'data-key': `delete-${job.id}`,
          'aria-label': `Delete: ${job.description}`,
          onclick: () => deleteJob(job, poller.now),
        }, 'Delete'),
      ]));
}
