// The Clusters page: registered clusters, who holds each lock (since and until when), and
// the operator's maintenance lock and unlock.

import {
  $, announce, api, badge, emptyState, errorState, h, holderPhrase, initFrame, jobHref, notify,
  poll, problemText, relative, replaceKeepingFocus, timeEl,
} from './app.js';

initFrame();

const container = $('#clusters');
let lastSignature = null;
/** Cluster id → holder phrase (or null), to announce locks taken and released. */
const seen = new Map();

const poller = poll(async () => {
  let clusters;
  try {
    clusters = await api.listClusters();
  } catch (error) {
    container.removeAttribute('aria-busy');
    lastSignature = null;
    replaceKeepingFocus(container, errorState(error, () => poller.now()));
    throw error;
  }
  announceChanges(clusters);
  const minute = Math.floor(Date.now() / 60000);
  const signature = JSON.stringify([clusters, minute]);
  if (signature !== lastSignature) {
    lastSignature = signature;
    container.removeAttribute('aria-busy');
    replaceKeepingFocus(container, render(clusters));
    if (location.hash.startsWith('#cluster-')) {
      document.getElementById(decodeURIComponent(location.hash.slice(1)))?.classList.add('is-target');
    }
  }
  // A backup's lock is short: watch it closely. Maintenance locks change when operators act.
  return clusters.some((c) => c.status === 'creating'
    || (c.lock && (c.lock.jobId || c.lock.runId || c.lock.operation === 'manual-backup')));
});

function announceChanges(clusters) {
  for (const c of clusters) {
    const now = c.lock ? holderPhrase(c.lock) : null;
    if (seen.has(c.id) && seen.get(c.id) !== now) {
      announce(now ? `Cluster ${c.id} is locked by ${now}.` : `Cluster ${c.id} is unlocked.`);
    }
    seen.set(c.id, now);
  }
}

function render(clusters) {
  if (!clusters.length) {
    return emptyState('No clusters registered',
      h('p', {}, 'A job backs up a registered cluster. Register one from a terminal:'),
      h('pre', { class: 'command' }, h('code', {},
        "backupctl clusters register --cluster-id orders --description 'Orders' \\\n  --provider directory --path /var/lib/orders")),
      h('p', { class: 'muted' }, 'For EBS volumes use ', h('code', {}, '--provider aws-ebs --region R --volume-id V'),
        '. The cluster then appears here.'));
  }
  const locked = clusters.filter((c) => c.lock).length;
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data responsive', id: 'clusters-table' },
      h('caption', {}, `${clusters.length} cluster${clusters.length === 1 ? '' : 's'}`,
        h('span', { class: 'muted' }, ` · ${locked} locked`)),
      h('thead', {}, h('tr', {},
        ['Cluster', 'Provider', 'Status', 'Target', 'Lock', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, clusters.map(row))));
}

function target(c) {
  if (c.provider === 'directory' || c.provider === 'command') {
    // A problem that is not the path's: the cluster runs commands (a command cluster, or
    // hooks) on a server started without --allow-commands.
    const commands = c.provider === 'command' || c.preHook || c.postHook;
    const pathProblem = c.problem && !(commands && c.problem.includes('--allow-commands'));
    return [h('span', { class: 'sub' }, c.provider === 'command' ? 'Command ' : 'Directory '),
      h('code', { class: 'path' }, c.path ?? ''),
      c.provider === 'command' ? h('div', { class: 'sub' }, h('code', {}, c.backupCommand ?? ''),
        c.runAs ? ` as ${c.runAs}` : null) : null,
      c.preHook ? h('div', { class: 'sub' }, 'Pre-hook ', h('code', {}, c.preHook)) : null,
      c.postHook ? h('div', { class: 'sub' }, 'Post-hook ', h('code', {}, c.postHook)) : null,
      // The server's path policy refuses this path now (it became a link, or breaks
      // --allowed-root): its runs fail with path_not_allowed until the operator fixes it.
      c.problem ? h('p', { class: 'error-text path-problem', role: 'note' },
        pathProblem ? [h('code', { class: 'error-code' }, 'path_not_allowed'), ' '] : null,
        c.problem) : null];
  }
  const parts = [];
  if (c.volumeIds?.length) parts.push(h('div', {}, h('span', { class: 'sub' }, 'Volumes '), c.volumeIds.map((v, i) => [i ? ', ' : '', h('code', {}, v)])));
  if (c.instanceTag) parts.push(h('div', {}, h('span', { class: 'sub' }, 'Instance tag '), h('code', {}, c.instanceTag)));
  return parts.length ? parts : h('span', { class: 'muted' }, '—');
}

function lockCell(lock) {
  if (!lock) return badge('unlocked', 'Unlocked');
  const byBackup = Boolean(lock.jobId || lock.runId);
  return h('div', { class: 'lock' },
    badge('locked', byBackup ? 'Locked by a backup' : 'Locked for maintenance'),
    h('dl', { class: 'lock-facts' },
      h('dt', {}, 'Held by'),
      h('dd', { class: 'holder' }, h('strong', {}, lock.operation),
        lock.jobId ? [' of job ', h('a', { href: jobHref(lock.jobId, 'history') }, lock.jobId)] : null,
        lock.runId ? h('span', { class: 'sub' }, ` (run ${lock.runId})`) : null),
      h('dt', {}, 'Since'), h('dd', {}, timeEl(lock.since, { seconds: true })),
      h('dt', {}, 'Until'), h('dd', {}, timeEl(lock.expires, { seconds: true }),
        h('span', { class: 'relative' }, `expires ${relative(new Date(lock.expires))}`))));
}

