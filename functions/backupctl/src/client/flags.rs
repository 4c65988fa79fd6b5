//! Checks of flags before anything is sent: the flags' own syntax (`--ttl 30m`, which flags
//! go with which provider, a `--path` made absolute) here, and the rules of the request
//! itself by calling `backup_core::cluster`, the same checks the server makes, with each
//! problem named by its flag. Each problem says what to write instead, and every problem is
//! reported, not only the first.

use std::path::Path;

use backup_core::api::{ClusterTarget, LockClusterRequest, RegisterClusterRequest};
use backup_core::cluster::{self, keys};
use backup_core::{FieldError, Problems};

use crate::cli::{CreateCluster, RegisterCluster};

/// The flag that sets a request field, for naming the core's problems the way the operator
/// wrote them.
fn flag_of(key: &str) -> &str {
    match key {
        keys::ID => "--cluster-id",
        keys::DESCRIPTION => "--description",
        keys::REGION => "--region",
        keys::PATH => "--path",
        keys::VOLUME_IDS => "--volume-id",
        keys::INSTANCE_TAG => "--instance-tag",
        keys::SERVER_VERSION => "--server-version",
        keys::SERVER_VERSION_TAG => "--server-version-tag",
        keys::NODE_COUNT => "--node-count",
        keys::SOURCE_BACKUP_ID => "--source-backup-id",
        keys::AVAILABILITY_ZONE => "--availability-zone",
        keys::VOLUME_TYPE => "--volume-type",
        keys::OPERATION => "--operation",
        keys::TTL_SECONDS => "--ttl",
        other => other,
    }
}

/// `--flag: message` for each of the core's problems, in the order of the request's fields.
fn flag_messages(key: &str, errors: &[FieldError]) -> Vec<String> {
    let flag = flag_of(key);
    errors
        .iter()
        .map(|e| format!("{flag}: {}", e.message))
        .collect()
}

fn all_flag_messages(problems: &Problems, order: &[&str]) -> Vec<String> {
    order
        .iter()
        .filter_map(|key| problems.get(key).map(|errors| flag_messages(key, errors)))
        .flatten()
        .collect()
}

/// Parses a lease length: one or more `<number><unit>` parts with unit `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `2h`, `1h30m`), into seconds, within the core's lock TTL range (1 s to 7
/// days).
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let help = "write a duration such as 90s, 30m or 2h";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("--ttl is empty; {help}."));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "--ttl \"{text}\" has `{c}`, which is not a unit (s, m, h or d); {help}."
                ))
            }
        };
        if number.is_empty() {
            return Err(format!(
                "--ttl \"{text}\" has a unit without a number before it; {help}."
            ));
        }
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(|| format!("--ttl \"{text}\" is far too long; {help}."))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("--ttl \"{text}\" is far too long; {help}."))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "--ttl \"{text}\" ends in a number without a unit; write {number}s, {number}m or \
             {number}h."
        ));
    }
    cluster::check_ttl_seconds(total, cluster::MAX_LOCK_TTL_SECONDS).map_err(|errors| {
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        format!("--ttl \"{text}\": {}", messages.join(" "))
    })?;
    Ok(total)
}

/// Builds an operator's lock request from `--operation` and `--ttl`, or every problem with
/// them (the core's operation rules, named by flag).
pub fn lock_request(operation: String, ttl: &str) -> Result<LockClusterRequest, Vec<String>> {
    let ttl_seconds = parse_ttl(ttl).map_err(|e| vec![e])?;
    let request = LockClusterRequest {
        operation,
        ttl_seconds: Some(ttl_seconds),
    };
    match cluster::validate_lock(&request) {
        Ok(_) => Ok(request),
        Err(problems) => Err(all_flag_messages(&problems, &keys::LOCK_ALL)),
    }
}

