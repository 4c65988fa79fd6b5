//! The path policy of `directory` clusters (SPEC §12 "Cluster paths").
//!
//! A cluster's path is stored canonical (absolute, every link resolved) and must not be `/`,
//! anything under the kernel's file systems (`/proc`, `/sys`, `/dev`, `/run`), this server's
//! data directory or backup root, anything inside them or anything that contains them (a
//! backup of a tree holding the backups would copy itself), nor, when the operator named
//! allowed roots (`serve --allowed-root`), anything outside them.
//!
//! [`PathPolicy::check`] is pure: it compares canonical paths and touches nothing.
//! [`PathPolicy::resolve`] (registration) and [`PathPolicy::recheck`] (every listing and run)
//! canonicalize first, which is where the file system is read.
//!
//! # Decisions
//! - **Codes.** `path_not_allowed` is only for a breach of the policy (including a stored path
//!   that has become a link). A path that does not exist answers `path_not_found`, one that
//!   is not a directory `path_not_directory`, a relative one `path_not_absolute`, one whose
//!   canonical form is not UTF-8 (the store keeps text) `path_not_utf8`: each is a 400 under
//!   `path` that says what to write instead, and none of them is a policy breach.
//! - **Relative paths are refused**, not resolved against the server's working directory:
//!   the same request must mean the same directory whoever sends it.
//! - **The policy is asked first, of the path as written**, then of its canonical form: a
//!   path it refuses is `path_not_allowed` whether it exists or not, so the codes above never
//!   tell a caller what exists where it may not register (see `refused_as_written`).

use std::io;
use std::path::{Path, PathBuf};

use backup_engine::TargetProblem;

/// The request field every problem is reported under.
const FIELD: &str = "path";
/// The code of a breach of the policy.
pub const PATH_NOT_ALLOWED: &str = "path_not_allowed";
/// The code of a path that does not exist (or cannot be resolved).
pub const PATH_NOT_FOUND: &str = "path_not_found";
/// The code of a path that exists but is not a directory.
pub const PATH_NOT_DIRECTORY: &str = "path_not_directory";
/// The code of a relative path.
pub const PATH_NOT_ABSOLUTE: &str = "path_not_absolute";
/// The code of a path whose canonical form is not UTF-8.
pub const PATH_NOT_UTF8: &str = "path_not_utf8";
/// The code of a restore's target that exists and is not an empty directory.
pub const PATH_NOT_EMPTY: &str = "path_not_empty";

/// The kernel's own trees: never a database's data directory, and reading them (a FIFO, a
/// device, `/proc/kcore`) can block or leak.
const KERNEL_TREES: [&str; 4] = ["/proc", "/sys", "/dev", "/run"];

/// Where cluster paths may and may not be, all canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    data_dir: PathBuf,
    backup_root: PathBuf,
    allowed_roots: Vec<PathBuf>,
    /// The allowed roots as the operator wrote them (made absolute, `.` and `..` folded),
    /// for [`PathPolicy::refused_as_written`]: `/data` may be a link to `/mnt/disk/data`.
    allowed_as_written: Vec<PathBuf>,
}