function row(c) {
  const lock = c.lock;
  const byBackup = lock && (lock.jobId || lock.runId);
  let actions;
  if (!lock) {
    actions = h('button', {
      type: 'button', class: 'button button-small', 'data-key': `lock-${c.id}`,
      'aria-label': `Lock for maintenance: ${c.id}`, onclick: () => lockDialog(c),
    }, 'Lock for maintenance…');
  } else if (byBackup) {
    actions = h('span', { class: 'muted' }, 'Released when the backup finishes');
  } else {
    actions = h('button', {
      type: 'button', class: 'button button-small', 'data-key': `unlock-${c.id}`,
      'aria-label': `Unlock ${c.id}`, onclick: (e) => unlock(c, e.currentTarget),
    }, 'Unlock');
  }
  return h('tr', { id: `cluster-${c.id}`, 'data-cluster-id': c.id, class: lock ? 'is-locked' : null },
    h('th', { scope: 'row', 'data-label': 'Cluster' }, h('span', { class: 'strong mono' }, c.id),
      c.description ? h('div', { class: 'sub' }, c.description) : null),
    h('td', { 'data-label': 'Provider' }, c.provider, h('div', { class: 'sub' }, c.region)),
    h('td', { 'data-label': 'Status' }, badge(c.status ?? 'available'),
      c.sourceBackupId ? h('div', { class: 'sub' }, 'Restored from ', h('span', { class: 'mono' }, c.sourceBackupId)) : null,
      c.details ? h('p', { class: c.status === 'failed' ? 'sub error-text cluster-details' : 'sub cluster-details' }, c.details) : null),
    h('td', { 'data-label': 'Target' }, target(c)),
    h('td', { 'data-label': 'Lock' }, lockCell(lock)),
    h('td', { 'data-label': 'Actions', class: 'actions' }, actions));
}

// ----- lock and unlock ----------------------------------------------------------------------

const DURATIONS = [
  [15 * 60, '15 minutes'], [30 * 60, '30 minutes'], [60 * 60, '1 hour'], [2 * 3600, '2 hours'],
  [4 * 3600, '4 hours'], [12 * 3600, '12 hours'], [24 * 3600, '1 day'],
];

function lockDialog(cluster) {
  const operation = h('input', {
    id: 'lock-operation', name: 'operation', value: 'expand-disk', required: true, maxlength: 64,
    pattern: '[A-Za-z0-9._\\-]+', 'aria-describedby': 'lock-operation-hint', autocomplete: 'off',
  });
  const ttl = h('select', { id: 'lock-ttl', name: 'ttl' },
    DURATIONS.map(([s, label]) => h('option', { value: s, selected: s === 1800 }, label)));
  const error = h('div', { class: 'form-result', id: 'lock-error' });
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Lock cluster');
  const cancel = h('button', { type: 'button', class: 'button' }, 'Cancel');
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'lock-title' }, `Lock ${cluster.id} for maintenance`),
    h('p', {}, 'While the lock is held, every backup of this cluster (scheduled or manual) fails at once and names this operation. Unlock when you are done; the lock also ends when its time runs out.'),
    h('div', { class: 'field' }, h('label', { for: 'lock-operation' }, 'Operation'), operation,
      h('p', { class: 'hint', id: 'lock-operation-hint' }, 'What you are doing, such as expand-disk: letters, digits, - _ and .')),
    h('div', { class: 'field' }, h('label', { for: 'lock-ttl' }, 'Lock for at most'), ttl),
    error,
    h('div', { class: 'dialog-actions' }, cancel, submit));
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'lock-title' }, form);
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      await api.lockCluster(cluster.id, operation.value.trim(), Number(ttl.value));
      dialog.close();
      notify('success', `Cluster ${cluster.id} is locked for ${operation.value.trim()}.`,
        'Backups of it fail until you unlock it.');
      announce(`Cluster ${cluster.id} locked.`);
      poller.now();
    } catch (err) {
      replaceKeepingFocus(error, h('div', { class: 'notice notice-error', role: 'alert' },
        h('div', { class: 'notice-body' }, h('strong', {}, 'The cluster was not locked.'), h('p', {}, problemText(err)))));
    } finally {
      submit.disabled = false;
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  operation.select();
}

async function unlock(cluster, button) {
  button.disabled = true;
  try {
    await api.unlockCluster(cluster.id);
    notify('success', `Cluster ${cluster.id} is unlocked.`, 'Its backups can run again.');
    announce(`Cluster ${cluster.id} unlocked.`);
  } catch (error) {
    notify('error', `Cluster ${cluster.id} was not unlocked.`, problemText(error));
  } finally {
    button.disabled = false;
    poller.now();
  }
}
