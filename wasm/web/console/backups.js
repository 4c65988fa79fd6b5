// The Backups page: manual backups and each job's backups (grouped in one expandable row),
// side by side, newest first; and a form for a manual backup.

import {
  $, announce, api, badge, emptyState, errorState, h, holderPhrase, initFrame, jobHref,
  poll, problemText, replaceKeepingFocus, timeEl,
} from './app.js';
import { deleteBackup, restoreButton } from './actions.js';

initFrame();

const container = $('#backups');
const filterCluster = $('#filter-cluster');
const showDeletedBox = $('#show-deleted');
const clusterSelect = $('#backup-cluster');
/** Job ids whose group row is expanded (kept across refreshes). */
const expanded = new Set();
/** Backup id → status, to announce backups that finish while the page is open. */
const seen = new Map();
let lastSignature = null;
let clusters = [];

// `backups.html#backup-<id>` (from a job's history) opens the group holding that backup.
const wanted = location.hash.startsWith('#backup-') ? decodeURIComponent(location.hash.slice(8)) : null;
let revealed = false;

const poller = poll(async () => {
  let backups, jobs;
  try {
    [backups, jobs, clusters] = await Promise.all([api.listBackups(), api.listJobs(), api.listClusters()]);
  } catch (error) {
    container.removeAttribute('aria-busy');
    lastSignature = null;
    replaceKeepingFocus(container, errorState(error, () => poller.now()));
    throw error;
  }
  fillClusterSelects();
  announceFinished(backups);
  if (wanted && !revealed) {
    const target = backups.find((b) => b.id === wanted);
    if (target?.linkedResource) expanded.add(target.linkedResource);
    if (target?.status === 'deleted') showDeletedBox.checked = true;
  }
  const signature = JSON.stringify([backups, jobs.map((j) => [j.id, j.description, j.status, j.data.maxBackupCount]),
    [...expanded], filterCluster.value, showDeletedBox.checked, clusters.length]);
  if (signature !== lastSignature) {
    lastSignature = signature;
    container.removeAttribute('aria-busy');
    replaceKeepingFocus(container, render(backups, jobs));
  }
  if (wanted && !revealed) {
    const row = document.getElementById(`backup-${wanted}`);
    if (row) {
      revealed = true;
      row.classList.add('is-target');
      row.scrollIntoView({ block: 'center' });
    }
  }
  return backups.some((b) => b.status === 'creating' || b.status === 'deleting');
});

filterCluster.addEventListener('change', () => poller.now());
showDeletedBox.addEventListener('change', () => poller.now());

function announceFinished(backups) {
  for (const b of backups) {
    if (seen.get(b.id) === 'creating' && b.status !== 'creating') {
      announce(`Backup ${b.description} is ${b.status}.`);
    }
    seen.set(b.id, b.status);
  }
}

function fillClusterSelects() {
  const ids = clusters.map((c) => c.id);
  for (const select of [filterCluster, clusterSelect]) {
    const current = [...select.options].slice(select === filterCluster ? 1 : 0).map((o) => o.value);
    if (JSON.stringify(current) === JSON.stringify(ids)) continue;
    const keep = select.value;
    const first = select === filterCluster ? [h('option', { value: '' }, 'All clusters')] : [];
    select.replaceChildren(...first, ...clusters.map((c) => h('option', { value: c.id },
      c.description && c.description !== c.id ? `${c.id} — ${c.description}` : c.id)));
    if (ids.includes(keep)) select.value = keep;
  }
  if (!clusters.length) {
    clusterSelect.replaceChildren(h('option', { value: '' }, 'No cluster registered'));
    clusterSelect.disabled = true;
    $('#create-backup-submit').disabled = true;
  } else {
    clusterSelect.disabled = false;
    $('#create-backup-submit').disabled = false;
  }
}

// ----- the table ----------------------------------------------------------------------------

