//! Building the three SDK clients from aws-config's default chain
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, ECS task credentials...),
//! with the standard retry mode and explicit timeouts.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::budget::{ApiBudget, ApiClass, BudgetSettings};
use crate::described::Described;
use crate::target_reads::TargetReads;
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
    /// (see [`crate::target_reads`]); 0 = every group every pass.
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

/// The SDK clients, cheap to clone.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// The region the clients talk to, for messages.
    pub region: Option<String>,
    /// See [`ClientSettings::page_size`].
    pub page_size: Option<i32>,
    /// Every call takes a token of its class first.
    pub budget: Arc<ApiBudget>,
    /// Task definitions by revision ARN. A revision never changes once
    /// registered, so one read per ARN for the life of the process is
    /// exact, not a staleness trade-off; ARNs no service uses any more are
    /// dropped after each observation.
    pub(crate) task_definitions: Arc<
        std::sync::Mutex<
            std::collections::HashMap<String, ecs_reconciler_plan::LiveTaskDefinition>,
        >,
    >,
    /// Target-health reads remembered across passes.
    pub(crate) target_reads: Arc<TargetReads>,
    /// Running tasks' descriptions, by cluster and ARN.
    pub(crate) tasks: Arc<Described<ecs_reconciler_plan::LiveTask>>,
    /// Container instances' descriptions, by cluster and ARN.
    pub(crate) container_instances: Arc<Described<ecs_reconciler_plan::LiveContainerInstance>>,
    /// Target groups in the account at the last complete listing (0 =
    /// never listed), which decides between listing and lookups by name.
    pub(crate) target_groups_in_account: Arc<AtomicUsize>,
}

impl AwsClients {
    /// Loads the shared config from the default chain. Standard retry mode
    /// on purpose: adaptive mode in this SDK release sleeps ~20 s after a
    /// single throttle, which would stall a whole pass.
    pub async fn from_env(settings: &ClientSettings) -> AwsClients {
        AwsClients::from_env_observed(settings, None).await
    }

    /// Like [`AwsClients::from_env`], reporting every call to `observer`.
    pub async fn from_env_observed(
        settings: &ClientSettings,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> AwsClients {
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
        if let Some(interceptor) = interceptor {
            ec2 = ec2.interceptor(interceptor.clone());
            ecs = ecs.interceptor(interceptor.clone());
            elbv2 = elbv2.interceptor(interceptor);
        }
        AwsClients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            ecs: aws_sdk_ecs::Client::from_conf(ecs.build()),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2.build()),
            region: shared.region().map(|r| r.to_string()),
            page_size: settings.page_size,
            budget: Arc::new(ApiBudget::new(&settings.budget)),
            task_definitions: Default::default(),
            target_reads: Arc::new(TargetReads::new(settings.target_health_rotation)),
            tasks: Arc::default(),
            container_instances: Arc::default(),
            target_groups_in_account: Arc::default(),
        }
    }

    /// Waits for a token of the call's rate class (see [`crate::budget`]).
    pub async fn take(&self, service: &str, operation: &str) {
        self.budget.acquire(ApiClass::of(service, operation)).await;
    }
}
