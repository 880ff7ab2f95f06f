//! Client-side API budgets: one token bucket per AWS rate class, so the
//! controller slows itself down before AWS throttles the account (whose
//! buckets every other tool shares).
//!
//! Each class defaults to a share (50%) of the bucket AWS documents for it;
//! every request takes one token before it is sent, each page of a list
//! included. Retries are sent by the SDK on the first attempt's token (the
//! SDK's own retry quota bounds those). A call that finds the bucket empty
//! waits for the next token instead of failing. Headroom (tokens left / burst) is
//! exported as metrics and shown on the dashboard.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The AWS rate buckets the controller draws from. ECS buckets are per
/// category of actions, as AWS documents them ("Request throttling for the
/// Amazon ECS API"): service reads and cluster-resource reads (tasks,
/// container instances) fill from separate buckets, so they are budgeted
/// separately too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiClass {
    /// ECS "service read actions": DescribeServices, ListServices.
    EcsServiceRead,
    /// ECS "cluster resource read actions": ListTasks, DescribeTasks,
    /// ListContainerInstances, DescribeContainerInstances.
    EcsClusterResourceRead,
    /// Every other ECS read (DescribeTaskDefinition, DescribeClusters, ...).
    EcsRead,
    /// ECS "service modify actions": UpdateService.
    EcsWrite,
    /// EC2 Describe* (non-mutating actions).
    Ec2Read,
    /// EC2 mutating actions: Authorize/Revoke, ModifyInstanceAttribute.
    Ec2Write,
    /// ELBv2 Describe*: one bucket for the whole account.
    ElbRead,
    /// ELBv2 RegisterTargets/DeregisterTargets and the other writes.
    ElbWrite,
    /// Application Auto Scaling reads (`init` reads services' scalable
    /// targets).
    AutoScalingRead,
}

impl ApiClass {
    /// Every class, in declaration order (one bucket each).
    pub const ALL: [ApiClass; 9] = [
        ApiClass::EcsServiceRead,
        ApiClass::EcsClusterResourceRead,
        ApiClass::EcsRead,
        ApiClass::EcsWrite,
        ApiClass::Ec2Read,
        ApiClass::Ec2Write,
        ApiClass::ElbRead,
        ApiClass::ElbWrite,
        ApiClass::AutoScalingRead,
    ];

    /// The class's name in `--api-budget`, metrics and the status API,
    /// e.g. `ecs-service-read`.
    pub fn name(self) -> &'static str {
        match self {
            ApiClass::EcsServiceRead => "ecs-service-read",
            ApiClass::EcsClusterResourceRead => "ecs-cluster-resource-read",
            ApiClass::EcsRead => "ecs-read",
            ApiClass::EcsWrite => "ecs-write",
            ApiClass::Ec2Read => "ec2-read",
            ApiClass::Ec2Write => "ec2-write",
            ApiClass::ElbRead => "elbv2-read",
            ApiClass::ElbWrite => "elbv2-write",
            ApiClass::AutoScalingRead => "autoscaling-read",
        }
    }

    /// AWS's documented bucket for this class: (burst, refill per second).
    /// ECS: service reads 100/20, cluster-resource reads 100/20, the other
    /// read categories we call (task definitions, clusters) 50/20, service
    /// modify 50/5; EC2: non-mutating 100/20, mutating 50/5; ELBv2:
    /// Describe* 40/10 for the whole account, RegisterTargets 20/4.
    /// Application Auto Scaling documents no request rate: its bucket is a
    /// conservative 10/2 of ours (`init` makes one call per 50 services).
    pub fn aws_limit(self) -> (f64, f64) {
        match self {
            ApiClass::EcsServiceRead => (100.0, 20.0),
            ApiClass::EcsClusterResourceRead => (100.0, 20.0),
            ApiClass::EcsRead => (50.0, 20.0),
            ApiClass::EcsWrite => (50.0, 5.0),
            ApiClass::Ec2Read => (100.0, 20.0),
            ApiClass::Ec2Write => (50.0, 5.0),
            ApiClass::ElbRead => (40.0, 10.0),
            ApiClass::ElbWrite => (20.0, 4.0),
            ApiClass::AutoScalingRead => (10.0, 2.0),
        }
    }

    /// The class of an operation of a service (`ecs`, `ec2`, `elbv2`).
    pub fn of(service: &str, operation: &str) -> ApiClass {
        let read = ["Describe", "List", "Get"]
            .iter()
            .any(|p| operation.starts_with(p));
        match (service, read) {
            ("ecs", true) => match operation {
                "DescribeServices" | "ListServices" => ApiClass::EcsServiceRead,
                "ListTasks"
                | "DescribeTasks"
                | "ListContainerInstances"
                | "DescribeContainerInstances"
                | "ListAttributes" => ApiClass::EcsClusterResourceRead,
                _ => ApiClass::EcsRead,
            },
            ("ecs", false) => ApiClass::EcsWrite,
            ("ec2", true) => ApiClass::Ec2Read,
            ("ec2", false) => ApiClass::Ec2Write,
            ("application-autoscaling", _) => ApiClass::AutoScalingRead,
            (_, true) => ApiClass::ElbRead,
            (_, false) => ApiClass::ElbWrite,
        }
    }
}

