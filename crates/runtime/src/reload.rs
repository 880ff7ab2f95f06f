//! Keeps the desired-state file live for `ecs-reconciler run`.
//!
//! This module owns everything between "a person saved the YAML file" and
//! "the controller holds a new validated [`DesiredState`]": reading the file
//! (size-capped, UTF-8 checked), hashing it (sha256 of the bytes), deciding
//! whether the bytes are a new config, a rejected edit or nothing new
//! (`Tracker::examine`, no I/O), and the three ways a re-read is triggered:
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
//! * SIGHUP (unix): re-read and re-validate now, even if nothing changed.
//!
//! A valid new file replaces the running config at once. An invalid one
//! (unreadable, missing, empty, not UTF-8, syntax, schema or semantic errors)
//! never does: the last good config stays, the error is logged with
//! `FILE:LINE:COL` and kept in [`ConfigStatus::error`] until a valid file
//! clears it.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ecs_reconciler_spec::DesiredState;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Files larger than this are refused rather than read: a desired-state file
/// is a few KiB, and a mistyped path (a log, a device) must not eat memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Poll intervals are raised to at least this: a zero period would make
/// `tokio::time::interval` panic, and a tighter loop only burns CPU.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A steady stream of events (a slow copy, a chatty editor) postpones the
/// re-read by at most this many debounce periods, so it cannot starve it.
const DEBOUNCE_CAP_FACTOR: u32 = 10;

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
    /// previous read, or because of a SIGHUP (unix seconds). Reads that find
    /// the same bytes again (poll ticks, spurious events) do not count.
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
    pub desired: Arc<DesiredState>,
    /// sha256 (hex) of the file's bytes.
    pub hash: String,
    /// 1 for the initial load, +1 for every accepted change.
    pub generation: u64,
}

/// sha256 of the bytes, lower-case hex: the identity of a config file.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Reads and validates the file at start-up. On failure returns the text to
/// print (every error as `FILE:LINE:COL: error: ...` plus a hint); the CLI
/// exits 78 (EX_CONFIG) with it.
pub fn load_initial(path: &Path) -> Result<LoadedConfig, String> {
    let display = path.display().to_string();
    let bytes = read_config(path).map_err(|err| err.render(&display, Stage::Initial))?;
    let desired = validate(&display, &bytes)?;
    Ok(LoadedConfig {
        desired: Arc::new(desired),
        hash: content_hash(&bytes),
        generation: 1,
    })
}

/// Starts keeping `path` live on the current tokio runtime (call it from
/// inside one: it spawns a task and installs the SIGHUP handler).
///
/// `initial` is what [`load_initial`] returned. The config receiver changes
/// only when a new valid config is accepted; the status receiver changes on
/// every accepted change, rejection, re-validation or cleared error. Both
/// senders are dropped (so `changed()` returns `Err`) once `shutdown` is
/// cancelled, or once both receivers and their clones are gone.
///
/// The SIGHUP handler is in place when this returns, so a SIGHUP sent from
/// then on re-reads the file instead of ending the process.
pub fn spawn_watcher(
    path: PathBuf,
    initial: LoadedConfig,
    settings: ReloadSettings,
    shutdown: CancellationToken,
) -> (watch::Receiver<LoadedConfig>, watch::Receiver<ConfigStatus>) {
    let display = path.display().to_string();
    // notify reports absolute paths; watching absolute paths makes the event
    // filter compare like with like, and a later chdir cannot move the file.
    let file = std::path::absolute(&path).unwrap_or(path);
    let tracker = Tracker::new(display, initial.clone(), unix_now());
    let (config_tx, config_rx) = watch::channel(initial);
    let (status_tx, status_rx) = watch::channel(tracker.status.clone());
    let hangup = Hangup::install(&tracker.display);

    // Capacity 1 with `try_send`: a full channel means a wake-up is already
    // pending, and that one re-read covers every event behind it.
    let (wake_tx, wake_rx) = mpsc::channel(1);
    let watches = match settings.mode {
        WatchMode::Poll => None,
        WatchMode::Notify => match Watches::start(file.clone(), wake_tx) {
            Ok(watches) => Some(watches),
            Err(err) => {
                tracing::warn!(
                    path = %tracker.display,
                    error = %err,
                    poll_interval = ?settings.poll_interval,
                    "cannot watch the config file's directory: falling back to --watch poll",
                );
                None
            }
        },
    };
    tracing::info!(
        path = %tracker.display,
        mode = if watches.is_some() { "notify" } else { "poll" },
        debounce = ?settings.debounce,
        poll_interval = ?settings.poll_interval,
        generation = tracker.current.generation,
        hash = short(&tracker.current.hash),
        "watching the desired-state file for changes",
    );

    let reloader = Reloader {
        file,
        settings,
        tracker,
        config_tx,
        status_tx,
        watches,
    };
    let sources = Sources {
        hangup,
        wake: wake_rx,
        poll: None,
    };
    tokio::spawn(reloader.run(sources, shutdown));
    (config_rx, status_rx)
}

