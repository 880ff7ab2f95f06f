//! Prometheus metrics. Names follow controller-runtime where one exists
//! (`controller_runtime_reconcile_total`, `workqueue_*`) so existing Grafana
//! boards work. Every label is bounded: resource kinds, names declared in
//! the config, AWS service/operation/error code — never task ids, IPs,
//! targets or messages.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use ecs_reconciler_plan::UnitKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// The resource kind ([`UnitKind::as_str`]): `service`, `security-group`, ...
    pub controller: String,
    /// `success` or `error` (`requeue` and `requeue_after` exist, at 0, for
    /// controller-runtime boards).
    pub result: String,
}

/// A `controller` label alone (reconcile errors and times).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// The resource kind ([`UnitKind::as_str`]).
    pub controller: String,
}

/// The `name` label of the `workqueue_*` series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// Always [`QUEUE`]: the daemon has one queue.
    pub name: String,
}

/// Labels of `ecs_reconciler_control_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControlRequestLabels {
    /// `reconcile` or `confirm`.
    pub endpoint: String,
    /// `accepted`, `unauthorized`, `disabled` or `rejected`.
    pub result: String,
}

/// Labels of `ecs_reconciler_notifications_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// The webhook's `name` in the file.
    pub webhook: String,
    /// `sent`, `failed` (after retries), `dropped` or `unresolved`.
    pub result: String,
}

/// A `kind` label alone (drift and fight counters).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The resource kind ([`UnitKind::as_str`]).
    pub kind: String,
}

/// A `reason` label alone (events ignored).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why (`IgnoredBecause::as_str`).
    pub reason: String,
}

/// Labels of `ecs_reconciler_resource_in_sync`: one declared resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The resource kind ([`UnitKind::as_str`]).
    pub kind: String,
    /// Its name in the config (`cluster/name` for a service).
    pub name: String,
}

/// The label of `ecs_reconciler_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    /// The version passed to [`Metrics::new`].
    pub version: String,
}

/// Labels of `aws_api_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    /// `ecs`, `ec2`, `elbv2` (or `other`).
    pub service: String,
    /// The API operation, e.g. `DescribeServices`.
    pub operation: String,
    /// `success` or `error`.
    pub result: String,
    /// AWS's error code of a failed call (`NoResponse` when none came
    /// back); empty on success.
    pub error_code: String,
}

/// Labels of the per-operation AWS series (duration, throttles).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiOperationLabels {
    /// `ecs`, `ec2`, `elbv2` (or `other`).
    pub service: String,
    /// The API operation, e.g. `DescribeServices`.
    pub operation: String,
}

/// The label of the `ecs_reconciler_api_budget_*` series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// The AWS rate class: `ecs-service-read`, `elbv2-write`, ...
    pub class: String,
}

/// One client-side API budget (a token bucket per AWS rate class), as the
/// status API, the dashboard and the metrics show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetHeadroom {
    /// `ecs-service-read`, `elbv2-write`, ...
    pub class: String,
    /// Capacity of the bucket, in tokens (one token per call).
    pub burst: f64,
    /// Refill rate, in tokens per second.
    pub per_second: f64,
    /// Tokens left now.
    pub tokens: f64,
    /// Calls that took a token since start.
    pub calls: u64,
    /// Time calls spent waiting for a token since start.
    pub waited_seconds: f64,
}

/// Per AWS service totals, for the status API and the dashboard.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApiTotals {
    /// Operations finished (retries included in one), failed or not.
    pub calls: u64,
    /// Operations that ended in an error.
    pub errors: u64,
    /// Throttled attempts (the SDK retries them, so they are not errors).
    pub throttled: u64,
}

/// The queue's name in `workqueue_*` series.
pub const QUEUE: &str = "ecs-reconciler";

