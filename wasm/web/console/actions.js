// Actions more than one page offers: run a job now, delete a job, delete a backup.

import { api, announce, confirmDialog, h, jobHref, notify, problemText } from './app.js';

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
