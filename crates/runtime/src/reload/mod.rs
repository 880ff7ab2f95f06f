//! Keeps the desired-state file live for `ecs-reconciler run`, and reads it
//! for every other command.
//!
//! This module owns everything between "a person saved the YAML file" and
//! "the controller holds a new validated [`DesiredState`]". This file holds
//! the public API (the types the controller, the server and the CLI see,
//! [`load_initial`], [`spawn_watcher`]); the work is split by concern:
//!
//! * `read`: reading the file (size-capped, regular files only, UTF-8
//!   checked), validating it, rendering every error with `FILE:LINE:COL`,
//!   and its sha256. [`read_desired`] is how `validate`, `plan` and `apply`
//!   read it, [`load_initial`] how `run` does: one reader, one verdict.
//! * `tracker`: deciding whether the bytes are a new config, a rejected
//!   edit or nothing new (`Tracker::examine`, no I/O).
//! * `reloader`: the task that re-reads the file when woken and publishes
//!   the decision.
//! * `watch`: notify mode's directory watches and event filter.
//!
//! A re-read is triggered three ways:
//!
//! * `notify` mode: an inotify (FSEvents on macOS) watch on the file's
//!   **parent directory**, not the file. Editors save by writing a temp file
//!   and renaming it over the original, and mounted config maps flip a
//!   `..data -> ..2024_x` directory symlink; a watch on the file itself
//!   would stay on the old inode and go deaf after the first save. Events
//!   are filtered by name, then debounced (trailing, 500 ms by default), then
//!   the file is re-read.
//! * `poll` mode: re-read every `poll_interval` (1 s by default), for network
//!   file systems where inotify never fires. Also the automatic fallback
//!   when the directory cannot be watched.
//! * a reload request: each `notify_one()` on the `reload_now` handle given
//!   to [`spawn_watcher`] re-reads and re-validates now, even if nothing
//!   changed. The caller decides what asks for one; the watcher handles no
//!   signals.
//!
//! A valid new file replaces the running config at once. An invalid one
//! (unreadable, missing, empty, not UTF-8, syntax, schema or semantic errors)
//! never does: the last good config stays, the error is logged with
//! `FILE:LINE:COL` and kept in [`ConfigStatus::error`] until a valid file
//! clears it.

mod read;
mod reloader;
mod tracker;
mod watch;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ecs_reconciler_spec::DesiredState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use read::{MAX_CONFIG_BYTES, content_hash, read_desired};

/// How changes to the file are noticed (`--watch notify|poll`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// File-system events on the parent directory, debounced.
    #[default]
    Notify,
    /// Re-read every poll interval (network file systems).
    Poll,
}

impl WatchMode {
    /// The `--watch` spelling: `notify` or `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchMode::Notify => "notify",
            WatchMode::Poll => "poll",
        }
    }
}

impl fmt::Display for WatchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--watch` value that is neither `notify` nor `poll`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown watch mode `{0}`: expected `notify` or `poll`")]
pub struct ParseWatchModeError(pub String);

impl FromStr for WatchMode {
    type Err = ParseWatchModeError;

    fn from_str(text: &str) -> Result<WatchMode, ParseWatchModeError> {
        match text.to_ascii_lowercase().as_str() {
            "notify" => Ok(WatchMode::Notify),
            "poll" => Ok(WatchMode::Poll),
            _ => Err(ParseWatchModeError(text.to_owned())),
        }
    }
}

/// How the watcher runs. `Default` is notify mode, 500 ms debounce, 1 s poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadSettings {
    /// How changes are noticed (a reload request always re-reads).
    pub mode: WatchMode,
    /// Quiet time after the last relevant event before the file is re-read.
    /// Covers the moment an atomic replace leaves no file at the path.
    pub debounce: Duration,
    /// Period of poll mode (and of the fallback when the directory cannot be
    /// watched). Raised to 10 ms if smaller.
    pub poll_interval: Duration,
}

impl Default for ReloadSettings {
    fn default() -> ReloadSettings {
        ReloadSettings {
            mode: WatchMode::Notify,
            debounce: Duration::from_millis(500),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// What the status API and metrics show about the config file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConfigStatus {
    /// The path as given on the command line.
    pub path: String,
    /// sha256 (hex) of the bytes of the running, last good config.
    pub hash: String,
    /// When the running config was accepted (unix seconds).
    pub loaded_at_unix: f64,
    /// Whether the last reload attempt ended with a valid file.
    pub last_reload_ok: bool,
    /// When the file was last examined because its content differed from the
    /// previous read, or because of a reload request (unix seconds). Reads
    /// that find the same bytes again (poll ticks, spurious events) do not
    /// count.
    pub last_attempt_at_unix: f64,
    /// The current error, rendered as `FILE:LINE:COL: error: ...` lines;
    /// `None` once the file is valid again.
    pub error: Option<String>,
    /// Generation of the running config: increments on every accepted change.
    pub generation: u64,
}

/// A validated config as handed to the controller.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The validated desired state the file declares.
    pub desired: Arc<DesiredState>,
    /// sha256 (hex) of the file's bytes.
    pub hash: String,
    /// 1 for the initial load, +1 for every accepted change.
    pub generation: u64,
}

/// Reads and validates the file at start-up, with [`read_desired`]'s reader
/// and messages. On failure returns the text to print (every error as
/// `FILE:LINE:COL: error: ...` plus a hint); the CLI exits 78 (EX_CONFIG)
/// with it.
pub fn load_initial(path: &Path) -> Result<LoadedConfig, String> {
    let (desired, hash) = read::read_validated(path)?;
    Ok(LoadedConfig {
        desired: Arc::new(desired),
        hash,
        generation: 1,
    })
}

/// Starts keeping `path` live on the current tokio runtime (call it from
/// inside one: it spawns a task).
///
/// `initial` is what [`load_initial`] returned. The config receiver changes
/// only when a new valid config is accepted; the status receiver changes on
/// every accepted change, rejection, re-validation or cleared error. Both
/// senders are dropped (so `changed()` returns `Err`) once `shutdown` is
/// cancelled, or once both receivers and their clones are gone.
///
/// Each `reload_now.notify_one()` makes the task re-read and re-validate the
/// file now, even if nothing changed (requests made while a read is under
/// way are served by one more read). The watcher installs no signal
/// handler: the caller maps its outside triggers onto `reload_now`.
pub fn spawn_watcher(
    path: PathBuf,
    initial: LoadedConfig,
    settings: ReloadSettings,
    reload_now: Arc<Notify>,
    shutdown: CancellationToken,
) -> (
    tokio::sync::watch::Receiver<LoadedConfig>,
    tokio::sync::watch::Receiver<ConfigStatus>,
) {
    reloader::spawn(path, initial, settings, reload_now, shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_mode_parses_and_displays() {
        assert_eq!("notify".parse(), Ok(WatchMode::Notify));
        assert_eq!("POLL".parse(), Ok(WatchMode::Poll));
        assert!("inotify".parse::<WatchMode>().is_err());
        assert_eq!(WatchMode::Poll.to_string(), "poll");
        let settings = ReloadSettings::default();
        assert_eq!(settings.mode, WatchMode::Notify);
        assert_eq!(settings.debounce, Duration::from_millis(500));
        assert_eq!(settings.poll_interval, Duration::from_secs(1));
    }
}