/// Every metric the daemon exports.
pub struct Metrics {
    /// `controller_runtime_reconcile_total{controller,result}`: resources
    /// reconciled by a pass, by kind and result.
    pub reconcile_total: Family<ReconcileLabels, Counter>,
    /// `controller_runtime_reconcile_errors_total{controller}`: resources
    /// whose pass ended in an error, by kind.
    pub reconcile_errors_total: Family<ControllerLabel, Counter>,
    /// `controller_runtime_reconcile_time_seconds{controller}`: the whole
    /// pass's duration, observed once per kind the pass reconciled.
    pub reconcile_time_seconds: Family<ControllerLabel, Histogram>,
    /// `workqueue_depth{name}`: resources taken into the running pass; 0
    /// once it ends.
    pub workqueue_depth: Family<QueueLabel, Gauge>,
    /// `workqueue_adds_total{name}`: resources taken into passes.
    pub workqueue_adds_total: Family<QueueLabel, Counter>,
    /// `workqueue_retries_total{name}`: resources whose pass failed (each
    /// is retried with backoff).
    pub workqueue_retries_total: Family<QueueLabel, Counter>,
    /// `workqueue_queue_duration_seconds{name}`: how long each resource
    /// taken waited past its due time.
    pub workqueue_queue_duration_seconds: Family<QueueLabel, Histogram>,
    /// `ecs_reconciler_drift_detected_total{kind}`: drift the resource's
    /// previous pass did not already report.
    pub drift_detected_total: Family<KindLabel, Counter>,
    /// `ecs_reconciler_drift_corrected_total{kind}`: actions that succeeded.
    pub drift_corrected_total: Family<KindLabel, Counter>,
    /// `ecs_reconciler_fight_detected_total{kind}`: fields found fought over
    /// (another writer keeps changing them), once per fight.
    pub fight_detected_total: Family<KindLabel, Counter>,
    /// `ecs_reconciler_group_list_changed_around_write_total{kind}`: groups
    /// another writer detached from a list this controller was about to
    /// write (`detached-before-write`), or that a read right after its
    /// write lacked (`missing-after-write`).
    pub group_list_changed_around_write_total: Family<KindLabel, Counter>,
    /// `ecs_reconciler_control_requests_total{endpoint,result}`: requests
    /// to the control API, accepted or not (a wrong token is
    /// `unauthorized`).
    pub control_requests_total: Family<ControlRequestLabels, Counter>,
    /// `ecs_reconciler_notifications_total{webhook,result}`: messages to
    /// each webhook, sent or not.
    pub notifications_total: Family<NotificationLabels, Counter>,
    /// `ecs_reconciler_resource_in_sync{kind,name}`: 1 when the resource's
    /// last pass succeeded and corrected all its drift, else 0.
    pub resource_in_sync: Family<ResourceLabels, Gauge>,
    /// `ecs_reconciler_last_successful_observation_timestamp_seconds`: unix
    /// seconds at the end of the last pass whose observation had no unknowns.
    pub last_successful_observation: Gauge<f64, AtomicU64>,
    /// `ecs_reconciler_config_last_reload_successful`: 1 when the last
    /// reload attempt found a valid file, else 0.
    pub config_last_reload_successful: Gauge,
    /// `ecs_reconciler_config_last_reload_success_timestamp_seconds`: unix
    /// seconds when the running config was accepted.
    pub config_last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// `ecs_reconciler_is_leader`: 1 when this copy leads (writes), set
    /// after each pass.
    pub is_leader: Gauge,
    /// `ecs_reconciler_build_info{version}`: always 1.
    pub build_info: Family<VersionLabel, Gauge>,
    /// `aws_api_calls_total{service,operation,result,error_code}`: finished
    /// AWS operations, retries counted within one.
    pub api_calls_total: Family<ApiCallLabels, Counter>,
    /// `aws_api_call_duration_seconds{service,operation}`: an operation's
    /// duration, retries included.
    pub api_call_duration_seconds: Family<ApiOperationLabels, Histogram>,
    /// `aws_api_call_throttled_total{service,operation}`: throttled attempts
    /// (the SDK retries them).
    pub api_call_throttled_total: Family<ApiOperationLabels, Counter>,
    /// `ecs_reconciler_api_budget_tokens{class}`: tokens left in the class's
    /// client-side bucket, as of the last pass.
    pub api_budget_tokens: Family<ClassLabel, Gauge<f64, AtomicU64>>,
    /// `ecs_reconciler_api_budget_burst{class}`: the bucket's capacity, in
    /// tokens.
    pub api_budget_burst: Family<ClassLabel, Gauge<f64, AtomicU64>>,
    /// `ecs_reconciler_api_budget_wait_seconds_total{class}`: time calls
    /// waited for a token, in seconds.
    pub api_budget_wait_seconds: Family<ClassLabel, Counter<f64, AtomicU64>>,
    /// `ecs_reconciler_events_received_total`: events taken from the
    /// queue (parsed or not).
    pub events_received_total: Counter,
    /// `ecs_reconciler_events_ignored_total{reason}`: events that caused
    /// nothing (unparseable, failed-call, own-write, duplicate, unrelated).
    pub events_ignored_total: Family<ReasonLabel, Counter>,
    /// `ecs_reconciler_events_triggering_total`: events that caused a pass.
    pub events_triggering_total: Counter,
    /// `ecs_reconciler_event_lag_seconds`: the event's time to its arrival.
    pub event_lag_seconds: Histogram,
    /// `ecs_reconciler_event_queue_up`: 1 while the events queue can be
    /// read, 0 while it fails (resync covers drift); absent without one.
    pub event_queue_up: Gauge,
    api_totals: Mutex<BTreeMap<String, ApiTotals>>,
    /// Webhook → result → messages, for the status document.
    notification_totals: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    budget_waited: Mutex<BTreeMap<String, f64>>,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 14)
}

