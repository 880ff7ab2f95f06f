//! What the loop keeps about change events (see
//! `ecs_reconciler_plan::events`): which AWS ids belong to which declared
//! resources, which events were already seen, which request ids are this
//! copy's own writes, and who changed each resource lately — so that a
//! correction can say "opened by … at …".
//!
//! Events only decide *which* resources are re-read now; every pass plans
//! from what it reads. Hence:
//! - a duplicate (same event id) is dropped here, and one that slips past
//!   the bounded memory costs one scoped pass that finds nothing;
//! - a late or reordered event re-reads the current state, so it can never
//!   bring back an older one; the "who" of a resource is the actor of its
//!   latest event by event time, whatever the arrival order;
//! - an event lost for good is caught by the next resync.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use ecs_reconciler_plan::events::{Actor, ChangeEvent, EventIndex, IgnoredBecause};
use ecs_reconciler_plan::{ActionOutcome, Outcome, Snapshot, UnitId};
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;

/// Event ids remembered to drop redeliveries.
const SEEN_KEEP: usize = 10_000;
/// Request ids of this copy's writes remembered: the events of its writes
/// arrive within seconds to minutes (CloudTrail's delivery is best-effort,
/// typically under 5 minutes).
const OWN_KEEP: usize = 10_000;
/// How long who changed a resource is kept while no pass has judged it.
const ATTRIBUTION_SECONDS: f64 = 3600.0;

/// A batch of events from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    /// Parsed events.
    pub events: Vec<ChangeEvent>,
    /// Messages that could not be used, and why.
    pub unusable: Vec<IgnoredBecause>,
    /// When they were received, Unix seconds.
    pub received_unix: f64,
}

/// What a batch comes to.
#[derive(Debug, Default, PartialEq)]
pub struct Triage {
    /// The units to re-read now.
    pub units: BTreeSet<UnitId>,
    /// Events that trigger nothing, and why.
    pub ignored: Vec<IgnoredBecause>,
    /// Events that cause a pass.
    pub triggering: usize,
    /// Event time -> received, seconds, per event with a time.
    pub lags: Vec<f64>,
}

/// Who changed a resource, as far as events tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    /// The caller.
    #[serde(flatten)]
    pub actor: Actor,
    /// The event's time, Unix seconds (orders reordered events).
    pub event_unix: f64,
}

/// The loop's event memory.
#[derive(Debug, Default)]
pub struct EventTriggers {
    index: EventIndex,
    seen: Bounded,
    own_requests: Bounded,
    /// The latest caller per resource, until a pass judges it.
    pending: BTreeMap<UnitId, Attribution>,
    /// Resources re-read once more after an event-triggered pass found them
    /// in sync (a read may lag the call the event reports).
    rechecked: BTreeSet<UnitId>,
}

impl EventTriggers {
    /// Learns the AWS ids a pass read.
    pub fn learn(&mut self, snapshot: &Snapshot) {
        self.index.learn(snapshot);
    }

    /// Remembers the request ids of this copy's writes: their CloudTrail
    /// events trigger nothing.
    pub fn record_own(&mut self, outcomes: &[ActionOutcome]) {
        for outcome in outcomes {
            if let Outcome::Applied {
                request_id: Some(id),
            } = &outcome.outcome
            {
                self.own_requests.insert(id.clone(), OWN_KEEP);
            }
        }
    }

    /// Sorts a batch: which units to re-read, what to ignore and why.
    pub fn triage(&mut self, desired: &DesiredState, batch: &EventBatch) -> Triage {
        let mut triage = Triage {
            ignored: batch.unusable.clone(),
            ..Triage::default()
        };
        for event in &batch.events {
            if let Some(time) = event.time_unix {
                triage.lags.push((batch.received_unix - time).max(0.0));
            }
            if self.seen.contains(&event.id) {
                triage.ignored.push(IgnoredBecause::Duplicate);
                continue;
            }
            self.seen.insert(event.id.clone(), SEEN_KEEP);
            if event
                .request_id
                .as_ref()
                .is_some_and(|id| self.own_requests.contains(id))
            {
                triage.ignored.push(IgnoredBecause::OwnWrite);
                continue;
            }
            let units = self.index.units(desired, event);
            if units.is_empty() {
                triage.ignored.push(IgnoredBecause::Unrelated);
                continue;
            }
            triage.triggering += 1;
            if let Some(actor) = &event.actor {
                let event_unix = event.time_unix.unwrap_or(batch.received_unix);
                for unit in &units {
                    let newer = self
                        .pending
                        .get(unit)
                        .is_none_or(|a| a.event_unix <= event_unix);
                    if newer {
                        self.pending.insert(
                            unit.clone(),
                            Attribution {
                                actor: actor.clone(),
                                event_unix,
                            },
                        );
                        self.rechecked.remove(unit);
                    }
                }
            }
            triage.units.extend(units);
        }
        triage
    }

    /// Who changed each of `units` lately (those with a known caller).
    pub fn who(&self, units: &BTreeSet<UnitId>) -> BTreeMap<UnitId, Attribution> {
        units
            .iter()
            .filter_map(|u| self.pending.get(u).map(|a| (u.clone(), a.clone())))
            .collect()
    }

