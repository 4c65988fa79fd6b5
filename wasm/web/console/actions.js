// Actions more than one page offers: run a job now, delete a job, delete or verify a
// backup (and how a backup's last verify reads).

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

/** The actions of a backup's row: Verify an available one, Delete an available or defunct one. */
export function backupActions(backup, refresh) {
  const buttons = [];
  if (backup.status === 'available') {
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