impl Metrics {
    /// Creates the metrics and registers them (and the process collector).
    pub fn new(version: &str) -> (std::sync::Arc<Metrics>, Registry) {
        let histogram = || Histogram::new(seconds_buckets());
        let metrics = Metrics {
            reconcile_total: Family::default(),
            reconcile_errors_total: Family::default(),
            reconcile_time_seconds: Family::new_with_constructor(histogram),
            workqueue_depth: Family::default(),
            workqueue_adds_total: Family::default(),
            workqueue_retries_total: Family::default(),
            workqueue_queue_duration_seconds: Family::new_with_constructor(histogram),
            drift_detected_total: Family::default(),
            drift_corrected_total: Family::default(),
            fight_detected_total: Family::default(),
            group_list_changed_around_write_total: Family::default(),
            control_requests_total: Family::default(),
            notifications_total: Family::default(),
            resource_in_sync: Family::default(),
            last_successful_observation: Gauge::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            is_leader: Gauge::default(),
            build_info: Family::default(),
            api_calls_total: Family::default(),
            api_call_duration_seconds: Family::new_with_constructor(histogram),
            api_call_throttled_total: Family::default(),
            api_budget_tokens: Family::default(),
            api_budget_burst: Family::default(),
            api_budget_wait_seconds: Family::default(),
            events_received_total: Counter::default(),
            events_ignored_total: Family::default(),
            events_triggering_total: Counter::default(),
            // 50 ms to about 7 minutes: EventBridge is sub-second,
            // CloudTrail minutes.
            event_lag_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            event_queue_up: Gauge::default(),
            api_totals: Mutex::new(BTreeMap::new()),
            notification_totals: Mutex::new(BTreeMap::new()),
            budget_waited: Mutex::new(BTreeMap::new()),
        };
        // Pre-initialise so dashboards and alerts see 0, not "no data".
        for kind in UnitKind::ALL.map(UnitKind::as_str) {
            for result in ["success", "error", "requeue", "requeue_after"] {
                metrics
                    .reconcile_total
                    .get_or_create(&ReconcileLabels {
                        controller: kind.into(),
                        result: result.into(),
                    })
                    .inc_by(0);
            }
            let controller = ControllerLabel {
                controller: kind.into(),
            };
            metrics
                .reconcile_errors_total
                .get_or_create(&controller)
                .inc_by(0);
            // A histogram series exists (with zero counts) once created.
            let _ = metrics.reconcile_time_seconds.get_or_create(&controller);
            let kind_label = KindLabel { kind: kind.into() };
            metrics
                .drift_detected_total
                .get_or_create(&kind_label)
                .inc_by(0);
            metrics
                .drift_corrected_total
                .get_or_create(&kind_label)
                .inc_by(0);
            metrics
                .fight_detected_total
                .get_or_create(&kind_label)
                .inc_by(0);
        }
        for endpoint in ["reconcile", "confirm"] {
            for result in ["accepted", "unauthorized"] {
                metrics
                    .control_requests_total
                    .get_or_create(&ControlRequestLabels {
                        endpoint: endpoint.into(),
                        result: result.into(),
                    })
                    .inc_by(0);
            }
        }
        for kind in ["detached-before-write", "missing-after-write"] {
            metrics
                .group_list_changed_around_write_total
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc_by(0);
        }
        let queue = QueueLabel { name: QUEUE.into() };
        metrics.workqueue_depth.get_or_create(&queue).set(0);
        let _ = metrics
            .workqueue_queue_duration_seconds
            .get_or_create(&queue);
        metrics.workqueue_adds_total.get_or_create(&queue).inc_by(0);
        metrics
            .workqueue_retries_total
            .get_or_create(&queue)
            .inc_by(0);
        metrics
            .build_info
            .get_or_create(&VersionLabel {
                version: version.into(),
            })
            .set(1);

        let metrics = std::sync::Arc::new(metrics);
        let mut registry = Registry::default();
        let m = &metrics;
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "controller_runtime_reconcile",
            "Reconciliations per controller (resource kind) and result",
            m.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Reconciliations that ended in an error",
            m.reconcile_errors_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Time of the passes that reconciled a resource kind",
            m.reconcile_time_seconds.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Resources due and waiting for a pass",
            m.workqueue_depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Resources taken into a pass",
            m.workqueue_adds_total.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Resources requeued with backoff after an error",
            m.workqueue_retries_total.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long a resource waited past its due time before its pass",
            m.workqueue_queue_duration_seconds.clone(),
        );
        registry.register(
            "ecs_reconciler_drift_detected",
            "Drift found, per resource kind",
            m.drift_detected_total.clone(),
        );
        registry.register(
            "ecs_reconciler_drift_corrected",
            "Drift corrected, per resource kind",
            m.drift_corrected_total.clone(),
        );
        registry.register(
            "ecs_reconciler_fight_detected",
            "Fields left alone because another writer kept changing them, per resource kind",
            m.fight_detected_total.clone(),
        );
        registry.register(
            "ecs_reconciler_group_list_changed_around_write",
            "Groups another writer changed around this controller's write of a group list, per kind",
            m.group_list_changed_around_write_total.clone(),
        );
        registry.register(
            "ecs_reconciler_control_requests",
            "Requests to the control API (reconcile now, confirm), by endpoint and result",
            m.control_requests_total.clone(),
        );
        registry.register(
            "ecs_reconciler_notifications",
            "Messages to each notification webhook, by result (sent, failed after retries, dropped, unresolved)",
            m.notifications_total.clone(),
        );
        registry.register(
            "ecs_reconciler_resource_in_sync",
            "1 when a declared resource matches the file, else 0",
            m.resource_in_sync.clone(),
        );
        registry.register(
            "ecs_reconciler_last_successful_observation_timestamp_seconds",
            "When the last complete observation finished (unix seconds)",
            m.last_successful_observation.clone(),
        );
        registry.register(
            "ecs_reconciler_config_last_reload_successful",
            "1 when the last config reload attempt was valid",
            m.config_last_reload_successful.clone(),
        );
        registry.register(
            "ecs_reconciler_config_last_reload_success_timestamp_seconds",
            "When the running config was loaded (unix seconds)",
            m.config_last_reload_success_timestamp.clone(),
        );
        registry.register(
            "ecs_reconciler_is_leader",
            "1 when this copy leads (writes), else 0",
            m.is_leader.clone(),
        );
        registry.register(
            "ecs_reconciler_build_info",
            "Always 1; the version is a label",
            m.build_info.clone(),
        );
        registry.register(
            "aws_api_calls",
            "AWS API calls (operations, retries included) by result",
            m.api_calls_total.clone(),
        );
        registry.register(
            "aws_api_call_duration_seconds",
            "AWS API call duration, retries included",
            m.api_call_duration_seconds.clone(),
        );
        registry.register(
            "aws_api_call_throttled",
            "Throttled attempts (the SDK retries them)",
            m.api_call_throttled_total.clone(),
        );
        registry.register(
            "ecs_reconciler_api_budget_tokens",
            "Tokens left in the client-side budget of an AWS rate class (headroom = tokens / burst)",
            m.api_budget_tokens.clone(),
        );
        registry.register(
            "ecs_reconciler_api_budget_burst",
            "Capacity (burst) of the client-side budget of an AWS rate class",
            m.api_budget_burst.clone(),
        );
        registry.register(
            "ecs_reconciler_api_budget_wait_seconds",
            "Time calls waited for a token of the client-side budget",
            m.api_budget_wait_seconds.clone(),
        );
        registry.register(
            "ecs_reconciler_events_received",
            "Change events taken from the events queue",
            m.events_received_total.clone(),
        );
        registry.register(
            "ecs_reconciler_events_ignored",
            "Change events that caused nothing, by reason",
            m.events_ignored_total.clone(),
        );
        registry.register(
            "ecs_reconciler_events_triggering",
            "Change events that caused a pass",
            m.events_triggering_total.clone(),
        );
        registry.register(
            "ecs_reconciler_event_lag_seconds",
            "Time from a change event's time to its arrival from the queue",
            m.event_lag_seconds.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        (metrics, registry)
    }