impl PathPolicy {
    /// Canonicalizes the three kinds of directory, which must all exist: the policy creates
    /// nothing, so the caller creates the data directory and the backup root first.
    pub fn new(
        data_dir: &Path,
        backup_root: &Path,
        allowed_roots: &[PathBuf],
    ) -> io::Result<PathPolicy> {
        let canonical = |path: &Path| {
            std::fs::canonicalize(path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot resolve {}: {e}", path.display()))
            })
        };
        Ok(PathPolicy {
            data_dir: canonical(data_dir)?,
            backup_root: canonical(backup_root)?,
            allowed_roots: allowed_roots
                .iter()
                .map(|p| canonical(p))
                .collect::<io::Result<_>>()?,
            allowed_as_written: allowed_roots
                .iter()
                .map(|p| std::path::absolute(p).map(|p| folded(&p)))
                .collect::<io::Result<_>>()?,
        })
    }

    /// The refusal of `path` as written (folded, nothing resolved), when the policy refuses
    /// it even so. Asked before the file system is: a path the policy refuses is answered
    /// `path_not_allowed` whether it exists or not, so no caller learns through the API
    /// which files exist, or are directories, where it may not register a cluster (`/root`,
    /// `/etc/shadow`, another user's home). A path it accepts is then resolved and checked
    /// again in its canonical form, which is what decides.
    fn refused_as_written(&self, path: &str) -> Option<TargetProblem> {
        let mut widened = self.clone();
        widened
            .allowed_roots
            .extend(self.allowed_as_written.iter().cloned());
        widened
            .check(&folded(Path::new(path)))
            .err()
            .map(|m| problem(PATH_NOT_ALLOWED, m))
    }

    /// The canonical data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The canonical backup root.
    pub fn backup_root(&self) -> &Path {
        &self.backup_root
    }

    /// The canonical allowed roots; empty when every other path is allowed.
    pub fn allowed_roots(&self) -> &[PathBuf] {
        &self.allowed_roots
    }

    /// Checks a canonical path against the policy, touching nothing: `Err` says why it is
    /// refused and what to register instead.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let shown = path.display();
        if path == Path::new("/") {
            return Err(
                "`/` is the whole machine, not a database's data directory: register \
                 the directory the database keeps its files in, such as \
                 /var/lib/postgresql/16/main."
                    .to_owned(),
            );
        }
        for tree in KERNEL_TREES {
            if path.starts_with(tree) {
                return Err(format!(
                    "{shown} is under {tree}, which the kernel provides rather than a disk: \
                     register the directory on disk the database keeps its files in."
                ));
            }
        }
        for (what, dir) in [
            ("data directory", &self.data_dir),
            ("backup root", &self.backup_root),
        ] {
            let dir_shown = dir.display();
            if path.starts_with(dir) {
                return Err(format!(
                    "{shown} is inside this server's {what} {dir_shown}: register a directory \
                     outside it."
                ));
            }
            if dir.starts_with(path) {
                return Err(format!(
                    "{shown} contains this server's {what} {dir_shown}, so its backups would \
                     copy the server's own files: register a directory that does not contain \
                     {dir_shown}."
                ));
            }
        }
        if !self.allowed_roots.is_empty()
            && !self.allowed_roots.iter().any(|root| path.starts_with(root))
        {
            let roots: Vec<String> = self
                .allowed_roots
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            return Err(format!(
                "{shown} is outside the allowed roots ({}) this server was started with \
                 (--allowed-root): register a directory inside one of them.",
                roots.join(", ")
            ));
        }
        Ok(())
    }

    /// Resolves a path offered at registration: it must be absolute and an existing
    /// directory; answers its canonical form once the policy accepts it.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, TargetProblem> {
        if !Path::new(path).is_absolute() {
            return Err(problem(
                PATH_NOT_ABSOLUTE,
                format!(
                    "`{path}` is relative: write the absolute path of the data directory, such \
                     as /var/lib/postgresql/16/main."
                ),
            ));
        }
        if let Some(refused) = self.refused_as_written(path) {
            return Err(refused);
        }
        let canonical = canonical_dir(path)?;
        self.check(&canonical)
            .map_err(|m| problem(PATH_NOT_ALLOWED, m))?;
        Ok(canonical)
    }

    /// Checks a stored (canonical) path again: it must still resolve to itself (it may have
    /// become a link since it was registered) and still pass the policy.
    pub fn recheck(&self, stored: &str) -> Result<PathBuf, TargetProblem> {
        let canonical = canonical_dir(stored)?;
        if canonical != Path::new(stored) {
            return Err(problem(
                PATH_NOT_ALLOWED,
                format!(
                    "{stored} now resolves to {} (it or one of its parents became a link since \
                     the cluster was registered), and links are never followed: register the \
                     cluster again with the real path.",
                    canonical.display()
                ),
            ));
        }
        self.check(&canonical)
            .map_err(|m| problem(PATH_NOT_ALLOWED, m))?;
        Ok(canonical)
    }
}

