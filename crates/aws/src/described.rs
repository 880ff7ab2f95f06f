//! Descriptions kept across passes by ARN, per cluster, so a steady pass
//! lists tasks and container instances but describes none of them.
//!
//! Only what never changes is kept, so this is exact, not a staleness
//! trade-off — there is no bound to state:
//!
//! * **Running tasks.** What the plan uses of a task — its service,
//!   container instance and host-port bindings — is fixed once the task is
//!   RUNNING. A task is kept only when both its last and desired status are
//!   RUNNING, and served from here only while `ListTasks
//!   desiredStatus=RUNNING` still lists it: ECS sets the desired status to
//!   STOPPED the moment it decides to stop a task, which takes it off that
//!   list. Tasks still starting are described again every pass until they
//!   run.
//! * **Container instances.** A container instance's ARN names one EC2
//!   instance for its whole life; the plan reads nothing else of it. One
//!   deregistered and registered again gets a new ARN, which is described.
//!
//! Whatever the latest complete listing no longer shows is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

/// Descriptions of one kind, by cluster and ARN.
#[derive(Debug)]
pub struct Described<T> {
    clusters: Mutex<HashMap<String, HashMap<String, T>>>,
}

impl<T> Default for Described<T> {
    fn default() -> Self {
        Described {
            clusters: Mutex::default(),
        }
    }
}

impl<T: Clone> Described<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, T>>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept descriptions of the listed ARNs of `cluster`.
    pub fn take(&self, cluster: &str, listed: &[String]) -> HashMap<String, T> {
        let clusters = self.lock();
        let Some(kept) = clusters.get(cluster) else {
            return HashMap::new();
        };
        listed
            .iter()
            .filter_map(|arn| Some((arn.clone(), kept.get(arn)?.clone())))
            .collect()
    }

    /// Replaces what is kept for `cluster` with `keep`, drawn from a
    /// complete listing: everything no longer listed is dropped.
    pub fn keep<'a>(&self, cluster: &str, keep: impl Iterator<Item = (&'a String, &'a T)>)
    where
        T: 'a,
    {
        let kept: HashMap<String, T> = keep
            .filter(|(arn, _)| !arn.is_empty())
            .map(|(arn, item)| (arn.clone(), item.clone()))
            .collect();
        self.lock().insert(cluster.to_string(), kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_reconciler_plan::LiveTask;

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

    fn keep_serving(cache: &Described<LiveTask>, listed: &[LiveTask]) {
        cache.keep(
            "main",
            listed
                .iter()
                .filter(|t| t.is_serving())
                .map(|t| (&t.arn, t)),
        );
    }

    #[test]
    fn only_running_tasks_that_are_still_listed_are_served() {
        let cache = Described::default();
        let listed = [
            task("a", "RUNNING", "RUNNING"),
            task("b", "PENDING", "RUNNING"),
            task("c", "RUNNING", "RUNNING"),
        ];
        keep_serving(&cache, &listed);
        let arns: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut served: Vec<String> = cache.take("main", &arns).into_keys().collect();
        served.sort();
        assert_eq!(served, ["a", "c"], "a starting task is described again");
        // "c" left the list (ECS is stopping it): dropped on the next keep.
        keep_serving(&cache, &[task("a", "RUNNING", "RUNNING")]);
        assert!(cache.take("main", &arns).keys().all(|arn| arn == "a"));
        assert!(cache.take("other", &arns).is_empty());
    }
}