/// Builds the register request from the flags, or every problem with them: first the
/// flags' own (an unknown provider, a flag that does not go with it, a missing `--path`),
/// then the core's rules of the request, named by flag.
///
/// `--path` is made absolute against the current directory (the server may run elsewhere),
/// without resolving symbolic links: the operator named that path, and a link that is later
/// repointed should be followed at backup time.
pub fn register_request(args: &RegisterCluster) -> Result<RegisterClusterRequest, Vec<String>> {
    let mut problems = Vec::new();
    let target = match args.provider.as_str() {
        "directory" => directory_target(args, &mut problems),
        "aws-ebs" => aws_ebs_target(args, &mut problems),
        other => {
            problems.push(format!(
                "--provider \"{other}\" is not a provider; write --provider directory (a data \
                 directory on this machine) or --provider aws-ebs."
            ));
            None
        }
    };
    let Some(target) = target else {
        // No request to check as a whole; the fields that do not depend on the provider
        // are still checked, so every problem is reported at once.
        let mut core = Problems::default();
        core.take(keys::ID, cluster::check_cluster_id(Some(&args.cluster_id)));
        core.take(
            keys::DESCRIPTION,
            cluster::check_cluster_description(&args.description),
        );
        problems.extend(all_flag_messages(&core, &keys::CLUSTER_ALL));
        return Err(problems);
    };
    let request = RegisterClusterRequest {
        id: args.cluster_id.clone(),
        description: args.description.clone(),
        region: match target {
            ClusterTarget::Directory { .. } => None,
            ClusterTarget::AwsEbs { .. } => args.region.clone(),
        },
        target,
        server_version: args.server_version.clone(),
        server_version_tag: args.server_version_tag.clone(),
        node_count: args.node_count,
        source_backup_id: None,
        availability_zone: None,
        volume_type: None,
    };
    if let Err(core) = cluster::validate_cluster(&request) {
        problems.extend(all_flag_messages(&core, &keys::CLUSTER_ALL));
    }
    if problems.is_empty() {
        Ok(request)
    } else {
        Err(problems)
    }
}