    /// Records one AWS call.
    pub fn api_call(
        &self,
        service: &str,
        operation: &str,
        ok: bool,
        error_code: Option<&str>,
        seconds: f64,
    ) {
        self.api_calls_total
            .get_or_create(&ApiCallLabels {
                service: service.into(),
                operation: operation.into(),
                result: if ok { "success" } else { "error" }.into(),
                error_code: error_code.unwrap_or("").into(),
            })
            .inc();
        let labels = ApiOperationLabels {
            service: service.into(),
            operation: operation.into(),
        };
        self.api_call_duration_seconds
            .get_or_create(&labels)
            .observe(seconds);
        // Every called operation has a throttle series, at 0 until throttled.
        self.api_call_throttled_total
            .get_or_create(&labels)
            .inc_by(0);
        if let Ok(mut totals) = self.api_totals.lock() {
            let entry = totals.entry(service.to_string()).or_default();
            entry.calls += 1;
            if !ok {
                entry.errors += 1;
            }
        }
    }

    /// Records one throttled attempt.
    pub fn api_throttled(&self, service: &str, operation: &str) {
        self.api_call_throttled_total
            .get_or_create(&ApiOperationLabels {
                service: service.into(),
                operation: operation.into(),
            })
            .inc();
        if let Ok(mut totals) = self.api_totals.lock() {
            totals.entry(service.to_string()).or_default().throttled += 1;
        }
    }