impl PathPolicy {
    /// Resolves the target of a restore (SPEC §14): an absolute path whose parent exists
    /// (the parent is canonicalized, the last name kept as written), that passes the policy
    /// and does not exist or is an empty directory. Answers the path to restore into. A
    /// target that is a link is refused (links are never followed), however it resolves.
    pub fn resolve_restore_target(&self, path: &str) -> Result<PathBuf, TargetProblem> {
        let given = Path::new(path);
        if !given.is_absolute() {
            return Err(problem(
                PATH_NOT_ABSOLUTE,
                format!(
                    "`{path}` is relative: write the absolute path of the directory to restore \
                     into, such as /var/lib/postgresql/16/restored."
                ),
            ));
        }
        let (Some(parent), Some(name)) = (given.parent(), given.file_name()) else {
            return Err(problem(
                PATH_NOT_ALLOWED,
                format!(
                    "`{path}` names no directory to create: write the path of a new (or empty) \
                     directory, such as /var/lib/postgresql/16/restored."
                ),
            ));
        };
        if path.ends_with("/..") || path.ends_with("/.") {
            return Err(problem(
                PATH_NOT_ALLOWED,
                format!("`{path}` ends in `.` or `..`: write the directory's own name."),
            ));
        }
        if let Some(refused) = self.refused_as_written(path) {
            return Err(refused);
        }
        let parent = canonical_dir(&parent.to_string_lossy()).map_err(|p| TargetProblem {
            message: format!(
                "{} (the directory a restore of {path} is made in must exist)",
                p.message.trim_end_matches('.')
            ),
            ..p
        })?;
        let target = parent.join(name);
        if target.to_str().is_none() {
            return Err(problem(
                PATH_NOT_UTF8,
                format!(
                    "{} is not valid UTF-8, which the cluster's record cannot hold: choose \
                     another name.",
                    target.display()
                ),
            ));
        }
        self.check(&target)
            .map_err(|m| problem(PATH_NOT_ALLOWED, m))?;
        let shown = target.display();
        match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(target),
            Err(e) => Err(problem(
                PATH_NOT_FOUND,
                format!("{shown} cannot be read ({e})."),
            )),
            Ok(meta) if meta.file_type().is_symlink() => Err(problem(
                PATH_NOT_ALLOWED,
                format!(
                    "{shown} is a link, and links are never followed: restore into a new path \
                     or the real directory."
                ),
            )),
            Ok(meta) if meta.is_dir() => {
                let mut entries = std::fs::read_dir(&target).map_err(|e| {
                    problem(PATH_NOT_FOUND, format!("{shown} cannot be listed ({e})."))
                })?;
                if entries.next().is_some() {
                    Err(problem(
                        PATH_NOT_EMPTY,
                        format!(
                            "{shown} is not empty, and a restore never overwrites files: restore \
                             into a new path or an empty directory."
                        ),
                    ))
                } else {
                    Ok(target)
                }
            }
            Ok(_) => Err(problem(
                PATH_NOT_EMPTY,
                format!(
                    "{shown} exists and is not a directory: restore into a new path or an \
                     empty directory."
                ),
            )),
        }
    }
}

fn problem(code: &'static str, message: String) -> TargetProblem {
    TargetProblem {
        field: FIELD,
        code,
        message,
    }
}

/// Canonicalizes `path`, which must be an existing directory whose canonical form is UTF-8.
/// `path` with `.` dropped and each `..` taking away the name before it, reading nothing
/// (so a `..` after a link is folded as written, not as the kernel would resolve it).
fn folded(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn canonical_dir(path: &str) -> Result<PathBuf, TargetProblem> {
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        problem(
            PATH_NOT_FOUND,
            if e.kind() == io::ErrorKind::NotFound {
                format!("{path} does not exist: write the path of an existing data directory.")
            } else {
                format!("{path} cannot be resolved ({e}): write the path of a data directory this server can read.")
            },
        )
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|e| {
        problem(
            PATH_NOT_FOUND,
            format!("{} cannot be read ({e}).", canonical.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(problem(
            PATH_NOT_DIRECTORY,
            format!(
                "{} is not a directory: write the path of the data directory itself.",
                canonical.display()
            ),
        ));
    }
    if canonical.to_str().is_none() {
        return Err(problem(
            PATH_NOT_UTF8,
            format!(
                "{} is not valid UTF-8, which the cluster's record cannot hold: rename a \
                 directory on the way or register another one.",
                canonical.display()
            ),
        ));
    }
    Ok(canonical)
}
