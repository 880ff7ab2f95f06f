//! The timeline of what happened — drift found, changes made, config
//! reloads, leadership changes, errors — kept short (the last
//! [`KEEP`] entries) for late subscribers and broadcast live to the
//! dashboard's event stream.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ecs_reconciler_plan::UnitId;

use crate::events::Attribution;
use serde::Serialize;
use tokio::sync::broadcast;

/// Entries kept for replay to a new subscriber.
pub const KEEP: usize = 100;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimelineKind {
    /// Drift found.
    Drift,
    /// A change made.
    Action,
    /// A config load, or an edit's error cleared.
    Config,
    /// An edit of the file was refused; the last good config runs.
    ConfigRejected,
    /// This copy started or stopped leading.
    Leadership,
    /// A failed read or change.
    Error,
    /// A drastic config edit's removals wait for confirmation.
    Held,
    /// An operator confirmed the held removals.
    Confirmed,
    /// An operator asked to reconcile now.
    Requested,
    /// Another writer keeps undoing a correction.
    Fight,
    /// The events queue stopped working: resync covers drift meanwhile.
    QueueFailing,
    /// The events queue works (again).
    QueueReceiving,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    /// Unix seconds.
    pub time: f64,
    /// What it is about.
    pub kind: TimelineKind,
    /// The declared resource it is about, if any.
    pub unit: Option<UnitId>,
    /// What happened, for a person.
    pub message: String,
    /// Why, when there is a reason (the plan's, for a change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Who made the change it is about, when a CloudTrail event said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Attribution>,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl TimelineEvent {
    /// An entry stamped now.
    pub fn now(kind: TimelineKind, unit: Option<UnitId>, message: String) -> TimelineEvent {
        TimelineEvent {
            time: unix_now(),
            kind,
            unit,
            message,
            why: None,
            by: None,
        }
    }

    /// The same entry, with who made the change it is about.
    pub fn by(mut self, by: Option<&Attribution>) -> TimelineEvent {
        self.by = by.cloned();
        self
    }

    /// The same entry, with why it happened.
    pub fn because(mut self, why: impl Into<String>) -> TimelineEvent {
        self.why = Some(why.into());
        self
    }
}

/// Shared by the loop (writer) and the server (readers).
pub struct Timeline {
    tx: broadcast::Sender<TimelineEvent>,
    recent: Mutex<VecDeque<TimelineEvent>>,
}

impl Default for Timeline {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(256);
        Timeline {
            tx,
            recent: Mutex::new(VecDeque::with_capacity(KEEP)),
        }
    }
}

impl Timeline {
    /// Keeps `event` for replay and sends it to the live subscribers.
    pub fn push(&self, event: TimelineEvent) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        // No subscriber is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// A live subscription and the entries before it, oldest first.
    pub fn subscribe(
        &self,
        replay: usize,
    ) -> (Vec<TimelineEvent>, broadcast::Receiver<TimelineEvent>) {
        let rx = self.tx.subscribe();
        let recent = self
            .recent
            .lock()
            .map(|r| r.iter().rev().take(replay).rev().cloned().collect())
            .unwrap_or_default();
        (recent, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_entries_and_broadcasts_new_ones() {
        let timeline = Timeline::default();
        for i in 0..(KEEP + 5) {
            timeline.push(TimelineEvent::now(
                TimelineKind::Drift,
                None,
                format!("e{i}"),
            ));
        }
        let (recent, mut rx) = timeline.subscribe(3);
        let messages: Vec<_> = recent.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, vec!["e102", "e103", "e104"]);
        timeline.push(TimelineEvent::now(
            TimelineKind::Action,
            Some(UnitId::cluster("u")),
            "live".into(),
        ));
        assert_eq!(rx.recv().await.unwrap().message, "live");
    }
}
