//! The local server's API token (SPEC §12 "Authentication"): `<data-dir>/token`, made by
//! `serve` at first start and read by `backupctl`'s client commands.
//!
//! # Decisions
//! - 32 bytes from the OS's random source, written as base64url without padding (43
//!   characters), with no trailing newline, so Prometheus' `credentials_file` and
//!   `curl -H "Authorization: Bearer $(cat …)"` both use the file as it is.
//! - The file is created with `O_CREAT|O_EXCL` and mode `0600` in the same call, so it is
//!   never readable by others, not even between a `create` and a `chmod`; a file an older
//!   version (or a person) left wider is narrowed to `0600` and that is logged once.
//! - An existing file is reused, so sign-in URLs and scripts stay valid across restarts. An
//!   empty one (a crash between creating and writing it) gets a new token; one that is not a
//!   plausible token (shorter than 32 characters, or not base64url) is refused with what to do,
//!   rather than silently replaced: someone may have put it there on purpose.
//! - Rotating the token means deleting the file and restarting `serve`.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The token file's name inside the data directory (the local mode tightens it at start-up).
pub const TOKEN_FILE: &str = backup_local::data_dir::TOKEN_FILE;

/// How many random bytes a token carries.
const TOKEN_BYTES: usize = 32;

/// The shortest token accepted from an existing file.
const MIN_TOKEN_CHARS: usize = 32;

/// Why the token could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write the token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(
        "the token file {path} does not hold a token made by backupctl (43 base64url \
         characters); delete it and restart `backupctl serve` to make a new one"
    )]
    Malformed { path: PathBuf },
}

/// `<data_dir>/token`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Makes a new random token. It never begins with `-`: pasted after a flag, such a token
/// reads as another flag to most command lines (`--token -v…`), and a new token costs
/// nothing.
pub fn generate() -> Result<String, TokenError> {
    loop {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !token.starts_with('-') {
            return Ok(token);
        }
    }
}

/// The token of `data_dir`: the existing file's (narrowed to `0600` if wider), or a new one
/// written to a new `0600` file. Creates the data directory (`0700`) when it is missing.
pub fn load_or_create(data_dir: &Path) -> Result<String, TokenError> {
    if !data_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|source| TokenError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
    }
    let path = token_path(data_dir);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let token = generate()?;
            file.write_all(token.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created the API token");
            Ok(token)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let metadata = fs::symlink_metadata(&path).map_err(io)?;
            if !metadata.is_file() {
                return Err(TokenError::Malformed { path });
            }
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
                tracing::warn!(path = %path.display(), old_mode = format!("{mode:o}"), "the token file was readable by others; narrowed it to 0600");
            }
            let text = fs::read_to_string(&path).map_err(io)?;
            let token = text.trim();
            if token.is_empty() {
                let token = generate()?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(token.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "the token file was empty; wrote a new token");
                return Ok(token);
            }
            if !plausible(token) {
                return Err(TokenError::Malformed { path });
            }
            Ok(token.to_owned())
        }
        Err(e) => Err(io(e)),
    }
}

/// Whether `token` looks like one this module made (or a person chose with care).
fn plausible(token: &str) -> bool {
    token.len() >= MIN_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the token a client should send from `<data_dir>/token`: `Ok(None)` when there is no
/// such file.
pub fn read(data_dir: &Path) -> Result<Option<String>, std::io::Error> {
    match fs::read_to_string(token_path(data_dir)) {
        Ok(text) => {
            let token = text.trim();
            Ok((!token.is_empty()).then(|| token.to_owned()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_32_random_bytes_in_base64url() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(plausible(&a), "{a}");
    }

    #[test]
    fn no_token_begins_with_a_hyphen() {
        // One in 64 would without the check: 2,000 tokens make a miss all but certain.
        for _ in 0..2000 {
            let token = generate().unwrap();
            assert!(!token.starts_with('-'), "{token}");
        }
    }

    #[test]
    fn a_token_that_begins_with_a_hyphen_is_still_read_after_the_flag() {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["backupctl", "--token", "-vJPq9e", "jobs", "list"])
                .unwrap();
        assert_eq!(cli.global.token.as_deref(), Some("-vJPq9e"));
    }

    /// The permission bits of `path`.
    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create(&data).unwrap();
        assert_eq!(mode_of(&token_path(&data)), 0o600);
        assert_eq!(load_or_create(&data).unwrap(), first);
        assert_eq!(read(&data).unwrap().as_deref(), Some(first.as_str()));
        // A wider file is narrowed.
        fs::set_permissions(token_path(&data), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create(&data).unwrap(), first);
        assert_eq!(mode_of(&token_path(&data)), 0o600);
        // A junk file is refused, not replaced.
        fs::write(token_path(&data), "short").unwrap();
        assert!(matches!(
            load_or_create(&data),
            Err(TokenError::Malformed { .. })
        ));
    }
}
