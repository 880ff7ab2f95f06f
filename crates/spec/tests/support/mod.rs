//! Code shared by the integration tests and the fuzz command.
pub mod fuzz;