/// Builds a restore request (`clusters create`, `backups restore`) from the flags, or every
/// problem with them: `--source-backup-id` and either `--path` (a directory or command
/// backup; made absolute as for `clusters register`) or `--availability-zone` (an aws-ebs
/// backup); then the core's rules, named by flag. The provider is left for the server to
/// take from the backup. Without `--cluster-id` the new cluster is `restored-<backup id>`.
pub fn restore_request(args: &CreateCluster) -> Result<RegisterClusterRequest, Vec<String>> {
    let mut problems = Vec::new();
    let Some(backup_id) = args.source_backup_id.clone() else {
        return Err(vec![
            "a cluster is made here by restoring a backup: add --source-backup-id B (as \
             `backupctl backups list` shows it); to back up a cluster that already exists, \
             register it with `backupctl clusters register --cluster-id C --description D \
             --provider …`"
                .to_owned(),
        ]);
    };
    let target = match (&args.path, &args.availability_zone) {
        (Some(_), Some(_)) => {
            problems.push(
                "give either --path (a directory or command backup) or --availability-zone \
                 (an aws-ebs backup), not both."
                    .to_owned(),
            );
            None
        }
        (Some(path), None) => match absolute(path) {
            Ok(path) => Some(ClusterTarget::Directory { path }),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
        (None, Some(_)) => Some(ClusterTarget::AwsEbs {
            volume_ids: Vec::new(),
            instance_tag: None,
        }),
        (None, None) => {
            problems.push(
                "say where the restored cluster goes: --path DIR (a new or empty directory) for \
                 a directory or command backup, or --availability-zone AZ for an aws-ebs \
                 backup."
                    .to_owned(),
            );
            None
        }
    };
    if args.volume_type.is_some() && args.path.is_some() {
        problems.push(
            "--volume-type is for aws-ebs backups (with --availability-zone); a directory \
             restore takes only --path."
                .to_owned(),
        );
    }
    let cluster_id = args
        .cluster_id
        .clone()
        .unwrap_or_else(|| format!("restored-{backup_id}"));
    let Some(target) = target else {
        let mut core = Problems::default();
        core.take(keys::ID, cluster::check_cluster_id(Some(&cluster_id)));
        core.take(
            keys::DESCRIPTION,
            cluster::check_cluster_description(&args.description),
        );
        core.take(keys::SOURCE_BACKUP_ID, cluster::check_backup_id(&backup_id));
        problems.extend(all_flag_messages(&core, &keys::CLUSTER_ALL));
        return Err(problems);
    };
    let ebs = matches!(target, ClusterTarget::AwsEbs { .. });
    let request = RegisterClusterRequest {
        id: cluster_id,
        description: args.description.clone(),
        region: None,
        target,
        server_version: None,
        server_version_tag: None,
        node_count: None,
        source_backup_id: Some(backup_id),
        availability_zone: args.availability_zone.clone(),
        volume_type: if ebs { args.volume_type.clone() } else { None },
    };
    if let Err(core) = cluster::validate_cluster(&request) {
        problems.extend(all_flag_messages(&core, &keys::CLUSTER_ALL));
    }
    if problems.is_empty() {
        Ok(request)
    } else {
        Err(problems)
    }
}

fn directory_target(args: &RegisterCluster, problems: &mut Vec<String>) -> Option<ClusterTarget> {
    let misplaced = [
        (args.region.is_some(), "--region"),
        (!args.volume_ids.is_empty(), "--volume-id"),
        (args.instance_tag.is_some(), "--instance-tag"),
    ];
    for (given, flag) in misplaced {
        if given {
            problems.push(format!(
                "{flag} is for aws-ebs clusters; a directory cluster takes only --path (its \
                 region is always `local`)."
            ));
        }
    }
    let Some(path) = &args.path else {
        problems.push(
            "a directory cluster needs --path, the cluster's data directory, such as --path \
             /var/lib/eventstore."
                .to_owned(),
        );
        return None;
    };
    match absolute(path) {
        Ok(path) => Some(ClusterTarget::Directory { path }),
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

fn absolute(path: &Path) -> Result<String, String> {
    if path.as_os_str().is_empty() {
        return Err("--path is empty; give the cluster's data directory.".to_owned());
    }
    let absolute =
        std::path::absolute(path).map_err(|e| format!("--path {}: {e}", path.display()))?;
    absolute.into_os_string().into_string().map_err(|p| {
        format!(
            "--path {} is not valid UTF-8; move the data directory to a path with a UTF-8 name.",
            Path::new(&p).display()
        )
    })
}

fn aws_ebs_target(args: &RegisterCluster, problems: &mut Vec<String>) -> Option<ClusterTarget> {
    if args.path.is_some() {
        problems.push(
            "--path is for directory clusters; an aws-ebs cluster names its volumes with \
             --volume-id or --instance-tag."
                .to_owned(),
        );
    }
    // The region, the volume ids and the tag are the core's to check, with the request.
    Some(ClusterTarget::AwsEbs {
        volume_ids: args.volume_ids.clone(),
        instance_tag: args.instance_tag.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn ttl_units() {
        for (text, seconds) in [
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1d", 86_400),
            (" 5M ", 300),
        ] {
            assert_eq!(parse_ttl(text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn bad_ttls_say_what_to_write() {
        for text in [
            "",
            "30",
            "m",
            "0s",
            "3x",
            "99999999999999999999h",
            "8d",
            "-5m",
        ] {
            let e = parse_ttl(text).unwrap_err();
            assert!(e.starts_with("--ttl"), "{text}: {e}");
        }
        assert!(parse_ttl("30").unwrap_err().contains("30m"));
    }

    fn register(provider: &str) -> RegisterCluster {
        RegisterCluster {
            cluster_id: "c1".into(),
            description: "Orders".into(),
            provider: provider.into(),
            path: None,
            region: None,
            volume_ids: Vec::new(),
            instance_tag: None,
            server_version: None,
            server_version_tag: None,
            node_count: None,
        }
    }

    #[test]
    fn a_directory_path_becomes_absolute() {
        let mut args = register("directory");
        args.path = Some(PathBuf::from("data/orders"));
        let req = register_request(&args).unwrap();
        let ClusterTarget::Directory { path } = req.target else {
            panic!("{req:?}")
        };
        assert!(Path::new(&path).is_absolute(), "{path}");
        assert!(path.ends_with("data/orders"), "{path}");
        assert_eq!(req.region, None);
    }

    #[test]
    fn every_wrong_combination_is_reported() {
        let mut args = register("directory");
        args.region = Some("eu-west-1".into());
        args.instance_tag = Some("a=b".into());
        let problems = register_request(&args).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("needs --path")));

        let mut args = register("aws-ebs");
        args.volume_ids = vec!["vol-0123456789abcdef0".into()];
        args.instance_tag = Some("cluster=orders".into());
        let problems = register_request(&args).unwrap_err();
        assert!(problems.iter().any(|p| p.contains("--region")));
        assert!(problems.iter().any(|p| p.contains("not both")));

        let problems = register_request(&register("nfs")).unwrap_err();
        assert!(problems[0].contains("--provider directory"));
    }

    #[test]
    fn aws_ebs_by_volumes_or_tag() {
        let mut args = register("aws-ebs");
        args.region = Some("eu-west-1".into());
        args.volume_ids = vec!["vol-0123456789abcdef0".into(), "vol-01234567".into()];
        let req = register_request(&args).unwrap();
        assert_eq!(req.region.as_deref(), Some("eu-west-1"));
        assert_eq!(req.target.provider(), "aws-ebs");

        args.volume_ids.clear();
        args.instance_tag = Some("=orders".into());
        assert!(register_request(&args).unwrap_err()[0].contains("KEY=VALUE"));
        args.instance_tag = Some("cluster=orders".into());
        assert!(register_request(&args).is_ok());

        args.instance_tag = None;
        args.volume_ids = vec!["volume-1".into()];
        // The example id is the core's (the server's) own since the CLI asks the core.
        assert!(register_request(&args).unwrap_err()[0].contains("vol-0abc123def4567890"));
    }

    #[test]
    fn a_bad_cluster_id_is_caught_before_sending() {
        let mut args = register("directory");
        args.path = Some(PathBuf::from("/data"));
        args.cluster_id = "../etc".into();
        let problems = register_request(&args).unwrap_err();
        assert!(problems[0].starts_with("--cluster-id:"), "{problems:?}");
    }
}

#[cfg(test)]
mod core_tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn problems_are_the_cores_named_by_flag() {
        // GIVEN flags the core refuses WHEN the request is built THEN each problem is the
        // server's own message, prefixed with the flag that set the field
        let args = RegisterCluster {
            cluster_id: "c1".into(),
            description: " ".into(),
            provider: "aws-ebs".into(),
            path: None,
            region: Some("EU".into()),
            volume_ids: vec!["vol-0123456789abcdef0".into()],
            instance_tag: None,
            server_version: None,
            server_version_tag: None,
            node_count: None,
        };
        assert_eq!(
            register_request(&args).unwrap_err(),
            [
                "--description: Give a description, such as \"Orders database\".",
                "--region: Give the AWS region of the volumes, such as eu-west-1.",
            ]
        );
    }

    #[test]
    fn a_lock_request_is_checked_by_the_core() {
        assert_eq!(
            lock_request("expand-disk".into(), "30m")
                .unwrap()
                .ttl_seconds,
            Some(1800)
        );
        let problems = lock_request("manual-backup".into(), "30m").unwrap_err();
        assert!(problems[0]
            .starts_with("--operation: `manual-backup` is the name backups and restores use"));
        let problems = lock_request("expand-disk".into(), "8d").unwrap_err();
        assert_eq!(
            problems,
            ["--ttl \"8d\": A maintenance lock lasts 1 to 604800 seconds; 691200 is not in that \
              range."]
        );
    }

    fn create(backup: Option<&str>) -> CreateCluster {
        CreateCluster {
            source_backup_id: backup.map(str::to_owned),
            description: "Orders, restored".into(),
            cluster_id: Some("orders-restored".into()),
            path: None,
            availability_zone: None,
            volume_type: None,
            disk_size_gb: None,
            disk_type: None,
            instance_type: None,
            network_id: None,
            projection_level: None,
            server_version: None,
            topology: None,
        }
    }

    #[test]
    fn a_restore_names_a_backup_and_a_path_or_a_zone() {
        let mut args = create(Some("c196ogto0aeqohe3ommq"));
        args.path = Some(PathBuf::from("restored"));
        let request = restore_request(&args).unwrap();
        let ClusterTarget::Directory { path } = &request.target else {
            panic!("{request:?}")
        };
        assert!(
            path.starts_with('/') && path.ends_with("/restored"),
            "{path}"
        );
        assert_eq!(
            request.source_backup_id.as_deref(),
            Some("c196ogto0aeqohe3ommq")
        );
        let mut args = create(Some("c196ogto0aeqohe3ommq"));
        args.availability_zone = Some("eu-west-1a".into());
        args.volume_type = Some("gp3".into());
        args.cluster_id = None;
        let request = restore_request(&args).unwrap();
        assert_eq!(request.target.provider(), "aws-ebs");
        assert_eq!(request.id, "restored-c196ogto0aeqohe3ommq");
        assert_eq!(request.volume_type.as_deref(), Some("gp3"));
    }

    #[test]
    fn a_restore_without_a_backup_or_a_place_says_what_to_add() {
        let err = restore_request(&create(None)).unwrap_err();
        assert!(err[0].contains("--source-backup-id"), "{err:?}");
        let err = restore_request(&create(Some("nope"))).unwrap_err();
        assert!(err.iter().any(|e| e.contains("--path DIR")), "{err:?}");
        assert!(
            err.iter().any(|e| e.starts_with("--source-backup-id:")),
            "{err:?}"
        );
        let mut args = create(Some("c196ogto0aeqohe3ommq"));
        args.path = Some(PathBuf::from("/srv/r"));
        args.availability_zone = Some("eu-west-1a".into());
        let err = restore_request(&args).unwrap_err();
        assert!(err[0].contains("not both"), "{err:?}");
    }
}
