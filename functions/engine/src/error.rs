//! The one error type of the engine's use cases, and the errors its ports report.
//!
//! Every [`EngineError`] has a stable [`code`](EngineError::code) (the `code` of an RFC 7807
//! problem and of the CLI's message) and a [`kind`](EngineError::kind) that an interface maps
//! to its own vocabulary: the HTTP API to a status, a Lambda to "retry or not".

use std::collections::BTreeMap;

use backup_core::api::{ClusterLockInfo, FieldProblem, RunFailure};
use backup_core::{FieldError, FieldErrors};

/// What an interface should make of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; it changed nothing and repeating it will not help (HTTP 400).
    Invalid,
    /// Something the request names does not exist in its organization and project (404).
    NotFound,
    /// The request is fine but the state forbids it now: a held lock, a duplicate id (409).
    Conflict,
    /// A dependency (the store, a provider, the trigger scheduler) failed; retrying may help
    /// (HTTP 502/503).
    Unavailable,
}

/// A failure of a store or lock adapter. The source is kept so logs show the real cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, a lost connection, a full disk).
    #[error("the state store failed: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored record cannot be read back (a value this version does not know).
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Why a provider failed: the subset of [`RunFailure`] a provider may answer (SPEC §12,
/// §13), converted with `RunFailure::from` when a run or backup records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorCode {
    /// Anything else: the sentence says what.
    #[default]
    ProviderError,
    /// The cluster's path breaks the path policy (it may have become a link since it was
    /// registered).
    PathNotAllowed,
    /// The bytes to write exceed the free space of the backup root.
    InsufficientSpace,
    /// No progress for the stall limit; the worker was abandoned.
    ProviderStalled,
    /// The work was stopped by a shutdown of the server.
    Interrupted,
    /// The backup did not complete within its deadline.
    ProviderTimeout,
    /// The provider refused to start more work now (a concurrency or rate limit).
    ProviderBusy,
    /// A cluster's pre-hook failed, so nothing was backed up.
    HookFailed,
}

impl From<ProviderErrorCode> for RunFailure {
    fn from(code: ProviderErrorCode) -> RunFailure {
        match code {
            ProviderErrorCode::ProviderError => RunFailure::ProviderError,
            ProviderErrorCode::PathNotAllowed => RunFailure::PathNotAllowed,
            ProviderErrorCode::InsufficientSpace => RunFailure::InsufficientSpace,
            ProviderErrorCode::ProviderStalled => RunFailure::ProviderStalled,
            ProviderErrorCode::Interrupted => RunFailure::Interrupted,
            ProviderErrorCode::ProviderTimeout => RunFailure::ProviderTimeout,
            ProviderErrorCode::ProviderBusy => RunFailure::ProviderBusy,
            ProviderErrorCode::HookFailed => RunFailure::HookFailed,
        }
    }
}

