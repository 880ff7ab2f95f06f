//! The loop with a fake cloud and paused tokio time: first pass at once,
//! resync on schedule with one observation per pass, drift corrected within
//! one resync, errors retried with backoff, config edits applied at once,
//! shutdown honoured. No sleeps: time is virtual.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_reconciler_plan::{
    ActionOutcome, Change, ErrorClass, LiveRule, LiveSecurityGroup, LiveSource, Observed, Outcome,
    RuleKey, Snapshot, UnitId, simulate,
};
use ecs_reconciler_runtime::cloud::{Cloud, Leadership};
use ecs_reconciler_runtime::control::{self, Control, ControlSender, Origin};
use ecs_reconciler_runtime::controller::Controller;
use ecs_reconciler_runtime::reload::LoadedConfig;
use ecs_reconciler_runtime::scheduler::SchedulerSettings;
use ecs_reconciler_runtime::scope::Coverage;
use ecs_reconciler_runtime::status::{DaemonStatus, UnitState};
use ecs_reconciler_runtime::timeline::Timeline;
use ecs_reconciler_spec::{PortRange, Protocol};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const CONFIG: &str = "
securityGroups:
  - name: web
    ingress:
      - protocol: tcp
        ports: 80
        cidr: 0.0.0.0/0
  - name: db
    ingress:
      - protocol: tcp
        ports: 5432
        sourceGroup: web
";

/// AWS as a value: observe clones it, execute applies like AWS would.
#[derive(Default)]
struct FakeCloud {
    live: Mutex<Snapshot>,
    observations: Mutex<u32>,
    executed: Mutex<Vec<String>>,
    /// The next N executes fail...
    fail_next: Mutex<u32>,
    /// ...with this class (throttled when unset).
    fail_class: Mutex<Option<ErrorClass>>,
    /// What the election says; `None` = leader.
    role: Mutex<Option<Leadership>>,
    /// How long a full observation takes (a large file under budget).
    full_observe_takes: Duration,
    /// Each observation's coverage, and whether it ran to the end.
    coverages: Mutex<Vec<(Coverage, bool)>>,
}

impl Cloud for FakeCloud {
    async fn leadership(&self) -> Leadership {
        self.role
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Leadership::Leader)
    }

    async fn observe(
        &self,
        _desired: &ecs_reconciler_spec::DesiredState,
        coverage: Coverage,
    ) -> Snapshot {
        *self.observations.lock().unwrap() += 1;
        let index = {
            let mut coverages = self.coverages.lock().unwrap();
            coverages.push((coverage, false));
            coverages.len() - 1
        };
        if coverage == Coverage::Full {
            tokio::time::sleep(self.full_observe_takes).await;
        }
        self.coverages.lock().unwrap()[index].1 = true;
        self.live.lock().unwrap().clone()
    }

    async fn execute(&self, changes: Vec<Change>, _stop: CancellationToken) -> Vec<ActionOutcome> {
        let mut fail = self.fail_next.lock().unwrap();
        let mut live = self.live.lock().unwrap();
        let mut out = Vec::new();
        for change in changes {
            let outcome = if *fail > 0 {
                *fail -= 1;
                Outcome::Failed {
                    error: "ec2 AuthorizeSecurityGroupIngress failed".into(),
                    class: self
                        .fail_class
                        .lock()
                        .unwrap()
                        .unwrap_or(ErrorClass::Throttled),
                }
            } else {
                simulate::apply(&mut live, change.action.as_ref().unwrap());
                self.executed.lock().unwrap().push(change.kind.clone());
                Outcome::Applied { request_id: None }
            };
            out.push(ActionOutcome {
                change,
                outcome,
                other_writers: Vec::new(),
            });
        }
        out
    }
}

fn group(id: &str, name: &str, rules: Vec<LiveRule>) -> Observed<Option<LiveSecurityGroup>> {
    Observed::Known(Some(LiveSecurityGroup {
        id: id.into(),
        name: name.into(),
        vpc_id: None,
        ingress: Observed::Known(rules),
    }))
}