impl fmt::Display for ApiClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ApiClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ApiClass::ALL.iter().map(|c| c.name()).collect();
                format!("unknown API class `{s}` (one of {})", names.join(", "))
            })
    }
}

/// One class's bucket settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSettings {
    /// Capacity, in tokens (one token per call); at least 1.
    pub burst: f64,
    /// Refill rate, in tokens per second.
    pub per_second: f64,
}

/// `CLASS=BURST/PER_SECOND`, e.g. `elbv2-read=10/2.5`: one override of
/// `--api-budget`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetOverride {
    /// The class overridden.
    pub class: ApiClass,
    /// Its bucket, used as given (the share does not apply).
    pub bucket: BucketSettings,
}

impl FromStr for BudgetOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (class, rest) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: expected CLASS=BURST/PER_SECOND, e.g. elbv2-read=10/2.5")
        })?;
        let (burst, rate) = rest.split_once('/').ok_or_else(|| {
            format!("`{s}`: expected CLASS=BURST/PER_SECOND, e.g. elbv2-read=10/2.5")
        })?;
        let number = |text: &str, what: &str| -> Result<f64, String> {
            match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
                _ => Err(format!("`{s}`: {what} must be a number above 0")),
            }
        };
        Ok(BudgetOverride {
            class: class.trim().parse()?,
            bucket: BucketSettings {
                burst: number(burst, "the burst")?.max(1.0),
                per_second: number(rate, "the rate")?,
            },
        })
    }
}

/// The budgets of all classes.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// Share of AWS's documented bucket, 0 < share ≤ 1.
    pub share: f64,
    /// `--api-budget` overrides; for a class given twice, the last wins.
    pub overrides: Vec<BudgetOverride>,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            share: 0.5,
            overrides: Vec::new(),
        }
    }
}

impl BudgetSettings {
    /// The bucket of `class`: its last override, else `share` (clamped to
    /// 0.01..=1) of AWS's documented bucket, with a burst of at least 1.
    pub fn bucket(&self, class: ApiClass) -> BucketSettings {
        if let Some(o) = self.overrides.iter().rev().find(|o| o.class == class) {
            return o.bucket;
        }
        let (burst, per_second) = class.aws_limit();
        let share = self.share.clamp(0.01, 1.0);
        BucketSettings {
            burst: (burst * share).max(1.0),
            per_second: per_second * share,
        }
    }
}

struct Bucket {
    settings: BucketSettings,
    tokens: f64,
    refilled: Instant,
    calls: u64,
    waited: Duration,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.settings.per_second).min(self.settings.burst);
        self.refilled = now;
    }
}

/// A class's state, for metrics and the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetState {
    /// The rate class.
    pub class: ApiClass,
    /// Capacity, in tokens.
    pub burst: f64,
    /// Refill rate, in tokens per second.
    pub per_second: f64,
    /// Tokens left now (refilled to now).
    pub tokens: f64,
    /// Calls that took a token.
    pub calls: u64,
    /// Time calls spent waiting for a token.
    pub waited: Duration,
}

impl BudgetState {
    /// Tokens left as a share of the burst, 0..=1.
    pub fn headroom(&self) -> f64 {
        (self.tokens / self.burst).clamp(0.0, 1.0)
    }
}

/// The buckets. Cheap to share (`Arc`); `acquire` is the only await.
pub struct ApiBudget {
    buckets: Mutex<Vec<(ApiClass, Bucket)>>,
}

impl fmt::Debug for ApiBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.states()).finish()
    }
}