/// A failure reported by a backup provider (a copy that failed, a snapshot API error).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// The `errorCode` a run or backup that failed this way records.
    pub code: ProviderErrorCode,
    /// One sentence saying what failed, for the run's history details.
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError {
            code: ProviderErrorCode::ProviderError,
            message: message.into(),
            source: None,
        }
    }

    /// A failure with its own code (`path_not_allowed`, `insufficient_space`, …).
    pub fn coded(code: ProviderErrorCode, message: impl Into<String>) -> Self {
        ProviderError {
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ProviderError {
            code: ProviderErrorCode::ProviderError,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A cluster target a provider refuses (SPEC §12's path policy): the field, its stable code
/// and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetProblem {
    /// The request field, such as `path`.
    pub field: &'static str,
    /// The stable code, such as `path_not_allowed`.
    pub code: &'static str,
    pub message: String,
}

/// A failure of the trigger scheduler (an EventBridge call, a stopped local scheduler).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TriggerError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TriggerError {
    pub fn new(message: impl Into<String>) -> Self {
        TriggerError {
            message: message.into(),
            source: None,
        }
    }
}

/// Everything a use case can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Invalid input: `fields` maps each offending field to what to write instead and keeps
    /// the core's coded errors (`code`, span) of the fields a core rule found.
    #[error("{detail}")]
    Invalid { detail: String, fields: Problems },
    /// A provider refused a cluster's target (SPEC §12: `path_not_allowed`); answered 400
    /// with the problem's own code and `fields`.
    #[error("{0}")]
    TargetRefused(TargetProblem),
    #[error("job {0} does not exist in this organization and project")]
    JobNotFound(String),
    #[error("cluster {0} is not registered in this organization and project")]
    ClusterNotFound(String),
    #[error("backup {0} does not exist in this organization and project")]
    BackupNotFound(String),
    /// A queued run's delivery names a history item that does not exist.
    #[error("run {0} is not recorded")]
    RunNotFound(String),
    #[error("job {0} is deleted, so it cannot run or change; create a new job instead")]
    JobDeleted(String),
    #[error("cluster {0} is already registered; delete it first or choose another id")]
    ClusterExists(String),
    #[error("cluster {cluster_id} is still backed up by active job(s) {}; delete them first", job_ids.join(", "))]
    ClusterInUse {
        cluster_id: String,
        job_ids: Vec<String>,
    },
    /// The cluster's lock is held by someone else; nothing was done.
    #[error("{}", crate::text::locked_sentence(cluster_id, holder))]
    ClusterLocked {
        cluster_id: String,
        holder: Box<ClusterLockInfo>,
    },
    /// An operator tried to release a lock that a backup holds (or another kind of holder).
    #[error("{}", crate::text::not_maintenance_sentence(cluster_id, holder))]
    LockNotMaintenance {
        cluster_id: String,
        holder: Box<ClusterLockInfo>,
    },
    /// The backup is in a state that forbids the request (still being created).
    #[error("backup {backup_id} is {status}; wait until it is available or defunct")]
    BackupBusy { backup_id: String, status: String },
    /// The request needs an `available` backup (verify, restore: SPEC §14) and this one
    /// is not.
    #[error("backup {backup_id} is {status}, and only an available backup can be {action}")]
    BackupNotAvailable {
        backup_id: String,
        status: String,
        /// What the request does, as a past participle: `verified`, `restored`.
        action: &'static str,
    },
    /// The cluster is being restored, or its restore failed: it cannot be backed up
    /// (SPEC §14).
    #[error("{}", crate::text::not_available_sentence(cluster_id, *status, details.as_deref()))]
    ClusterNotAvailable {
        cluster_id: String,
        status: backup_core::api::ClusterStatus,
        details: Option<String>,
    },
    /// A restore ran and failed: the new cluster is recorded `failed` with the reason.
    #[error("the restore of backup {backup_id} into cluster {cluster_id} failed, so the cluster is recorded failed and nothing was left on disk: {reason}; delete the cluster (`backupctl clusters delete --cluster-id {cluster_id}`) before restoring with its id again")]
    RestoreFailed {
        cluster_id: String,
        backup_id: String,
        reason: String,
    },
    /// A cluster's provider is not available in this deployment.
    #[error("this server has no {provider} backup provider, so cluster {cluster_id} cannot be backed up here")]
    ProviderUnavailable {
        cluster_id: String,
        provider: String,
    },
    #[error("the backup provider failed: {0}")]
    Provider(#[from] ProviderError),
    #[error("the trigger scheduler failed: {0}")]
    Trigger(#[from] TriggerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid { .. } => "validation",
            EngineError::TargetRefused(problem) => problem.code,
            EngineError::JobNotFound(_) => "job_not_found",
            EngineError::ClusterNotFound(_) => "cluster_not_found",
            EngineError::BackupNotFound(_) => "backup_not_found",
            EngineError::RunNotFound(_) => "run_not_found",
            EngineError::JobDeleted(_) => "job_deleted",
            EngineError::ClusterExists(_) => "cluster_exists",
            EngineError::ClusterInUse { .. } => "cluster_in_use",
            EngineError::ClusterLocked { .. } => "cluster_locked",
            EngineError::LockNotMaintenance { .. } => "lock_not_maintenance",
            EngineError::BackupBusy { .. } => "backup_busy",
            EngineError::BackupNotAvailable { .. } => "backup_not_available",
            EngineError::ClusterNotAvailable { .. } => "cluster_not_available",
            EngineError::RestoreFailed { .. } => "restore_failed",
            EngineError::ProviderUnavailable { .. } => "provider_unavailable",
            EngineError::Provider(_) => "provider_error",
            EngineError::Trigger(_) => "trigger_error",
            EngineError::Store(_) => "store_error",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Invalid { .. }
            | EngineError::TargetRefused(_)
            | EngineError::ProviderUnavailable { .. } => ErrorKind::Invalid,
            EngineError::JobNotFound(_)
            | EngineError::ClusterNotFound(_)
            | EngineError::BackupNotFound(_)
            | EngineError::RunNotFound(_) => ErrorKind::NotFound,
            EngineError::JobDeleted(_)
            | EngineError::ClusterExists(_)
            | EngineError::ClusterInUse { .. }
            | EngineError::ClusterLocked { .. }
            | EngineError::LockNotMaintenance { .. }
            | EngineError::BackupBusy { .. }
            | EngineError::BackupNotAvailable { .. }
            | EngineError::ClusterNotAvailable { .. } => ErrorKind::Conflict,
            EngineError::Provider(_)
            | EngineError::RestoreFailed { .. }
            | EngineError::Trigger(_)
            | EngineError::Store(_) => ErrorKind::Unavailable,
        }
    }

    /// Field name → what is wrong with it, for validation errors (empty otherwise).
    pub fn fields(&self) -> BTreeMap<String, String> {
        match self {
            EngineError::Invalid { fields, .. } => fields.fields.clone(),
            EngineError::TargetRefused(problem) => {
                BTreeMap::from([(problem.field.to_owned(), problem.message.clone())])
            }
            _ => BTreeMap::new(),
        }
    }

    /// Field name → its coded errors (`code`, `message`, span), for validation errors and
    /// a refused target: the `problems` map of the API's 400 answer. A field only an
    /// engine check found (a malformed job id) has its message in [`fields`](Self::fields)
    /// and no entry here.
    pub fn problems(&self) -> BTreeMap<String, Vec<FieldProblem>> {
        match self {
            EngineError::Invalid { fields, .. } => fields
                .coded
                .iter()
                .map(|(field, errors)| {
                    (
                        field.clone(),
                        errors.iter().map(FieldProblem::from).collect(),
                    )
                })
                .collect(),
            EngineError::TargetRefused(problem) => BTreeMap::from([(
                problem.field.to_owned(),
                vec![FieldProblem {
                    code: problem.code.to_owned(),
                    message: problem.message.clone(),
                    field: None,
                    start: None,
                    end: None,
                }],
            )]),
            _ => BTreeMap::new(),
        }
    }

    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut problems = Problems::default();
        problems.add(field, message);
        problems.into_error()
    }

    /// The core's problems with one request, codes and spans kept.
    pub fn from_problems(problems: backup_core::Problems) -> Self {
        let mut collected = Problems::default();
        collected.extend(problems);
        collected.into_error()
    }
}

