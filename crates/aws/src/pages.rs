//! Paginated reads under the API budget: one token per request actually
//! sent.
//!
//! The SDK's paginator ends without sending anything when a page carries no
//! next token, so asking it for "the page after the last" must not cost a
//! token. Taking one there would charge every list one call it never makes:
//! twice the price of a one-page list (DescribeListeners, ListTasks of a
//! small cluster) in budgets that pace the whole pass.

use std::fmt;

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::budget::{ApiBudget, ApiClass};
use crate::error::AwsError;

/// Hands every page of `pages` to `each`, taking a token of
/// `service:operation`'s class from `budget` before each request.
/// `next_token` reads the page's continuation (`next_token`, or
/// `next_marker` for ELBv2): without one, or with an empty one, the
/// paginator stops, and so does this loop. (A repeated token also stops the
/// paginator; that rare case costs one unused token.)
pub(crate) async fn each_page<O, E, R>(
    budget: &ApiBudget,
    service: &'static str,
    operation: &'static str,
    mut pages: PaginationStream<Result<O, SdkError<E, R>>>,
    next_token: impl Fn(&O) -> Option<&str>,
    mut each: impl FnMut(O),
) -> Result<(), AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    loop {
        budget.acquire(ApiClass::of(service, operation)).await;
        let Some(page) = pages.next().await else {
            return Ok(());
        };
        let page = page.map_err(|e| AwsError::from_sdk(service, operation, &e))?;
        let more = next_token(&page).is_some_and(|token| !token.is_empty());
        each(page);
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;

    use super::*;
    use crate::budget::BudgetSettings;
    use crate::test_server;

    /// Pages the SDK paginator fetches from `bodies`, with the tokens the
    /// ECS cluster-resource bucket gave out and the requests the server saw.
    async fn list(bodies: Vec<&'static str>) -> (Result<(), AwsError>, Vec<String>, u64, usize) {
        let (ecs, requests) = test_server::ecs_serving(bodies).await;
        let budget = ApiBudget::new(&BudgetSettings::default());
        let mut arns = Vec::new();
        let pages = ecs.list_tasks().cluster("c").into_paginator().send();
        let listed = each_page(
            &budget,
            "ecs",
            "ListTasks",
            pages,
            ListTasksOutput::next_token,
            |page| arns.extend(page.task_arns().iter().cloned()),
        )
        .await;
        let tokens = budget
            .states()
            .into_iter()
            .find(|s| s.class == ApiClass::EcsClusterResourceRead)
            .unwrap()
            .calls;
        (listed, arns, tokens, requests.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn one_token_per_request_sent_and_none_after_the_last_page() {
        let (listed, arns, tokens, requests) = list(vec![
            r#"{"taskArns":["a","b"],"nextToken":"p2"}"#,
            r#"{"taskArns":["c"],"nextToken":"p3"}"#,
            r#"{"taskArns":["d"]}"#,
        ])
        .await;
        listed.expect("listed");
        assert_eq!(arns, ["a", "b", "c", "d"]);
        assert_eq!(requests, 3);
        assert_eq!(tokens, 3, "a token per request, none for the end");

        let (listed, arns, tokens, requests) = list(vec![r#"{"taskArns":["a"]}"#]).await;
        listed.expect("listed");
        assert_eq!(arns, ["a"]);
        assert_eq!(
            (requests, tokens),
            (1, 1),
            "a one-page list costs one token"
        );

        // An empty continuation ends the list too (the paginator stops on it).
        let (listed, arns, tokens, requests) =
            list(vec![r#"{"taskArns":["a"],"nextToken":""}"#]).await;
        listed.expect("listed");
        assert_eq!(arns, ["a"]);
        assert_eq!((requests, tokens), (1, 1));
    }

    #[tokio::test]
    async fn a_failed_page_is_an_error_not_a_short_list() {
        // The second page is not a ListTasks answer the SDK can parse.
        let (listed, arns, tokens, requests) = list(vec![
            r#"{"taskArns":["a"],"nextToken":"p2"}"#,
            r#"{"taskArns":7}"#,
        ])
        .await;
        let err = listed.expect_err("a page that cannot be read fails the list");
        assert_eq!(err.operation, "ListTasks");
        assert_eq!(arns, ["a"]);
        assert_eq!((requests, tokens), (2, 2));
    }
}
