//! The TypeScript types of the exports, written into the package's `.d.ts` by wasm-bindgen.
//!
//! The shapes are the core's serde shapes; the host tests below fail when the core gains an
//! error code or a field name that is not listed here, so the types cannot drift silently.

use wasm_bindgen::prelude::*;

/// The `.d.ts` text (also used by the tests).
pub const TYPES: &str = r#"
/**
 * A stable, machine-readable reason (SPEC §2.2, §3; job, cluster and lock fields). Every code
 * of the core is listed, also those only the lock check gives (`reserved_operation`, with the
 * fields `operation` and `ttlSeconds`): this package does not export `validateLock` (the lock
 * dialog is not part of the form), but the server's 400 answer to a lock request uses them.
 */
export type ErrorCode =
  | "empty" | "field_count" | "syntax" | "out_of_range" | "invalid_range" | "invalid_step"
  | "unsupported" | "too_frequent" | "never_runs" | "unknown_placeholder" | "unknown_format"
  | "required" | "too_long" | "invalid_value" | "not_absolute" | "invalid_volume_id"
  | "invalid_region" | "invalid_instance_tag" | "reserved_operation" | "conflicting"
  | "not_found";

/** Which part of the input an error concerns. */
export type ErrorField =
  | "minute" | "hour" | "dayOfMonth" | "month" | "dayOfWeek" | "schedule" | "description"
  | "jobDescription" | "type" | "clusterId" | "maxBackupCount" | "clusterDescription" | "region"
  | "path" | "volumeIds" | "instanceTag" | "operation" | "ttlSeconds" | "serverVersion"
  | "serverVersionTag" | "nodeCount" | "sourceBackupId" | "availabilityZone" | "volumeType"
  | "command" | "runAs" | "commandTimeoutSeconds";

/**
 * One problem, located precisely enough to underline it: `start`..`end` counts Unicode
 * characters (what `Array.from(text)` indexes), end exclusive; `0`..`0` for a value that is
 * not text (a count, a TTL, a list of volume ids) or is missing.
 */
export interface FieldError {
  code: ErrorCode;
  field: ErrorField;
  start: number;
  end: number;
  /** One sentence saying what is wrong and what to write instead. */
  message: string;
}

/** `validateSchedule`'s answer; the object `backupctl schedule check --json` prints. */
export type ScheduleCheck =
  | {
      valid: true;
      schedule: string;
      /** One English sentence, such as "At 12:00 on Monday" (UTC). */
      description: string;
      /** The EventBridge rule expression(s) the job deploys as, such as `cron(0 12 ? * MON *)`. */
      eventbridge: string[];
      minIntervalMinutes: number;
      /** The next runs, RFC 3339 in UTC with zero seconds (`2026-11-30T12:00:00Z`). */
      next: string[];
    }
  | { valid: false; schedule: string; errors: FieldError[] };

/** `renderTemplate`'s answer; the object `backupctl template render --json` prints. */
export type TemplateCheck =
  | { valid: true; rendered: string }
  | { valid: false; errors: FieldError[] };

/** What a run knows when it names a backup. */
export interface RenderContext {
  clusterId: string;
  clusterDescription: string;
  /** `directory`, `command` or `aws-ebs`. */
  clusterProvider: string;
  /** `local` for directory clusters. */
  clusterRegion: string;
  /** The backup's sequence number within its job, from 1. */
  index: number;
  /** An RFC 3339 instant, such as `new Date(ms).toISOString()`. */
  datetime: string;
}

/** The body of `POST /orchestrate/v1/organizations/{org}/projects/{project}/jobs` (SPEC §7). */
export interface CreateJobRequest {
  description?: string | null;
  schedule?: string | null;
  /** `ScheduledBackup`, the only type; may be left out. */
  type?: string | null;
  data?: {
    clusterId?: string | null;
    /** The description template of each backup (SPEC §3). */
    description?: string | null;
    /** A whole number from 1 to 1000. */
    maxBackupCount?: number | null;
  } | null;
}

