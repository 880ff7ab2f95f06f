//! Hot reload against real files, a real tokio runtime and real inotify.
//!
//! Every wait is bounded (`WAIT`). Reload requests go to one watcher's own
//! `reload_now`, so tests running side by side cannot wake each other.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ecs_reconciler_runtime::reload::{
    ConfigStatus, LoadedConfig, ReloadSettings, WatchMode, load_initial, spawn_watcher,
};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

const GOOD: &str = "securityGroups:
  - name: web
    ingress:
      - protocol: tcp
        ports: 80
        cidr: 0.0.0.0/0
";
const EDITED: &str = "securityGroups:
  - name: web
    ingress:
      - protocol: tcp
        ports: 443
        cidr: 0.0.0.0/0
";
const INVALID: &str = "securityGroups:
  - name: web
    ingress:
      - protocol: tcp
        ports: 80
        cidr: 0.0.0.0/33
";

/// Upper bound of every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(5);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ecs-reconciler-reload-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An editor-style save: write a hidden temp file, rename it over the target.
fn atomic_write(path: &Path, text: &str) {
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename over");
}

fn settings(mode: WatchMode, debounce_ms: u64) -> ReloadSettings {
    ReloadSettings {
        mode,
        debounce: Duration::from_millis(debounce_ms),
        // In notify mode polling only runs as a fallback; a long interval
        // keeps it from masking a missed event.
        poll_interval: match mode {
            WatchMode::Poll => Duration::from_millis(100),
            WatchMode::Notify => Duration::from_secs(60),
        },
    }
}

