//! The audit trail: one JSON line per mutating call (time, resource,
//! action, before, after, reason, result, request id), so an operator can
//! answer "who changed my security group, and why"; and one line per
//! accepted control request (who asked to reconcile or confirm). Written to a file
//! (appended, flushed per line) or to stdout.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ecs_reconciler_plan::{ActionOutcome, Outcome, UnitId};

use crate::control::Origin;
use serde_json::json;

/// Where audit lines go.
pub struct AuditLog {
    sink: Box<dyn Write + Send>,
}

impl AuditLog {
    /// Appends to `path`; `-` means stdout.
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let sink: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(OpenOptions::new().create(true).append(true).open(path)?)
        };
        Ok(AuditLog { sink })
    }

    /// An audit log writing into any sink (tests).
    pub fn to_writer(sink: Box<dyn Write + Send>) -> AuditLog {
        AuditLog { sink }
    }

    /// One line per executed change. A failed write is logged, never fatal:
    /// the change has already happened.
    pub fn record_all(&mut self, outcomes: &[ActionOutcome]) {
        for outcome in outcomes {
            let line = audit_line(outcome, SystemTime::now());
            self.write_line(&line);
        }
    }

    /// [`AuditLog::record_all`], each line of a resource another caller
    /// changed saying who (`cause`: the CloudTrail caller, source IP, call
    /// and time).
    pub fn record_all_caused(
        &mut self,
        outcomes: &[ActionOutcome],
        who: &std::collections::BTreeMap<UnitId, crate::events::Attribution>,
    ) {
        for outcome in outcomes {
            let mut line = audit_line(outcome, SystemTime::now());
            if let (Some(by), Some(fields)) = (who.get(&outcome.change.owner), line.as_object_mut())
            {
                fields.insert("cause".into(), json!(by));
            }
            self.write_line(&line);
        }
    }

    /// One line per accepted control request (reconcile now, confirm):
    /// who asked, and for what.
    pub fn record_request(&mut self, action: &str, origin: &Origin, resources: &[UnitId]) {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let line = json!({
            "time": time,
            "action": action,
            "origin": origin,
            "resources": resources,
            "result": "accepted",
        });
        self.write_line(&line);
    }

    /// One line in one write: a reader tailing the file never sees half a
    /// line (several writes of one line could interleave with its read).
    fn write_line(&mut self, line: &serde_json::Value) {
        let text = format!("{line}\n");
        if let Err(err) = self
            .sink
            .write_all(text.as_bytes())
            .and_then(|()| self.sink.flush())
        {
            tracing::error!(error = %err, "cannot write the audit log");
        }
    }
}

/// The JSON of one audit line.
pub fn audit_line(outcome: &ActionOutcome, at: SystemTime) -> serde_json::Value {
    let change = &outcome.change;
    let (result, request_id, error) = match &outcome.outcome {
        Outcome::Applied { request_id } => ("applied", request_id.clone(), None),
        Outcome::AlreadyDone => ("already-done", None, None),
        Outcome::Skipped { reason } => ("skipped", None, Some(reason.clone())),
        Outcome::Failed { error, .. } => ("failed", None, Some(error.clone())),
    };
    let time = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    json!({
        "time": time,
        "resource": change.resource,
        "owner": change.owner,
        "action": change.kind,
        "before": change.before,
        "after": change.after,
        "reason": change.reason,
        "result": result,
        "request_id": request_id,
        "error": error,
    })
}
