//! Building the three SDK clients ([`SdkClients`]) from aws-config's
//! default chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, ECS task
//! credentials...), with the standard retry mode and explicit timeouts, and
//! [`Aws`]: those clients together with the state every call shares (the
//! API budget, what observation remembers across passes).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use std::sync::Arc;

use crate::budget::{ApiBudget, ApiClass, BudgetSettings};
use crate::memory::ObservationMemory;
use crate::telemetry::{CallInterceptor, CallObserver};

/// Quiet target groups re-read per pass by default: up to 10 groups are
/// read every pass, 100 at least every 10 passes (5 min at the default
/// resync), and a pass's ELBv2 reads stay within the default budget's burst.
pub const DEFAULT_TARGET_HEALTH_ROTATION: usize = 10;

/// Retry and timeout settings; the defaults suit a controller that would
/// rather report "unknown" and retry next pass than hang.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Overrides the region of the default chain.
    pub region: Option<String>,
    /// Attempts per call, first one included (standard retry mode).
    pub max_attempts: u32,
    /// Establishing a connection (3 s by default).
    pub connect_timeout: Duration,
    /// One HTTP attempt.
    pub attempt_timeout: Duration,
    /// A whole call, retries included.
    pub operation_timeout: Duration,
    /// Items per page of the paginated list calls (ListTasks,
    /// ListContainerInstances, DescribeSecurityGroupRules); `None` = the
    /// largest each API allows. Smaller pages only cost more calls: the
    /// end-to-end tests use it to fail a second page on purpose.
    pub page_size: Option<i32>,
    /// Client-side API budgets (token buckets per rate class).
    pub budget: BudgetSettings,
    /// Quiet target groups whose health is re-read per pass, in rotation
    /// (see [`crate::memory::target_reads`]); 0 = every group every pass.
    pub target_health_rotation: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            region: None,
            max_attempts: 3,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            page_size: None,
            budget: BudgetSettings::default(),
            target_health_rotation: DEFAULT_TARGET_HEALTH_ROTATION,
        }
    }
}

/// The three SDK clients and nothing else: no state, cheap to clone.
#[derive(Debug, Clone)]
pub struct SdkClients {
    /// EC2: security groups and their rules, instances.
    pub ec2: aws_sdk_ec2::Client,
    /// ECS: services, tasks, task definitions, container instances.
    pub ecs: aws_sdk_ecs::Client,
    /// ELBv2: load balancers, listeners, target groups and their targets.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// Application Auto Scaling: services' scalable targets (`init`).
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
}

impl SdkClients {
    /// Loads the shared config from the default chain, reporting every
    /// call to `observer`; also returns the region it found. Standard retry
    /// mode on purpose: adaptive mode in this SDK release sleeps ~20 s after
    /// a single throttle, which would stall a whole pass.
    pub async fn from_env(
        settings: &ClientSettings,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> (SdkClients, Option<String>) {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .operation_timeout(settings.operation_timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let interceptor = observer.map(CallInterceptor::new);
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&shared);
        let mut ecs = aws_sdk_ecs::config::Builder::from(&shared);
        let mut elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(&shared);
        let mut autoscaling = aws_sdk_applicationautoscaling::config::Builder::from(&shared);
        if let Some(interceptor) = interceptor {
            ec2 = ec2.interceptor(interceptor.clone());
            ecs = ecs.interceptor(interceptor.clone());
            elbv2 = elbv2.interceptor(interceptor.clone());
            autoscaling = autoscaling.interceptor(interceptor);
        }
        let clients = SdkClients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            ecs: aws_sdk_ecs::Client::from_conf(ecs.build()),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2.build()),
            autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(autoscaling.build()),
        };
        (clients, shared.region().map(ToString::to_string))
    }
}

/// The controller's access to AWS: the SDK clients, the API budget every
/// call draws on, and what observation remembers across passes. Clones
/// share the budget and the memory.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The SDK clients every call goes through.
    pub sdk: SdkClients,
    /// The region the clients talk to, for messages.
    pub region: Option<String>,
    /// See [`ClientSettings::page_size`].
    pub page_size: Option<i32>,
    /// Every call takes a token of its class first.
    pub budget: Arc<ApiBudget>,
    /// What observation keeps between passes (see [`crate::memory`]).
    pub(crate) memory: Arc<ObservationMemory>,
}

impl Aws {
    /// Clients from the default chain (see [`SdkClients::from_env`]).
    pub async fn from_env(settings: &ClientSettings) -> Aws {
        Aws::from_env_observed(settings, None).await
    }

    /// Like [`Aws::from_env`], reporting every call to `observer`.
    pub async fn from_env_observed(
        settings: &ClientSettings,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Aws {
        let (sdk, region) = SdkClients::from_env(settings, observer).await;
        Aws::new(sdk, region, settings)
    }

    /// `sdk` with a fresh budget and empty memory, as `settings` say
    /// (their connection fields are the clients' business, not read here).
    pub fn new(sdk: SdkClients, region: Option<String>, settings: &ClientSettings) -> Aws {
        Aws {
            sdk,
            region,
            page_size: settings.page_size,
            budget: Arc::new(ApiBudget::new(&settings.budget)),
            memory: Arc::new(ObservationMemory::new(settings.target_health_rotation)),
        }
    }

    /// Waits for a token of the call's rate class (see [`crate::budget`]).
    pub async fn take(&self, service: &str, operation: &str) {
        self.budget.acquire(ApiClass::of(service, operation)).await;
    }
}
