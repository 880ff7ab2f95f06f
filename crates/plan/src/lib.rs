//! The pure core of ecs-reconciler: live-state snapshot types, actions, and
//! the diff `desired × snapshot → ordered actions`. No I/O, no AWS types:
//! everything here is testable with plain values.

pub mod action;
pub mod attachments;
pub mod deployments;
pub mod drastic;
pub mod events;
pub mod failure;
pub mod gate;
pub mod plan;
pub mod quota;
pub mod rules;
pub mod services;
pub mod sightings;
pub mod simulate;
pub mod snapshot;
pub mod targets;
pub mod unit;
pub mod view;

pub use action::{
    Action, ActionOutcome, Change, Disposition, GroupListNotice, HoldReason, Outcome,
};
pub use drastic::{DrasticChange, drastic_changes, hold_drastic, takes_away};
pub use failure::{ErrorClass, Unread};
pub use gate::{GateInput, GateOutcome, HeldKey, Verdict, gate};
pub use plan::{Address, Plan, Unknown, change_key, plan, plan_with};
pub use sightings::{Direction, OwnWrites, SightingKey, Sightings};
pub use snapshot::*;
pub use unit::{ParseUnitIdError, UnitId, UnitKind, unit_ids, unit_modes};
