// Actions more than one page offers: run a job now, delete a job, delete or verify a
// backup (and how a backup's last verify reads), restore a backup into a new cluster.

import { api, announce, badge, confirmDialog, h, jobHref, notify, problemText, timeEl } from './app.js';

/** "Run backup job now": starts a run and reports how it began. */
export async function runJobNow(job, button, refresh) {
  const label = button?.textContent;
  if (button) {
    button.disabled = true;
    button.textContent = 'Starting…';
  }
  try {
    const { historyId } = await api.runJob(job.id);
    // A run that finds the cluster locked fails at once, and still answers with its id.
    const run = (await api.listHistory(job.id).catch(() => [])).find((i) => i.id === historyId);
    const follow = h('a', { href: jobHref(job.id, 'history') }, 'See it in History');
    if (run?.status === 'failed') {
      notify('error', `The run of “${job.description}” failed.`, run.details, follow);
    } else if (run?.status === 'succeeded') {
      notify('success', `The run of “${job.description}” succeeded.`, run.details, follow);
      announce(`Run of job ${job.description} succeeded.`);
    } else {
      notify('success', `Run started for “${job.description}”.`, 'Its status updates here while it runs.', follow);
      announce(`Run of job ${job.description} started.`);
    }
  } catch (error) {
    notify(
      'error',
      error.code === 'cluster_locked' ? `Cluster ${job.data.clusterId} is locked; the run did not start.` : `“${job.description}” could not run.`,
      problemText(error),
    );
  } finally {
    if (button) {
      button.disabled = false;
      button.textContent = label;
    }
    await refresh?.();
  }
}

/** Deletes a job after a confirmation that says what is kept. Resolves true when deleted. */
export async function deleteJob(job, refresh) {
  let kept = 'its backups';
  try {
    const backups = await api.listBackups({ jobId: job.id });
    const live = backups.filter((b) => b.status !== 'deleted').length;
    kept = live === 1 ? 'its 1 backup' : `its ${live} backups`;
  } catch {
    /* the count is a courtesy; the confirmation works without it */
  }
  const ok = await confirmDialog({
    title: `Delete job “${job.description}”?`,
    body: [
      `The job stops running on its schedule (${job.schedule}).`,
      h('p', { class: 'keep' }, h('strong', {}, 'Its run history and ' + kept + ' are kept.'),
        ' Delete backups one by one on the Backups page if you no longer need them.'),
    ],
    confirm: 'Delete job',
  });
  if (!ok) return false;
  try {
    await api.deleteJob(job.id);
    notify('success', `Job “${job.description}” is deleted.`, `Its history and ${kept} are kept.`);
    announce(`Job ${job.description} deleted.`);
    await refresh?.();
    return true;
  } catch (error) {
    notify('error', `“${job.description}” could not be deleted.`, problemText(error));
    return false;
  }
}

/** Deletes one backup after a confirmation. */
export async function deleteBackup(backup, refresh) {
  const ok = await confirmDialog({
    title: `Delete backup “${backup.description}”?`,
    body: [
      `The copy of cluster ${backup.sourceClusterId} made at ${backup.created} is deleted and cannot be restored afterwards.`,
      'Its record stays in the list as deleted.',
    ],
    confirm: 'Delete backup',
  });
  if (!ok) return;
  try {
    await api.deleteBackup(backup.id);
    notify('success', `Backup “${backup.description}” is deleted.`);
    announce(`Backup ${backup.description} deleted.`);
  } catch (error) {
    notify('error', `Backup “${backup.description}” could not be deleted.`, problemText(error));
  }
  await refresh?.();
}

/** How many problems a backup's row lists before "and N more". */
const PROBLEMS_SHOWN = 5;

/** A problem as a line: `path: problem`, or the problem alone for the backup as a whole. */
function problemLine(p) {
  return p.path ? [h('code', { class: 'verify-path' }, p.path), `: ${p.problem}`] : p.problem;
}

/**
 * "Verify": the server re-reads the backup and checks it against what it recorded when it
 * made it (the backup is never changed). The result is stored with the backup, so the row
 * shows it after the refresh; a notice says it at once.
 */
