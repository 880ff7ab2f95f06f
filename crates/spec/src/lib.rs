//! Desired state: YAML -> validated types (placeholder until the loader lands).
pub mod model;
pub use model::*;