struct Running {
    config: watch::Receiver<LoadedConfig>,
    status: watch::Receiver<ConfigStatus>,
    /// Each `notify_one()` re-reads and re-validates the file now.
    reload_now: Arc<Notify>,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a watcher and lets its start-up check run: an edit racing that
/// check would be picked up by it, not by the watch under test.
async fn start(path: &Path, settings: ReloadSettings) -> Running {
    let initial = load_initial(path).expect("initial config is valid");
    assert_eq!(initial.generation, 1);
    let shutdown = CancellationToken::new();
    let reload_now = Arc::new(Notify::new());
    let (config, status) = spawn_watcher(
        path.to_path_buf(),
        initial,
        settings,
        reload_now.clone(),
        shutdown.clone(),
    );
    settle().await;
    Running {
        config,
        status,
        reload_now,
        shutdown,
    }
}

/// Outlasts the start-up check and any debounce still pending (tests use
/// 100 ms), so the next step is seen only if its own events are.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn wait_for<T: Clone>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    pred: impl FnMut(&T) -> bool,
) -> T {
    match tokio::time::timeout(WAIT, rx.wait_for(pred)).await {
        Ok(Ok(value)) => value.clone(),
        Ok(Err(_)) => panic!("watcher stopped while waiting for {what}"),
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

fn parsed(text: &str) -> ecs_reconciler_spec::DesiredState {
    ecs_reconciler_spec::load(text).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_rename_edit_is_accepted() {
    let dir = TempDir::new("rename");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    // The default settings: the latency printed is what an operator sees.
    let mut run = start(&file, ReloadSettings::default()).await;

    let edited = Instant::now();
    atomic_write(&file, EDITED);
    let config = wait_for(&mut run.config, "the edit", |c| c.generation == 2).await;
    let latency = edited.elapsed();
    eprintln!("edit -> accepted latency (atomic rename, default 500 ms debounce): {latency:?}");
    assert!(latency < Duration::from_millis(1500), "took {latency:?}");
    assert_eq!(*config.desired, parsed(EDITED));

    let status = wait_for(&mut run.status, "the status", |s| s.generation == 2).await;
    assert!(status.last_reload_ok);
    assert_eq!(status.error, None);
    assert_eq!(status.hash, config.hash);
    assert_eq!(status.path, file.display().to_string());
}

#[tokio::test]
async fn in_place_write_is_accepted() {
    let dir = TempDir::new("inplace");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    std::fs::write(&file, EDITED).unwrap();
    let config = wait_for(&mut run.config, "the edit", |c| c.generation == 2).await;
    assert_eq!(*config.desired, parsed(EDITED));
}

#[tokio::test]
async fn invalid_edit_keeps_the_last_good_config_until_a_valid_edit() {
    let dir = TempDir::new("invalid");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;
    let good_hash = run.config.borrow().hash.clone();

    atomic_write(&file, INVALID);
    let status = wait_for(&mut run.status, "the rejection", |s| s.error.is_some()).await;
    let error = status.error.as_deref().unwrap();
    let expected = format!(
        "{}:6:15: error: invalid CIDR \"0.0.0.0/33\": prefix length must be 0-32",
        file.display()
    );
    assert!(error.contains(&expected), "{error}");
    assert!(error.contains("\n  hint: "), "{error}");
    assert!(!status.last_reload_ok);
    assert_eq!(status.generation, 1);
    assert_eq!(status.hash, good_hash);
    assert!(
        !run.config.has_changed().unwrap(),
        "an invalid edit replaced the config"
    );
    assert_eq!(*run.config.borrow().desired, parsed(GOOD));

    atomic_write(&file, EDITED);
    let config = wait_for(&mut run.config, "the fix", |c| c.generation == 2).await;
    assert_eq!(*config.desired, parsed(EDITED));
    let status = wait_for(&mut run.status, "the cleared error", |s| s.generation == 2).await;
    assert_eq!(status.error, None);
    assert!(status.last_reload_ok);
}

#[tokio::test]
async fn empty_or_deleted_file_keeps_the_last_good_config() {
    let dir = TempDir::new("empty");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    std::fs::write(&file, "").unwrap();
    let status = wait_for(&mut run.status, "the empty file", |s| s.error.is_some()).await;
    let error = status.error.unwrap();
    assert!(
        error.contains(":1:1: error: the file declares nothing"),
        "{error}"
    );

    std::fs::remove_file(&file).unwrap();
    let status = wait_for(&mut run.status, "the missing file", |s| {
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("cannot read the config file"))
    })
    .await;
    assert_eq!(status.generation, 1);

    // Restoring the running content clears the error without a new config.
    std::fs::write(&file, GOOD).unwrap();
    let status = wait_for(&mut run.status, "the restore", |s| s.error.is_none()).await;
    assert!(status.last_reload_ok);
    assert_eq!(status.generation, 1);
    assert!(!run.config.has_changed().unwrap());
}

#[tokio::test]
async fn config_map_symlink_swap_is_accepted() {
    use std::os::unix::fs::symlink;
    // The layout kubelet's atomic writer gives a mounted config map.
    let dir = TempDir::new("configmap");
    std::fs::create_dir(dir.path("..v1")).unwrap();
    std::fs::write(dir.path("..v1/seed.yaml"), GOOD).unwrap();
    symlink("..v1", dir.path("..data")).unwrap();
    symlink("..data/seed.yaml", dir.path("seed.yaml")).unwrap();
    let file = dir.path("seed.yaml");
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    std::fs::create_dir(dir.path("..v2")).unwrap();
    std::fs::write(dir.path("..v2/seed.yaml"), EDITED).unwrap();
    symlink("..v2", dir.path("..data_tmp")).unwrap();
    std::fs::rename(dir.path("..data_tmp"), dir.path("..data")).unwrap();
    std::fs::remove_dir_all(dir.path("..v1")).unwrap();

    let config = wait_for(&mut run.config, "the swap", |c| c.generation == 2).await;
    assert_eq!(*config.desired, parsed(EDITED));
    settle().await;

    // And again: the watches follow the flip.
    std::fs::create_dir(dir.path("..v3")).unwrap();
    std::fs::write(dir.path("..v3/seed.yaml"), GOOD).unwrap();
    symlink("..v3", dir.path("..data_tmp")).unwrap();
    std::fs::rename(dir.path("..data_tmp"), dir.path("..data")).unwrap();
    let config = wait_for(&mut run.config, "the second swap", |c| c.generation == 3).await;
    assert_eq!(*config.desired, parsed(GOOD));
}

#[tokio::test]
async fn symlinked_directory_is_watched_and_its_flip_seen() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("dirlink");
    std::fs::create_dir(dir.path("v1")).unwrap();
    std::fs::write(dir.path("v1/seed.yaml"), GOOD).unwrap();
    symlink("v1", dir.path("current")).unwrap();
    let file = dir.path("current/seed.yaml");
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    // An edit inside the directory the symlink points at.
    atomic_write(&dir.path("v1/seed.yaml"), EDITED);
    wait_for(&mut run.config, "the edit", |c| c.generation == 2).await;
    settle().await;

    // The directory symlink itself flips.
    std::fs::create_dir(dir.path("v2")).unwrap();
    std::fs::write(dir.path("v2/seed.yaml"), GOOD).unwrap();
    symlink("v2", dir.path("current.tmp")).unwrap();
    std::fs::rename(dir.path("current.tmp"), dir.path("current")).unwrap();
    let config = wait_for(&mut run.config, "the flip", |c| c.generation == 3).await;
    assert_eq!(*config.desired, parsed(GOOD));
    settle().await;

    // Edits in the new target are seen too.
    std::fs::write(dir.path("v2/seed.yaml"), EDITED).unwrap();
    wait_for(&mut run.config, "an edit after the flip", |c| {
        c.generation == 4
    })
    .await;
}

#[tokio::test]
async fn symlinked_file_edited_at_its_target_is_accepted() {
    use std::os::unix::fs::symlink;
    // `cfg/seed.yaml -> ../real/seed.yaml`, and the editor saves in `real/`:
    // nothing happens in `cfg/` at all.
    let dir = TempDir::new("filelink");
    std::fs::create_dir(dir.path("real")).unwrap();
    std::fs::create_dir(dir.path("cfg")).unwrap();
    std::fs::write(dir.path("real/seed.yaml"), GOOD).unwrap();
    symlink("../real/seed.yaml", dir.path("cfg/seed.yaml")).unwrap();
    let file = dir.path("cfg/seed.yaml");
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    atomic_write(&dir.path("real/seed.yaml"), EDITED);
    let config = wait_for(&mut run.config, "the edit at the target", |c| {
        c.generation == 2
    })
    .await;
    assert_eq!(*config.desired, parsed(EDITED));
}

#[tokio::test]
async fn deleted_and_recreated_directory_is_watched_again() {
    let dir = TempDir::new("recreate");
    let cfg = dir.path("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let file = cfg.join("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    // Notify mode; the short poll interval is the fallback while the
    // directory is gone.
    let mut run = start(
        &file,
        ReloadSettings {
            poll_interval: Duration::from_millis(100),
            ..settings(WatchMode::Notify, 100)
        },
    )
    .await;

    std::fs::remove_dir_all(&cfg).unwrap();
    let status = wait_for(&mut run.status, "the missing directory", |s| {
        s.error.is_some()
    })
    .await;
    assert_eq!(status.generation, 1);

    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(&file, EDITED).unwrap();
    wait_for(&mut run.config, "the recreated file", |c| c.generation == 2).await;
    settle().await;
    // The directory is watched again: an edit is seen as usual.
    atomic_write(&file, GOOD);
    wait_for(&mut run.config, "an edit after recovery", |c| {
        c.generation == 3
    })
    .await;
}

#[tokio::test]
async fn poll_mode_picks_up_an_edit() {
    let dir = TempDir::new("poll");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Poll, 100)).await;

    std::fs::write(&file, EDITED).unwrap();
    let config = wait_for(&mut run.config, "the polled edit", |c| c.generation == 2).await;
    assert_eq!(*config.desired, parsed(EDITED));
}

