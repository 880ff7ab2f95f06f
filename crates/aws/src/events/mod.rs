//! Event-driven drift detection: EventBridge events (ECS state changes and
//! CloudTrail API calls) arrive through an SQS queue ([`queue`]) and are
//! parsed ([`parse`]) into triggers for scoped passes.

pub mod parse;
pub mod queue;

pub use ecs_reconciler_plan::events::QueueHealth;
pub use parse::parse_message;
pub use queue::{EventQueue, EventSink, Received};

pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