/** The keys of a create-job check: JSON paths into the body, as the API's `fields` uses. */
export type JobField =
  | "description" | "schedule" | "type" | "data.clusterId" | "data.description"
  | "data.maxBackupCount";

/** `validateJob`'s answer. */
export type JobCheck =
  | { valid: true }
  | {
      valid: false;
      /** Every error of each field, with spans. */
      problems: Partial<Record<JobField, FieldError[]>>;
      /** One message per field: exactly the `fields` map of the API's 400 answer. */
      fields: Partial<Record<JobField, string>>;
    };

/**
 * The body of `POST /mesdb/v1/organizations/{org}/projects/{project}/clusters`: a cluster to
 * register, or with `sourceBackupId` a new cluster restored from that backup (SPEC §14).
 */
export type RegisterClusterRequest = {
  id: string;
  description: string;
  /** `local` (or left out) for `directory` and `command`; the AWS region for `aws-ebs`. */
  region?: string | null;
  /** The database server's version and build tag: 1 to 64 printable characters each. */
  serverVersion?: string | null;
  serverVersionTag?: string | null;
  /** How many nodes the cluster has, 1 to 99 (1 when left out). */
  nodeCount?: number | null;
  /** Makes the cluster a restore of this backup (an id such as `c196ogto0aeqohe3ommq`). */
  sourceBackupId?: string | null;
  /** An aws-ebs restore's availability zone, such as `eu-west-1a`. */
  availabilityZone?: string | null;
  /** An aws-ebs restore's volume type: gp2, gp3 (when left out), io1, io2, st1, sc1, standard. */
  volumeType?: string | null;
} & (
  | {
      provider: "directory";
      path: string;
      /** Shell commands run before and after the copy (SPEC §15; `serve --allow-commands`). */
      preHook?: string | null;
      postHook?: string | null;
    }
  | {
      /** A backup made by a command of its own (SPEC §15; `serve --allow-commands`). */
      provider: "command";
      /** The database's data directory. */
      path: string;
      /** Fills the empty directory `$BACKUP_DIR`, such as `pg_basebackup -D "$BACKUP_DIR"`. */
      backupCommand: string;
      /** Restores from `$BACKUP_DIR` into `$TARGET_DIR`; without one a restore copies the files. */
      restoreCommand?: string | null;
      /** The user the commands run as. */
      runAs?: string | null;
      /** 1 to 604800 (a week); 3600 when left out. */
      commandTimeoutSeconds?: number | null;
    }
  | { provider: "aws-ebs"; volumeIds?: string[]; instanceTag?: string | null }
  /**
   * A restore may leave `provider` out: it is then `aws-ebs` when `availabilityZone` or
   * `volumeType` is given, `directory` otherwise.
   */
  | { provider?: undefined; sourceBackupId: string; path: string; preHook?: string | null; postHook?: string | null }
  | { provider?: undefined; sourceBackupId: string; availabilityZone: string }
);

/** The keys of a cluster check: the body's field names, as the API's `fields` uses. */
export type ClusterField =
  | "id" | "description" | "region" | "path" | "volumeIds" | "instanceTag" | "serverVersion"
  | "serverVersionTag" | "nodeCount" | "sourceBackupId" | "availabilityZone" | "volumeType"
  | "preHook" | "postHook" | "backupCommand" | "restoreCommand" | "runAs"
  | "commandTimeoutSeconds";

/** `validateCluster`'s answer (the path's shape only; the server checks the directory). */
export type ClusterCheck =
  | { valid: true }
  | {
      valid: false;
      problems: Partial<Record<ClusterField, FieldError[]>>;
      fields: Partial<Record<ClusterField, string>>;
    };

/** The limits the core enforces. */
export interface Limits {
  maxJobDescriptionChars: number;
  maxClusterIdChars: number;
  maxTemplateChars: number;
  maxScheduleChars: number;
  minBackupCount: number;
  maxBackupCount: number;
  minIntervalMinutes: number;
  maxNextRuns: number;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = TYPES;

#[cfg(test)]
mod tests {
    use super::TYPES;
    use backup_core::job::keys;
    use backup_core::{ErrorCode, Field};

