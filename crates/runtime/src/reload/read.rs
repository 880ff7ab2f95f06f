//! Reading the desired-state file: refusing what is not a regular file (a
//! FIFO would block forever) and anything over [`MAX_CONFIG_BYTES`],
//! checking UTF-8 (a bad byte is reported with its line:col), validating
//! with the spec crate, rendering every failure as
//! `FILE[:LINE:COL]: error: ...` plus a hint, and the sha256 that identifies
//! a file's bytes.

use std::io::{self, Read};
use std::path::Path;

use ecs_reconciler_spec::DesiredState;
use sha2::{Digest, Sha256};

/// Files larger than this are refused rather than read: a desired-state file
/// is a few KiB, and a mistyped path (a log, a device) must not eat memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// sha256 of the bytes, lower-case hex: the identity of a config file.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Why the bytes of the file could not be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("cannot read the config file: {0}")]
    Io(#[from] io::Error),
    #[error("the config path is not a regular file")]
    NotAFile,
    #[error("the config file is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge,
}

/// Where a read failed: the hint differs between "fix your command line"
/// and "the daemon keeps running on the last good config".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Initial,
    Reload,
}

impl ReadError {
    /// Same shape as the spec crate's diagnostics, minus the position a read
    /// error does not have.
    pub(super) fn render(&self, display: &str, stage: Stage) -> String {
        let hint = match (self, stage) {
            (ReadError::Io(_), Stage::Initial) => {
                "pass an existing file with --config or ECS_RECONCILER_CONFIG"
            }
            (ReadError::Io(err), Stage::Reload) if err.kind() == io::ErrorKind::NotFound => {
                "the running config stays in force; restore the file (a save that replaces it atomically never leaves it missing)"
            }
            (ReadError::Io(_), Stage::Reload) => {
                "the running config stays in force; check the file's permissions and that its file system is mounted"
            }
            (ReadError::NotAFile, _) => {
                "point --config at a regular file (a symlink to one is fine)"
            }
            (ReadError::TooLarge, _) => {
                "a desired-state file is a few KiB: check that --config names the right file"
            }
        };
        format!("{display}: error: {self}\n  hint: {hint}")
    }
}

/// Reads the whole file, refusing non-files (a FIFO would block forever)
/// and anything over [`MAX_CONFIG_BYTES`].
pub(super) fn read_config(path: &Path) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_CONFIG_BYTES) as usize);
    // The file may grow between stat and read: the cap is enforced on what
    // is actually read.
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Bytes -> validated state, or every error rendered with `FILE:LINE:COL`.
/// An empty file is refused by the spec crate ("the file declares nothing").
pub(super) fn validate(display: &str, bytes: &[u8]) -> Result<DesiredState, String> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let (line, col) = position_after(&bytes[..err.valid_up_to()]);
        format!(
            "{display}:{line}:{col}: error: the file is not valid UTF-8\n  hint: save the file as UTF-8"
        )
    })?;
    ecs_reconciler_spec::load(text).map_err(|diagnostics| diagnostics.render(display))
}

/// 1-based line and column (in characters) just after `prefix`.
fn position_after(prefix: &[u8]) -> (usize, usize) {
    // `prefix` is the valid UTF-8 part before the first bad byte.
    let text = std::str::from_utf8(prefix).unwrap_or_default();
    let line = text.matches('\n').count() + 1;
    let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn position_after_counts_lines_and_characters() {
        assert_eq!(position_after(b""), (1, 1));
        assert_eq!(position_after("ab\ncé".as_bytes()), (2, 3));
        assert_eq!(position_after(b"a\n"), (2, 1));
    }
}
