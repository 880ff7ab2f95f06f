//! Leader election without extra infrastructure: among the RUNNING tasks
//! of the ECS service a copy runs in, the oldest (by `startedAt`, then
//! ARN) leads. Every copy computes the same answer from the same reads, so
//! at most one writes; when the leader's task stops, the next oldest takes
//! over at its next pass.

use aws_sdk_ecs::types::DesiredStatus;

use crate::Aws;
use crate::error::AwsError;
use crate::observe::{describe_tasks, list_task_arns};

/// What one election read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// The leading task's ARN, if any task is running.
    pub leader: Option<String>,
    /// The service whose tasks compete (`None`: a standalone task, which
    /// leads alone while it runs).
    pub service: Option<String>,
    /// Whether this copy's task was found with last and desired status
    /// both RUNNING.
    pub own_task_running: bool,
}

impl Election {
    /// Whether the task `own_task_arn` leads: it is running and is the
    /// leader found.
    pub fn is_leader(&self, own_task_arn: &str) -> bool {
        self.own_task_running && self.leader.as_deref() == Some(own_task_arn)
    }
}

/// Reads the election for the task `own_task_arn` in `cluster`.
pub async fn elect(aws: &Aws, cluster: &str, own_task_arn: &str) -> Result<Election, AwsError> {
    aws.take("ecs", "DescribeTasks").await;
    let own = aws
        .sdk
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(own_task_arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ecs", "DescribeTasks", &e))?;
    let Some(task) = own.tasks().first() else {
        return Ok(Election {
            leader: None,
            service: None,
            own_task_running: false,
        });
    };
    let own_task_running =
        task.last_status() == Some("RUNNING") && task.desired_status() == Some("RUNNING");
    let Some(service) = task.group().and_then(|g| g.strip_prefix("service:")) else {
        return Ok(Election {
            leader: own_task_running.then(|| own_task_arn.to_string()),
            service: None,
            own_task_running,
        });
    };

    let arns = list_task_arns(aws, cluster, Some(service), DesiredStatus::Running).await?;
    let mut candidates = Vec::new();
    for task in describe_tasks(aws, cluster, &arns).await? {
        if task.last_status() != Some("RUNNING") {
            continue;
        }
        let Some(arn) = task.task_arn() else { continue };
        let started = task
            .started_at()
            .or(task.created_at())
            .map(|t| (t.secs(), t.subsec_nanos()))
            .unwrap_or((i64::MAX, 0));
        candidates.push((started, arn.to_string()));
    }
    candidates.sort();
    Ok(Election {
        leader: candidates.into_iter().next().map(|(_, arn)| arn),
        service: Some(service.to_string()),
        own_task_running,
    })
}