function render(backups, jobs) {
  const showDeleted = showDeletedBox.checked;
  const cluster = filterCluster.value;
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const visible = backups.filter((b) => (showDeleted || b.status !== 'deleted') && (!cluster || b.sourceClusterId === cluster));

  if (!visible.length) {
    const hidden = backups.length - visible.length;
    return emptyState(
      backups.length ? 'No backups match' : 'No backups yet',
      h('p', {}, backups.length
        ? `${hidden} backup(s) are hidden by the filters above (deleted backups, or another cluster).`
        : clusters.length
          ? ['Create one with the form above, or ', h('a', { href: './' }, 'run a job now'), ' on the Jobs page.']
          : ['Register a cluster first: ', h('code', {}, 'backupctl clusters register --cluster-id C --description D --provider directory --path DIR')]),
    );
  }

  // Entries: one per job (its backups grouped) and one per manual backup, newest first.
  const groups = new Map();
  const entries = [];
  for (const b of visible) {
    if (!b.linkedResource) {
      entries.push({ kind: 'manual', latest: b.created, id: b.id, backup: b });
      continue;
    }
    let group = groups.get(b.linkedResource);
    if (!group) {
      group = { kind: 'job', jobId: b.linkedResource, backups: [], latest: '', id: b.linkedResource };
      groups.set(b.linkedResource, group);
      entries.push(group);
    }
    group.backups.push(b);
  }
  for (const g of groups.values()) {
    g.backups.sort(newestFirst);
    g.latest = g.backups[0].created;
  }
  entries.sort((a, b) => b.latest.localeCompare(a.latest) || b.id.localeCompare(a.id));

  const manualCount = entries.filter((e) => e.kind === 'manual').length;
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data responsive grouped', id: 'backups-table' },
      h('caption', {},
        `${visible.length} backup${visible.length === 1 ? '' : 's'}: ${groups.size} job${groups.size === 1 ? '' : 's'}, ${manualCount} manual`,
        h('span', { class: 'muted' }, ' · newest first')),
      h('thead', {}, h('tr', {},
        ['Backup', 'Source', 'Cluster', 'Created', 'Status', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      entries.map((e) => (e.kind === 'manual' ? h('tbody', { class: 'manual' }, backupRow(e.backup, false))
        : groupBody(e, jobById.get(e.jobId))))));
}

function groupBody(group, job) {
  const open = expanded.has(group.jobId);
  const count = group.backups.length;
  const panelId = `group-${group.jobId}`;
  const counts = {};
  for (const b of group.backups) counts[b.status] = (counts[b.status] ?? 0) + 1;
  const name = job ? job.description : `Job ${group.jobId}`;
  const toggle = h('button', {
    type: 'button', class: 'disclosure', 'aria-expanded': String(open), 'aria-controls': panelId,
    'data-key': `toggle-${group.jobId}`,
    onclick: () => {
      if (expanded.has(group.jobId)) expanded.delete(group.jobId);
      else expanded.add(group.jobId);
      poller.now();
    },
  }, h('span', { class: 'chevron', 'aria-hidden': 'true' }), h('span', { class: 'strong' }, name),
  h('span', { class: 'count-pill' }, `${count} backup${count === 1 ? '' : 's'}`));
  const head = h('tr', { class: 'group-row', 'data-job-id': group.jobId },
    h('th', { scope: 'row', 'data-label': 'Backup' }, toggle),
    h('td', { 'data-label': 'Source' }, h('span', { class: 'tag tag-job' }, 'Job'),
      h('div', { class: 'sub' },
        job ? `keeps ${job.data.maxBackupCount}` : null,
        job?.status === 'deleted' ? ' · deleted' : null,
        job ? ' · ' : null,
        h('a', { href: jobHref(group.jobId), 'aria-label': `Open job ${name}` }, 'open job'))),
    h('td', { 'data-label': 'Cluster', class: 'nowrap' }, [...new Set(group.backups.map((b) => b.sourceClusterId))].join(', ')),
    h('td', { 'data-label': 'Latest' }, timeEl(group.latest, { seconds: true })),
    h('td', { 'data-label': 'Status' }, Object.entries(counts).map(([s, n]) => badge(s, `${n} ${s}`))),
    h('td', { 'data-label': 'Actions', class: 'actions' },
      h('span', { class: 'muted' }, open ? 'Showing each backup below' : 'Expand to see each backup')));
  const body = h('tbody', { class: `group${open ? ' is-open' : ''}`, id: panelId, 'data-job-id': group.jobId });
  body.append(head);
  if (open) for (const b of group.backups) body.append(backupRow(b, true));
  return body;
}

function backupRow(b, child) {
  return h('tr', {
    id: `backup-${b.id}`, class: [child ? 'child-row' : 'manual-row', b.status === 'deleted' ? 'is-deleted' : ''].join(' ').trim(),
    'data-backup-id': b.id,
  },
  h('th', { scope: 'row', 'data-label': 'Backup' }, h('span', { class: 'backup-description' }, b.description),
    h('div', { class: 'sub mono' }, b.id)),
  h('td', { 'data-label': 'Source' }, child ? h('span', { class: 'muted' }, 'Job run') : h('span', { class: 'tag tag-manual' }, 'Manual')),
  h('td', { 'data-label': 'Cluster' }, h('span', { class: 'nowrap' }, b.sourceClusterId),
    b.sourceClusterDescription && b.sourceClusterDescription !== b.sourceClusterId ? h('div', { class: 'sub' }, b.sourceClusterDescription) : null),
  h('td', { 'data-label': 'Created' }, timeEl(b.created, { seconds: true })),
  h('td', { 'data-label': 'Status' }, badge(b.status),
    // Why a backup failed (a manual backup has no history item to say it), or what to know
    // of one that succeeded (files changed during the copy, links left out).
    b.errorCode ? h('div', { class: 'sub' }, h('code', { class: 'error-code' }, b.errorCode)) : null,
    b.details ? h('p', { class: b.status === 'defunct' ? 'sub error-text backup-details' : 'sub backup-details' }, b.details) : null),
  h('td', { 'data-label': 'Actions', class: 'actions' },
    b.status === 'available' ? restoreButton(b, poller.now) : null,
    b.status === 'available' || b.status === 'defunct'
      ? h('button', {
        type: 'button', class: 'button button-small button-danger-quiet', 'data-key': `delete-${b.id}`,
        'aria-label': `Delete backup ${b.description}`, onclick: () => deleteBackup(b, poller.now),
      }, 'Delete')
      : h('span', { class: 'muted' }, '—')));
}

function newestFirst(a, b) {
  return b.created.localeCompare(a.created) || b.id.localeCompare(a.id);
}

// ----- manual backups -----------------------------------------------------------------------

$('#create-backup').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('#create-result');
  const description = $('#backup-description').value.trim();
  const sourceClusterId = clusterSelect.value;
  if (!sourceClusterId || !description) {
    replaceKeepingFocus(result, h('div', { class: 'notice notice-error', role: 'alert' },
      h('div', { class: 'notice-body' }, h('strong', {}, !sourceClusterId ? 'Choose a cluster.' : 'Write a description.'))));
    return;
  }
  const button = $('#create-backup-submit');
  button.disabled = true;
  button.textContent = 'Creating…';
  try {
    const { id } = await api.createBackup(sourceClusterId, description);
    replaceKeepingFocus(result, h('div', { class: 'notice notice-success', role: 'status' },
      h('div', { class: 'notice-body' }, h('strong', {}, `Backup ${id} started.`),
        h('p', {}, 'It appears below and becomes available when the copy is done.'))));
    announce(`Manual backup of ${sourceClusterId} started.`);
  } catch (error) {
    if (error.code === 'cluster_locked' || error.status === 409) {
      // Show who holds the lock now, not as of the last refresh.
      clusters = await api.listClusters().catch(() => clusters);
    }
    replaceKeepingFocus(result, lockConflict(error, sourceClusterId));
  } finally {
    button.disabled = false;
    button.textContent = 'Create backup';
    poller.now();
  }
});

/** How a failed manual backup reads: a lock conflict names the holder and what to do. */
function lockConflict(error, clusterId) {
  if (error.code === 'cluster_locked' || error.status === 409) {
    const lock = clusters.find((c) => c.id === clusterId)?.lock;
    return h('div', { class: 'notice notice-error lock-conflict', role: 'alert' },
      h('div', { class: 'notice-body' },
        h('strong', {}, `Cluster ${clusterId} is locked, so no backup was made.`),
        h('p', {}, problemText(error)),
        lock ? h('p', {}, 'Held by ', h('strong', {}, holderPhrase(lock)), ' since ', timeEl(lock.since, { seconds: true }),
          ', lease until ', timeEl(lock.expires, { seconds: true }), '.') : null,
        h('p', {}, h('a', { href: `clusters.html#cluster-${encodeURIComponent(clusterId)}` }, 'See the cluster’s lock'))));
  }
  return h('div', { class: 'notice notice-error', role: 'alert' },
    h('div', { class: 'notice-body' }, h('strong', {}, 'The backup was not created.'), h('p', {}, problemText(error))));
}