    /// Every variant, kept complete by the exhaustive `match` below: adding a variant to the
    /// core breaks this build until it is listed here (and so checked against the types).
    fn every_code() -> Vec<ErrorCode> {
        use ErrorCode::*;
        let all = vec![
            Empty,
            FieldCount,
            Syntax,
            OutOfRange,
            InvalidRange,
            InvalidStep,
            Unsupported,
            TooFrequent,
            NeverRuns,
            UnknownPlaceholder,
            UnknownFormat,
            Required,
            TooLong,
            InvalidValue,
            NotAbsolute,
            InvalidVolumeId,
            InvalidRegion,
            InvalidInstanceTag,
            ReservedOperation,
            Conflicting,
            NotFound,
        ];
        for code in &all {
            match code {
                Empty | FieldCount | Syntax | OutOfRange | InvalidRange | InvalidStep
                | Unsupported | TooFrequent | NeverRuns | UnknownPlaceholder | UnknownFormat
                | Required | TooLong | InvalidValue | NotAbsolute | InvalidVolumeId
                | InvalidRegion | InvalidInstanceTag | ReservedOperation | Conflicting
                | NotFound => {}
            }
        }
        all
    }

    fn every_field() -> Vec<Field> {
        use Field::*;
        let all = vec![
            Minute,
            Hour,
            DayOfMonth,
            Month,
            DayOfWeek,
            Schedule,
            Description,
            JobDescription,
            JobType,
            ClusterId,
            MaxBackupCount,
            ClusterDescription,
            Region,
            Path,
            VolumeIds,
            InstanceTag,
            Operation,
            TtlSeconds,
            ServerVersion,
            ServerVersionTag,
            NodeCount,
            SourceBackupId,
            AvailabilityZone,
            VolumeType,
            Command,
            RunAs,
            CommandTimeoutSeconds,
        ];
        for field in &all {
            match field {
                Minute
                | Hour
                | DayOfMonth
                | Month
                | DayOfWeek
                | Schedule
                | Description
                | JobDescription
                | JobType
                | ClusterId
                | MaxBackupCount
                | ClusterDescription
                | Region
                | Path
                | VolumeIds
                | InstanceTag
                | Operation
                | TtlSeconds
                | ServerVersion
                | ServerVersionTag
                | NodeCount
                | SourceBackupId
                | AvailabilityZone
                | VolumeType
                | Command
                | RunAs
                | CommandTimeoutSeconds => {}
            }
        }
        all
    }

    fn section<'a>(name: &str) -> &'a str {
        let start = TYPES.find(name).unwrap_or_else(|| panic!("no {name}"));
        let rest = &TYPES[start..];
        &rest[..rest.find(';').unwrap()]
    }

    #[test]
    fn every_error_code_is_typed() {
        let typed = section("type ErrorCode");
        for code in every_code() {
            assert!(typed.contains(&format!("\"{code}\"")), "{code} missing");
        }
        assert_eq!(typed.matches('"').count(), 2 * every_code().len());
    }

    #[test]
    fn every_error_field_is_typed() {
        let typed = section("type ErrorField");
        for field in every_field() {
            assert!(typed.contains(&format!("\"{field}\"")), "{field} missing");
        }
        assert_eq!(typed.matches('"').count(), 2 * every_field().len());
    }

    #[test]
    fn every_cluster_key_is_typed() {
        let typed = section("type ClusterField");
        let all = backup_core::cluster::keys::CLUSTER_ALL;
        for key in all {
            assert!(typed.contains(&format!("\"{key}\"")), "{key} missing");
        }
        assert_eq!(typed.matches('"').count(), 2 * all.len());
    }

    #[test]
    fn every_job_key_is_typed() {
        let typed = section("type JobField");
        for key in keys::ALL {
            assert!(typed.contains(&format!("\"{key}\"")), "{key} missing");
        }
        assert_eq!(typed.matches('"').count(), 2 * keys::ALL.len());
    }
}
