//! Process exit codes. Stable: scripts and CI depend on them.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success: valid config / no drift / converged / request accepted |
//! | 1    | error: AWS unreachable or refused, a read failed (the answer would be partial), a change failed; the control API refused or is unreachable |
//! | 2    | `plan`: drift found; `apply`, `sync --wait`: drift remains after the pass |
//! | 64   | usage error (unknown flag, missing argument, no control token) |
//! | 78   | the config file is invalid or unreadable (EX_CONFIG) |
//! | 130  | `run`: a second SIGTERM/SIGINT cut the graceful shutdown short |

pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
pub const DRIFT: u8 = 2;
pub const USAGE: u8 = 64;
pub const CONFIG: u8 = 78;
pub const SIGNALLED: u8 = 130;
