//! Who am I: the task identity from the ECS container metadata endpoint v4
//! (`$ECS_CONTAINER_METADATA_URI_V4/task`), used for leader election. The
//! agent's endpoint is plain HTTP on a link-local address: no TLS, no auth.

use serde::Deserialize;

use crate::http::{self, HttpError};

/// The environment variable ECS sets in every container.
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// This copy's task.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskIdentity {
    /// The task's ARN (the document's `TaskARN`).
    #[serde(rename = "TaskARN")]
    pub task_arn: String,
    /// The cluster the task runs in, as the document's `Cluster` gives it
    /// (an ARN on ECS).
    #[serde(rename = "Cluster")]
    pub cluster: String,
}

/// Why [`own_task`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The endpoint could not be asked (bad URL, unreachable, timeout).
    #[error("task metadata: {0}")]
    Http(#[from] HttpError),
    /// The endpoint answered with a status other than 200.
    #[error("the task metadata endpoint {url} answered HTTP {code}")]
    Status {
        /// The `{uri}/task` URL asked.
        url: String,
        /// The HTTP status code.
        code: u16,
    },
    /// The body is not a task document (JSON with `TaskARN` and `Cluster`).
    #[error("the task metadata endpoint {url} sent an unreadable document: {reason}")]
    Body {
        /// The `{uri}/task` URL asked.
        url: String,
        /// serde_json's error.
        reason: String,
    },
}

/// Reads `{uri}/task`.
pub async fn own_task(uri: &str) -> Result<TaskIdentity, MetadataError> {
    let url = format!("{}/task", uri.trim_end_matches('/'));
    let (code, body) = http::get(&url).await?;
    if code != 200 {
        return Err(MetadataError::Status { url, code });
    }
    serde_json::from_slice(&body).map_err(|e| MetadataError::Body {
        url,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::serve_once;

    #[tokio::test]
    async fn reads_the_task_arn_and_cluster() {
        let base = serve_once(
            "/v4/abc/task",
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Cluster\":\"arn:aws:ecs:us-east-1:1:cluster/c\",\"TaskARN\":\"arn:aws:ecs:us-east-1:1:task/c/t1\",\"Family\":\"x\"}",
        )
        .await;
        let task = own_task(&format!("{base}/v4/abc")).await.unwrap();
        assert_eq!(task.task_arn, "arn:aws:ecs:us-east-1:1:task/c/t1");
        assert_eq!(task.cluster, "arn:aws:ecs:us-east-1:1:cluster/c");
    }

    #[tokio::test]
    async fn errors_say_what_went_wrong() {
        let base = serve_once("/v4/abc/task", "HTTP/1.1 404 Not Found\r\n\r\n").await;
        let err = own_task(&format!("{base}/v4/abc")).await.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        let err = own_task("https://x").await.unwrap_err();
        assert!(matches!(err, MetadataError::Http(HttpError::BadUrl(_))));
    }
}
