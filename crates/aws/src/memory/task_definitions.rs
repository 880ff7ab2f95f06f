//! Task definitions by revision ARN. A revision never changes once
//! registered, so one read per ARN for the life of the process is exact,
//! not a staleness trade-off; ARNs no declared service uses any more are
//! dropped after each full observation, so at most one entry per service
//! is kept.

use std::collections::HashMap;
use std::sync::Mutex;

use ecs_reconciler_plan::LiveTaskDefinition;

/// Task definitions read in earlier passes, by revision ARN.
#[derive(Debug, Default)]
pub struct TaskDefinitions {
    by_arn: Mutex<HashMap<String, LiveTaskDefinition>>,
}

impl TaskDefinitions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveTaskDefinition>> {
        self.by_arn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The revision `arn`, if an earlier read described it.
    pub fn get(&self, arn: &str) -> Option<LiveTaskDefinition> {
        self.lock().get(arn).cloned()
    }

    /// Remembers the description of revision `arn`.
    pub fn insert(&self, arn: &str, definition: LiveTaskDefinition) {
        self.lock().insert(arn.to_string(), definition);
    }

    /// Forgets every revision `in_use` does not name.
    pub fn keep_only(&self, in_use: impl Fn(&str) -> bool) {
        self.lock().retain(|arn, _| in_use(arn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(arn: &str) -> LiveTaskDefinition {
        LiveTaskDefinition {
            arn: arn.into(),
            family: "api".into(),
            containers: Default::default(),
        }
    }

    #[test]
    fn a_revision_is_kept_until_no_service_uses_it() {
        let kept = TaskDefinitions::default();
        assert_eq!(kept.get("api:1"), None);
        kept.insert("api:1", definition("api:1"));
        kept.insert("api:2", definition("api:2"));
        assert_eq!(kept.get("api:1"), Some(definition("api:1")));
        kept.keep_only(|arn| arn == "api:2");
        assert_eq!(kept.get("api:1"), None, "no service runs it any more");
        assert_eq!(kept.get("api:2"), Some(definition("api:2")));
    }
}