export async function verifyBackup(backup, button, refresh) {
  const label = button?.textContent;
  if (button) {
    button.disabled = true;
    button.textContent = 'Verifying…';
  }
  try {
    const result = await api.verifyBackup(backup.id);
    if (result.status === 'ok') {
      notify('success', `Backup “${backup.description}” verified: ok.`,
        'Every file is there, with its size, metadata and checksum as recorded, and nothing extra.');
      announce(`Backup ${backup.description} verified: ok.`);
    } else {
      const n = result.problems.length;
      notify('error', `Backup “${backup.description}” failed its verify.`,
        `${n} problem${n === 1 ? '' : 's'} found; its row lists them.`,
        h('ul', { class: 'verify-problems' }, result.problems.slice(0, PROBLEMS_SHOWN).map((p) => h('li', {}, problemLine(p)))));
      announce(`Backup ${backup.description} failed its verify: ${n} problem${n === 1 ? '' : 's'}.`);
    }
  } catch (error) {
    notify('error', `Backup “${backup.description}” could not be verified.`, problemText(error));
  } finally {
    if (button) {
      button.disabled = false;
      button.textContent = label;
    }
    await refresh?.();
  }
}

/** A backup's last verify, for its Status cell: ok or failed, when, and each problem. */
export function verificationView(backup) {
  const v = backup.verification;
  if (!v) return null;
  const problems = v.problems ?? [];
  const shown = problems.slice(0, PROBLEMS_SHOWN);
  return h('div', { class: `verification verification-${v.status}`, dataset: { verification: v.status } },
    v.status === 'ok' ? badge('verified') : badge('failed', 'Verify failed'),
    h('span', { class: 'sub' }, ' checked ', timeEl(v.checkedAt, { seconds: true })),
    shown.length ? h('ul', { class: 'verify-problems sub' }, shown.map((p) => h('li', {}, problemLine(p)))) : null,
    problems.length > shown.length ? h('p', { class: 'sub' }, `and ${problems.length - shown.length} more`) : null);
}

/**
 * The actions of a backup's row: Verify and Restore an available one, Delete an available or
 * defunct one.
 */
export function backupActions(backup, refresh) {
  const buttons = [];
  if (backup.status === 'available') {
    buttons.push(restoreButton(backup, refresh));
    buttons.push(h('button', {
      type: 'button', class: 'button button-small', 'data-key': `verify-${backup.id}`,
      'aria-label': `Verify backup ${backup.description}`,
      onclick: (event) => verifyBackup(backup, event.currentTarget, refresh),
    }, 'Verify'));
  }
  if (backup.status === 'available' || backup.status === 'defunct') {
    buttons.push(h('button', {
      type: 'button', class: 'button button-small button-danger-quiet', 'data-key': `delete-${backup.id}`,
      'aria-label': `Delete backup ${backup.description}`, onclick: () => deleteBackup(backup, refresh),
    }, 'Delete'));
  }
  return buttons.length ? buttons : h('span', { class: 'muted' }, '—');
}

/** How often the restore dialog asks for the new cluster's status while it is `creating`. */
const RESTORE_POLL_MS = 1500;

/** The "Restore" button of an available backup. */
export function restoreButton(backup, refresh) {
  return h('button', {
    type: 'button', class: 'button button-small', 'data-key': `restore-${backup.id}`,
    'aria-label': `Restore backup ${backup.description}`, onclick: () => restoreDialog(backup, refresh),
  }, 'Restore…');
}

/**
 * The restore dialog (SPEC §14): asks for the new cluster's id, description and target (a
 * path, or an availability zone for an aws backup), starts the restore and shows the new
 * cluster's status until it is available, or why it failed. The dialog stays open on the
 * outcome so it can be read; Close ends it.
 */
