//! What each signal means, in one table: every signal becomes a
//! [`Control`] on the daemon's control channel, and the runtime decides
//! what a control does (`ecs_reconciler_runtime::control`).
//!
//! | signal | control |
//! |---|---|
//! | SIGTERM, SIGINT | [`Control::Shutdown`] (a second one: stop now, exit 130) |
//! | SIGHUP | [`Control::Reload`]: re-read the file, forget fights, re-check everything |
//! | SIGUSR1 | [`Control::ConfirmHeld`]: apply every held removal |
//!
//! The control API (`run --control-token-file`) sends the same controls.

use ecs_reconciler_runtime::control::{Control, ControlSender, Origin};
use tokio::signal::unix::{SignalKind, signal};

/// The signals the daemon answers, and the control each one sends.
const TABLE: [(SignalKind, &str, Control); 4] = [
    (SignalKind::terminate(), "SIGTERM", Control::Shutdown),
    (SignalKind::interrupt(), "SIGINT", Control::Shutdown),
    (SignalKind::hangup(), "SIGHUP", Control::Reload),
    (
        SignalKind::user_defined1(),
        "SIGUSR1",
        Control::ConfirmHeld(Origin::Signal { name: "SIGUSR1" }),
    ),
];

/// Forwards every signal of [`TABLE`] to `controls` for the life of the
/// process. A signal that cannot be watched is logged and left to its
/// default action.
pub fn forward(controls: &ControlSender) {
    for (kind, name, control) in TABLE {
        match signal(kind) {
            Ok(mut stream) => {
                let controls = controls.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        tracing::info!(signal = name, ?control, "signal received");
                        if !controls.send(control.clone()) {
                            break;
                        }
                    }
                });
            }
            Err(err) => tracing::warn!(signal = name, error = %err, "cannot watch this signal"),
        }
    }
}
