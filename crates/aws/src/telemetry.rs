//! Counting every AWS call without touching each call site: an SDK
//! interceptor on all three clients reports each operation (service,
//! operation, result, error code, duration) and each throttled attempt
//! (the SDK retries throttles itself, so they are invisible otherwise) to a
//! [`CallObserver`]. Labels are bounded: service, operation, error code.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::error::{ErrorKind, classify_code};

/// One finished AWS operation (retries included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `ecs`, `ec2` or `elbv2` (`other` for an SDK service name it does
    /// not recognise).
    pub service: &'static str,
    /// The API operation, e.g. `DescribeServices` (`unknown` without SDK
    /// metadata).
    pub operation: String,
    /// Whether the operation returned its output.
    pub ok: bool,
    /// For a failed operation: AWS's error code, `HTTP<status>` when the
    /// response names none, `NoResponse` when none came; `None` on success.
    pub error_code: Option<String>,
    /// From the start of the operation to its end, retries included.
    pub duration: Duration,
}

/// Receives call records (the metrics registry implements it).
pub trait CallObserver: Send + Sync + 'static {
    /// One finished operation.
    fn call(&self, record: &CallRecord);
    /// One attempt AWS answered with a throttling error code (the SDK
    /// retries it; the operation's record comes later).
    fn throttled_attempt(&self, service: &'static str, operation: &str);
}

#[derive(Debug)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The interceptor registered on every client.
#[derive(Clone)]
pub struct CallInterceptor {
    observer: Arc<dyn CallObserver>,
}

impl fmt::Debug for CallInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallInterceptor")
    }
}

impl CallInterceptor {
    /// An interceptor reporting to `observer`.
    pub fn new(observer: Arc<dyn CallObserver>) -> CallInterceptor {
        CallInterceptor { observer }
    }
}

/// Our short service label from the SDK's service name.
fn service_label(service: &str) -> &'static str {
    let lower = service.to_ascii_lowercase();
    if lower.contains("elastic") || lower.contains("elb") {
        "elbv2"
    } else if lower.contains("ec2") {
        "ec2"
    } else if lower.contains("ecs") {
        "ecs"
    } else if lower.contains("sqs") {
        "sqs"
    } else if lower.contains("autoscaling") || lower.contains("auto scaling") {
        "application-autoscaling"
    } else {
        "other"
    }
}

fn names(cfg: &ConfigBag) -> (&'static str, String) {
    match cfg.load::<Metadata>() {
        Some(meta) => (service_label(meta.service()), meta.name().to_string()),
        None => ("other", "unknown".to_string()),
    }
}

/// The AWS error code of an error response: the JSON protocol's
/// `x-amzn-errortype` header (ECS), or `<Code>` in the XML body (EC2,
/// ELBv2).
pub fn error_code(response: &Response) -> Option<String> {
    if response.status().is_success() {
        return None;
    }
    if let Some(kind) = response.headers().get("x-amzn-errortype") {
        return Some(kind.split(':').next().unwrap_or(kind).to_string());
    }
    let body = std::str::from_utf8(response.body().bytes()?).ok()?;
    if let Some(start) = body.find("<Code>") {
        let rest = &body[start + 6..];
        return Some(rest[..rest.find("</Code>")?].to_string());
    }
    if let Some(start) = body.find("\"__type\"") {
        let rest = &body[start + 8..];
        let open = rest.find('"')? + 1;
        let value = &rest[open..];
        let value = &value[..value.find('"')?];
        return Some(value.rsplit('#').next().unwrap_or(value).to_string());
    }
    Some(format!("HTTP{}", response.status().as_u16()))
}

impl Intercept for CallInterceptor {
    fn name(&self) -> &'static str {
        "ecs-reconciler-call-telemetry"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(response) = context.response()
            && classify_code(error_code(response).as_deref()) == ErrorKind::Throttled
            && !response.status().is_success()
        {
            let (service, operation) = names(cfg);
            self.observer.throttled_attempt(service, &operation);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = names(cfg);
        let duration = cfg
            .load::<Started>()
            .map(|s| s.0.elapsed())
            .unwrap_or_default();
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        let error_code = if ok {
            None
        } else {
            Some(
                context
                    .response()
                    .and_then(error_code)
                    .unwrap_or_else(|| "NoResponse".to_string()),
            )
        };
        self.observer.call(&CallRecord {
            service,
            operation,
            ok,
            error_code,
            duration,
        });
        Ok(())
    }
}
