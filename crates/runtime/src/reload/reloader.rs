//! The reloader task: one tokio task per watched file that re-reads it when
//! woken (a debounced file-system event, a poll tick, a reload request, the
//! start-up check), hands the read to the [`Tracker`], and publishes what it
//! decided on the config and status channels, with a log line for each.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::timeline::unix_now;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::read::{ReadError, read_config};
use super::tracker::{Decision, Tracker};
use super::watch::Watches;
use super::{ConfigStatus, LoadedConfig, ReloadSettings, WatchMode};

/// Poll intervals are raised to at least this: a zero period would make
/// `tokio::time::interval` panic, and a tighter loop only burns CPU.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A steady stream of events (a slow copy, a chatty editor) postpones the
/// re-read by at most this many debounce periods, so it cannot starve it.
const DEBOUNCE_CAP_FACTOR: u32 = 10;

/// [`spawn_watcher`](super::spawn_watcher)'s body: sets up the watches (or
/// poll mode) and spawns the task.
pub(super) fn spawn(
    path: PathBuf,
    initial: LoadedConfig,
    settings: ReloadSettings,
    reload_now: Arc<Notify>,
    shutdown: CancellationToken,
) -> (watch::Receiver<LoadedConfig>, watch::Receiver<ConfigStatus>) {
    let display = path.display().to_string();
    // notify reports absolute paths; watching absolute paths makes the event
    // filter compare like with like, and a later chdir cannot move the file.
    let file = std::path::absolute(&path).unwrap_or(path);
    let tracker = Tracker::new(display, initial.clone(), unix_now());
    let (config_tx, config_rx) = watch::channel(initial);
    let (status_tx, status_rx) = watch::channel(tracker.status.clone());

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
        reload_now,
        wake: wake_rx,
        poll: None,
    };
    tokio::spawn(reloader.run(sources, shutdown));
    (config_rx, status_rx)
}

/// Why the file is being read; only for logs (and a reload request forces
/// a re-validation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// Right after the watch is set up: covers edits made between
    /// `load_initial` and `spawn_watcher`.
    Startup,
    Change,
    Poll,
    /// A `notify_one` on `reload_now`: re-read and re-validate now, even
    /// if nothing changed.
    Request,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Startup => "startup",
            Trigger::Change => "file change",
            Trigger::Poll => "poll",
            Trigger::Request => "reload request",
        })
    }
}

/// What wakes the task, kept apart from [`Reloader`] so `select!` can borrow
/// them while the handler mutates the reloader.
struct Sources {
    reload_now: Arc<Notify>,
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
    Request,
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
                () = sources.reload_now.notified() => Step::Request,
                Some(()) = sources.wake.recv(), if self.watches.is_some() => Step::Wake,
                () = sleep_until(pending.map(|p| p.due)) => Step::Due,
                () = tick(&mut sources.poll) => Step::Poll,
            };
            match step {
                Step::Stop => break,
                Step::Request => self.check(Trigger::Request).await,
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
            .examine(read, trigger == Trigger::Request, unix_now());
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

/// Enough of a hash for a log line.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
