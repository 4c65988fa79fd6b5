//! Checks of flags that need no server: lease lengths (`--ttl 30m`) and the provider
//! combinations of `clusters register`. Each problem says what to write instead, and every
//! problem is reported, not only the first.

use std::path::Path;

use backup_core::api::{ClusterTarget, RegisterClusterRequest};

use crate::cli::RegisterCluster;

/// The longest lease an operator lock may ask for: a week. A longer maintenance window is
/// almost certainly a typo (`30d` for `30m`), and a lock that outlives it can be renewed.
pub const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// Parses a lease length: one or more `<number><unit>` parts with unit `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `2h`, `1h30m`), into seconds.
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
    if total == 0 {
        return Err(format!("--ttl \"{text}\" is zero; {help}."));
    }
    if total > MAX_TTL_SECONDS {
        return Err(format!(
            "--ttl \"{text}\" is longer than the longest lease, 7 days ({MAX_TTL_SECONDS}s); \
             release the lock and take it again if the work takes longer."
        ));
    }
    Ok(total)
}

/// Builds the register request from the flags, or every problem with them.
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
    if args.description.trim().is_empty() {
        problems.push(
            "--description is blank; give the cluster a description, such as \"Orders \
             production\"."
                .to_owned(),
        );
    }
    if let Err(errors) = backup_core::job::check_cluster_id(Some(&args.cluster_id)) {
        problems.extend(
            errors
                .0
                .into_iter()
                .map(|e| format!("--cluster-id: {}", e.message)),
        );
    }
    match target {
        Some(target) if problems.is_empty() => Ok(RegisterClusterRequest {
            id: args.cluster_id.clone(),
            description: args.description.clone(),
            region: match target {
                ClusterTarget::Directory { .. } => None,
                ClusterTarget::AwsEbs { .. } => args.region.clone(),
            },
            target,
        }),
        _ => Err(problems),
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
    match args.region.as_deref().map(str::trim) {
        None | Some("") => problems.push(
            "an aws-ebs cluster needs --region, the AWS region of its volumes, such as --region \
             eu-west-1."
                .to_owned(),
        ),
        Some(_) => {}
    }
    for volume in &args.volume_ids {
        if !is_volume_id(volume) {
            problems.push(format!(
                "--volume-id \"{volume}\" is not an EBS volume id; write one such as \
                 vol-0123456789abcdef0."
            ));
        }
    }
    match (&args.instance_tag, args.volume_ids.is_empty()) {
        (None, true) => problems.push(
            "an aws-ebs cluster needs its volumes: repeat --volume-id vol-… for each, or give \
             --instance-tag KEY=VALUE to find them by the tag of their instances."
                .to_owned(),
        ),
        (Some(_), false) => problems
            .push("give either --volume-id (repeated) or --instance-tag, not both.".to_owned()),
        (Some(tag), true) => match tag.split_once('=') {
            Some((key, _)) if !key.trim().is_empty() => {}
            _ => problems.push(format!(
                "--instance-tag \"{tag}\" is not KEY=VALUE; write one such as --instance-tag \
                 cluster=orders."
            )),
        },
        (None, false) => {}
    }
    Some(ClusterTarget::AwsEbs {
        volume_ids: args.volume_ids.clone(),
        instance_tag: args.instance_tag.clone(),
    })
}

/// `vol-` followed by 8 to 17 lower-case hexadecimal digits, as EC2 writes volume ids (8 for
/// old volumes, 17 for new ones) and as the API accepts them.
fn is_volume_id(text: &str) -> bool {
    text.strip_prefix("vol-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
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
        assert!(register_request(&args).unwrap_err()[0].contains("vol-0123456789abcdef0"));
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