    /// After a pass: a resource corrected or with drift left keeps its
    /// caller only while drift stays; one found in sync is re-read once
    /// more (returned) when an event named it, then forgotten. Old
    /// attributions expire.
    pub fn settle(
        &mut self,
        in_sync: &BTreeSet<UnitId>,
        corrected: &BTreeSet<UnitId>,
        now_unix: f64,
    ) -> BTreeSet<UnitId> {
        let mut recheck = BTreeSet::new();
        for unit in corrected {
            self.pending.remove(unit);
            self.rechecked.remove(unit);
        }
        for unit in in_sync {
            if !self.pending.contains_key(unit) {
                continue;
            }
            if self.rechecked.insert(unit.clone()) {
                recheck.insert(unit.clone());
            } else {
                self.pending.remove(unit);
                self.rechecked.remove(unit);
            }
        }
        self.pending
            .retain(|_, a| now_unix - a.event_unix < ATTRIBUTION_SECONDS);
        recheck
    }
}

/// A set that forgets its oldest entries past a size.
#[derive(Debug, Default)]
struct Bounded {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Bounded {
    fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: String, keep: usize) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > keep {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_reconciler_plan::events::{EventKind, Subject};
    use ecs_reconciler_plan::{LiveSecurityGroup, Observed};

    fn desired() -> DesiredState {
        ecs_reconciler_spec::load(include_str!("../../../examples/seed.yaml")).unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.security_groups.insert(
            "LoadBalancerGroup".into(),
            Observed::Known(Some(LiveSecurityGroup {
                id: "sg-lb".into(),
                name: "LoadBalancerGroup".into(),
                vpc_id: None,
                ingress: Observed::Known(Vec::new()),
            })),
        );
        s
    }

    fn call(id: &str, request: &str, who: &str, time: f64) -> ChangeEvent {
        ChangeEvent {
            id: id.into(),
            kind: EventKind::ApiCall {
                source: "ec2.amazonaws.com".into(),
                name: "AuthorizeSecurityGroupIngress".into(),
            },
            time_unix: Some(time),
            subjects: vec![Subject::SecurityGroupId("sg-lb".into())],
            actor: Some(Actor {
                arn: who.into(),
                source_ip: None,
                call: "AuthorizeSecurityGroupIngress".into(),
                at: String::new(),
            }),
            request_id: Some(request.into()),
        }
    }

    fn batch(events: Vec<ChangeEvent>) -> EventBatch {
        EventBatch {
            events,
            unusable: vec![IgnoredBecause::Unparseable],
            received_unix: 1000.0,
        }
    }

    #[test]
    fn duplicates_own_writes_and_unrelated_events_trigger_nothing() {
        let mut t = EventTriggers::default();
        t.learn(&snapshot());
        let unit = UnitId::security_group("LoadBalancerGroup");
        let first = t.triage(&desired(), &batch(vec![call("e1", "r1", "alice", 999.5)]));
        assert_eq!(first.units, BTreeSet::from([unit.clone()]));
        assert_eq!(first.triggering, 1);
        assert_eq!(first.ignored, vec![IgnoredBecause::Unparseable]);
        assert_eq!(first.lags, vec![0.5]);
        // The same event again: dropped.
        let again = t.triage(&desired(), &batch(vec![call("e1", "r1", "alice", 999.5)]));
        assert!(again.units.is_empty());
        assert!(again.ignored.contains(&IgnoredBecause::Duplicate));
        // Our own write's event.
        t.record_own(&[ActionOutcome {
            change: ecs_reconciler_plan::Change {
                kind: "rule".into(),
                resource: "x".into(),
                owner: UnitId::security_group("LoadBalancerGroup"),
                before: String::new(),
                after: String::new(),
                reason: String::new(),
                disposition: ecs_reconciler_plan::Disposition::Apply,
                hold: None,
                action: None,
            },
            outcome: Outcome::Applied {
                request_id: Some("mine".into()),
            },
            other_writers: Vec::new(),
        }]);
        let own = t.triage(&desired(), &batch(vec![call("e2", "mine", "me", 999.0)]));
        assert!(own.units.is_empty());
        assert!(own.ignored.contains(&IgnoredBecause::OwnWrite));
        // A group nobody declared.
        let mut other = call("e3", "r3", "bob", 999.0);
        other.subjects = vec![Subject::SecurityGroupId("sg-else".into())];
        let unrelated = t.triage(&desired(), &batch(vec![other]));
        assert!(unrelated.ignored.contains(&IgnoredBecause::Unrelated));
    }

    #[test]
    fn the_latest_caller_by_event_time_wins_whatever_the_arrival_order() {
        let mut t = EventTriggers::default();
        t.learn(&snapshot());
        let unit = UnitId::security_group("LoadBalancerGroup");
        t.triage(&desired(), &batch(vec![call("late", "r2", "bob", 990.0)]));
        t.triage(
            &desired(),
            &batch(vec![call("early", "r1", "alice", 995.0)]),
        );
        let who = t.who(&BTreeSet::from([unit.clone()]));
        assert_eq!(who[&unit].actor.arn, "alice");
        // Older arriving last changes nothing.
        t.triage(
            &desired(),
            &batch(vec![call("older", "r0", "carol", 980.0)]),
        );
        assert_eq!(
            t.who(&BTreeSet::from([unit.clone()]))[&unit].actor.arn,
            "alice"
        );
        // Found in sync: re-read once more, then forgotten.
        let in_sync = BTreeSet::from([unit.clone()]);
        assert_eq!(t.settle(&in_sync, &BTreeSet::new(), 1000.0), in_sync);
        assert!(t.settle(&in_sync, &BTreeSet::new(), 1000.0).is_empty());
        assert!(t.who(&in_sync).is_empty());
        // Corrected: forgotten at once.
        t.triage(&desired(), &batch(vec![call("new", "r9", "dave", 1001.0)]));
        assert!(t.settle(&BTreeSet::new(), &in_sync, 1002.0).is_empty());
        assert!(t.who(&in_sync).is_empty());
    }
}
