//! The sentences runs write into history details and errors: one place, so they read alike.

use backup_core::api::ClusterLockInfo;
use backup_core::civil::format_rfc3339;

/// "operation expand-disk" / "scheduled-backup of job J (run R)".
pub fn holder_phrase(holder: &ClusterLockInfo) -> String {
    let mut text = format!("operation {}", holder.operation);
    match (&holder.job_id, &holder.run_id) {
        (Some(job), Some(run)) => text.push_str(&format!(" of job {job} (run {run})")),
        (Some(job), None) => text.push_str(&format!(" of job {job}")),
        (None, Some(run)) => text.push_str(&format!(" (run {run})")),
        (None, None) => {}
    }
    text
}

/// The message of a `cluster_locked` failure: who holds the lock, since and until when.
pub fn locked_sentence(cluster_id: &str, holder: &ClusterLockInfo) -> String {
    format!(
        "Cluster {cluster_id} is locked by {} since {} (lease until {}), so nothing was done; \
         try again once it is released{}.",
        holder_phrase(holder),
        format_rfc3339(holder.since),
        format_rfc3339(holder.expires),
        if holder.run_id.is_none() {
            format!(" (`backupctl clusters unlock --cluster-id {cluster_id}`)")
        } else {
            String::new()
        }
    )
}

pub fn not_maintenance_sentence(cluster_id: &str, holder: &ClusterLockInfo) -> String {
    format!(
        "Cluster {cluster_id} is locked by {}, not by an operator's maintenance lock, so it was \
         not released; it is released when that backup finishes or its lease expires at {}.",
        holder_phrase(holder),
        format_rfc3339(holder.expires)
    )
}

/// "backups a, b" / "backup a".
pub fn list_backups(ids: &[String]) -> String {
    match ids.len() {
        1 => format!("backup {}", ids[0]),
        _ => format!("backups {}", ids.join(", ")),
    }
}

/// `text` cut to at most `max` characters, ending with `…` when cut.
pub(crate) fn capped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Why a cluster that is not `available` cannot be backed up (SPEC §14).
pub fn not_available_sentence(
    cluster_id: &str,
    status: backup_core::api::ClusterStatus,
    details: Option<&str>,
) -> String {
    let why = details.map(|d| format!(" ({d})")).unwrap_or_default();
    match status {
        backup_core::api::ClusterStatus::Creating => format!(
            "Cluster {cluster_id} is still being restored{why}, so it cannot be backed up yet; \
             try again once `backupctl clusters get --cluster-id {cluster_id}` says it is available."
        ),
        _ => format!(
            "Cluster {cluster_id} is {status}{why}, so it cannot be backed up: delete it \
             (`backupctl clusters delete --cluster-id {cluster_id}`) and restore again."
        ),
    }
}

/// How much of an incremental backup was copied and how much linked from an earlier one
/// (the run's details, SPEC §13).
pub fn copied_and_linked(size: u64, linked: u64) -> String {
    let linked = linked.min(size);
    format!(
        "copied {} bytes, linked {linked} bytes unchanged since the previous backup",
        size - linked
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn holder(job: Option<&str>, run: Option<&str>, operation: &str) -> ClusterLockInfo {
        ClusterLockInfo {
            operation: operation.into(),
            job_id: job.map(Into::into),
            run_id: run.map(Into::into),
            since: DateTime::from_timestamp(1_795_755_600, 0).unwrap(),
            expires: DateTime::from_timestamp(1_795_755_660, 0).unwrap(),
            fencing_token: 3,
        }
    }

    #[test]
    fn a_locked_cluster_names_the_holder_and_since_when() {
        // GIVEN a scheduled run holding the lock WHEN another run meets it
        let text = locked_sentence("c1", &holder(Some("j1"), Some("r1"), "scheduled-backup"));
        // THEN the sentence names operation, job, run, since and until
        assert_eq!(
            text,
            "Cluster c1 is locked by operation scheduled-backup of job j1 (run r1) since \
             2026-11-27T05:00:00Z (lease until 2026-11-27T05:01:00Z), so nothing was done; try \
             again once it is released."
        );
    }

    #[test]
    fn a_maintenance_lock_says_how_to_release_it() {
        let text = locked_sentence("c1", &holder(None, None, "expand-disk"));
        assert!(text.contains("operation expand-disk since"), "{text}");
        assert!(
            text.ends_with("(`backupctl clusters unlock --cluster-id c1`)."),
            "{text}"
        );
    }

    #[test]
    fn backup_lists_read_naturally() {
        assert_eq!(list_backups(&["a".into()]), "backup a");
        assert_eq!(list_backups(&["a".into(), "b".into()]), "backups a, b");
    }

    #[test]
    fn long_details_are_capped_with_an_ellipsis_on_a_char_boundary() {
        assert_eq!(capped("short", 10), "short");
        let long = "é".repeat(5000);
        let cut = capped(&long, 4000);
        assert_eq!(cut.chars().count(), 4000);
        assert!(cut.ends_with('…'));
    }
}
