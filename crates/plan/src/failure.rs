//! Why a read or a call failed, as a class the scheduler can act on: a
//! throttled call should wait for the budget, a refused one will keep
//! being refused until a person fixes IAM or the request, and a network
//! error is worth retrying soon. The AWS crate maps each service's error
//! codes onto these classes; nothing here knows an AWS type.

use std::fmt;

use serde::Serialize;

/// The class of a failed AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// Network, timeout, 5xx: worth retrying soon.
    Transient,
    /// The resource does not exist (`*NotFound*`); may be eventual
    /// consistency, so retried like a transient error.
    NotFound,
    /// Rate limited (`Throttling`, `RequestLimitExceeded`, ...): back off
    /// and let the client-side budget pace the retry.
    Throttled,
    /// The request was rejected as invalid: retrying will not help until
    /// the file or the resource changes.
    Invalid,
    /// Credentials or IAM refused it: retrying will not help until a
    /// person fixes the policy.
    Denied,
}

impl ErrorClass {
    /// Whether a person has to act before a retry can succeed.
    pub fn needs_a_person(self) -> bool {
        matches!(self, ErrorClass::Denied | ErrorClass::Invalid)
    }

    /// What an operator should know, for status and logs.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::Transient | ErrorClass::NotFound => "retried soon",
            ErrorClass::Throttled => "retried once the API budget allows",
            ErrorClass::Invalid => {
                "AWS rejected the request; retried rarely until the file or the resource changes"
            }
            ErrorClass::Denied => {
                "access denied; retried rarely until the IAM policy allows it (deploy/iam-policy.json)"
            }
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Transient => "transient",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Denied => "denied",
        })
    }
}

/// A read that failed: its class and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// What kind of failure.
    pub class: ErrorClass,
    /// What failed, in one sentence.
    pub message: String,
}

impl Unread {
    /// A failed read of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Unread {
        Unread {
            class,
            message: message.into(),
        }
    }
}

impl fmt::Display for Unread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Serialised as its message, as reads have always been reported.
impl Serialize for Unread {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.message)
    }
}
