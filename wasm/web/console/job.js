// One job: its Details, its Backups and its run History, in three tabs.

import {
  $, announce, api, badge, describeSchedule, emptyState, errorState, h, initFrame,
  poll, replaceKeepingFocus, timeEl,
} from './app.js';
import { deleteBackup, deleteJob, restoreButton, runJobNow } from './actions.js';

initFrame();

const jobId = new URLSearchParams(location.search).get('id');
const TABS = ['details', 'backups', 'history'];
let showDeleted = false;
let signatures = {};
const seen = new Map();

setUpTabs();

if (!jobId) {
  $('#job-title').textContent = 'No job chosen';
  replaceKeepingFocus($('#panel-details'),
    emptyState('No job chosen', h('p', {}, h('a', { href: './' }, 'Choose a job on the Jobs page.'))));
} else {
  const poller = poll(async () => {
    let job, history, backups;
    try {
      [job, history, backups] = await Promise.all([
        api.getJob(jobId), api.listHistory(jobId), api.listBackups({ jobId }),
      ]);
    } catch (error) {
      const panel = $('#panel-details');
      signatures = {};
      if (error.status === 404) {
        $('#job-title').textContent = 'Job not found';
        replaceKeepingFocus(panel, emptyState('Job not found',
          h('p', {}, `There is no job ${jobId} in this organization and project.`),
          h('p', {}, h('a', { href: './' }, 'Back to the jobs'))));
      } else {
        replaceKeepingFocus(panel, errorState(error, () => poller.now()));
      }
      selectTab('details', false);
      throw error;
    }
    const description = await describeSchedule(job.schedule);
    announceFinished(job, history);
    draw('head', [job], () => renderHead(job, poller));
    draw('details', [job.id, job.status, job.schedule, job.data, job.nextRuns, job.eventbridge, description],
      () => replaceKeepingFocus($('#panel-details'), renderDetails(job, description)));
    draw('backups', [backups, showDeleted],
      () => replaceKeepingFocus($('#panel-backups'), renderBackups(job, backups, poller)));
    draw('history', [history, backups.map((b) => [b.id, b.description, b.status])],
      () => replaceKeepingFocus($('#panel-history'), renderHistory(job, history, backups)));
    $('#count-backups').textContent = `(${backups.filter((b) => b.status !== 'deleted').length})`;
    $('#count-history').textContent = `(${history.length})`;
    return history.some((i) => i.status === 'running') || backups.some((b) => b.status === 'creating' || b.status === 'deleting');
  });
}

/** Redraws one part only when what it shows changed, so focus and reading stay put. */
function draw(part, data, fn) {
  const signature = JSON.stringify(data);
  if (signatures[part] === signature) return;
  signatures[part] = signature;
  fn();
}

function announceFinished(job, history) {
  for (const item of history) {
    if (seen.get(item.id) === 'running' && item.status !== 'running') {
      announce(`Run of ${job.description} ${item.status}. ${item.details}`);
    }
    seen.set(item.id, item.status);
  }
}

// ----- tabs (WAI-ARIA tabs pattern: arrows, Home and End move between tabs) ---------------

function setUpTabs() {
  const tablist = $('#tablist');
  tablist.addEventListener('click', (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) selectTab(tab.id.slice(4), true);
  });
  tablist.addEventListener('keydown', (e) => {
    const current = TABS.indexOf(document.activeElement?.id?.slice(4));
    if (current < 0) return;
    const next = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    selectTab(TABS[(next + TABS.length) % TABS.length], true);
    $(`#tab-${TABS[(next + TABS.length) % TABS.length]}`).focus();
  });
  window.addEventListener('hashchange', () => selectTab(tabFromHash(), false));
  selectTab(tabFromHash(), false);
}

function tabFromHash() {
  const name = location.hash.slice(1);
  return TABS.includes(name) ? name : 'details';
}