/// The one-sentence summary of invalid fields: the message itself when there is one, else
/// which fields are wrong (the `fields` map says what to write in each).
fn invalid_detail(fields: &BTreeMap<String, String>) -> String {
    match fields.len() {
        1 => fields
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect(),
        n => format!(
            "{n} fields are invalid ({}); `fields` says what to write in each.",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Collects every invalid field of one request before answering, so the operator sees all
/// of them at once (SPEC §7: "every problem found, not only the first").
///
/// A field's problems come from the core's rules, as [`FieldError`]s whose code and span are
/// kept ([`take`](Self::take), [`extend`](Self::extend)), or from the engine's own checks as
/// a message ([`add`](Self::add), [`check`](Self::check)); `fields` joins the messages of
/// both, as the API's `fields` map shows them.
#[derive(Debug, Default)]
pub struct Problems {
    fields: BTreeMap<String, String>,
    coded: BTreeMap<String, Vec<FieldError>>,
}

impl Problems {
    /// Records the core's errors under `field`, keeping their codes.
    pub fn add_errors(&mut self, field: &str, errors: impl IntoIterator<Item = FieldError>) {
        for error in errors {
            self.add(field, error.message.clone());
            self.coded.entry(field.to_owned()).or_default().push(error);
        }
    }

    /// Records every problem the core found in a request, keyed as the core keyed them.
    pub fn extend(&mut self, problems: backup_core::Problems) {
        for (field, errors) in problems.into_map() {
            self.add_errors(&field, errors);
        }
    }

    /// Records a core check's failure under `field`, codes kept, and passes its value on.
    pub fn take<T>(&mut self, field: &str, result: Result<T, FieldErrors>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(errors) => {
                self.add_errors(field, errors);
                None
            }
        }
    }

    /// Field name → its message(s), joined by a space.
    pub fn messages(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    /// Field name → the core's errors, for the fields a core rule found.
    pub fn coded(&self) -> &BTreeMap<String, Vec<FieldError>> {
        &self.coded
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        self.fields
            .entry(field.to_owned())
            .and_modify(|m| {
                m.push(' ');
                m.push_str(&message);
            })
            .or_insert(message);
    }

    /// Records a check's failure under `field` and passes its value on.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` when nothing was added, else the [`EngineError::Invalid`] listing them all.
    pub fn into_result(self) -> Result<(), EngineError> {
        if self.fields.is_empty() {
            return Ok(());
        }
        Err(self.into_error())
    }

    fn into_error(self) -> EngineError {
        EngineError::Invalid {
            detail: invalid_detail(&self.fields),
            fields: self,
        }
    }
}