#[tokio::test]
async fn identical_rewrite_is_not_a_new_config() {
    let dir = TempDir::new("same");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;

    atomic_write(&file, GOOD);
    std::fs::write(&file, GOOD).unwrap();
    std::fs::File::options()
        .append(true)
        .open(&file)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .unwrap();
    // Nothing is expected to happen, so this wait is a fixed one: several
    // debounce periods.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !run.config.has_changed().unwrap(),
        "same bytes produced a new config"
    );
    assert_eq!(run.status.borrow().generation, 1);

    // The next real edit is generation 2: nothing was counted in between.
    std::fs::write(&file, EDITED).unwrap();
    let config = wait_for(&mut run.config, "the edit", |c| c.generation >= 2).await;
    assert_eq!(config.generation, 2);
}

#[tokio::test]
async fn edit_before_the_watch_starts_is_picked_up() {
    let dir = TempDir::new("startup");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let initial = load_initial(&file).unwrap();
    std::fs::write(&file, EDITED).unwrap();
    let shutdown = CancellationToken::new();
    // A long debounce: only the start-up check can see the edit in time.
    let (mut config, _status) = spawn_watcher(
        file.clone(),
        initial,
        settings(WatchMode::Notify, 60_000),
        Arc::new(Notify::new()),
        shutdown.clone(),
    );
    let loaded = wait_for(&mut config, "the start-up check", |c| c.generation == 2).await;
    assert_eq!(*loaded.desired, parsed(EDITED));
    shutdown.cancel();
}

