//! `load` end to end: the seed file, every error class with its position,
//! YAML-level refusals, and inputs that must never panic.

use ecs_reconciler_spec::{
    ClusterSpec, DesiredState, IngressRule, ListenerCheck, LoadBalancerSpec, Mode, Policy,
    PortRange, Protocol, Quotas, ReplicaBounds, RuleManagement, RuleSource, SecurityGroupSpec,
    ServiceSpec, TargetGroupSpec, TargetMembership, TaskDefinitionCheck, load,
};

const SEED: &str = include_str!("../../../examples/seed.yaml");

/// Each error as `LINE:COL: MESSAGE`.
fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
            .collect(),
    }
}

fn hints(yaml: &str) -> Vec<String> {
    load(yaml)
        .err()
        .map(|d| d.iter().map(|e| e.hint.clone()).collect())
        .unwrap_or_default()
}

/// One security group `a` holding one rule; the rule's first line is line
/// 4, its keys start at column 9.
fn rule(lines: &[&str]) -> String {
    let mut s = String::from("securityGroups:\n  - name: a\n    ingress:\n");
    for (i, line) in lines.iter().enumerate() {
        s.push_str(if i == 0 { "      - " } else { "        " });
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Groups `web` (line 2) and `lb` (line 4) declared, then `rest` from line 6.
fn with_groups(rest: &str) -> String {
    format!(
        "securityGroups:\n  - name: web\n    ingress: []\n  - name: lb\n    ingress: []\n{rest}"
    )
}

/// Service `api` in `c1` (lines 2-4), then `rest` from line 5.
fn with_service(rest: &str) -> String {
    format!("services:\n  - name: api\n    cluster: c1\n    replicas: 1\n{rest}")
}

#[test]
fn seed_loads_to_the_expected_state() {
    let expected = DesiredState {
        mode: Mode::Enforce,
        policy: Policy::default(),
        quotas: Quotas::default(),
        security_groups: vec![
            SecurityGroupSpec {
                name: "LoadBalancerGroup".into(),
                id: None,
                vpc_id: None,
                management: RuleManagement::Exclusive,
                mode: Mode::Enforce,
                ingress: vec![IngressRule {
                    protocol: Protocol::Tcp,
                    ports: PortRange::single(80),
                    source: RuleSource::Ipv4("0.0.0.0/0".parse().unwrap()),
                    description: Some("HTTP from anywhere".into()),
                }],
            },
            SecurityGroupSpec {
                name: "EC2InstanceWithLoadBalancer".into(),
                id: None,
                vpc_id: None,
                management: RuleManagement::Exclusive,
                mode: Mode::Enforce,
                ingress: vec![IngressRule {
                    protocol: Protocol::Tcp,
                    ports: PortRange {
                        from: 32768,
                        to: 65535,
                    },
                    source: RuleSource::DeclaredGroup("LoadBalancerGroup".into()),
                    description: Some("ALB to dynamic host ports".into()),
                }],
            },
        ],
        clusters: vec![ClusterSpec {
            name: "nestjs-cluster".into(),
            instance_security_groups: vec!["EC2InstanceWithLoadBalancer".into()],
            mode: Mode::Enforce,
        }],
        services: vec![ServiceSpec {
            name: "nestjs-api".into(),
            cluster: "nestjs-cluster".into(),
            replicas: ReplicaBounds::exact(2),
            launch_type: Some("EC2".into()),
            capacity_provider_strategy: None,
            scheduling_strategy: Some("REPLICA".into()),
            task_definition: Some(TaskDefinitionCheck {
                family: "nestjs-api".into(),
                container_name: Some("api".into()),
                container_port: Some(3000),
                host_port: Some(0),
            }),
            mode: Mode::Enforce,
        }],
        target_groups: vec![TargetGroupSpec {
            name: "nestjs-api-tg".into(),
            health_check_path: Some("/".into()),
            cluster: "nestjs-cluster".into(),
            service: "nestjs-api".into(),
            container_name: "api".into(),
            container_port: 3000,
            membership: TargetMembership::Exclusive,
            mode: Mode::Enforce,
        }],
        load_balancers: vec![LoadBalancerSpec {
            name: "nestjs-api-alb".into(),
            security_groups: vec!["LoadBalancerGroup".into()],
            listeners: vec![ListenerCheck {
                port: 80,
                protocol: Some("HTTP".into()),
            }],
            mode: Mode::Enforce,
        }],
        notifications: Vec::new(),
    };
    assert_eq!(load(SEED).map_err(|e| e.to_string()), Ok(expected));
}

#[test]
fn values_are_normalised_and_defaults_applied() {
    let yaml = r#"
mode: observe
securityGroups:
  - name: a
    management: owned
    ingress:
      - {protocol: "6", ports: "443", cidr: 10.1.2.3/8}
      - {protocol: 17, ports: {from: 53, to: 53}, cidr: "2001:db8::1/32"}
      - {protocol: icmp, sourceGroupId: sg-0abc}
      - {protocol: icmpv6, ports: {from: 128, to: -1}, sourceGroup: a}
      - {protocol: -1, sourceGroup: a}
  - name: b
    mode: enforce
    ingress: []
targetGroups:
  - {name: tg, service: api, containerName: c, containerPort: "80"}
services:
  - {name: api, cluster: c1, replicas: "3"}
"#;
    let state = load(yaml).map_err(|e| e.to_string()).unwrap();
    assert_eq!(state.mode, Mode::Observe);
    let a = &state.security_groups[0];
    assert_eq!(
        (a.mode, a.management),
        (Mode::Observe, RuleManagement::Owned)
    );
    assert_eq!(state.security_groups[1].mode, Mode::Enforce);
    let summary: Vec<String> = a
        .ingress
        .iter()
        .map(|r| format!("{} {} {}", r.protocol, r.ports, r.source))
        .collect();
    assert_eq!(
        summary,
        [
            "tcp 443 10.0.0.0/8",
            "udp 53 2001:db8::/32",
            "icmp all group sg-0abc",
            "icmpv6 128--1 group a",
            "all all group a",
        ]
    );
    // `cluster` left out: the only service named `api` decides it.
    assert_eq!(state.target_groups[0].cluster, "c1");
    assert_eq!(state.target_groups[0].container_port, 80);
    assert_eq!(state.target_groups[0].mode, Mode::Observe);
    assert_eq!(state.services[0].replicas, ReplicaBounds::exact(3));
}

#[test]
fn lookalikes_are_not_duplicates() {
    // Same group name in two VPCs, same service name in two clusters, and a
    // service whose cluster is not listed under `clusters`.
    let yaml = r#"
securityGroups:
  - {name: web, vpcId: vpc-1, ingress: []}
  - {name: web, vpcId: vpc-2, ingress: []}
services:
  - {name: api, cluster: blue, replicas: 1}
  - {name: api, cluster: green, replicas: 1}
targetGroups:
  - {name: tg, service: api, cluster: green, containerName: c, containerPort: 80}
"#;
    let state = load(yaml).map_err(|e| e.to_string()).unwrap();
    assert_eq!(state.target_groups[0].cluster, "green");
    assert_eq!(state.cluster_names(), ["blue", "green"]);
}

#[test]
fn each_error_class_is_reported_at_its_value() {
    let cases: Vec<(&str, String, &[&str])> = vec![
        // Rules.
        ("cidr v4", rule(&["protocol: tcp", "ports: 80", "cidr: 0.0.0.0/33"]),
            &[r#"6:15: invalid CIDR "0.0.0.0/33": prefix length must be 0-32"#]),
        ("cidr v6", rule(&["protocol: tcp", "ports: 80", "cidr: 2001:db8::/129"]),
            &[r#"6:15: invalid CIDR "2001:db8::/129": prefix length must be 0-128"#]),
        ("cidr address", rule(&["protocol: tcp", "ports: 80", "cidr: 10.0.0/8"]),
            &[r#"6:15: invalid CIDR "10.0.0/8": "10.0.0" is not an IPv4 or IPv6 address"#]),
        ("cidr prefix", rule(&["protocol: tcp", "ports: 80", "cidr: 10.0.0.1"]),
            &[r#"6:15: invalid CIDR "10.0.0.1": it has no prefix length"#]),
        ("port range", rule(&["protocol: udp", "ports: 70000", "cidr: ::/0"]),
            &["5:16: port 70000 is out of range: udp ports are 0-65535"]),
        ("port bounds", rule(&["protocol: tcp", "ports: {from: -5, to: 80}", "cidr: ::/0"]),
            &["5:23: port -5 is out of range: tcp ports are 0-65535"]),
        ("reversed", rule(&["protocol: tcp", "ports: 80-22", "cidr: ::/0"]),
            &["5:16: port range 80-22 is reversed: it starts after it ends"]),
        ("range text", rule(&["protocol: tcp", "ports: 80-", "cidr: ::/0"]),
            &[r#"5:16: invalid port range "80-""#]),
        ("ports on all", rule(&["protocol: all", "ports: 80", "cidr: ::/0"]),
            &["5:16: protocol `all` admits every port, so `ports` must be left out"]),
        ("ports missing", rule(&["protocol: tcp", "cidr: ::/0"]),
            &["4:9: a tcp rule needs `ports`"]),
        ("icmp single", rule(&["protocol: icmp", "ports: 8", "cidr: ::/0"]),
            &["5:16: `ports` of an icmp rule must be `{from: TYPE, to: CODE}`"]),
        ("icmp type", rule(&["protocol: icmp", "ports: {from: 256, to: 0}", "cidr: ::/0"]),
            &["5:23: ICMP type 256 is out of range"]),
        ("protocol", rule(&["protocol: tpc", "ports: 80", "cidr: ::/0"]),
            &[r#"4:19: unknown protocol "tpc""#]),
        ("protocol by value", rule(&["protocol: 06", "ports: 80", "cidr: ::/0", "description: zero is fine"]), &[]),
        ("protocol number", rule(&["protocol: 50", "cidr: ::/0"]),
            &["4:19: unknown protocol the number 50"]),
        ("no source", rule(&["protocol: tcp", "ports: 80"]), &["4:9: this rule has no source"]),
        ("two sources", rule(&["protocol: tcp", "ports: 80", "cidr: ::/0", "sourceGroupId: sg-1"]),
            &["7:24: a rule takes exactly one source, but this one has `cidr` and `sourceGroupId`"]),
        ("group id", rule(&["protocol: tcp", "ports: 80", "sourceGroupId: sg-XYZ"]),
            &[r#"6:24: invalid security group id "sg-XYZ" in `sourceGroupId`"#]),
        ("source group", rule(&["protocol: tcp", "ports: 80", "sourceGroup: b"]),
            &["6:22: `sourceGroup` names security group `b`, which is not declared in `securityGroups`"]),
        ("description", rule(&["protocol: tcp", "ports: 80", "cidr: ::/0", &format!("description: {}", "x".repeat(256))]),
            &["7:22: description is 256 characters long; EC2 allows at most 255"]),
        ("repeated rule", format!("{}      - {{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}}\n", rule(&["protocol: tcp", "ports: 80", "cidr: 0.0.0.0/0"])),
            &["7:9: this rule repeats `ingress[0]` (line 4)"]),
        // Security groups.
        ("group twice", "securityGroups:\n  - {name: a, ingress: []}\n  - {name: a, ingress: []}\n".into(),
            &["3:12: security group `a` is declared twice"]),
        ("group id shape", "securityGroups:\n  - {name: a, id: sg-Q, ingress: []}\n".into(),
            &[r#"2:19: invalid security group id "sg-Q" in `id`"#]),
        ("vpc id", "securityGroups:\n  - {name: a, vpcId: vpc1, ingress: []}\n".into(),
            &[r#"2:22: invalid VPC id "vpc1""#]),
        ("management", "securityGroups:\n  - {name: a, management: shared, ingress: []}\n".into(),
            &[r#"2:27: "shared" is not a valid management"#]),
        ("ingress missing", "securityGroups:\n  - name: a\n".into(),
            &["2:5: this security group is missing the required field `ingress`"]),
        // Clusters and load balancers refer to declared groups.
        ("cluster groups", with_groups("clusters:\n  - name: c\n    instanceSecurityGroups: [web, wbe]\n"),
            &["8:35: `instanceSecurityGroups` names security group `wbe`, which is not declared in `securityGroups`"]),
        ("cluster twice", with_groups("clusters:\n  - name: c\n  - name: c\n"), &["8:11: cluster `c` is declared twice"]),
        ("lb groups", with_groups("loadBalancers:\n  - name: alb\n    securityGroups: [lb, nope]\n"),
            &["8:26: `securityGroups` names security group `nope`, which is not declared in `securityGroups`"]),
        ("lb twice", "loadBalancers:\n  - name: alb\n  - name: alb\n".into(), &["3:11: load balancer `alb` is declared twice"]),
        ("lb listener", "loadBalancers:\n  - name: alb\n    listeners: [{port: 0}]\n".into(),
            &["3:24: listener port 0 is out of range: it must be 1-65535"]),
        // Services.
        ("service twice", with_service("  - {name: api, cluster: c1, replicas: 2}\n"),
            &["5:12: service `api` in cluster `c1` is declared twice"]),
        ("negative replicas", "services:\n  - {name: s, cluster: c, replicas: -1}\n".into(),
            &["2:37: replicas -1 is out of range: it must be 0-10000"]),
        ("huge replicas", "services:\n  - {name: s, cluster: c, replicas: 10001}\n".into(),
            &["2:37: replicas 10001 is out of range: it must be 0-10000"]),
        ("paused not a boolean", "services:\n  - {name: s, cluster: c, replicas: 1, paused: yes}\n".into(),
            &["2:48: `paused` must be true or false, not \"yes\""]),
        ("replica range reversed", "services:\n  - {name: s, cluster: c, replicas: {min: 5, max: 2}}\n".into(),
            &["2:51: replicas.max 2 is less than replicas.min 5"]),
        ("replica range unknown key", "services:\n  - {name: s, cluster: c, replicas: {min: 1, most: 2}}\n".into(),
            &["2:37: this replica range is missing the required field `max`", "2:46: unknown field `most` in a replica range"]),
        ("replicas text", "services:\n  - {name: s, cluster: c, replicas: two}\n".into(),
            &[r#"2:37: `replicas` must be a whole number, not "two""#]),
        ("host port", "services:\n  - name: s\n    cluster: c\n    replicas: 1\n    taskDefinition: {family: f, hostPort: 65536}\n".into(),
            &["5:43: hostPort 65536 is out of range: it must be 0-65535"]),
        ("service mode", "services:\n  - {name: s, cluster: c, replicas: 1, mode: dryrun}\n".into(),
            &[r#"2:46: "dryrun" is not a valid mode"#]),
        // Target groups.
        ("undeclared service", with_service("targetGroups:\n  - {name: tg, service: apo, containerName: c, containerPort: 80}\n"),
            &["6:25: target group binds service `apo`, which is not declared in `services`"]),
        ("wrong cluster", with_service("targetGroups:\n  - {name: tg, service: api, cluster: c2, containerName: c, containerPort: 80}\n"),
            &["6:25: target group binds service `api` in cluster `c2`, which is not declared in `services`"]),
        ("ambiguous service", with_service("  - {name: api, cluster: c2, replicas: 1}\ntargetGroups:\n  - {name: tg, service: api, containerName: c, containerPort: 80}\n"),
            &["7:25: service `api` is declared in several clusters (`c1`, `c2`), so the binding is ambiguous"]),
        ("target type", with_service("targetGroups:\n  - {name: tg, targetType: ip, service: api, containerName: c, containerPort: 80}\n"),
            &[r#"6:28: target type "ip" is not supported: only `instance` targets are"#]),
        ("health path", with_service("targetGroups:\n  - {name: tg, healthCheckPath: health, service: api, containerName: c, containerPort: 80}\n"),
            &[r#"6:33: health check path "health" must start with `/`"#]),
        ("membership", with_service("targetGroups:\n  - {name: tg, membership: owned, service: api, containerName: c, containerPort: 80}\n"),
            &[r#"6:28: "owned" is not a valid membership"#]),
        ("tg twice", with_service("targetGroups:\n  - {name: tg, service: api, containerName: c, containerPort: 80}\n  - {name: tg, service: api, containerName: c, containerPort: 81}\n"),
            &["7:12: target group `tg` is declared twice"]),
        ("tg name", with_service("targetGroups:\n  - {name: tg_1, service: api, containerName: c, containerPort: 80}\n"),
            &[r#"6:12: invalid target group name "tg_1": it contains '_'"#]),
        // The file as a whole.
        ("version", "version: 2\nclusters: [{name: c}]\n".into(), &["1:10: unsupported version 2: this ecs-reconciler reads version 1"]),
        ("global mode", "mode: Enforce\nclusters: [{name: c}]\n".into(), &[r#"1:7: "Enforce" is not a valid mode"#]),
        ("unknown field", "clusters: [{name: c}]\nsecurityGroup: []\n".into(), &["2:1: unknown field `securityGroup` in the top level"]),
        ("missing name", "clusters:\n  - instanceSecurityGroups: []\n".into(), &["2:5: this cluster is missing the required field `name`"]),
        ("name not text", "clusters:\n  - name: 123\n".into(), &["2:11: `name` must be text, not the number 123"]),
        ("name a list", "clusters:\n  - name: [a]\n".into(), &["2:11: `name` must be text, not a list"]),
        ("list not list", "clusters: {name: c}\n".into(), &["1:11: `clusters` must be a list, not a mapping"]),
        ("null list", "clusters:\nservices: []\n".into(), &["1:9: `clusters` has no value"]),
        ("empty entry", "clusters:\n  -\n".into(), &["2:4: entry 0 of `clusters` is empty"]),
        ("top-level list", "- a\n".into(), &["1:1: the top level of the file must be a mapping, not a list"]),
        ("braces", "{}\n".into(), &["1:1: the file declares nothing: securityGroups, clusters, services, targetGroups and loadBalancers are all missing or empty"]),
        ("empty lists", "version: 1\nsecurityGroups: []\nservices: []\n".into(), &["1:1: the file declares nothing"]),
        ("empty", "".into(), &["1:1: the file declares nothing: it is empty, or holds only comments or `null`"]),
        ("comments", "# nothing\n\n# here\n".into(), &["1:1: the file declares nothing"]),
        ("null", "null\n".into(), &["1:1: the file declares nothing"]),
        ("tilde doc", "---\n~\n".into(), &["1:1: the file declares nothing"]),
    ];
    let mut failures = Vec::new();
    for (name, yaml, expected) in &cases {
        let got = errors(yaml);
        let ok =
            got.len() == expected.len() && got.iter().zip(*expected).all(|(g, e)| g.starts_with(e));
        if !ok {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn yaml_level_refusals() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "duplicate key",
            "clusters:\n  - name: a\n    mode: observe\n    name: b\n",
            &["4:5: duplicate key `name` in this mapping"],
        ),
        (
            "anchor and alias",
            "clusters:\n  - name: &n a\n  - name: *n\n",
            &[
                "2:11: YAML anchors (`&name`) are not supported",
                "3:11: YAML aliases (`*name`) are not supported",
            ],
        ),
        (
            "tag",
            "clusters:\n  - name: !!str a\n",
            &["2:11: YAML tags (`!!str`) are not supported"],
        ),
        (
            "two documents",
            "clusters: [{name: a}]\n---\nclusters: [{name: b}]\n",
            &["2:1: the file holds more than one YAML document"],
        ),
        ("syntax", "clusters: [{name: a}\n", &["2:1: invalid YAML: "]),
        ("tab", "clusters:\n\t- name: a\n", &["2:2: invalid YAML: "]),
        (
            "complex key",
            "? [a]\n: b\nclusters: [{name: a}]\n",
            &["1:3: a mapping key must be plain text"],
        ),
    ];
    for (name, yaml, expected) in cases {
        let got = errors(yaml);
        assert!(
            got.len() == expected.len() && got.iter().zip(*expected).all(|(g, e)| g.starts_with(e)),
            "{name}: expected {expected:?}, got {got:?}"
        );
    }
    let hint = &hints("clusters:\n  - name: a\n    mode: observe\n    name: b\n")[0];
    assert!(hint.contains("line 2, column 5"), "{hint}");
}

#[test]
fn deep_nesting_is_refused() {
    let flow = format!("clusters: {}{}\n", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        errors(&flow),
        ["1:74: the file nests more than 64 levels deep"]
    );
    let block: String = (0..80).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
    let got = errors(&block);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].ends_with("the file nests more than 64 levels deep"),
        "{got:?}"
    );
}

#[test]
fn hints_say_how_to_fix() {
    let cases: &[(&str, &str)] = &[
        (
            &rule(&["protocol: tcp", "ports: 80", "cidr: 0.0.0.0/33"]),
            "write an IPv4 CIDR such as 10.0.0.0/16 or an IPv6 one such as ::/0",
        ),
        (
            &rule(&["protocol: TCP", "ports: 80", "cidr: ::/0"]),
            "did you mean `tcp`? write tcp, udp, icmp, icmpv6 or all, or a number: 6, 17, 1, 58 or -1",
        ),
        (
            &rule(&["protocol: tcp", "ports: 80-22", "cidr: ::/0"]),
            "write the lower port first: 22-80",
        ),
        (
            &rule(&["protocol: tcp", "ports: 80", "sourceGroup: A"]),
            "did you mean `a`?",
        ),
        (
            "securityGroups:\n  - name: a\n    igress: []\n",
            "did you mean `ingress`?",
        ),
        ("clusters:\n  - name: 123\n", "quote it: \"123\""),
        (
            "clusters:\n  - {name: a, mode: observed}\n",
            "did you mean `observe`?",
        ),
        (
            &with_service(
                "targetGroups:\n  - {name: tg, service: api, cluster: c2, containerName: c, containerPort: 80}\n",
            ),
            "`api` is declared in cluster `c1`: fix `cluster`",
        ),
    ];
    for (yaml, hint) in cases {
        let got = hints(yaml);
        assert!(
            got.iter().any(|h| h.starts_with(hint)),
            "expected hint {hint:?}, got {got:?}"
        );
    }
}

#[test]
fn every_error_is_reported_in_document_order() {
    let yaml = r#"version: 3
securityGroups:
  - name: web
    ingress:
      - {protocol: tcp, ports: 99999, cidr: 0.0.0.0/0}
      - {protocol: tcp, ports: 80, cidr: 300.0.0.0/8}
clusters:
  - name: c
    instanceSecurityGroups: [wbe]
    colour: blue
services:
  - {name: api, cluster: c, replicas: -2}
targetGroups:
  - {name: tg, service: apx, containerName: a, containerPort: 80}
"#;
    assert_eq!(
        errors(yaml),
        [
            "1:10: unsupported version 3: this ecs-reconciler reads version 1",
            "5:32: port 99999 is out of range: tcp ports are 0-65535",
            r#"6:42: invalid CIDR "300.0.0.0/8": "300.0.0.0" is not an IPv4 or IPv6 address"#,
            "9:30: `instanceSecurityGroups` names security group `wbe`, which is not declared in `securityGroups`",
            "10:5: unknown field `colour` in a cluster",
            "12:39: replicas -2 is out of range: it must be 0-10000",
            "14:25: target group binds service `apx`, which is not declared in `services`",
        ]
    );
}

#[test]
fn render_prints_file_line_col_and_hint() {
    let diagnostics = load(&rule(&["protocol: tcp", "ports: 80", "cidr: 0.0.0.0/33"])).unwrap_err();
    assert_eq!(
        diagnostics.render("seed.yaml"),
        "seed.yaml:6:15: error: invalid CIDR \"0.0.0.0/33\": prefix length must be 0-32\n  \
         hint: write an IPv4 CIDR such as 10.0.0.0/16 or an IPv6 one such as ::/0"
    );
    assert_eq!(
        diagnostics.errors()[0].path.as_deref(),
        Some("securityGroups[0].ingress[0].cidr")
    );
    assert!(
        diagnostics
            .to_string()
            .starts_with("6:15: error: invalid CIDR")
    );
    // Several errors: one block each, no final newline (`eprintln!` adds it).
    let two = load("clusters: [{name: c, mode: x}]\nversion: 9\n").unwrap_err();
    let text = two.render("f.yaml");
    assert_eq!(text.lines().filter(|l| l.starts_with("f.yaml:")).count(), 2);
    assert!(!text.ends_with('\n'));
}

#[test]
fn a_bad_value_is_reported_once() {
    // The rule's source failed to decode: no "has no source" on top, and a
    // group whose name failed does not make references undeclared.
    let yaml = "securityGroups:\n  - name: [x]\n    ingress:\n      - {protocol: tcp, ports: 80, cidr: [a]}\n      - {protocol: tcp, ports: 80, sourceGroup: x}\n";
    assert_eq!(
        errors(yaml),
        [
            "2:11: `name` must be text, not a list",
            "4:42: `cidr` must be text, not a list"
        ]
    );
}

/// A small deterministic generator: no dependency, same inputs every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

#[test]
fn mangled_files_never_panic() {
    // Every prefix of the seed (a file cut short while being written)...
    for (i, _) in SEED.char_indices() {
        check_no_panic(&SEED[..i]);
    }
    // ...and random edits with YAML's meaningful characters.
    let pieces = [
        "",
        " ",
        "\n",
        "\t",
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "&a ",
        "*a",
        "!",
        "#",
        "---\n",
        "-1",
        "99999999999999999999",
        "0x",
        "~",
        "?",
        "|",
        ">",
        "é",
        "\u{feff}",
        "\0",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let chars: Vec<char> = SEED.chars().collect();
    for _ in 0..3000 {
        let mut text: Vec<char> = chars.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = rng.next() % (text.len() + 1);
            let cut = (rng.next() % 3).min(text.len() - at.min(text.len()));
            let piece = pieces[rng.next() % pieces.len()];
            text.splice(at..at + cut, piece.chars());
        }
        check_no_panic(&text.iter().collect::<String>());
    }
}

fn check_no_panic(text: &str) {
    if let Err(diagnostics) = load(text) {
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            assert!(d.line >= 1 && d.col >= 1, "{d:?}");
            assert!(!d.message.is_empty() && !d.hint.is_empty(), "{d:?}");
        }
    }
}
