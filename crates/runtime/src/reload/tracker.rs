//! The reloader's memory and its decisions, with no I/O and no clock: given
//! one read of the file, is it the same as last time, a new valid config, a
//! valid file equal to the running one, or a rejected edit? Keeps the
//! running [`LoadedConfig`] and the [`ConfigStatus`] built from it.

use std::sync::Arc;

use super::read::{ReadError, Stage, content_hash, validate};
use super::{ConfigStatus, LoadedConfig};

/// What a read of the file was, as far as identity goes: two reads with the
/// same fingerprint need not be examined twice (unless a reload request
/// forces it).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fingerprint {
    Bytes(String),
    Unreadable(String),
}

/// The outcome of one read of the file.
#[derive(Debug)]
pub(super) enum Decision {
    /// Same bytes (or same read error) as the previous read, not forced:
    /// nothing to do, nothing to publish. Keeps poll mode and spurious
    /// events from re-logging an error every second.
    Same,
    /// Valid and identical to the running config (a reload request, or a
    /// revert to the running content after a bad edit): no new config.
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
pub(super) struct Tracker {
    pub(super) display: String,
    pub(super) current: LoadedConfig,
    seen: Option<Fingerprint>,
    pub(super) status: ConfigStatus,
}

impl Tracker {
    pub(super) fn new(display: String, initial: LoadedConfig, now: f64) -> Tracker {
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
    /// the running config and the status updated to match. `forced` (a
    /// reload request) re-validates even when the bytes are the ones seen
    /// last time.
    pub(super) fn examine(
        &mut self,
        read: Result<Vec<u8>, ReadError>,
        forced: bool,
        now: f64,
    ) -> Decision {
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

#[cfg(test)]
mod tests {
    use std::io;

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
        // A reload request re-validates, and the error stays.
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
    fn a_reload_request_on_unchanged_bytes_revalidates_without_a_new_config() {
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
}
