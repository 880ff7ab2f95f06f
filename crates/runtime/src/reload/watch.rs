//! notify mode: the inotify (FSEvents on macOS) watches on the config file's
//! parent directory, plus the directories a symlinked file or parent lead
//! to, renewed when a symlink flips or the directory is recreated; and the
//! filter, run on notify's own thread, that wakes the reloader only for
//! events about the file (or a config map's `..data` entries).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

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
pub(super) enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Create(#[source] notify::Error),
    #[error("cannot watch {dir}: {reason}")]
    Directory { dir: String, reason: String },
}

/// The notify watcher and what it currently watches.
pub(super) struct Watches {
    watcher: RecommendedWatcher,
    file: PathBuf,
    /// Watched path -> the directory it led to when the watch was added.
    active: HashMap<PathBuf, DirId>,
    interest: Arc<RwLock<Interest>>,
    /// Whether the parent directory is watched.
    pub(super) primary_ok: bool,
}

impl Watches {
    pub(super) fn start(file: PathBuf, wake: mpsc::Sender<()>) -> Result<Watches, WatchError> {
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
    pub(super) fn refresh(&mut self) {
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
                    tracing::debug!(dir = %path.display(), error = %err, "cannot watch a directory of the config file's symlink chain");
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
}
