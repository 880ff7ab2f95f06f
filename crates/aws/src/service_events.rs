//! Dropping ECS service events from DescribeServices responses before the
//! SDK parses them. ECS returns up to 100 recent events per service (the
//! bulk of each service's JSON: ~150 bytes each, 15 KB a service at the
//! cap), and the controller reads none of them; at 1,000 services that is
//! megabytes a pass decoded into strings and timestamps only to be dropped.
//! An interceptor on the DescribeServices call wraps the response body; the
//! wrapper buffers it (the SDK buffers it anyway) and cuts every `events`
//! member out of the service objects with a string-aware scan. Anything it
//! does not recognise — an error status, a body that is not the expected
//! shape — passes through untouched, so the SDK still sees and reports it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

/// Registered on DescribeServices calls only (`customize().interceptor`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DropServiceEvents;

impl Intercept for DropServiceEvents {
    fn name(&self) -> &'static str {
        "DropServiceEvents"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if !response.status().is_success() {
            return Ok(());
        }
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = body.map(|inner| {
            SdkBody::from_body_1_x(EventlessBody {
                inner: Box::pin(inner),
                buffered: BytesMut::new(),
                trailers: None,
                finished: false,
            })
        });
        Ok(())
    }
}

/// The response body, buffered whole and handed on without its events.
struct EventlessBody {
    inner: Pin<Box<SdkBody>>,
    buffered: BytesMut,
    /// A non-data frame seen before the end, handed on after the data.
    trailers: Option<Frame<Bytes>>,
    finished: bool,
}

impl Body for EventlessBody {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(this.trailers.take().map(Ok));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.buffered.extend_from_slice(&data),
                    Err(other) => this.trailers = Some(other),
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    this.finished = true;
                    let whole = std::mem::take(&mut this.buffered).freeze();
                    let slim = without_service_events(&whole).map_or(whole, Bytes::from);
                    return Poll::Ready(Some(Ok(Frame::data(slim))));
                }
            }
        }
    }
}

/// Nesting depth of a service object's members in
/// `{"services":[{…}],"failures":[…]}`.
const SERVICE_MEMBER_DEPTH: usize = 3;