// ---------------------------------------------------------------------------
// Reading and validating

/// Why the bytes of the file could not be had.
#[derive(Debug, thiserror::Error)]
enum ReadError {
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
enum Stage {
    Initial,
    Reload,
}

impl ReadError {
    /// Same shape as the spec crate's diagnostics, minus the position a read
    /// error does not have.
    fn render(&self, display: &str, stage: Stage) -> String {
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
fn read_config(path: &Path) -> Result<Vec<u8>, ReadError> {
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
fn validate(display: &str, bytes: &[u8]) -> Result<DesiredState, String> {
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

// ---------------------------------------------------------------------------
// Deciding

/// What a read of the file was, as far as identity goes: two reads with the
/// same fingerprint need not be examined twice (unless forced by SIGHUP).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fingerprint {
    Bytes(String),
    Unreadable(String),
}

/// The outcome of one read of the file.
#[derive(Debug)]
enum Decision {
    /// Same bytes (or same read error) as the previous read, not forced:
    /// nothing to do, nothing to publish. Keeps poll mode and spurious
    /// events from re-logging an error every second.
    Same,
    /// Valid and identical to the running config (a SIGHUP, or a revert to
    /// the running content after a bad edit): no new config.
    Unchanged { cleared_error: bool },
    /// A new valid config, now the running one.
    Accept {
        config: LoadedConfig,
        /// Only comments or formatting changed: the parsed state is equal.
        same_desired: bool,
    },
    /// Invalid: the running config stays; the rendered error is in the status.
    Reject { error: String },
}

/// The reloader's memory: the running config, what the last read saw, and
/// the status built from them. No I/O, no clock: unit-tested on its own.
struct Tracker {
    display: String,
    current: LoadedConfig,
    seen: Option<Fingerprint>,
    status: ConfigStatus,
}

impl Tracker {
    fn new(display: String, initial: LoadedConfig, now: f64) -> Tracker {
        let status = ConfigStatus {
            path: display.clone(),
            hash: initial.hash.clone(),
            loaded_at_unix: now,
            last_reload_ok: true,
            last_attempt_at_unix: now,
            error: None,
            generation: initial.generation,
        };
        Tracker {
            display,
            // The initial bytes were just validated: a first read that finds
            // them again is `Same`, not a reload attempt.
            seen: Some(Fingerprint::Bytes(initial.hash.clone())),
            current: initial,
            status,
        }
    }

    /// Re-read and decide: one read of the file in, the decision out, with
    /// the running config and the status updated to match. `forced` (SIGHUP)
    /// re-validates even when the bytes are the ones seen last time.
    fn examine(&mut self, read: Result<Vec<u8>, ReadError>, forced: bool, now: f64) -> Decision {
        // Bytes are known by their hash, a failed read by its message.
        let read = read
            .map(|bytes| {
                let hash = content_hash(&bytes);
                (bytes, hash)
            })
            .map_err(|err| err.render(&self.display, Stage::Reload));
        let fingerprint = match &read {
            Ok((_, hash)) => Fingerprint::Bytes(hash.clone()),
            Err(error) => Fingerprint::Unreadable(error.clone()),
        };
        if !forced && self.seen.as_ref() == Some(&fingerprint) {
            return Decision::Same;
        }
        self.seen = Some(fingerprint);
        self.status.last_attempt_at_unix = now;

        let verdict = read.and_then(|(bytes, hash)| {
            validate(&self.display, &bytes).map(|desired| (desired, hash))
        });
        match verdict {
            Err(error) => {
                self.status.last_reload_ok = false;
                self.status.error = Some(error.clone());
                Decision::Reject { error }
            }
            Ok((_, hash)) if hash == self.current.hash => {
                self.status.last_reload_ok = true;
                let cleared_error = self.status.error.take().is_some();
                Decision::Unchanged { cleared_error }
            }
            Ok((desired, hash)) => {
                let same_desired = *self.current.desired == desired;
                self.current = LoadedConfig {
                    desired: Arc::new(desired),
                    hash,
                    generation: self.current.generation + 1,
                };
                self.status = ConfigStatus {
                    path: self.display.clone(),
                    hash: self.current.hash.clone(),
                    loaded_at_unix: now,
                    last_reload_ok: true,
                    last_attempt_at_unix: now,
                    error: None,
                    generation: self.current.generation,
                };
                Decision::Accept {
                    config: self.current.clone(),
                    same_desired,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The task

/// Why the file is being read; only for logs (and SIGHUP forces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// Right after the watch is set up: covers edits made between
    /// `load_initial` and `spawn_watcher`.
    Startup,
    Change,
    Poll,
    Hangup,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Startup => "startup",
            Trigger::Change => "file change",
            Trigger::Poll => "poll",
            Trigger::Hangup => "SIGHUP",
        })
    }
}

/// What wakes the task, kept apart from [`Reloader`] so `select!` can borrow
/// them while the handler mutates the reloader.
struct Sources {
    hangup: Hangup,
    wake: mpsc::Receiver<()>,
    /// Some in poll mode, and in notify mode while the directory is unwatched.
    poll: Option<Interval>,
}

struct Reloader {
    /// Absolute path of the file.
    file: PathBuf,
    settings: ReloadSettings,
    tracker: Tracker,
    config_tx: watch::Sender<LoadedConfig>,
    status_tx: watch::Sender<ConfigStatus>,
    /// None in poll mode (chosen or fallen back to).
    watches: Option<Watches>,
}

#[derive(Clone, Copy)]
struct Pending {
    first: Instant,
    due: Instant,
}

enum Step {
    Stop,
    Hangup,
    Wake,
    Due,
    Poll,
}

impl Reloader {
    async fn run(mut self, mut sources: Sources, shutdown: CancellationToken) {
        self.check(Trigger::Startup).await;
        self.sync_poll(&mut sources);
        let debounce = self.settings.debounce;
        let cap = debounce.saturating_mul(DEBOUNCE_CAP_FACTOR);
        let mut pending: Option<Pending> = None;
        loop {
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => Step::Stop,
                () = sources.hangup.recv() => Step::Hangup,
                Some(()) = sources.wake.recv(), if self.watches.is_some() => Step::Wake,
                () = sleep_until(pending.map(|p| p.due)) => Step::Due,
                () = tick(&mut sources.poll) => Step::Poll,
            };
            match step {
                Step::Stop => break,
                Step::Hangup => self.check(Trigger::Hangup).await,
                Step::Wake => {
                    // Trailing debounce: wait for quiet, but not forever.
                    let now = Instant::now();
                    let first = pending.map_or(now, |p| p.first);
                    let due = (now + debounce).min(first + cap);
                    pending = Some(Pending { first, due });
                }
                Step::Due => {
                    pending = None;
                    self.check(Trigger::Change).await;
                }
                Step::Poll => self.check(Trigger::Poll).await,
            }
            self.sync_poll(&mut sources);
            if self.config_tx.is_closed() && self.status_tx.is_closed() {
                tracing::debug!(path = %self.tracker.display, "nobody listens to config reloads any more: stopping");
                break;
            }
        }
        tracing::debug!(path = %self.tracker.display, "config watcher stopped");
    }

    /// Polls in poll mode, and in notify mode while the directory itself is
    /// not watched (deleted, unmounted): then nothing else would wake us.
    fn sync_poll(&self, sources: &mut Sources) {
        let want = self.watches.as_ref().is_none_or(|w| !w.primary_ok);
        if want && sources.poll.is_none() {
            let period = self.settings.poll_interval.max(MIN_POLL_INTERVAL);
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            sources.poll = Some(interval);
        } else if !want && sources.poll.is_some() {
            sources.poll = None;
        }
    }

    async fn check(&mut self, trigger: Trigger) {
        // Watches first, read second: a change landing after the read is then
        // sure to raise an event on the directories now watched.
        if let Some(watches) = &mut self.watches {
            watches.refresh();
        }
        let file = self.file.clone();
        let read = tokio::task::spawn_blocking(move || read_config(&file))
            .await
            .unwrap_or_else(|err| Err(ReadError::Io(io::Error::other(err))));
        let decision = self
            .tracker
            .examine(read, trigger == Trigger::Hangup, unix_now());
        self.publish(decision, trigger);
    }

    fn publish(&self, decision: Decision, trigger: Trigger) {
        let shown = &self.tracker.display;
        let generation = self.tracker.current.generation;
        let hash = short(&self.tracker.current.hash);
        match decision {
            Decision::Same => {
                tracing::trace!(path = %shown, %trigger, "config file unchanged");
                return;
            }
            Decision::Accept {
                config,
                same_desired,
            } => {
                tracing::info!(
                    path = %shown,
                    %trigger,
                    generation,
                    hash,
                    "accepted a new desired-state config{}",
                    if same_desired { " (only comments or formatting changed)" } else { "" },
                );
                // Config before status: whoever sees generation N in the
                // status finds config N in the other receiver.
                self.config_tx.send_replace(config);
            }
            Decision::Unchanged { cleared_error } => {
                if cleared_error {
                    tracing::info!(
                        path = %shown, %trigger, generation, hash,
                        "the config file is valid again and equal to the running config: error cleared",
                    );
                } else {
                    tracing::info!(
                        path = %shown, %trigger, generation, hash,
                        "config file re-validated: unchanged",
                    );
                }
            }
            Decision::Reject { error } => {
                tracing::warn!(
                    path = %shown,
                    %trigger,
                    generation,
                    hash,
                    error = %error,
                    "rejected the edited config file: the last good config stays in force",
                );
            }
        }
        self.status_tx.send_replace(self.tracker.status.clone());
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn tick(poll: &mut Option<Interval>) {
    match poll {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Enough of a hash for a log line.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

// ---------------------------------------------------------------------------
// SIGHUP

struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    #[cfg(unix)]
    fn install(shown: &str) -> Hangup {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(signal) => Hangup {
                signal: Some(signal),
            },
            Err(err) => {
                tracing::warn!(path = %shown, error = %err, "cannot handle SIGHUP: reload on SIGHUP is off");
                Hangup { signal: None }
            }
        }
    }

    #[cfg(not(unix))]
    fn install(_shown: &str) -> Hangup {
        Hangup {}
    }

    /// Completes on each SIGHUP; pends forever where there is none.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            // The signal driver is gone (runtime shutting down).
            self.signal = None;
        }
        std::future::pending::<()>().await
    }
}

// ---------------------------------------------------------------------------
// notify mode

/// Which events are worth a re-read. Shared with notify's callback thread,
/// which filters before waking the task.
#[derive(Debug, Default)]
struct Interest {
    /// File names that matter: the file, its symlink target, the parent
    /// directory when that is a symlink (watched from the grandparent).
    names: HashSet<OsString>,
    /// The watched directories themselves (deleted, moved).
    dirs: HashSet<PathBuf>,
}

impl Interest {
    fn wants(&self, event: &notify::Event) -> bool {
        if event.need_rescan() {
            // The kernel queue overflowed: events were lost, re-read.
            return true;
        }
        // Reading the file opens it, and notify reports opens: without this
        // every check would schedule the next one. A close after writing is
        // kept: it is the end of an in-place save.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return false;
        }
        event.paths.iter().any(|path| {
            self.dirs.contains(path)
                || path
                    .file_name()
                    .is_some_and(|name| self.names.contains(name) || is_atomic_writer_entry(name))
        })
    }
}

/// Kubernetes' atomic writer (config maps, secrets, projected volumes) keeps
/// its entries under `..`-prefixed names: `..data`, `..data_tmp`,
/// `..2024_01_01_00_00_00.123`. The file itself is a symlink through
/// `..data` and never changes: only these entries do.
fn is_atomic_writer_entry(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"..")
}

/// The directories to watch for `file` (absolute) and the names that matter.
#[derive(Debug)]
struct WatchPlan {
    /// The parent directory first: without it, notify mode is blind.
    dirs: Vec<PathBuf>,
    names: HashSet<OsString>,
}

impl WatchPlan {
    fn for_file(file: &Path) -> WatchPlan {
        let parent = parent_dir(file);
        let mut dirs = vec![parent.clone()];
        let mut names = HashSet::new();
        if let Some(name) = file.file_name() {
            names.insert(name.to_owned());
        }
        // The parent may be a symlink (`/etc/app -> /srv/app-v1`): the kernel
        // watches its target, and a flip of the link happens one level up.
        if std::fs::symlink_metadata(&parent).is_ok_and(|m| m.file_type().is_symlink())
            && let (Some(grandparent), Some(name)) = (parent.parent(), parent.file_name())
        {
            dirs.push(grandparent.to_path_buf());
            names.insert(name.to_owned());
        }
        // The file may be a symlink into another directory, where an editor
        // then saves: watch the real file's directory too.
        if let Ok(real) = std::fs::canonicalize(file)
            && let (Some(dir), Some(name)) = (real.parent(), real.file_name())
        {
            dirs.push(dir.to_path_buf());
            names.insert(name.to_owned());
        }
        WatchPlan { dirs, names }
    }
}

/// The directory holding `file` (absolute).
fn parent_dir(file: &Path) -> PathBuf {
    file.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// Which directory a path leads to right now. A watch is on an inode: when
/// the path leads elsewhere (a symlink flipped, the directory was
/// recreated), the watch must be renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DirId {
    canonical: PathBuf,
    inode: (u64, u64),
}

impl DirId {
    fn of(dir: &Path) -> io::Result<DirId> {
        let meta = std::fs::metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(DirId {
            canonical: std::fs::canonicalize(dir)?,
            inode: inode_of(&meta),
        })
    }
}

#[cfg(unix)]
fn inode_of(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn inode_of(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Create(#[source] notify::Error),
    #[error("cannot watch {dir}: {reason}")]
    Directory { dir: String, reason: String },
}

/// The notify watcher and what it currently watches.
struct Watches {
    watcher: RecommendedWatcher,
    file: PathBuf,
    /// Watched path -> the directory it led to when the watch was added.
    active: HashMap<PathBuf, DirId>,
    interest: Arc<RwLock<Interest>>,
    /// Whether the parent directory is watched.
    primary_ok: bool,
}

impl Watches {
    fn start(file: PathBuf, wake: mpsc::Sender<()>) -> Result<Watches, WatchError> {
        let interest = Arc::new(RwLock::new(Interest::default()));
        let filter = Arc::clone(&interest);
        // Runs on notify's own thread: filter there, wake the task with a
        // non-blocking send (full = a wake-up is already pending).
        let handler = move |event: notify::Result<notify::Event>| {
            let wanted = match &event {
                Ok(event) => filter.read().map_or(true, |interest| interest.wants(event)),
                Err(err) => {
                    tracing::warn!(error = %err, "file watcher error: re-reading the config file");
                    true
                }
            };
            if wanted {
                let _ = wake.try_send(());
            }
        };
        let watcher = notify::recommended_watcher(handler).map_err(WatchError::Create)?;
        let mut watches = Watches {
            watcher,
            file,
            active: HashMap::new(),
            interest,
            primary_ok: false,
        };
        if let Err(reason) = watches.sync() {
            let dir = parent_dir(&watches.file).display().to_string();
            return Err(WatchError::Directory { dir, reason });
        }
        Ok(watches)
    }

    /// Re-plans the watches (a symlink may have flipped) and logs when the
    /// parent directory stops or starts being watched.
    fn refresh(&mut self) {
        let was_ok = self.primary_ok;
        let result = self.sync();
        match (was_ok, result) {
            (true, Err(reason)) => tracing::warn!(
                path = %self.file.display(),
                error = %reason,
                "lost the watch on the config file's directory: polling until it is back",
            ),
            (false, Ok(())) => tracing::info!(
                path = %self.file.display(),
                "watching the config file's directory again",
            ),
            _ => {}
        }
    }

    /// Brings the watches in line with the plan; Err when the parent
    /// directory could not be watched.
    fn sync(&mut self) -> Result<(), String> {
        let plan = WatchPlan::for_file(&self.file);
        let primary = &plan.dirs[0];
        let mut primary_error = None;
        let mut want: Vec<(PathBuf, DirId)> = Vec::new();
        for dir in &plan.dirs {
            match DirId::of(dir) {
                // Two paths to one directory (the file's real directory is
                // its parent): one watch is enough.
                Ok(id) if want.iter().any(|(_, w)| *w == id) => {}
                Ok(id) => want.push((dir.clone(), id)),
                Err(err) if dir == primary => primary_error = Some(err.to_string()),
                Err(_) => {}
            }
        }
        let stale: Vec<PathBuf> = self
            .active
            .iter()
            .filter(|(path, id)| !want.iter().any(|(p, i)| p == *path && i == *id))
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            self.active.remove(&path);
            // Fails when the kernel already dropped the watch (directory
            // deleted): nothing left to undo then.
            let _ = self.watcher.unwatch(&path);
        }
        for (path, id) in want {
            if self.active.contains_key(&path) {
                continue;
            }
            match self.watcher.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.active.insert(path, id);
                }
                Err(err) if path == *primary => primary_error = Some(err.to_string()),
                Err(err) => {
                    tracing::debug!(dir = %path.display(), error = %err, "cannot watch a directory of the config file's symlink chain")
                }
            }
        }
        if let Ok(mut interest) = self.interest.write() {
            interest.names = plan.names;
            interest.dirs = self.active.keys().cloned().collect();
        }
        let result = match primary_error {
            Some(reason) => Err(reason),
            None if self.active.contains_key(primary) => Ok(()),
            None => Err("not watched".to_owned()),
        };
        self.primary_ok = result.is_ok();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "securityGroups:\n  - name: web\n    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/0\n";
    const EDITED: &str = "securityGroups:\n  - name: web\n    ingress:\n      - protocol: tcp\n        ports: 443\n        cidr: 0.0.0.0/0\n";
    const INVALID: &str = "securityGroups:\n  - name: web\n    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/33\n";

    fn initial(text: &str) -> LoadedConfig {
        let desired = validate("cfg.yaml", text.as_bytes()).expect("valid");
        LoadedConfig {
            desired: Arc::new(desired),
            hash: content_hash(text.as_bytes()),
            generation: 1,
        }
    }

    fn tracker() -> Tracker {
        Tracker::new("cfg.yaml".to_owned(), initial(GOOD), 100.0)
    }

    fn bytes(text: &str) -> Result<Vec<u8>, ReadError> {
        Ok(text.as_bytes().to_vec())
    }

    fn missing() -> Result<Vec<u8>, ReadError> {
        Err(ReadError::Io(io::Error::from(io::ErrorKind::NotFound)))
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn same_bytes_are_not_examined_again() {
        let mut t = tracker();
        assert!(matches!(
            t.examine(bytes(GOOD), false, 101.0),
            Decision::Same
        ));
        assert_eq!(t.status.last_attempt_at_unix, 100.0);
    }

    #[test]
    fn a_valid_edit_is_accepted_with_the_next_generation() {
        let mut t = tracker();
        let Decision::Accept {
            config,
            same_desired,
        } = t.examine(bytes(EDITED), false, 101.0)
        else {
            panic!("expected Accept");
        };
        assert!(!same_desired);
        assert_eq!(config.generation, 2);
        assert_eq!(config.hash, content_hash(EDITED.as_bytes()));
        assert_eq!(t.status.generation, 2);
        assert_eq!(t.status.hash, config.hash);
        assert_eq!(t.status.loaded_at_unix, 101.0);
        assert!(t.status.last_reload_ok);
    }

    #[test]
    fn a_comment_only_edit_is_a_new_config_with_the_same_state() {
        let mut t = tracker();
        let text = format!("# reviewed\n{GOOD}");
        let Decision::Accept {
            same_desired,
            config,
        } = t.examine(bytes(&text), false, 101.0)
        else {
            panic!("expected Accept");
        };
        assert!(same_desired);
        assert_eq!(config.generation, 2);
    }

    #[test]
    fn an_invalid_edit_keeps_the_last_good_config_and_is_reported_once() {
        let mut t = tracker();
        let Decision::Reject { error } = t.examine(bytes(INVALID), false, 101.0) else {
            panic!("expected Reject");
        };
        assert!(error.starts_with("cfg.yaml:6:15: error: "), "{error}");
        assert_eq!(t.current.generation, 1);
        assert_eq!(t.status.hash, content_hash(GOOD.as_bytes()));
        assert_eq!(t.status.error.as_deref(), Some(error.as_str()));
        assert!(!t.status.last_reload_ok);
        assert_eq!(t.status.loaded_at_unix, 100.0);
        // A poll tick or a spurious event finding the same bad bytes.
        assert!(matches!(
            t.examine(bytes(INVALID), false, 102.0),
            Decision::Same
        ));
        assert_eq!(t.status.last_attempt_at_unix, 101.0);
        // A SIGHUP re-validates, and the error stays.
        assert!(matches!(
            t.examine(bytes(INVALID), true, 103.0),
            Decision::Reject { .. }
        ));
        assert_eq!(t.status.last_attempt_at_unix, 103.0);
        // A valid edit clears it.
        assert!(matches!(
            t.examine(bytes(EDITED), false, 104.0),
            Decision::Accept { .. }
        ));
        assert_eq!(t.status.error, None);
        assert_eq!(t.status.generation, 2);
    }

    #[test]
    fn reverting_to_the_running_content_clears_the_error_without_a_new_config() {
        let mut t = tracker();
        assert!(matches!(
            t.examine(bytes(INVALID), false, 101.0),
            Decision::Reject { .. }
        ));
        assert!(matches!(
            t.examine(bytes(GOOD), false, 102.0),
            Decision::Unchanged {
                cleared_error: true
            }
        ));
        assert_eq!(t.status.error, None);
        assert!(t.status.last_reload_ok);
        assert_eq!(t.status.generation, 1);
    }

    #[test]
    fn sighup_on_unchanged_bytes_revalidates_without_a_new_config() {
        let mut t = tracker();
        assert!(matches!(
            t.examine(bytes(GOOD), true, 101.0),
            Decision::Unchanged {
                cleared_error: false
            }
        ));
        assert_eq!(t.status.last_attempt_at_unix, 101.0);
        assert_eq!(t.status.loaded_at_unix, 100.0);
        assert_eq!(t.status.generation, 1);
    }

    #[test]
    fn empty_missing_and_binary_files_are_rejected() {
        let mut t = tracker();
        let Decision::Reject { error } = t.examine(bytes(""), false, 101.0) else {
            panic!("expected Reject");
        };
        assert!(
            error.starts_with("cfg.yaml:1:1: error: the file declares nothing"),
            "{error}"
        );

        let Decision::Reject { error } = t.examine(missing(), false, 102.0) else {
            panic!("expected Reject");
        };
        assert!(
            error.starts_with("cfg.yaml: error: cannot read the config file: "),
            "{error}"
        );
        assert!(
            error.contains("\n  hint: the running config stays in force"),
            "{error}"
        );
        assert!(matches!(t.examine(missing(), false, 103.0), Decision::Same));

        let Decision::Reject { error } = t.examine(Ok(b"a: 1\nb: \xff".to_vec()), false, 104.0)
        else {
            panic!("expected Reject");
        };
        assert!(
            error.starts_with("cfg.yaml:2:4: error: the file is not valid UTF-8"),
            "{error}"
        );
        assert_eq!(t.current.generation, 1);
    }

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

    #[test]
    fn the_event_filter_keeps_the_file_and_atomic_writer_entries_only() {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        let interest = Interest {
            names: [OsString::from("seed.yaml")].into_iter().collect(),
            dirs: [PathBuf::from("/cfg")].into_iter().collect(),
        };
        let event = |kind, paths: &[&str]| {
            let mut e = notify::Event::new(kind);
            for p in paths {
                e = e.add_path(PathBuf::from(p));
            }
            e
        };
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(interest.wants(&event(modify, &["/cfg/seed.yaml"])));
        assert!(interest.wants(&event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/cfg/.seed.yaml.swp~", "/cfg/seed.yaml"]
        )));
        assert!(interest.wants(&event(
            EventKind::Create(CreateKind::Any),
            &["/cfg/..data_tmp"]
        )));
        assert!(interest.wants(&event(
            EventKind::Remove(notify::event::RemoveKind::Any),
            &["/cfg"]
        )));
        assert!(!interest.wants(&event(modify, &["/cfg/other.yaml"])));
        assert!(!interest.wants(&event(modify, &["/cfg/.seed.yaml.swp"])));
        // Our own reads.
        assert!(!interest.wants(&event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/cfg/seed.yaml"]
        )));
        assert!(interest.wants(&event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/cfg/seed.yaml"]
        )));
        let rescan = event(EventKind::Other, &[]).set_flag(notify::event::Flag::Rescan);
        assert!(interest.wants(&rescan));
    }

    #[test]
    fn position_after_counts_lines_and_characters() {
        assert_eq!(position_after(b""), (1, 1));
        assert_eq!(position_after("ab\ncé".as_bytes()), (2, 3));
        assert_eq!(position_after(b"a\n"), (2, 1));
    }
}
