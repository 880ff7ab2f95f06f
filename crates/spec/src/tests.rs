//! In-crate tests that need the private pipeline stages: the hand decoder
//! and serde must read the same file into the same `file` values, and the
//! kitchen-sink file must really use every field the schema describes.

use std::collections::BTreeSet;

use crate::file::DesiredStateFile;
use crate::{decode, yaml};

/// Every field of the format, with numbers both bare and quoted, and every
/// form of `ports`.
const KITCHEN_SINK: &str = r#"
version: "1"
mode: observe
policy:
  maxDestructivePerPass: 3
  maxDestructivePercent: 25
quotas:
  securityGroupsPerInterface: 8
  rulesPerSecurityGroup: "120"
notifications:
  - name: ops-slack
    url: {env: SLACK_WEBHOOK_URL}
    format: slack
    events: [drift-corrected, removals-held, fight-detected, config-rejected, read-failing, leadership-changed, throttled, event-queue]
    readFailingAfterSeconds: 600
    coalesceSeconds: "30"
  - name: pager
    url: {file: /run/secrets/pager-hook}
    format: json
    events: [fight-detected]
securityGroups:
  - name: edge
    id: sg-0123456789abcdef0
    vpcId: vpc-0a1b2c3d
    management: owned
    mode: enforce
    ingress:
      - protocol: tcp
        ports: 443
        cidr: 0.0.0.0/0
        description: HTTPS from anywhere
      - protocol: "6"
        ports: "80"
        cidr: "::/0"
      - protocol: 17
        ports: 5000-5010
        sourceGroup: app
      - protocol: udp
        ports: {from: 6000, to: "6001"}
        sourceGroupId: sg-0fedcba9
      - protocol: icmp
        ports:
          from: 8
          to: -1
        cidr: 10.1.2.3/8
      - protocol: icmpv6
        cidr: 2001:db8::/32
      - protocol: all
        sourceGroup: edge
      - protocol: -1
        cidr: 192.168.0.0/16
      - protocol: tcp
        ports: 443
        prefixList: com.amazonaws.global.cloudfront.origin-facing
      - protocol: tcp
        ports: 8443
        prefixListId: pl-0a1b2c3d
      - protocol: tcp
        ports: 9000
        sourceGroupId: sg-0bbbbbbb
        sourceAccount: "111122223333"
  - name: app
    management: exclusive
    ingress: []
clusters:
  - name: main
    instanceSecurityGroups: [app]
    mode: observe
    paused: true
services:
  - name: api
    cluster: main
    replicas: 3
    launchType: FARGATE
    schedulingStrategy: DAEMON
    taskDefinition:
      family: api
      containerName: web
      containerPort: "8080"
      hostPort: 0
    mode: enforce
  - name: worker
    cluster: other
    replicas: {min: 0, max: 4}
    launchType: EXTERNAL
    schedulingStrategy: REPLICA
    taskDefinition: {family: worker}
  - name: spot
    cluster: other
    replicas: 1
    capacityProviderStrategy:
      - capacityProvider: asg-spot
        weight: 3
        base: "1"
      - {capacityProvider: asg-on-demand}
targetGroups:
  - name: api-tg
    targetType: instance
    healthCheckPath: /health
    service: api
    cluster: main
    containerName: web
    containerPort: 8080
    membership: shared
    mode: observe
  - name: worker-tg
    service: worker
    containerName: w
    containerPort: 9000
    membership: exclusive
loadBalancers:
  - name: edge-alb
    securityGroups: [edge]
    listeners:
      - port: 443
        protocol: HTTPS
      - port: "80"
        protocol: HTTP
      - port: 8080
    mode: observe
  - name: bare
    launchType: ignored
"#;

/// The kitchen sink minus its one deliberate mistake (an unknown field,
/// which both readers must refuse).
fn kitchen_sink() -> String {
    KITCHEN_SINK.replace("    launchType: ignored\n", "")
}

fn decode_by_hand(source: &str) -> DesiredStateFile {
    let root = yaml::parse(source).expect("valid YAML");
    let decoded = decode::decode(&root);
    assert!(decoded.errors.is_empty(), "{:#?}", decoded.errors);
    decoded.file
}

fn decode_by_serde(source: &str) -> Result<DesiredStateFile, serde_json::Error> {
    let root = yaml::parse(source).expect("valid YAML");
    serde_json::from_value(root.to_json())
}

#[test]
fn hand_decoder_and_serde_agree_on_every_field() {
    let source = kitchen_sink();
    let by_hand = decode_by_hand(&source);
    let by_serde = decode_by_serde(&source).expect("serde reads the kitchen sink");
    assert_eq!(by_hand, by_serde);
    // And the whole pipeline accepts it.
    let state = crate::load(&source).map_err(|e| e.to_string()).unwrap();
    assert_eq!(state.security_groups[0].ingress.len(), 11);
}

#[test]
fn both_readers_refuse_unknown_fields() {
    let root = yaml::parse(KITCHEN_SINK).unwrap();
    let decoded = decode::decode(&root);
    assert_eq!(decoded.errors.len(), 1, "{:#?}", decoded.errors);
    assert!(decoded.errors[0].message.contains("`launchType`"));
    assert!(decode_by_serde(KITCHEN_SINK).is_err());
}