fn rule(port: i32, source: LiveSource) -> LiveRule {
    LiveRule {
        rule_id: Some(format!("sgr-{port}")),
        key: RuleKey::new(Protocol::Tcp, PortRange::single(port), source),
        description: None,
        managed_by_us: false,
        source_account: None,
    }
}

/// The live state with the `web` rule missing (one drift) and a rogue
/// rule on `db`.
fn drifted() -> Snapshot {
    let mut s = Snapshot::default();
    s.security_groups
        .insert("web".into(), group("sg-1", "web", vec![]));
    s.security_groups.insert(
        "db".into(),
        group(
            "sg-2",
            "db",
            vec![
                rule(5432, LiveSource::Group("sg-1".into())),
                rule(22, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())),
            ],
        ),
    );
    s
}

fn loaded(text: &str, generation: u64) -> LoadedConfig {
    LoadedConfig {
        desired: Arc::new(ecs_reconciler_spec::load(text).expect("valid test config")),
        hash: format!("h{generation}"),
        generation,
    }
}

struct Harness {
    cloud: Arc<FakeCloud>,
    config: watch::Sender<LoadedConfig>,
    status: watch::Receiver<DaemonStatus>,
    shutdown: CancellationToken,
    /// The daemon's control channel (the binary maps signals onto it).
    controls: ControlSender,
    timeline: Arc<Timeline>,
    task: tokio::task::JoinHandle<()>,
}

fn start(live: Snapshot) -> Harness {
    start_with(FakeCloud {
        live: Mutex::new(live),
        ..Default::default()
    })
}

fn start_with(cloud: FakeCloud) -> Harness {
    start_customized(cloud, |controller| {
        controller.with_schedule(SchedulerSettings {
            resync: Duration::from_secs(30),
            jitter: 0.1,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            transient_max: Duration::from_secs(30),
            coalesce: Duration::from_millis(500),
        })
    })
}

/// A loop over `cloud` built by `customize` (schedule, event queue, ...).
fn start_customized(
    cloud: FakeCloud,
    customize: impl FnOnce(Controller<FakeCloud>) -> Controller<FakeCloud>,
) -> Harness {
    let cloud = Arc::new(cloud);
    let (config, config_rx) = watch::channel(loaded(CONFIG, 1));
    let shutdown = CancellationToken::new();
    let (controls, control_rx) = control::channel();
    let timeline = Arc::new(Timeline::default());
    let controller = customize(Controller::new(
        cloud.clone(),
        config_rx,
        control_rx.unrouted(),
        shutdown.clone(),
    ))
    .with_timeline(timeline.clone());
    let status = controller.status();
    let task = tokio::spawn(controller.run());
    Harness {
        cloud,
        config,
        status,
        shutdown,
        controls,
        timeline,
        task,
    }
}

fn web() -> UnitId {
    UnitId::security_group("web")
}

fn db() -> UnitId {
    UnitId::security_group("db")
}

/// Lets the loop run until it is idle (time is paused: sleeping advances
/// the clock only as far as asked).
async fn run_for(duration: Duration) {
    tokio::time::sleep(duration).await;
}

fn passes(h: &Harness) -> u64 {
    h.status.borrow().passes
}