function selectTab(name, updateUrl) {
  for (const tab of TABS) {
    const selected = tab === name;
    const button = $(`#tab-${tab}`);
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${tab}`).hidden = !selected;
  }
  if (updateUrl) history.replaceState(null, '', `#${name}`);
}

// ----- the page head ------------------------------------------------------------------------

function renderHead(job, poller) {
  document.title = `${job.description} · Jobs · backupctl console`;
  $('#crumb').textContent = job.description;
  replaceKeepingFocus($('#job-title'), job.description, ' ', badge(job.status));
  replaceKeepingFocus($('#job-lede'),
    'Backs up cluster ', h('a', { href: `clusters.html#cluster-${encodeURIComponent(job.data.clusterId)}` }, job.data.clusterId),
    ` on schedule `, h('code', {}, job.schedule), ` (UTC) and keeps its ${job.data.maxBackupCount} newest backup${job.data.maxBackupCount === 1 ? '' : 's'}.`);
  replaceKeepingFocus($('#job-actions'), job.status === 'deleted'
    ? h('p', { class: 'muted' }, 'This job is deleted: it no longer runs. Its history and backups are kept.')
    : [
      h('button', {
        type: 'button', class: 'button button-primary', id: 'run-now', 'data-key': 'run-now',
        onclick: async (e) => {
          await runJobNow(job, e.currentTarget, poller.now);
          selectTab('history', true);
        },
      }, 'Run backup job now'),
      h('button', {
        type: 'button', class: 'button button-danger-quiet', id: 'delete-job', 'data-key': 'delete-job',
        onclick: () => deleteJob(job, poller.now),
      }, 'Delete job'),
    ]);
}

// ----- details ------------------------------------------------------------------------------

function renderDetails(job, description) {
  const item = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
  return h('dl', { class: 'details' },
    item('Description', job.description),
    item('Job id', h('code', {}, job.id)),
    item('Status', badge(job.status)),
    item('Schedule', h('code', { class: 'schedule' }, job.schedule),
      description ? h('div', { class: 'schedule-description' }, description) : null,
      h('div', { class: 'sub' }, 'Evaluated in UTC.')),
    item('Next runs', job.nextRuns?.length
      ? h('ol', { class: 'plain' }, job.nextRuns.map((t) => h('li', {}, timeEl(t, { rel: true }))))
      : h('span', { class: 'muted' }, job.status === 'deleted' ? 'None: the job is deleted.' : '—')),
    item('Cluster', h('a', { href: `clusters.html#cluster-${encodeURIComponent(job.data.clusterId)}` }, job.data.clusterId)),
    item('Backup description', h('code', {}, job.data.description)),
    item('Backups kept', `${job.data.maxBackupCount} (older ones are pruned after each successful run)`),
    item('Created', timeEl(job.created, { seconds: true })),
    job.eventbridge?.length
      ? item('EventBridge', h('ul', { class: 'plain' }, job.eventbridge.map((e) => h('li', {}, h('code', {}, e)))))
      : null,
  );
}

// ----- backups ------------------------------------------------------------------------------

function renderBackups(job, backups, poller) {
  const deletedCount = backups.filter((b) => b.status === 'deleted').length;
  const shown = sortNewest(showDeleted ? backups : backups.filter((b) => b.status !== 'deleted'));
  const toggle = h('div', { class: 'toolbar' },
    h('label', { class: 'check' },
      h('input', {
        type: 'checkbox', 'data-key': 'show-deleted', checked: showDeleted,
        onchange: (e) => {
          showDeleted = e.target.checked;
          poller.now();
        },
      }),
      ` Show deleted backups (${deletedCount})`));
  if (!shown.length) {
    return [toggle, emptyState('No backups yet',
      h('p', {}, job.status === 'deleted'
        ? 'This job made no backup that is still kept.'
        : ['Its first backup is made at its next run. ', h('button', {
          type: 'button', class: 'button button-small', onclick: () => $('#run-now')?.click(),
        }, 'Run backup job now'), ' to make one at once.']))];
  }
  return [toggle, h('div', { class: 'table-wrap' },
    h('table', { class: 'data responsive', id: 'job-backups' },
      h('caption', {}, `Backups of this job, newest first (it keeps ${job.data.maxBackupCount})`),
      h('thead', {}, h('tr', {}, ['Backup', 'Created', 'Status', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, shown.map((b) => h('tr', { 'data-backup-id': b.id, class: b.status === 'deleted' ? 'is-deleted' : null },
        h('th', { scope: 'row', 'data-label': 'Backup' }, b.description, h('div', { class: 'sub mono' }, b.id)),
        h('td', { 'data-label': 'Created' }, timeEl(b.created, { seconds: true })),
        h('td', { 'data-label': 'Status' }, badge(b.status)),
        h('td', { 'data-label': 'Actions', class: 'actions' },
          b.status === 'available' ? restoreButton(b, poller.now) : null,
          b.status === 'available' || b.status === 'defunct'
            ? h('button', {
              type: 'button', class: 'button button-small button-danger-quiet', 'data-key': `delete-${b.id}`,
              'aria-label': `Delete backup ${b.description}`, onclick: () => deleteBackup(b, poller.now),
            }, 'Delete')
            : h('span', { class: 'muted' }, '—'))))))),
  ];
}

function sortNewest(backups) {
  return [...backups].sort((a, b) => b.created.localeCompare(a.created) || b.id.localeCompare(a.id));
}

// ----- history ------------------------------------------------------------------------------

function renderHistory(job, history, backups) {
  if (!history.length) {
    return emptyState('No runs yet',
      h('p', {}, job.nextRuns?.length
        ? ['The first scheduled run is ', timeEl(job.nextRuns[0], { rel: true }), '. ']
        : null,
      job.status === 'deleted' ? null : 'Use “Run backup job now” to run it at once.'));
  }
  const byId = new Map(backups.map((b) => [b.id, b]));
  const backupLink = (id) => {
    const b = byId.get(id);
    return h('a', { href: `backups.html#backup-${encodeURIComponent(id)}`, class: 'backup-ref' },
      b ? b.description : id, b?.status === 'deleted' ? h('span', { class: 'muted' }, ' (deleted)') : null);
  };
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data responsive', id: 'history-table' },
      h('caption', {}, 'Runs of this job, newest first'),
      h('thead', {}, h('tr', {},
        ['Status', 'Started', 'Ended', 'Details', 'Backup made', 'Pruned'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, history.map((item) => {
        const madeBackup = item.linkedResource && item.linkedResource !== job.data.clusterId && byId.has(item.linkedResource);
        return h('tr', { 'data-history-id': item.id, 'data-status': item.status },
          h('td', { 'data-label': 'Status' }, badge(item.status),
            h('div', { class: 'sub' }, item.trigger === 'manual' ? 'Manual run' : 'Scheduled run')),
          h('td', { 'data-label': 'Started' }, timeEl(item.startTime, { seconds: true }),
            item.trigger === 'schedule' && item.scheduledTime !== item.startTime
              ? h('div', { class: 'sub' }, 'for ', timeEl(item.scheduledTime)) : null),
          h('td', { 'data-label': 'Ended' }, item.endTime ? timeEl(item.endTime, { seconds: true })
            : h('span', { class: 'muted' }, item.status === 'running' ? 'In progress…' : '—')),
          h('td', { 'data-label': 'Details', class: 'details-cell' },
            h('p', { class: item.status === 'failed' ? 'error-text' : null }, item.details),
            item.errorCode ? h('code', { class: 'error-code' }, item.errorCode) : null),
          h('td', { 'data-label': 'Backup made' },
            madeBackup ? backupLink(item.linkedResource) : h('span', { class: 'muted' }, item.status === 'running' ? '…' : 'None')),
          h('td', { 'data-label': 'Pruned' },
            item.prunedBackupIds?.length
              ? h('ul', { class: 'plain' }, item.prunedBackupIds.map((id) => h('li', {}, backupLink(id))))
              : h('span', { class: 'muted' }, 'Nothing')));
      }))));
}
