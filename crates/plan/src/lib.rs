//! The pure core of ecs-reconciler: live-state snapshot types, actions, and
//! the diff `desired × snapshot → ordered actions`. No I/O, no AWS types:
//! everything here is testable with plain values.

pub mod action;
pub mod attachments;
pub mod drastic;
pub mod plan;
pub mod rules;
pub mod services;
pub mod simulate;
pub mod snapshot;
pub mod targets;
pub mod view;

pub use action::{Action, ActionOutcome, Change, Disposition, Outcome};
pub use drastic::{DrasticChange, drastic_changes, hold_drastic, takes_away};
pub use plan::{Address, Plan, Unknown, change_key, plan};
pub use snapshot::*;