    /// Publishes the budgets' state: gauges set, wait time added.
    pub fn record_budgets(&self, budgets: &[BudgetHeadroom]) {
        let mut seen = self
            .budget_waited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for budget in budgets {
            let label = ClassLabel {
                class: budget.class.clone(),
            };
            self.api_budget_tokens
                .get_or_create(&label)
                .set(budget.tokens);
            self.api_budget_burst
                .get_or_create(&label)
                .set(budget.burst);
            let before = seen.insert(budget.class.clone(), budget.waited_seconds);
            let delta = budget.waited_seconds - before.unwrap_or(0.0);
            self.api_budget_wait_seconds
                .get_or_create(&label)
                .inc_by(delta.max(0.0));
        }
    }

    /// Registers the queue's gauge (only a daemon with an events queue has
    /// one) and starts every ignore reason at 0.
    pub fn register_event_queue(&self, registry: &mut Registry) {
        for reason in ecs_reconciler_plan::events::IgnoredBecause::ALL {
            self.events_ignored_total
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str().into(),
                })
                .inc_by(0);
        }
        registry.register(
            "ecs_reconciler_event_queue_up",
            "1 while the events queue can be read, 0 while it fails (resync covers drift meanwhile)",
            self.event_queue_up.clone(),
        );
    }

    /// Counts `n` messages to `webhook` with `result` (sent, failed,
    /// dropped, unresolved), in the series and the status totals.
    pub fn notification(&self, webhook: &str, result: &str, n: u64) {
        self.notifications_total
            .get_or_create(&NotificationLabels {
                webhook: webhook.into(),
                result: result.into(),
            })
            .inc_by(n);
        if let Ok(mut totals) = self.notification_totals.lock() {
            *totals
                .entry(webhook.to_string())
                .or_default()
                .entry(result.to_string())
                .or_default() += n;
        }
    }

    /// Webhook → result → messages so far.
    pub fn notification_totals(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.notification_totals
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Totals per AWS service since start.
    pub fn api_totals(&self) -> BTreeMap<String, ApiTotals> {
        self.api_totals
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The text exposition of a registry.
    pub fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `process_*` metrics read from /proc at scrape time (Linux).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = process_stats();
        if let Some(rss) = stats.rss_bytes {
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(rss).unwrap_or(i64::MAX)).encode(metric)?;
        }
        if let Some(cpu) = stats.cpu_seconds {
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(metric)?;
        }
        if let Some(fds) = stats.open_fds {
            let metric = encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(fds).unwrap_or(i64::MAX)).encode(metric)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct ProcessStats {
    rss_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    open_fds: Option<u64>,
}

fn process_stats() -> ProcessStats {
    let mut stats = ProcessStats::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        stats.rss_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the `(comm)`: utime and stime are the 12th and 13th.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                // USER_HZ is 100 on every Linux the daemon targets.
                stats.cpu_seconds = Some((user + system) as f64 / 100.0);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        stats.open_fds = Some(dir.count() as u64);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names_pre_initialised() {
        let (metrics, registry) = Metrics::new("1.2.3");
        metrics.api_call(
            "ec2",
            "DescribeInstances",
            false,
            Some("RequestLimitExceeded"),
            0.2,
        );
        metrics.api_throttled("ec2", "DescribeInstances");
        let text = Metrics::encode(&registry);
        for name in [
            "controller_runtime_reconcile_total{controller=\"service\",result=\"requeue_after\"} 0",
            "controller_runtime_reconcile_errors_total",
            "controller_runtime_reconcile_time_seconds",
            "workqueue_depth{name=\"ecs-reconciler\"} 0",
            "workqueue_adds_total",
            "workqueue_retries_total",
            "ecs_reconciler_drift_detected_total{kind=\"security-group\"} 0",
            "ecs_reconciler_drift_corrected_total",
            "ecs_reconciler_group_list_changed_around_write_total{kind=\"missing-after-write\"} 0",
            "ecs_reconciler_last_successful_observation_timestamp_seconds",
            "ecs_reconciler_config_last_reload_successful",
            "ecs_reconciler_config_last_reload_success_timestamp_seconds",
            "ecs_reconciler_is_leader",
            "ecs_reconciler_build_info{version=\"1.2.3\"} 1",
            "aws_api_calls_total{service=\"ec2\",operation=\"DescribeInstances\",result=\"error\",error_code=\"RequestLimitExceeded\"} 1",
            "aws_api_call_duration_seconds",
            "aws_api_call_throttled_total{service=\"ec2\",operation=\"DescribeInstances\"} 1",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        let totals = metrics.api_totals();
        assert_eq!(
            totals["ec2"],
            ApiTotals {
                calls: 1,
                errors: 1,
                throttled: 1
            }
        );
    }
}