export function restoreDialog(backup, refresh) {
  const aws = backup.provider === 'aws' || backup.provider === 'aws-ebs';
  const field = (id, label, input, hint) => h('div', { class: 'field' },
    h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
    h('p', { class: 'field-error error-text', id: `${id}-error`, hidden: true }));
  const clusterId = h('input', {
    id: 'restore-cluster-id', name: 'id', required: true, maxlength: 64, autocomplete: 'off',
    value: `${backup.sourceClusterId}-restored`.slice(0, 64), 'aria-describedby': 'restore-cluster-id-hint',
  });
  const description = h('input', {
    id: 'restore-description', name: 'description', required: true, maxlength: 256, autocomplete: 'off',
    value: `${backup.sourceClusterDescription || backup.sourceClusterId}, restored`.slice(0, 256),
  });
  const where = aws
    ? h('input', { id: 'restore-availability-zone', name: 'availabilityZone', required: true, autocomplete: 'off', placeholder: 'eu-west-1a', 'aria-describedby': 'restore-availability-zone-hint' })
    : h('input', { id: 'restore-path', name: 'path', required: true, autocomplete: 'off', placeholder: '/var/lib/orders-restored', 'aria-describedby': 'restore-path-hint' });
  const volumeType = aws
    ? h('select', { id: 'restore-volume-type', name: 'volumeType' },
      ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'].map((t) => h('option', { value: t }, t)))
    : null;
  const status = h('div', { class: 'form-result restore-status', id: 'restore-status', role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'button button-primary', id: 'restore-submit' }, 'Restore');
  const cancel = h('button', { type: 'button', class: 'button', id: 'restore-close' }, 'Cancel');
  const inputs = { id: clusterId, description, path: where, availabilityZone: where, volumeType };
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'restore-title' }, `Restore backup “${backup.description}”`),
    h('p', {}, `Makes a new cluster from this backup of ${backup.sourceClusterId}. The backup and cluster ${backup.sourceClusterId} are not changed.`),
    field('restore-cluster-id', 'New cluster id', clusterId, 'Letters, digits, - and _; not the id of a registered cluster.'),
    field('restore-description', 'Description', description),
    aws
      ? field('restore-availability-zone', 'Availability zone', where, 'New volumes are made from the backup’s snapshots in this zone of its region, such as eu-west-1a.')
      : field('restore-path', 'Path', where, 'Where the restored data directory goes on the server: a new path, or an empty directory. The files are copied, never linked.'),
    aws ? field('restore-volume-type', 'Volume type', volumeType) : null,
    status,
    h('div', { class: 'dialog-actions' }, cancel, submit));
  const dialog = h('dialog', { class: 'dialog restore-dialog', 'aria-labelledby': 'restore-title' }, form);
  let polling = null;
  const show = (kind, title, ...body) => status.replaceChildren(h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null },
    h('div', { class: 'notice-body' }, h('strong', {}, title), ...body)));
  const clearFieldErrors = () => {
    for (const p of form.querySelectorAll('.field-error')) { p.hidden = true; p.textContent = ''; }
    for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  };
  const fieldError = (name, message) => {
    const input = inputs[name];
    const p = input && form.querySelector(`#${input.id}-error`);
    if (!p) return false;
    input.setAttribute('aria-invalid', 'true');
    p.textContent = message;
    p.hidden = false;
    return true;
  };
  const watch = async (id) => {
    let cluster;
    try {
      cluster = await api.getCluster(id);
    } catch (error) {
      show('error', `The status of cluster ${id} could not be read.`, h('p', {}, problemText(error)));
      return;
    }
    const facts = h('p', {}, badge(cluster.status), ' ', h('span', { class: 'mono' }, cluster.path ?? cluster.volumeIds?.join(', ') ?? ''));
    if (cluster.status === 'creating') {
      show('info', `Restoring into cluster ${id}…`, facts, cluster.details ? h('p', { class: 'sub' }, cluster.details) : null);
      polling = setTimeout(() => watch(id), RESTORE_POLL_MS);
    } else if (cluster.status === 'available') {
      show('success', `Cluster ${id} is available.`, facts,
        h('p', {}, 'It was restored from backup ', h('span', { class: 'mono' }, backup.id), '. ',
          h('a', { href: `clusters.html#cluster-${encodeURIComponent(id)}` }, 'See it on the Clusters page')));
      announce(`Backup ${backup.description} restored into cluster ${id}.`);
      await refresh?.();
    } else {
      show('error', `The restore into cluster ${id} failed.`, facts, h('p', {}, cluster.details ?? ''));
    }
  };
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors();
    const body = {
      id: clusterId.value.trim(), description: description.value.trim(), sourceBackupId: backup.id,
    };
    if (aws) {
      body.availabilityZone = where.value.trim();
      body.volumeType = volumeType.value;
    } else {
      body.path = where.value.trim();
    }
    let missing = false;
    for (const [name, value] of Object.entries(body)) {
      if (!value) missing = fieldError(name, 'Required.') || missing;
    }
    if (missing) {
      show('error', 'Fill in every field to restore.');
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Restoring…';
    show('info', `Restoring backup “${backup.description}” into cluster ${body.id}…`, h('p', {}, 'The files are copied and checked against the backup’s manifest.'));
    try {
      await api.restoreBackup(body);
      for (const input of [clusterId, description, where, volumeType]) if (input) input.disabled = true;
      submit.remove();
      cancel.textContent = 'Close';
      await watch(body.id);
    } catch (error) {
      let named = false;
      for (const [name, message] of Object.entries(error.fields ?? {})) named = fieldError(name, message) || named;
      const title = error.status === 502 ? `The restore into cluster ${body.id} failed.` : 'Nothing was restored.';
      show('error', title, h('p', {}, problemText(error)), error.code ? h('p', {}, h('code', { class: 'error-code' }, error.code)) : null);
      if (error.status === 502) {
        submit.remove();
        cancel.textContent = 'Close';
        await refresh?.();
      } else if (!named) {
        clusterId.focus();
      }
    } finally {
      submit.disabled = false;
      submit.textContent = 'Restore';
    }
  });
  dialog.addEventListener('close', () => {
    clearTimeout(polling);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  where.focus();
  return dialog;
}
