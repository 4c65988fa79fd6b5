//! Running a cluster's shell commands (SPEC §15): hooks, backup and restore commands.
//!
//! # Decisions
//! - **`sh -c`**, with the server's environment plus the variables of the call (`CLUSTER_ID`,
//!   `BACKUP_ID`, `JOB_ID`, `SCHEDULED_TIME`, `BACKUP_DIR`, `TARGET_DIR`), stdin from
//!   `/dev/null` and stdout discarded; the last [`TAIL_LINES`] lines of stderr are kept
//!   (each cut at [`MAX_LINE_CHARS`]) for the run's details.
//! - **Process group.** Each command leads a new process group; when it times out, or when
//!   the backup is abandoned (the future dropped: a stall, a shutdown), the whole group is
//!   killed with `SIGKILL`, so a child it started in the background dies with it. After a
//!   command exits, whatever it left running in its group is killed too: nothing a command
//!   starts outlives its step. A process that made its own session (`setsid`) escapes
//!   this, as it escapes any supervisor short of a cgroup.
//! - **Progress.** A running command counts as progress (ticked every second), so the stall
//!   limit does not cut a long `pg_basebackup` short; its timeout bounds it instead.
//! - **`runAs`.** The user is looked up with `id` (so users from NSS, LDAP say, are found);
//!   a root server runs the command with that user's uid and primary gid (the standard
//!   library's `uid`/`gid`, which also clears supplementary groups: a command that needs one
//!   of the user's other groups must not rely on it). A server that is not root may only name
//!   itself: registering another user is refused with a message that says so.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use backup_engine::Progress;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How many lines of a failed command's stderr its failure shows.
pub const TAIL_LINES: usize = 20;
/// The longest line of that tail, in characters.
pub const MAX_LINE_CHARS: usize = 500;

/// What a command is, for messages: `pre-hook`, `backup command`, ….
pub type Role = &'static str;

/// A user commands run as, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// How a command ended, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure {
    #[error("the {role} could not be started: {source}")]
    Spawn {
        role: Role,
        #[source]
        source: std::io::Error,
    },
    #[error("the {role} failed ({status}){}", tail_text(.tail))]
    Failed {
        role: Role,
        status: String,
        tail: Vec<String>,
    },
    #[error("the {role} ran longer than its timeout of {seconds} s and was killed with its whole process group{}", tail_text(.tail))]
    TimedOut {
        role: Role,
        seconds: u64,
        tail: Vec<String>,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; the end of its stderr:\n{}", tail.join("\n"))
    }
}

/// Resolves `name` for commands to run as: its uid and primary gid, through `id`.
/// A server that is not root can only run commands as itself.
pub async fn resolve_user(name: &str) -> Result<RunAs, String> {
    async fn id(flag: &str, name: &str) -> Result<u32, String> {
        let out = tokio::process::Command::new("id")
            .arg(flag)
            .arg("--")
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot look up the user {name} (`id`): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "there is no user {name} on this machine: name an existing user, such as \
                 postgres"
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("cannot read the ids of the user {name}"))
    }
    let user = RunAs {
        name: name.to_owned(),
        uid: id("-u", name).await?,
        gid: id("-g", name).await?,
    };
    let me = rustix::process::geteuid();
    if !me.is_root() && me.as_raw() != user.uid {
        return Err(format!(
            "the server runs as uid {}, not as root, so it cannot run commands as {name}: \
             leave runAs out, or run the server as root (or as {name})",
            me.as_raw()
        ));
    }
    Ok(user)
}

/// One command to run.
pub struct Shell<'a> {
    pub role: Role,
    pub command: &'a str,
    pub env: Vec<(&'static str, String)>,
    pub run_as: Option<&'a RunAs>,
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
    pub progress: &'a Progress,
    /// Descriptors the command inherits (ones the server opened close-on-exec): see
    /// `BACKUP_DIR` in [`crate::directory::CommandProvider`].
    pub inherit: Vec<std::os::fd::RawFd>,
}

/// Kills a process group when dropped (the command ended, timed out, or was abandoned).
struct GroupGuard(Option<rustix::process::Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // ESRCH (the group is already empty) is the usual answer.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Shell<'_> {
    /// Runs the command to its end: `Ok` on exit 0.
    pub async fn run(self) -> Result<(), CommandFailure> {
        let role = self.role;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if let Some(cwd) = self.cwd {
            command.current_dir(cwd);
        }
        if let Some(user) = self.run_as {
            if rustix::process::geteuid().is_root() {
                command.uid(user.uid).gid(user.gid);
                // The user's own home and names, not the server's.
                command.env("USER", &user.name).env("LOGNAME", &user.name);
            }
        }
        if !self.inherit.is_empty() {
            let fds = self.inherit.clone();
            // SAFETY: the closure runs in the forked child before `exec`; it makes only
            // async-signal-safe system calls (`fcntl`) on descriptors the parent keeps open
            // until the child has exited, and allocates nothing (`fds` was made before).
            unsafe {
                command.pre_exec(move || {
                    for &fd in &fds {
                        let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())
                            .map_err(std::io::Error::from)?;
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .map_err(|source| CommandFailure::Spawn { role, source })?;
        let group = GroupGuard(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw),
        );
        let stderr = child.stderr.take();
        let reader = tokio::spawn(async move {
            let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
            if let Some(stderr) = stderr {
                let mut lines = BufReader::new(stderr).split(b'\n');
                while let Ok(Some(line)) = lines.next_segment().await {
                    let text: String = String::from_utf8_lossy(&line)
                        .trim_end()
                        .chars()
                        .take(MAX_LINE_CHARS)
                        .collect();
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            }
            Vec::from(tail)
        });
        let waited = {
            let progress = self.progress;
            let ticking = async {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    progress.tick();
                }
            };
            tokio::select! {
                status = child.wait() => Some(status),
                () = tokio::time::sleep(self.timeout) => None,
                _ = ticking => None,
            }
        };
        // Whatever the command left in its group ends with it (and on a timeout, the
        // command itself).
        drop(group);
        let status = match waited {
            Some(status) => status.map_err(|source| CommandFailure::Spawn { role, source })?,
            None => {
                let _ = child.wait().await;
                let tail = collect(reader).await;
                return Err(CommandFailure::TimedOut {
                    role,
                    seconds: self.timeout.as_secs(),
                    tail,
                });
            }
        };
        let tail = collect(reader).await;
        if status.success() {
            if !tail.is_empty() {
                tracing::debug!(role, stderr = %tail.join("\n"), "command succeeded");
            }
            return Ok(());
        }
        let status = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => status.to_string(),
        };
        Err(CommandFailure::Failed { role, status, tail })
    }
}

/// The stderr tail, waiting a little for the pipe to close (a process that left the group
/// may still hold it; then the lines read so far are lost, and the tail is empty).
async fn collect(reader: tokio::task::JoinHandle<Vec<String>>) -> Vec<String> {
    let abort = reader.abort_handle();
    match tokio::time::timeout(Duration::from_secs(5), reader).await {
        Ok(Ok(tail)) => tail,
        _ => {
            abort.abort();
            Vec::new()
        }
    }
}