impl ApiBudget {
    /// One full bucket per class, as `settings` say.
    pub fn new(settings: &BudgetSettings) -> ApiBudget {
        let now = Instant::now();
        ApiBudget {
            buckets: Mutex::new(
                ApiClass::ALL
                    .into_iter()
                    .map(|class| {
                        let settings = settings.bucket(class);
                        (
                            class,
                            Bucket {
                                settings,
                                tokens: settings.burst,
                                refilled: now,
                                calls: 0,
                                waited: Duration::ZERO,
                            },
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Takes one token of `class`, waiting for it if the bucket is empty.
    pub async fn acquire(&self, class: ApiClass) {
        let started = Instant::now();
        loop {
            let wait = {
                let mut buckets = self
                    .buckets
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (_, bucket) = buckets
                    .iter_mut()
                    .find(|(c, _)| *c == class)
                    .expect("every class has a bucket");
                let now = Instant::now();
                bucket.refill(now);
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    bucket.calls += 1;
                    bucket.waited += now.saturating_duration_since(started);
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.settings.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Every class's state, its tokens refilled to now, in [`ApiClass::ALL`]
    /// order.
    pub fn states(&self) -> Vec<BudgetState> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        buckets
            .iter_mut()
            .map(|(class, bucket)| {
                bucket.refill(now);
                BudgetState {
                    class: *class,
                    burst: bucket.settings.burst,
                    per_second: bucket.settings.per_second,
                    tokens: bucket.tokens,
                    calls: bucket.calls,
                    waited: bucket.waited,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_defaults_and_overrides() {
        assert_eq!(
            ApiClass::of("ecs", "DescribeServices"),
            ApiClass::EcsServiceRead
        );
        for op in ["ListTasks", "DescribeTasks", "ListContainerInstances"] {
            assert_eq!(ApiClass::of("ecs", op), ApiClass::EcsClusterResourceRead);
        }
        assert_eq!(
            ApiClass::of("ecs", "DescribeTaskDefinition"),
            ApiClass::EcsRead
        );
        assert_eq!(ApiClass::of("ecs", "UpdateService"), ApiClass::EcsWrite);
        assert_eq!(
            ApiClass::of("ec2", "AuthorizeSecurityGroupIngress"),
            ApiClass::Ec2Write
        );
        assert_eq!(
            ApiClass::of("elbv2", "DescribeTargetHealth"),
            ApiClass::ElbRead
        );
        assert_eq!(ApiClass::of("elbv2", "RegisterTargets"), ApiClass::ElbWrite);
        let settings = BudgetSettings::default();
        assert_eq!(
            settings.bucket(ApiClass::ElbRead),
            BucketSettings {
                burst: 20.0,
                per_second: 5.0
            }
        );
        let o: BudgetOverride = "elbv2-read=10/2.5".parse().unwrap();
        let settings = BudgetSettings {
            share: 0.5,
            overrides: vec![o],
        };
        assert_eq!(
            settings.bucket(ApiClass::ElbRead),
            BucketSettings {
                burst: 10.0,
                per_second: 2.5
            }
        );
        for bad in [
            "elbv2-read",
            "elbv2-read=10",
            "sqs-read=1/1",
            "ec2-read=0/1",
            "ec2-read=1/-1",
        ] {
            assert!(bad.parse::<BudgetOverride>().is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_calls_are_paced_at_the_rate() {
        let budget = ApiBudget::new(&BudgetSettings {
            share: 1.0,
            overrides: vec!["ecs-write=3/2".parse().unwrap()],
        });
        let started = Instant::now();
        for _ in 0..3 {
            budget.acquire(ApiClass::EcsWrite).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Three more at 2 per second: 1.5 s.
        for _ in 0..3 {
            budget.acquire(ApiClass::EcsWrite).await;
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1490) && took <= Duration::from_millis(1510),
            "{took:?}"
        );
        let state = budget
            .states()
            .into_iter()
            .find(|s| s.class == ApiClass::EcsWrite)
            .unwrap();
        assert_eq!(state.calls, 6);
        assert!(state.headroom() < 0.01);
        assert!(state.waited >= Duration::from_millis(1490));
        // Other classes are untouched.
        let reads = budget
            .states()
            .into_iter()
            .find(|s| s.class == ApiClass::EcsRead)
            .unwrap();
        assert_eq!(reads.headroom(), 1.0);
        // Idle refills to the burst, never above.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let state = budget
            .states()
            .into_iter()
            .find(|s| s.class == ApiClass::EcsWrite)
            .unwrap();
        assert_eq!(state.tokens, 3.0);
    }
}
