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
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept descriptions of a complete listing of `cluster`, in its
    /// order (`None` where there is none), forgetting every kept one the
    /// listing no longer shows. Kept entries move, they are not rebuilt:
    /// the only copy made is the one handed out.
    pub fn served(&self, cluster: &str, listed: &[String]) -> Vec<Option<T>> {
        let mut clusters = self.lock();
        let mut old = clusters.remove(cluster).unwrap_or_default();
        let mut kept = HashMap::with_capacity(old.len().min(listed.len()));
        let served = listed
            .iter()
            .map(|arn| {
                let (arn, item) = old.remove_entry(arn.as_str())?;
                let copy = item.clone();
                kept.insert(arn, item);
                Some(copy)
            })
            .collect();
        clusters.insert(cluster.to_string(), kept);
        served
    }

    /// Keeps new descriptions of `cluster` (drawn from the listing last
    /// passed to [`Described::served`]).
    pub fn add<'a>(&self, cluster: &str, items: impl Iterator<Item = (&'a String, &'a T)>)
    where
        T: 'a,
    {
        let mut clusters = self.lock();
        let kept = clusters.entry(cluster.to_string()).or_default();
        for (arn, item) in items.filter(|(arn, _)| !arn.is_empty()) {
            kept.insert(arn.clone(), item.clone());
        }
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
            started_by: None,
        }
    }

    /// One pass of `list_tasks`: serve what is kept, keep what is newly
    /// described and serving.
    fn pass(cache: &Described<LiveTask>, listed: &[LiveTask]) -> Vec<String> {
        let arns: Vec<String> = listed.iter().map(|t| t.arn.clone()).collect();
        let served = cache.served("main", &arns);
        let fresh: Vec<&LiveTask> = listed
            .iter()
            .zip(&served)
            .filter(|(_, kept)| kept.is_none())
            .map(|(t, _)| t)
            .collect();
        cache.add(
            "main",
            fresh
                .into_iter()
                .filter(|t| t.is_serving())
                .map(|t| (&t.arn, t)),
        );
        served.into_iter().flatten().map(|t| t.arn).collect()
    }

    #[test]
    fn only_running_tasks_that_are_still_listed_are_served() {
        let cache = Described::default();
        let listed = [
            task("a", "RUNNING", "RUNNING"),
            task("b", "PENDING", "RUNNING"),
            task("c", "RUNNING", "RUNNING"),
        ];
        assert!(pass(&cache, &listed).is_empty(), "nothing kept yet");
        assert_eq!(
            pass(&cache, &listed),
            ["a", "c"],
            "a starting task is described again"
        );
        // "c" left the list (ECS is stopping it): forgotten at once.
        assert_eq!(pass(&cache, &[task("a", "RUNNING", "RUNNING")]), ["a"]);
        assert_eq!(
            pass(&cache, &listed),
            ["a"],
            "c was forgotten, b never kept"
        );
        let arns = ["a".to_string()];
        assert!(cache.served("other", &arns).iter().all(Option::is_none));
    }
}
