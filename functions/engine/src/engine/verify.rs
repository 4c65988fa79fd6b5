//! Verifying a backup (SPEC §14): its provider re-reads it and says what is wrong with it;
//! the result is stored with the backup and answered.

use backup_core::api::{Verification, VerificationStatus, VerifyResponse};
use backup_core::retention::BackupStatus;
use chrono::SubsecRound;

use super::Engine;
use crate::error::{EngineError, ProviderError};
use crate::model::{BackupEntry, BackupHandle, Scope};

impl Engine {
    /// Verifies an `available` backup of `scope` through its provider, stores the result
    /// on the backup (`verifiedAt`, `verification`) and answers it: `failed`, with the
    /// problems found, is an answer like `ok`, not an error. A backup in another state
    /// answers `backup_not_available`; a provider that cannot make the check (an
    /// unreadable backup root, a failed cloud call) answers `provider_error`, and nothing
    /// is stored.
    ///
    /// **The cluster's lock is not taken.** A verify only reads a backup that is complete,
    /// and nothing a lock holder does changes a complete backup: a run or a manual backup
    /// makes a new one, a maintenance operation works on the cluster, not its backups. So
    /// a verify runs while a backup of the same cluster is being made, and a run never
    /// fails `cluster_locked` because of a verify. The one thing that can change a backup
    /// under a verify is its deletion (a prune, an operator's delete): the backup is read
    /// again once the provider answers, and when it is no longer `available` the result
    /// (made of files that were disappearing) is neither stored nor answered; the answer
    /// is `backup_not_available`.
    pub async fn verify_backup(
        &self,
        scope: &Scope,
        backup_id: &str,
    ) -> Result<VerifyResponse, EngineError> {
        let backup = self.backup_in_scope(scope, backup_id).await?;
        available(&backup)?;
        let Some(location) = backup.location.clone() else {
            return Err(ProviderError::new(format!(
                "backup {backup_id} has no recorded location, so there is nothing to verify"
            ))
            .into());
        };
        let Some(provider) = self.provider(&backup.provider) else {
            return Err(ProviderError::new(format!(
                "this server has no {} backup provider to verify it with",
                backup.provider
            ))
            .into());
        };
        let handle = BackupHandle {
            size_bytes: backup.size_bytes,
            ..BackupHandle::new(backup.id.clone(), location)
        };
        let problems = provider.verify(&handle).await.inspect_err(|error| {
            tracing::warn!(backup_id, %error, "a verify could not be made");
        })?;
        // Whole seconds, as the API shows instants and every store keeps them.
        let verification = Verification {
            status: VerificationStatus::of(&problems),
            checked_at: self.now().trunc_subsecs(0),
            problems,
        };
        let store = &self.inner.store;
        match store.get_backup(backup_id).await? {
            Some(now) => available(&now)?,
            None => return Err(EngineError::BackupNotFound(backup_id.to_owned())),
        }
        store
            .set_backup_verification(backup_id, &verification)
            .await?;
        tracing::info!(
            backup_id,
            status = verification.status.as_str(),
            problems = verification.problems.len(),
            "backup verified"
        );
        Ok(VerifyResponse::new(backup_id, verification))
    }
}

fn available(backup: &BackupEntry) -> Result<(), EngineError> {
    if backup.status == BackupStatus::Available {
        return Ok(());
    }
    Err(EngineError::BackupNotAvailable {
        backup_id: backup.id.clone(),
        status: backup.status.to_string(),
        action: "verified",
    })
}
