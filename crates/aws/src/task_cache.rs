//! Described tasks by ARN, per cluster, kept across passes so a steady pass
//! lists tasks but describes none.
//!
//! What the plan uses of a task — its service, container instance and host
//! port bindings — is fixed once the task is RUNNING. A task is kept only
//! when both its last and desired status are RUNNING, and it is served from
//! here only while `ListTasks desiredStatus=RUNNING` still lists it: ECS sets
//! the desired status to STOPPED the moment it decides to stop a task, which
//! takes it off that list, so a kept description is never stale in anything
//! the plan reads. Tasks still starting are described again every pass until
//! they run. That makes this exact, not a staleness trade-off: there is no
//! bound to state.

use std::collections::HashMap;
use std::sync::Mutex;

use ecs_reconciler_plan::LiveTask;

#[derive(Debug, Default)]
pub struct TaskCache {
    clusters: Mutex<HashMap<String, HashMap<String, LiveTask>>>,
}

impl TaskCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, LiveTask>>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept descriptions of the listed tasks of `cluster`.
    pub fn take(&self, cluster: &str, listed: &[String]) -> HashMap<String, LiveTask> {
        let clusters = self.lock();
        let Some(kept) = clusters.get(cluster) else {
            return HashMap::new();
        };
        listed
            .iter()
            .filter_map(|arn| Some((arn.clone(), kept.get(arn)?.clone())))
            .collect()
    }

    /// Replaces what is kept for `cluster` with the running ones among a
    /// complete listing's tasks; everything no longer listed is dropped.
    pub fn keep<'a>(&self, cluster: &str, listed: impl Iterator<Item = &'a LiveTask>) {
        let running: HashMap<String, LiveTask> = listed
            .filter(|task| task.is_serving() && !task.arn.is_empty())
            .map(|task| (task.arn.clone(), task.clone()))
            .collect();
        self.lock().insert(cluster.to_string(), running);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arn: &str, last: &str, desired: &str) -> LiveTask {
        LiveTask {
            arn: arn.into(),
            service: Some("api".into()),
            last_status: last.into(),
            desired_status: desired.into(),
            container_instance_arn: Some("ci-1".into()),
            bindings: Vec::new(),
        }
    }

    #[test]
    fn only_running_tasks_that_are_still_listed_are_served() {
        let cache = TaskCache::default();
        let listed = [
            task("a", "RUNNING", "RUNNING"),
            task("b", "PENDING", "RUNNING"),
            task("c", "RUNNING", "RUNNING"),
        ];
        cache.keep("main", listed.iter());
        let arns: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut served: Vec<String> = cache.take("main", &arns).into_keys().collect();
        served.sort();
        assert_eq!(served, ["a", "c"], "a starting task is described again");
        // "c" left the list (ECS is stopping it): dropped on the next keep.
        cache.keep("main", [task("a", "RUNNING", "RUNNING")].iter());
        assert!(cache.take("main", &arns).keys().all(|arn| arn == "a"));
        assert!(cache.take("other", &arns).is_empty());
    }
}