#[test]
fn serialized_file_round_trips_through_serde() {
    let by_hand = decode_by_hand(&kitchen_sink());
    let json = serde_json::to_value(&by_hand).unwrap();
    let back: DesiredStateFile = serde_json::from_value(json).unwrap();
    assert_eq!(by_hand, back);
}

fn keys(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn schema_properties(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| schema_properties(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| schema_properties(v, out)),
        _ => {}
    }
}

#[test]
fn kitchen_sink_uses_every_field_of_the_schema() {
    let mut used = BTreeSet::new();
    keys(&yaml::parse(&kitchen_sink()).unwrap().to_json(), &mut used);
    let mut described = BTreeSet::new();
    schema_properties(&crate::json_schema(), &mut described);
    assert_eq!(used, described);
}

#[test]
fn a_capacity_provider_strategy_is_checked_like_ecs_checks_it() {
    let state = crate::load(&kitchen_sink())
        .map_err(|e| e.to_string())
        .unwrap();
    let spot = state.services.iter().find(|s| s.name == "spot").unwrap();
    let strategy = spot.capacity_provider_strategy.as_ref().unwrap();
    // Sorted by provider; weight and base default to ECS's 0.
    assert_eq!(strategy[0].provider, "asg-on-demand");
    assert_eq!((strategy[0].weight, strategy[0].base), (0, 0));
    assert_eq!((strategy[1].weight, strategy[1].base), (3, 1));

    let bad = r"
version: 1
services:
  - name: api
    cluster: main
    replicas: 1
    launchType: EC2
    capacityProviderStrategy:
      - capacityProvider: a
        weight: 1001
      - capacityProvider: a
";
    let errors = crate::load(bad).unwrap_err().to_string();
    assert!(errors.contains("not both"), "{errors}");
    assert!(errors.contains("weight"), "{errors}");
    assert!(errors.contains("named twice"), "{errors}");
    assert!(
        errors.contains("9:7: error: a service has a launch type"),
        "{errors}"
    );
}

#[test]
fn prefix_lists_other_accounts_and_quotas_are_checked() {
    let state = crate::load(&kitchen_sink())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(
        (
            state.quotas.groups_per_interface,
            state.quotas.rules_per_group
        ),
        (8, 120)
    );
    let sources: Vec<String> = state.security_groups[0]
        .ingress
        .iter()
        .map(|r| r.source.to_string())
        .collect();
    for expected in [
        "prefix list com.amazonaws.global.cloudfront.origin-facing",
        "prefix list pl-0a1b2c3d",
        "group sg-0bbbbbbb of account 111122223333",
    ] {
        assert!(sources.iter().any(|s| s == expected), "{sources:?}");
    }

    let bad = r"
quotas:
  securityGroupsPerInterface: 16
  rulesPerSecurityGroup: 100
securityGroups:
  - name: edge
    ingress:
      - protocol: tcp
        ports: 443
        cidr: 0.0.0.0/0
        sourceAccount: '111122223333'
      - protocol: tcp
        ports: 443
        sourceGroupId: sg-0b
        sourceAccount: 12345
      - protocol: tcp
        ports: 443
        sourceGroupId: sg-0b
        sourceAccount: '1234'
      - protocol: tcp
        ports: 443
        prefixListId: pl-XYZ
      - protocol: tcp
        ports: 443
        prefixList: x
        cidr: 10.0.0.0/8
";
    let errors = crate::load(bad).unwrap_err().to_string();
    for expected in [
        "4:26: error: 16 groups per interface × 100 rules per group is 1600",
        "11:24: error: `sourceAccount` names the owner of `sourceGroupId`",
        "15:24: error:",
        "quote it",
        "19:24: error: invalid account id \"1234\"",
        "22:23: error: invalid prefix list id",
        "a rule takes exactly one source, but this one has `cidr` and `prefixList`",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
}

#[test]
fn notifications_take_a_url_source_never_a_url() {
    let state = crate::load(&kitchen_sink())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(state.notifications.len(), 2);
    assert_eq!(state.notifications[0].events.len(), 8);
    assert_eq!(
        state.notifications[0].read_failing_after,
        std::time::Duration::from_secs(600)
    );
    assert_eq!(
        state.notifications[1].coalesce,
        std::time::Duration::from_secs(10)
    );
    let bad = r"
securityGroups:
  - name: edge
    ingress: []
notifications:
  - name: a
    url: {env: 'https://hooks.example.test/x'}
    events: [drift-corrected, drift-corrected]
  - name: a
    url: {env: X, file: /y}
    events: []
  - name: b
    url: {}
    events: [everything]
    coalesceSeconds: 0
";
    let errors = crate::load(bad).unwrap_err().to_string();
    for expected in [
        "is not an environment variable name",
        "this event is listed twice",
        "notification `a` is declared twice",
        "not both",
        "at least one event",
        "the URL needs a source",
        "notification event",
        "coalesceSeconds 0 is out of range",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
}