#[tokio::test]
async fn initial_load_errors_are_rendered() {
    let dir = TempDir::new("initial");
    let file = dir.path("seed.yaml");
    let missing = load_initial(&file).unwrap_err();
    assert!(
        missing.starts_with(&format!(
            "{}: error: cannot read the config file",
            file.display()
        )),
        "{missing}"
    );
    std::fs::write(&file, INVALID).unwrap();
    let invalid = load_initial(&file).unwrap_err();
    assert!(
        invalid.starts_with(&format!("{}:6:15: error: ", file.display())),
        "{invalid}"
    );
    assert!(
        load_initial(&dir.0)
            .unwrap_err()
            .contains("not a regular file")
    );
}

#[tokio::test]
async fn watcher_stops_on_shutdown() {
    let dir = TempDir::new("shutdown");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut run = start(&file, settings(WatchMode::Notify, 100)).await;
    run.shutdown.cancel();
    let closed = tokio::time::timeout(WAIT, run.status.changed()).await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "the status sender was not dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_request_revalidates_without_a_new_config() {
    let dir = TempDir::new("request");
    let file = dir.path("seed.yaml");
    std::fs::write(&file, GOOD).unwrap();
    // A debounce far beyond the test: only a reload request can trigger a
    // read.
    let mut run = start(&file, settings(WatchMode::Notify, 60_000)).await;
    let request = || run.reload_now.notify_one();

    // Unchanged file: an attempt is recorded, no new config.
    let before = run.status.borrow().last_attempt_at_unix;
    tokio::time::sleep(Duration::from_millis(20)).await;
    request();
    let status = wait_for(&mut run.status, "the re-validation", |s| {
        s.last_attempt_at_unix > before
    })
    .await;
    assert!(status.last_reload_ok);
    assert_eq!(status.generation, 1);
    assert!(!run.config.has_changed().unwrap());

    // An invalid file, read only because of the request.
    std::fs::write(&file, INVALID).unwrap();
    request();
    let status = wait_for(&mut run.status, "the rejection", |s| s.error.is_some()).await;
    assert!(status.error.unwrap().contains(":6:15: error: "));

    // Back to the running content: the request clears the error, still no
    // new config.
    std::fs::write(&file, GOOD).unwrap();
    request();
    let status = wait_for(&mut run.status, "the cleared error", |s| s.error.is_none()).await;
    assert!(status.last_reload_ok);
    assert_eq!(status.generation, 1);
    assert!(!run.config.has_changed().unwrap());
}