/// The response with every `"events": …` member of the objects at the
/// service level removed (and its separating comma); `None` when there is
/// none or the text is not well-formed enough to cut safely, in which case
/// the caller keeps the original.
pub(crate) fn without_service_events(json: &[u8]) -> Option<Vec<u8>> {
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    // For each open container: is it an object?
    let mut stack: Vec<bool> = Vec::new();
    // Where the last comma between members of the current service-level
    // object is, to remove it when the cut member is the last one.
    let mut comma_before: Option<usize> = None;
    let mut expecting_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i)?;
                let at_member = expecting_key
                    && stack.len() == SERVICE_MEMBER_DEPTH
                    && stack.last() == Some(&true);
                if at_member && &json[i + 1..end] == b"events" {
                    let colon = skip_whitespace(json, end + 1);
                    if json.get(colon) != Some(&b':') {
                        return None;
                    }
                    let value_start = skip_whitespace(json, colon + 1);
                    let value_end = value_end(json, value_start)?;
                    let after = skip_whitespace(json, value_end);
                    match json.get(after) {
                        // Not the last member: cut it and the comma after.
                        Some(b',') => cuts.push((i, after + 1)),
                        // The last member: cut the comma before, if any.
                        Some(b'}') => cuts.push((comma_before.unwrap_or(i), value_end)),
                        _ => return None,
                    }
                    expecting_key = false;
                    i = value_end;
                    continue;
                }
                expecting_key = false;
                i = end + 1;
                continue;
            }
            b'{' => {
                stack.push(true);
                expecting_key = true;
                if stack.len() == SERVICE_MEMBER_DEPTH {
                    comma_before = None;
                }
            }
            b'[' => {
                stack.push(false);
                expecting_key = false;
            }
            b'}' | b']' => {
                stack.pop()?;
                expecting_key = false;
            }
            b',' => {
                let in_object = stack.last() == Some(&true);
                expecting_key = in_object;
                if in_object && stack.len() == SERVICE_MEMBER_DEPTH {
                    comma_before = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if cuts.is_empty() || !stack.is_empty() {
        return None;
    }
    let removed: usize = cuts.iter().map(|(start, end)| end - start).sum();
    let mut out = Vec::with_capacity(json.len() - removed);
    let mut from = 0;
    for (start, end) in cuts {
        // Overlapping cuts (a duplicated key) are not worth handling.
        if start < from {
            return None;
        }
        out.extend_from_slice(&json[from..start]);
        from = end;
    }
    out.extend_from_slice(&json[from..]);
    Some(out)
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while i < json.len() && matches!(json[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// One past the end of the JSON value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match *json.get(start)? {
        b'"' => Some(string_end(json, start)? + 1),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < json.len() {
                match json[i] {
                    b'"' => {
                        i = string_end(json, i)?;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = start;
            while i < json.len() && !matches!(json[i], b',' | b'}' | b']') {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The response parsed, with the service objects' `events` removed.
    fn expected(response: &Value) -> Value {
        let mut expected = response.clone();
        for service in expected["services"].as_array_mut().unwrap() {
            service.as_object_mut().unwrap().remove("events");
        }
        expected
    }

    fn slimmed(text: &str) -> Option<Value> {
        without_service_events(text.as_bytes())
            .map(|out| serde_json::from_slice(&out).expect("still valid JSON"))
    }

    fn event(message: &str) -> Value {
        json!({"id": "e1", "createdAt": 1.7e9, "message": message})
    }

    #[test]
    fn events_go_wherever_they_sit_and_the_rest_stays_byte_for_byte() {
        let response = json!({
            "services": [
                {"serviceName": "a", "events": [event("(service a) has reached a steady state.")], "desiredCount": 2},
                {"events": [], "serviceName": "b"},
                {"serviceName": "c", "runningCount": 1, "events": [event("x"), event("y")]},
                {"serviceName": "d"},
            ],
            "failures": [{"arn": "arn:aws:ecs:::service/e", "reason": "MISSING"}],
        });
        let text = serde_json::to_string(&response).unwrap();
        assert_eq!(slimmed(&text), Some(expected(&response)));
        let pretty = serde_json::to_string_pretty(&response).unwrap();
        assert_eq!(slimmed(&pretty), Some(expected(&response)));
    }

    #[test]
    fn strings_that_look_like_json_do_not_confuse_the_scan() {
        let tricky = r#"a "quoted" \ {"events":[1]}, ] } \"#;
        let response = json!({
            "services": [{
                "serviceName": "events",
                "tags": [{"key": "events", "value": tricky}],
                "deployments": [{"events": "not a service member", "rolloutStateReason": tricky}],
                "events": [event(tricky), event("}]},{\"events\":")],
                "status": "ACTIVE",
            }],
            "failures": [],
        });
        let text = serde_json::to_string(&response).unwrap();
        let out = slimmed(&text).unwrap();
        assert_eq!(out, expected(&response));
        assert_eq!(
            out["services"][0]["deployments"][0]["events"],
            "not a service member"
        );
    }

    #[test]
    fn nothing_to_cut_or_malformed_text_is_left_alone() {
        assert_eq!(
            slimmed(r#"{"services":[{"serviceName":"a"}],"failures":[]}"#),
            None
        );
        assert_eq!(slimmed(r#"{"services":[],"failures":[]}"#), None);
        // Truncated, or an unterminated string: the SDK reports it, not us.
        assert_eq!(slimmed(r#"{"services":[{"events":[{"id":"1"}]"#), None);
        assert_eq!(
            slimmed(r#"{"services":[{"events":["unterminated]}]}"#),
            None
        );
        assert_eq!(slimmed(r#"{"services":[{"events" [1]}]}"#), None);
        assert_eq!(slimmed(""), None);
        // A duplicated key: left for the SDK to decide.
        assert_eq!(slimmed(r#"{"services":[{"events":[],"events":[]}]}"#), None);
    }

    #[test]
    fn a_full_page_of_services_with_a_hundred_events_each_shrinks_to_its_fields() {
        let service = |n: usize| {
            json!({
                "serviceName": format!("svc-{n}"),
                "status": "ACTIVE",
                "desiredCount": 10,
                "events": (0..100).map(|e| event(&format!("(service svc-{n}) event {e}"))).collect::<Vec<_>>(),
            })
        };
        let response =
            json!({"services": (0..10).map(service).collect::<Vec<_>>(), "failures": []});
        let text = serde_json::to_string(&response).unwrap();
        let out = without_service_events(text.as_bytes()).unwrap();
        assert!(
            out.len() * 20 < text.len(),
            "{} of {} bytes left",
            out.len(),
            text.len()
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            expected(&response)
        );
    }

    /// Events the SDK cannot parse (a timestamp that is not one): the call
    /// succeeds only if they are cut before the SDK sees them.
    const UNPARSABLE_EVENTS: &str = r#"{"services":[{"serviceName":"api","status":"ACTIVE","desiredCount":2,"events":[{"id":"1","createdAt":"not a timestamp","message":"m"}]}],"failures":[]}"#;

    #[tokio::test]
    async fn the_interceptor_cuts_events_before_the_sdk_parses_them() {
        let (ecs, _) = crate::test_server::ecs_serving(vec![UNPARSABLE_EVENTS]).await;

        let plain = ecs
            .describe_services()
            .cluster("c")
            .services("api")
            .send()
            .await;
        assert!(
            plain.is_err(),
            "the canned events must be unparsable: {plain:?}"
        );

        let out = ecs
            .describe_services()
            .cluster("c")
            .services("api")
            .customize()
            .interceptor(DropServiceEvents)
            .send()
            .await
            .expect("parsed without the events");
        let service = &out.services()[0];
        assert_eq!(service.service_name(), Some("api"));
        assert_eq!(service.desired_count(), 2);
        assert!(service.events().is_empty());
    }
}