#[tokio::test(start_paused = true)]
async fn first_pass_corrects_drift_at_once_then_resyncs_with_one_observation_per_pass() {
    let h = start(drifted());
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 1);
    assert_eq!(*h.cloud.observations.lock().unwrap(), 1);
    assert_eq!(
        *h.cloud.executed.lock().unwrap(),
        vec!["authorize-ingress", "revoke-ingress"]
    );
    assert_eq!(h.status.borrow().units[&web()].state, UnitState::Correcting);

    // Nothing happens before the resync (30 s ± 10%)...
    run_for(Duration::from_secs(26)).await;
    assert_eq!(passes(&h), 1);
    // ...and one pass, one observation, for both units, after it.
    run_for(Duration::from_secs(8)).await;
    assert_eq!(passes(&h), 2);
    assert_eq!(*h.cloud.observations.lock().unwrap(), 2);
    let status = h.status.borrow().clone();
    assert!(
        status.units.values().all(|u| u.state == UnitState::InSync),
        "{status:#?}"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

/// A full pass that observes for 20 s is abandoned when the file changes:
/// the edit's scoped pass runs at once and the full pass starts again a
/// second later. Edits keep winning for one resync (30 s); after that the
/// full pass runs to the end however often the file changes, so the file
/// is still re-read whole.
#[tokio::test(start_paused = true)]
async fn an_edit_does_not_wait_for_a_long_full_pass_but_cannot_starve_it() {
    let h = start_with(FakeCloud {
        live: Mutex::new(drifted()),
        full_observe_takes: Duration::from_secs(20),
        ..Default::default()
    });
    run_for(Duration::from_secs(5)).await;
    assert_eq!(passes(&h), 0, "the startup pass is still observing");
    let edited = CONFIG.replace("ports: 5432", "ports: 5433");
    h.config.send(loaded(&edited, 2)).unwrap();
    run_for(Duration::from_millis(600)).await;
    assert_eq!(passes(&h), 1, "the edit's pass ran");
    assert!(h.status.borrow().last_pass_scoped);
    assert_eq!(
        *h.cloud.coverages.lock().unwrap(),
        [(Coverage::Full, false), (Coverage::Scoped, true)]
    );
    assert!(
        h.cloud
            .executed
            .lock()
            .unwrap()
            .contains(&"authorize-ingress".to_string()),
        "{:?}",
        h.cloud.executed.lock().unwrap()
    );

    // An edit every 5 s from now on (at 10, 15, ... 70 s): each one is
    // applied within a second while the full pass it interrupts started
    // less than a resync after the first attempt (t = 0)...
    for generation in 3..16u64 {
        run_for(Duration::from_millis(4400)).await;
        let before = passes(&h);
        let text = if generation % 2 == 0 { &edited } else { CONFIG };
        h.config.send(loaded(text, generation)).unwrap();
        run_for(Duration::from_millis(600)).await;
        if generation <= 7 {
            assert!(passes(&h) > before, "edit {generation} waited");
        }
    }
    // ...and the full pass ran to the end all the same, within two resyncs
    // (+ its own 20 s) of the first attempt.
    // Only the attempts before the first completed full pass count: the
    // next resync's full pass may again give way to edits for one resync,
    // and how many of those fit before the loop ends depends on jitter.
    let coverages = h.cloud.coverages.lock().unwrap().clone();
    let completed = coverages
        .iter()
        .position(|c| *c == (Coverage::Full, true))
        .unwrap_or_else(|| panic!("the full pass was starved: {coverages:?}"));
    let abandoned = coverages[..completed]
        .iter()
        .filter(|c| **c == (Coverage::Full, false))
        .count();
    assert!((2..=8).contains(&abandoned), "{coverages:?}");
    h.shutdown.cancel();
    h.task.await.unwrap();
}

/// Someone opens port 22 on web.
fn open_ssh_on_web(h: &Harness) {
    if let Some(Observed::Known(Some(g))) =
        h.cloud.live.lock().unwrap().security_groups.get_mut("web")
    {
        g.ingress
            .known_mut()
            .unwrap()
            .push(rule(22, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())));
    }
}

