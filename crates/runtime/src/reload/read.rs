//! Reading the desired-state file, the one way every command does it:
//! refusing what is not a regular file (a FIFO would block forever) and
//! anything over [`MAX_CONFIG_BYTES`], checking UTF-8 (a bad byte is reported
//! with its line:col), validating with the spec crate, rendering every
//! failure as `FILE[:LINE:COL]: error: ...` plus a hint, and the sha256 that
//! identifies a file's bytes.

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

/// Reads and validates the desired-state file: what `validate`, `plan` and
/// `apply` use, and what `run` uses at start (through
/// [`load_initial`](super::load_initial)), so every command gives a file the
/// same verdict. On failure returns the text to print: every error as
/// `FILE:LINE:COL: error: ...` (or `FILE: error: ...` when the file could not
/// be read) with a hint; the CLI exits 78 (EX_CONFIG) with it.
pub fn read_desired(path: &Path) -> Result<DesiredState, String> {
    read_validated(path).map(|(desired, _hash)| desired)
}

/// [`read_desired`] plus the [`content_hash`] of the bytes validated.
pub(super) fn read_validated(path: &Path) -> Result<(DesiredState, String), String> {
    let display = path.display().to_string();
    let bytes = read_config(path).map_err(|err| err.render(&display, Stage::Initial))?;
    let desired = validate(&display, &bytes)?;
    Ok((desired, content_hash(&bytes)))
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
    use std::path::PathBuf;

    use super::*;

    const GOOD: &str = "securityGroups:\n  - name: web\n    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/0\n";

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("ecs-reconciler-read-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

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

    #[test]
    fn read_desired_accepts_a_valid_file_and_hashes_its_bytes() {
        let dir = TempDir::new("valid");
        let file = dir.0.join("cfg.yaml");
        std::fs::write(&file, GOOD).unwrap();
        let desired = read_desired(&file).expect("valid");
        assert_eq!(desired, ecs_reconciler_spec::load(GOOD).unwrap());
        let (_, hash) = read_validated(&file).unwrap();
        assert_eq!(hash, content_hash(GOOD.as_bytes()));
    }

    #[test]
    fn read_desired_refuses_what_is_not_a_small_utf8_regular_file() {
        let dir = TempDir::new("refused");
        let shown = |name: &str| dir.0.join(name).display().to_string();

        // A directory.
        let error = read_desired(&dir.0).unwrap_err();
        assert_eq!(
            error,
            format!(
                "{}: error: the config path is not a regular file\n  hint: point --config at a regular file (a symlink to one is fine)",
                dir.0.display()
            )
        );

        // A FIFO: refused at once, never opened (opening would block).
        let fifo = dir.0.join("fifo.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        let error = read_desired(&fifo).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "{}: error: the config path is not a regular file",
                shown("fifo.yaml")
            )),
            "{error}"
        );

        // One byte over the cap.
        let big = dir.0.join("big.yaml");
        let mut text = GOOD.as_bytes().to_vec();
        text.resize(MAX_CONFIG_BYTES as usize + 1, b'#');
        std::fs::write(&big, &text).unwrap();
        let error = read_desired(&big).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "{}: error: the config file is larger than {MAX_CONFIG_BYTES} bytes\n  hint: ",
                shown("big.yaml")
            )),
            "{error}"
        );

        // A bad byte: its position, line 2 column 4.
        let binary = dir.0.join("binary.yaml");
        std::fs::write(&binary, b"a: 1\nb: \xff\n").unwrap();
        assert_eq!(
            read_desired(&binary).unwrap_err(),
            format!(
                "{}:2:4: error: the file is not valid UTF-8\n  hint: save the file as UTF-8",
                shown("binary.yaml")
            )
        );

        // Missing: the start-up hint.
        let error = read_desired(&dir.0.join("missing.yaml")).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "{}: error: cannot read the config file: ",
                shown("missing.yaml")
            )),
            "{error}"
        );
        assert!(
            error.ends_with(
                "\n  hint: pass an existing file with --config or ECS_RECONCILER_CONFIG"
            ),
            "{error}"
        );
    }
}