#[tokio::test(start_paused = true)]
async fn drift_injected_between_passes_is_corrected_within_one_resync() {
    let h = start(drifted());
    run_for(Duration::from_millis(10)).await;
    open_ssh_on_web(&h);
    run_for(Duration::from_secs(33)).await;
    let executed = h.cloud.executed.lock().unwrap().clone();
    assert_eq!(executed.last().map(String::as_str), Some("revoke-ingress"));
    assert_eq!(executed.len(), 3);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failed_changes_are_retried_with_backoff_not_at_resync() {
    let h = start(drifted());
    *h.cloud.fail_next.lock().unwrap() = 2;
    run_for(Duration::from_millis(10)).await;
    assert_eq!(h.status.borrow().units[&web()].state, UnitState::Error);
    assert!(h.cloud.executed.lock().unwrap().is_empty());
    // First retry after 1-2 s (jittered, per unit: the two units may retry
    // in one pass or two), not 30 s.
    run_for(Duration::from_secs(3)).await;
    assert!((2..=3).contains(&passes(&h)), "{} passes", passes(&h));
    let mut executed = h.cloud.executed.lock().unwrap().clone();
    executed.sort();
    assert_eq!(executed, vec!["authorize-ingress", "revoke-ingress"]);
    let status = h.status.borrow().clone();
    assert!(
        status
            .units
            .values()
            .all(|u| u.state == UnitState::Correcting),
        "{status:#?}"
    );
    assert!(status.schedule.iter().all(|s| s.consecutive_failures == 0));
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_config_edit_is_applied_at_once_for_the_changed_unit_only() {
    let h = start(drifted());
    run_for(Duration::from_secs(1)).await;
    assert_eq!(passes(&h), 1);
    let edited = CONFIG.replace("ports: 80", "ports: 443");
    h.config.send(loaded(&edited, 2)).unwrap();
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 2, "edit applied without waiting for the resync");
    let executed = h.cloud.executed.lock().unwrap().clone();
    assert_eq!(
        executed,
        vec![
            "authorize-ingress",
            "revoke-ingress",
            "authorize-ingress",
            "revoke-ingress"
        ]
    );
    let status = h.status.borrow().clone();
    assert_eq!(status.config_generation, 2);
    assert_eq!(status.units[&web()].state, UnitState::Correcting);
    // db was not due in the edit's pass: its status is still the first
    // pass's (it would read in-sync had it been re-checked).
    assert_eq!(status.units[&db()].state, UnitState::Correcting);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_loop() {
    let h = start(drifted());
    run_for(Duration::from_millis(10)).await;
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), h.task)
        .await
        .expect("loop stops promptly")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_follower_or_an_unknown_election_reads_nothing_but_the_election_and_never_writes() {
    for role in [
        Leadership::Follower {
            leader: Some("arn:aws:ecs:us-east-1:1:task/c/other".into()),
        },
        Leadership::Unknown {
            reason: "metadata endpoint unreachable".into(),
        },
    ] {
        let cloud = FakeCloud {
            live: Mutex::new(drifted()),
            role: Mutex::new(Some(role.clone())),
            ..Default::default()
        };
        let h = start_with(cloud);
        run_for(Duration::from_millis(10)).await;
        assert_eq!(passes(&h), 1);
        assert!(
            h.cloud.executed.lock().unwrap().is_empty(),
            "{role:?} wrote"
        );
        // Many copies cost one: a copy that does not lead observes nothing.
        assert_eq!(
            *h.cloud.observations.lock().unwrap(),
            0,
            "{role:?} observed"
        );
        let status = h.status.borrow().clone();
        assert_eq!(status.leadership, role);
        assert!(status.leadership_since_unix.is_some());
        assert_eq!(status.units[&web()].state, UnitState::Standby);
        // Elected: the next pass corrects.
        *h.cloud.role.lock().unwrap() = None;
        run_for(Duration::from_secs(34)).await;
        assert_eq!(h.cloud.executed.lock().unwrap().len(), 2);
        h.shutdown.cancel();
        h.task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_field_another_writer_keeps_undoing_is_left_alone_until_the_config_changes() {
    let h = start(drifted());
    let clear_web = |h: &Harness| {
        if let Some(Observed::Known(Some(g))) =
            h.cloud.live.lock().unwrap().security_groups.get_mut("web")
        {
            g.ingress.known_mut().unwrap().clear();
        }
    };
    run_for(Duration::from_millis(10)).await;
    // Someone revokes the port-80 rule after every correction.
    for _ in 0..8 {
        clear_web(&h);
        run_for(Duration::from_secs(34)).await;
    }
    let authorizes = h
        .cloud
        .executed
        .lock()
        .unwrap()
        .iter()
        .filter(|k| *k == "authorize-ingress")
        .count();
    assert_eq!(
        authorizes, 5,
        "corrected until the fight threshold, then held"
    );
    let status = h.status.borrow().clone();
    assert_eq!(status.fights.len(), 1, "{:#?}", status.fights);
    assert_eq!(status.fights[0].unit, web());
    assert_eq!(status.units[&web()].state, UnitState::Fighting);
    // The db group's own correction was never held.
    assert_eq!(status.units[&db()].state, UnitState::InSync);

    // A config change is a new intent: the fight is cleared, and the edited
    // unit is reconciled at once.
    let edited = CONFIG.replace("ports: 80", "ports: 8080");
    h.config.send(loaded(&edited, 2)).unwrap();
    run_for(Duration::from_millis(10)).await;
    assert!(h.status.borrow().fights.is_empty());
    assert_eq!(
        h.cloud.executed.lock().unwrap().last().map(String::as_str),
        Some("authorize-ingress")
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn removals_over_the_cap_wait_for_a_second_agreeing_observation() {
    let mut live = drifted();
    if let Some(Observed::Known(Some(g))) = live.security_groups.get_mut("web") {
        let rules = g.ingress.known_mut().unwrap();
        rules.push(rule(80, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())));
        for port in [22, 23, 24] {
            rules.push(rule(port, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())));
        }
    }
    let h = start(live);
    run_for(Duration::from_millis(10)).await;
    // 3 removals of 4 rules is over the 50% cap: held; db's one removal of
    // two rules is within it.
    assert_eq!(*h.cloud.executed.lock().unwrap(), vec!["revoke-ingress"]);
    let status = h.status.borrow().clone();
    let held = status.units[&web()]
        .drift
        .iter()
        .filter(|c| c.disposition == ecs_reconciler_plan::Disposition::Held)
        .count();
    assert_eq!(held, 3);
    // The next complete observation agrees: they go.
    run_for(Duration::from_secs(34)).await;
    let revokes = h
        .cloud
        .executed
        .lock()
        .unwrap()
        .iter()
        .filter(|k| *k == "revoke-ingress")
        .count();
    assert_eq!(revokes, 4);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_paused_resource_is_shown_paused_and_left_alone() {
    let cloud = FakeCloud {
        live: Mutex::new(drifted()),
        ..Default::default()
    };
    let h = start_with(cloud);
    let paused = CONFIG.replace("  - name: db\n", "  - name: db\n    paused: true\n");
    h.config.send(loaded(&paused, 2)).unwrap();
    run_for(Duration::from_millis(10)).await;
    let status = h.status.borrow().clone();
    assert_eq!(status.units[&db()].state, UnitState::Paused);
    assert_eq!(status.units[&db()].mode, ecs_reconciler_spec::Mode::Paused);
    // Only web's fix ran; db's rogue rule stays.
    let executed = h.cloud.executed.lock().unwrap().clone();
    assert!(
        executed.iter().all(|k| k == "authorize-ingress"),
        "{executed:?}"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

/// `drifted()` with web's declared rule in place: only db's rogue rule is drift.
fn with_web_rule() -> Snapshot {
    let mut live = drifted();
    if let Some(Observed::Known(Some(g))) = live.security_groups.get_mut("web") {
        g.ingress
            .known_mut()
            .unwrap()
            .push(rule(80, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())));
    }
    live
}

/// CONFIG with web's rule list emptied: a drastic edit (1 → 0).
fn web_emptied() -> String {
    CONFIG.replace(
        "    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/0\n",
        "    ingress: []\n",
    )
}

#[tokio::test(start_paused = true)]
async fn a_drastic_config_edit_waits_for_an_operator_however_often_it_is_observed() {
    let h = start(with_web_rule());
    run_for(Duration::from_millis(10)).await;
    // db's rogue rule: an ordinary correction.
    assert_eq!(*h.cloud.executed.lock().unwrap(), vec!["revoke-ingress"]);

    // The edit empties web's rule list: 1 → 0 is drastic.
    let emptied = web_emptied();
    assert_ne!(emptied, CONFIG);
    h.config.send(loaded(&emptied, 2)).unwrap();
    run_for(Duration::from_millis(10)).await;
    let awaiting = h.status.borrow().awaiting_confirmation.clone();
    assert_eq!(awaiting.len(), 1, "{awaiting:#?}");
    assert_eq!(awaiting[0].owner, web());
    assert_eq!(awaiting[0].generation, 2);

    // Five resyncs of complete, agreeing observations: still held.
    run_for(Duration::from_secs(5 * 34)).await;
    assert!(passes(&h) >= 6, "{}", passes(&h));
    assert_eq!(h.cloud.executed.lock().unwrap().len(), 1);
    let status = h.status.borrow().clone();
    let held: Vec<_> = status.units[&web()]
        .drift
        .iter()
        .filter(|c| c.disposition == ecs_reconciler_plan::Disposition::Held)
        .collect();
    assert_eq!(held.len(), 1, "{held:#?}");
    assert!(held[0].reason.contains("SIGUSR1"), "{}", held[0].reason);

    // The operator confirms: applied at once, nothing awaits any more.
    assert!(
        h.controls
            .send(Control::ConfirmHeld(Origin::Signal { name: "SIGUSR1" }))
    );
    run_for(Duration::from_millis(10)).await;
    assert_eq!(
        *h.cloud.executed.lock().unwrap(),
        vec!["revoke-ingress", "revoke-ingress"]
    );
    assert!(h.status.borrow().awaiting_confirmation.is_empty());
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn undoing_a_drastic_edit_lifts_its_hold() {
    let h = start(with_web_rule());
    run_for(Duration::from_millis(10)).await;
    let emptied = web_emptied();
    h.config.send(loaded(&emptied, 2)).unwrap();
    run_for(Duration::from_millis(10)).await;
    assert_eq!(h.status.borrow().awaiting_confirmation.len(), 1);
    h.config.send(loaded(CONFIG, 3)).unwrap();
    run_for(Duration::from_millis(10)).await;
    assert!(h.status.borrow().awaiting_confirmation.is_empty());
    assert_eq!(*h.cloud.executed.lock().unwrap(), vec!["revoke-ingress"]);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_resync_control_rechecks_every_unit_now_and_a_reload_forgets_fights() {
    let h = start(drifted());
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 1);
    assert!(h.controls.send(Control::ResyncAll));
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 2, "re-checked without waiting for the resync");
    assert!(
        !h.status.borrow().last_pass_scoped,
        "every unit: a full pass"
    );
    assert!(h.controls.send(Control::Reload));
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 3);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn access_denied_backs_off_long_and_says_so_while_throttling_retries_soon() {
    let h = start_with(FakeCloud {
        live: Mutex::new(drifted()),
        fail_next: Mutex::new(2),
        fail_class: Mutex::new(Some(ErrorClass::Denied)),
        ..Default::default()
    });
    run_for(Duration::from_millis(10)).await;
    let status = h.status.borrow().clone();
    let web = &status.units[&web()];
    assert_eq!(web.state, UnitState::Error);
    assert_eq!(web.error_class, Some(ErrorClass::Denied));
    assert!(
        web.last_error.as_deref().unwrap().contains("access denied"),
        "{:?}",
        web.last_error
    );
    // The harness's longest delay is 60 s: nothing is retried before it.
    run_for(Duration::from_secs(55)).await;
    assert_eq!(passes(&h), 1);
    assert!(h.cloud.executed.lock().unwrap().is_empty());
    run_for(Duration::from_secs(10)).await;
    assert_eq!(passes(&h), 2);
    assert_eq!(h.cloud.executed.lock().unwrap().len(), 2);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reconcile_now_runs_a_scoped_pass_at_once_and_answers_when_it_is_done() {
    let h = start(drifted());
    run_for(Duration::from_millis(10)).await;
    let before = passes(&h);
    // Long before web's resync.
    open_ssh_on_web(&h);
    let (reply, answer) = control::PassReply::new();
    assert!(
        h.controls
            .send(Control::ReconcileNow(control::ReconcileRequest {
                units: vec![web()],
                origin: Origin::Api {
                    peer: "127.0.0.1:5".into()
                },
                reply: Some(reply),
            }))
    );
    let summary = tokio::time::timeout(Duration::from_millis(50), answer)
        .await
        .expect("answered without waiting for the resync")
        .expect("a summary");
    assert_eq!(passes(&h), before + 1);
    assert!(h.status.borrow().last_pass_scoped, "only web was read");
    assert!(summary.converged, "{summary:?}");
    assert_eq!(summary.units.len(), 1);
    assert_eq!(summary.units[0].unit, web());
    assert_eq!(
        h.cloud.executed.lock().unwrap().last().map(String::as_str),
        Some("revoke-ingress")
    );
    let requested = h.timeline.subscribe(50).0.iter().any(|e| {
        e.message
            .contains("asked to reconcile security-group/web now")
    });
    assert!(requested, "on the timeline");

    // A request for a resource the file no longer declares is answered at
    // once, as not converged.
    let (reply, answer) = control::PassReply::new();
    h.controls
        .send(Control::ReconcileNow(control::ReconcileRequest {
            units: vec![UnitId::security_group("gone")],
            origin: Origin::Api {
                peer: "127.0.0.1:5".into(),
            },
            reply: Some(reply),
        }));
    let summary = tokio::time::timeout(Duration::from_millis(50), answer)
        .await
        .unwrap()
        .unwrap();
    assert!(!summary.converged);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

fn start_with_queue(live: Snapshot) -> Harness {
    let cloud = FakeCloud {
        live: Mutex::new(live),
        ..Default::default()
    };
    start_customized(cloud, |controller| {
        controller
            .with_schedule(SchedulerSettings {
                jitter: 0.0,
                ..SchedulerSettings::default()
            })
            .with_event_queue(
                "https://sqs.us-east-1.amazonaws.com/1/q".into(),
                Duration::from_secs(300),
            )
    })
}

fn rule_opened(id: &str, who: &str, time: f64) -> ecs_reconciler_plan::events::ChangeEvent {
    use ecs_reconciler_plan::events::*;
    ChangeEvent {
        id: id.into(),
        kind: EventKind::ApiCall {
            source: "ec2.amazonaws.com".into(),
            name: "AuthorizeSecurityGroupIngress".into(),
        },
        time_unix: Some(time),
        subjects: vec![Subject::SecurityGroupId("sg-1".into())],
        actor: Some(Actor {
            arn: who.into(),
            source_ip: Some("203.0.113.7".into()),
            call: "AuthorizeSecurityGroupIngress".into(),
            at: "2026-12-07T14:02:03Z".into(),
        }),
        request_id: Some(format!("req-{id}")),
    }
}

async fn deliver(h: &Harness, events: Vec<ecs_reconciler_plan::events::ChangeEvent>) {
    let (ack, acked) = control::Ack::new();
    let batch = ecs_reconciler_runtime::events::EventBatch {
        events,
        unusable: Vec::new(),
        received_unix: ecs_reconciler_runtime::timeline::unix_now(),
    };
    assert!(h.controls.send(Control::Events(batch, ack)));
    acked
        .await
        .expect("the loop acks once the passes are scheduled");
}

#[tokio::test(start_paused = true)]
async fn an_event_re_reads_what_it_names_at_once_and_the_correction_says_who() {
    let h = start_with_queue(drifted());
    h.controls.send(Control::EventQueue(
        ecs_reconciler_plan::events::QueueHealth::Receiving,
    ));
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 1);

    // Someone opens port 22 on `web`; its CloudTrail event arrives.
    h.cloud.live.lock().unwrap().security_groups.insert(
        "web".into(),
        group(
            "sg-1",
            "web",
            vec![
                rule(80, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())),
                rule(22, LiveSource::Ipv4("0.0.0.0/0".parse().unwrap())),
            ],
        ),
    );
    let now = ecs_reconciler_runtime::timeline::unix_now();
    deliver(
        &h,
        vec![rule_opened("e1", "arn:aws:iam::1:user/alice", now)],
    )
    .await;
    run_for(Duration::from_secs(1)).await;
    assert_eq!(passes(&h), 2, "a pass at once, not at the 5-minute resync");
    assert!(h.status.borrow().last_pass_scoped);
    let status = h.status.borrow().clone();
    let web_status = &status.units[&web()];
    assert_eq!(web_status.state, UnitState::Correcting);
    let by = web_status.changed_by.as_ref().expect("who is known");
    assert_eq!(by.actor.arn, "arn:aws:iam::1:user/alice");
    assert_eq!(
        web_status.verified_by,
        Some(ecs_reconciler_runtime::scheduler::DueReason::Event)
    );
    let said = h
        .timeline
        .subscribe(100)
        .0
        .into_iter()
        .filter(|e| e.unit == Some(web()) && e.by.is_some())
        .count();
    assert!(said >= 1, "the timeline says who");
    let queue = status.event_queue.expect("queue status");
    assert_eq!((queue.received, queue.triggering), (1, 1));

    // The same event delivered again (at-least-once), and one for a group
    // the file does not declare: no pass.
    let mut other = rule_opened("e2", "arn:aws:iam::1:user/bob", now);
    other.subjects = vec![ecs_reconciler_plan::events::Subject::SecurityGroupId(
        "sg-elsewhere".into(),
    )];
    deliver(
        &h,
        vec![rule_opened("e1", "arn:aws:iam::1:user/alice", now), other],
    )
    .await;
    run_for(Duration::from_secs(5)).await;
    assert_eq!(passes(&h), 2);
    let queue = h.status.borrow().event_queue.clone().unwrap();
    assert_eq!(queue.ignored.get("duplicate"), Some(&1));
    assert_eq!(queue.ignored.get("unrelated"), Some(&1));

    // The correction is checked one consistency window (10 s) later: in
    // sync, and who made the drift is still shown.
    run_for(Duration::from_secs(6)).await;
    assert_eq!(passes(&h), 3);
    let web_status = h.status.borrow().units[&web()].clone();
    assert_eq!(web_status.state, UnitState::InSync);
    assert!(web_status.changed_by.is_some());
    // With the queue working, resync is 5 minutes: nothing for 4 minutes.
    run_for(Duration::from_secs(240)).await;
    assert_eq!(passes(&h), 3);
    run_for(Duration::from_secs(65)).await;
    assert_eq!(passes(&h), 4);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_queue_falls_back_to_the_normal_resync_and_says_so() {
    use ecs_reconciler_plan::events::QueueHealth;
    let h = start_with_queue(drifted());
    h.controls.send(Control::EventQueue(QueueHealth::Receiving));
    run_for(Duration::from_millis(10)).await;
    assert_eq!(passes(&h), 1);
    run_for(Duration::from_secs(60)).await;
    // The first pass corrected two drifts: checked once a window later,
    // then quiet (5-minute resync while the queue works).
    assert_eq!(passes(&h), 2, "one check of the corrections, then nothing");
    h.controls.send(Control::EventQueue(QueueHealth::Failing {
        class: ErrorClass::Denied,
        reason: "sqs ReceiveMessage was denied (AccessDenied)".into(),
    }));
    run_for(Duration::from_secs(31)).await;
    assert_eq!(passes(&h), 3, "the normal 30 s resync covers drift");
    run_for(Duration::from_secs(30)).await;
    assert_eq!(passes(&h), 4);
    let queue = h.status.borrow().event_queue.clone().unwrap();
    assert!(matches!(queue.health, Some(QueueHealth::Failing { .. })));
    assert_eq!(queue.resync_seconds, 30.0);
    assert!(
        h.timeline
            .subscribe(100)
            .0
            .iter()
            .any(|e| e.kind == ecs_reconciler_runtime::timeline::TimelineKind::QueueFailing)
    );
    h.controls.send(Control::EventQueue(QueueHealth::Receiving));
    run_for(Duration::from_secs(1)).await;
    let before = passes(&h);
    // The pass already due at the short resync runs; then 5 minutes.
    run_for(Duration::from_secs(35)).await;
    let before = before.max(passes(&h));
    run_for(Duration::from_secs(200)).await;
    assert_eq!(passes(&h), before, "back to the 5-minute resync");
    h.shutdown.cancel();
    h.task.await.unwrap();
}
