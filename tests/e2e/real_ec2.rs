//! Real EC2 networking, end to end (issue 16): instances with a trunk ENI
//! (ModifyInstanceAttribute refuses them) and another writer changing an
//! instance's groups between the controller's read and its write.

use serde_json::{Value, json};

use crate::harness::{Emulator, seed_config};

/// The seed's first container instance's EC2 id and primary ENI.
fn first_instance(emu: &Emulator) -> (String, String) {
    let out = emu.boto3(
        "ci = ecs.list_container_instances(cluster='nestjs-cluster')['containerInstanceArns']\n\
         d = ecs.describe_container_instances(cluster='nestjs-cluster', containerInstances=sorted(ci))\n\
         iid = sorted(d['containerInstances'], key=lambda c: c['containerInstanceArn'])[0]['ec2InstanceId']\n\
         inst = ec2.describe_instances(InstanceIds=[iid])['Reservations'][0]['Instances'][0]\n\
         eni = [n for n in inst['NetworkInterfaces'] if n['Attachment']['DeviceIndex'] == 0][0]\n\
         out = [iid, eni['NetworkInterfaceId']]",
    );
    (
        out[0].as_str().unwrap().to_string(),
        out[1].as_str().unwrap().to_string(),
    )
}

/// The group names on the instance's primary ENI and how many ENIs it has.
fn groups_of(emu: &Emulator, instance: &str) -> (Vec<String>, usize) {
    let out = emu.boto3(&format!(
        "inst = ec2.describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]\n\
         eni = [n for n in inst['NetworkInterfaces'] if n['Attachment']['DeviceIndex'] == 0][0]\n\
         out = [sorted(g['GroupName'] for g in eni['Groups']), len(inst['NetworkInterfaces'])]"
    ));
    let names = out[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (names, usize::try_from(out[1].as_u64().unwrap()).unwrap())
}

/// Creates a group nobody declares (someone else's), in the default VPC.
fn someone_elses_group(emu: &Emulator, name: &str) -> String {
    emu.boto3(&format!(
        "vpc = ec2.describe_vpcs(Filters=[{{'Name': 'isDefault', 'Values': ['true']}}])['Vpcs'][0]['VpcId']\n\
         out = ec2.create_security_group(GroupName='{name}', Description='not declared', VpcId=vpc)['GroupId']"
    ))
    .as_str()
    .unwrap()
    .to_string()
}

fn apply(emu: &Emulator) -> Value {
    let run = emu.reconciler(&["apply", "--config", &seed_config(), "--once", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.json()
}

#[test]
fn instances_with_a_trunk_eni_get_their_groups_through_the_primary_eni_and_keep_the_others() {
    let emu = Emulator::start();
    emu.control(
        "POST",
        "ec2",
        Some(&json!({"trunk_enis": true, "strict_group_writes": true})),
    );
    let (instance, eni) = first_instance(&emu);
    let ops = someone_elses_group(&emu, "ops");
    // The cluster's group detached by hand, someone else's attached.
    emu.ctl("detach-instance-group EC2InstanceWithLoadBalancer --index 0");
    emu.boto3(&format!(
        "cur = [g['GroupId'] for g in ec2.describe_network_interfaces(NetworkInterfaceIds=['{eni}'])['NetworkInterfaces'][0]['Groups']]\n\
         ec2.modify_network_interface_attribute(NetworkInterfaceId='{eni}', Groups=cur + ['{ops}'])"
    ));
    let (before, enis) = groups_of(&emu, &instance);
    assert_eq!(enis, 2, "a trunk ENI beside the primary one");
    assert!(!before.contains(&"EC2InstanceWithLoadBalancer".to_string()));

    emu.ctl("calls --reset");
    apply(&emu);
    let (after, _) = groups_of(&emu, &instance);
    assert_eq!(
        after,
        ["EC2InstanceWithLoadBalancer", "default", "ops"],
        "attached through the primary ENI, someone else's group kept"
    );
    let calls = emu.control("GET", "calls?client=reconciler", None);
    assert!(
        calls.get("ec2:ModifyNetworkInterfaceAttribute").is_some(),
        "{calls}"
    );
    assert!(
        calls.get("ec2:ModifyInstanceAttribute").is_none(),
        "ModifyInstanceAttribute fails on an instance with a trunk ENI: {calls}"
    );
}

#[test]
fn another_writer_between_the_read_and_the_write_loses_nothing_silently() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"trunk_enis": true})));
    let (instance, _) = first_instance(&emu);
    let ops = someone_elses_group(&emu, "ops");

    // After the pass read the instance, and before the controller writes,
    // someone attaches their group: the re-read right before the write
    // keeps it.
    emu.ctl("detach-instance-group EC2InstanceWithLoadBalancer --index 0");
    emu.control(
        "POST",
        "hooks",
        Some(
            &json!({"before": "ec2:DescribeNetworkInterfaces", "client": "reconciler", "once": true,
                     "do": {"attach_group": {"instance": instance, "group": ops}}}),
        ),
    );
    apply(&emu);
    let (after, _) = groups_of(&emu, &instance);
    assert_eq!(after, ["EC2InstanceWithLoadBalancer", "default", "ops"]);

    // Someone detaches a group the pass saw: it stays detached (it is not
    // declared), and the change says so.
    emu.control("DELETE", "hooks", None);
    emu.ctl("detach-instance-group EC2InstanceWithLoadBalancer --index 0");
    emu.control(
        "POST",
        "hooks",
        Some(
            &json!({"before": "ec2:DescribeNetworkInterfaces", "client": "reconciler", "once": true,
                     "do": {"detach_group": {"instance": instance, "group": ops}}}),
        ),
    );
    let applied = apply(&emu);
    let reason = applied["outcomes"][0]["change"]["reason"]
        .as_str()
        .or_else(|| applied["outcomes"][0]["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains(&format!(
            "{ops} detached by another writer since this pass's read"
        )),
        "{applied}"
    );
    assert_eq!(
        applied["outcomes"][0]["otherWriters"],
        json!([{"kind": "detached-before-write", "groups": [ops]}]),
        "typed, for the metric ecs_reconciler_group_list_changed_around_write_total: {applied}"
    );
    let (after, _) = groups_of(&emu, &instance);
    assert_eq!(after, ["EC2InstanceWithLoadBalancer", "default"]);
}

#[test]
fn a_group_of_another_vpc_is_reported_per_instance_and_the_rest_is_reconciled() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"strict_group_writes": true})));
    emu.boto3(
        "vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']\n\
         ec2.create_security_group(GroupName='far', Description='another VPC', VpcId=vpc)",
    );
    let config = emu.write_config(
        "far.yaml",
        &crate::harness::seed_text()
            .replace(
                "instanceSecurityGroups: [EC2InstanceWithLoadBalancer]",
                "instanceSecurityGroups: [EC2InstanceWithLoadBalancer, far]",
            )
            .replace(
                "securityGroups:\n",
                "securityGroups:\n  - name: far\n    management: owned\n    ingress: []\n",
            ),
    );
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    let plan = emu.reconciler(&["plan", "--config", &config, "-o", "json"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let reports = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "group-in-other-vpc")
        .count();
    assert_eq!(reports, 2, "one per instance: {}", plan.stdout);
    // The rest is reconciled: the rogue rule goes, no group write is tried.
    emu.ctl("calls --reset");
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    // Converged as far as it can: the report is left for a person.
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.contains("group-in-other-vpc"),
        "{}",
        apply.stdout
    );
    let calls = emu.control("GET", "calls?client=reconciler", None);
    assert!(
        calls.get("ec2:RevokeSecurityGroupIngress").is_some(),
        "{calls}"
    );
    assert!(
        calls.get("ec2:ModifyNetworkInterfaceAttribute").is_none(),
        "{calls}"
    );
    assert!(
        calls.get("ec2:ModifyInstanceAttribute").is_none(),
        "{calls}"
    );
}

/// LoadBalancerGroup filled to its quota (60 inbound IPv4 rules) with rogue
/// rules while its declared rule was revoked: the rogue rules go, which
/// makes room for the declared one, within two passes (the destructive cap
/// holds 60 removals until a second observation agrees).
#[test]
fn a_group_full_of_rogue_rules_is_cleaned_and_its_rule_added_within_two_passes() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"rule_quota": 60})));
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    emu.boto3(
        "gid = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['LoadBalancerGroup']}])['SecurityGroups'][0]['GroupId']\n\
         perms = [{'IpProtocol': 'tcp', 'FromPort': 1000 + i, 'ToPort': 1000 + i, 'IpRanges': [{'CidrIp': f'10.0.{i}.0/24'}]} for i in range(60)]\n\
         ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)\n\
         try:\n    \
             ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 80, 'ToPort': 80, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])\n    \
             raise SystemExit('the quota did not refuse a 61st rule')\n\
         except ec2.exceptions.ClientError as e:\n    \
             assert 'RulesPerSecurityGroupLimitExceeded' in str(e), e",
    );
    let config = emu.write_config("seed.yaml", &crate::harness::seed_text());
    let daemon = crate::daemon::Daemon::start(&emu, &config, &["--resync", "2s"]);
    crate::daemon::wait_converged(
        &emu,
        &config,
        std::time::Duration::from_secs(30),
        "the full group cleaned and its rule added",
        &daemon,
    );
    let audit = daemon.audit_lines();
    let authorized: Vec<&Value> = audit
        .iter()
        .filter(|l| l["action"] == "authorize-ingress")
        .collect();
    let revoked = audit
        .iter()
        .filter(|l| l["action"] == "revoke-ingress" && l["result"] == "applied")
        .count();
    assert_eq!(revoked, 60, "{audit:?}");
    assert!(
        authorized.iter().any(|l| l["result"] == "applied"),
        "{authorized:?}"
    );
    // Two passes: the first holds the 60 removals (cap) and fails the add
    // (quota); the second, agreeing, removes them and adds the rule.
    let passes_with_writes: std::collections::BTreeSet<String> = audit
        .iter()
        .map(|l| format!("{:.0}", l["time"].as_f64().unwrap_or_default()))
        .collect();
    assert!(passes_with_writes.len() <= 2, "{audit:?}");
}

const CLOUDFRONT: &str = "com.amazonaws.global.cloudfront.origin-facing";

/// The seed with `extra` appended to LoadBalancerGroup's rules.
fn seed_with_lb_rule(extra: &str) -> String {
    crate::harness::seed_text().replace(
        "        description: HTTP from anywhere\n",
        &format!("        description: HTTP from anywhere\n{extra}"),
    )
}

/// LoadBalancerGroup's inbound rules as (port, source) pairs.
fn lb_rules(emu: &Emulator) -> Vec<(i64, String)> {
    let out = emu.boto3(
        "gid = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['LoadBalancerGroup']}])['SecurityGroups'][0]['GroupId']\n\
         rules = ec2.describe_security_group_rules(Filters=[{'Name': 'group-id', 'Values': [gid]}])['SecurityGroupRules']\n\
         out = sorted([r.get('FromPort', -1), r.get('CidrIpv4') or r.get('PrefixListId') or ('%s/%s' % (r['ReferencedGroupInfo'].get('UserId'), r['ReferencedGroupInfo']['GroupId']))] for r in rules if not r['IsEgress'])",
    );
    out.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn an_alb_group_admitting_cloudfront_keeps_it_restores_it_and_a_plan_names_it_before_cutting() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"prefix_lists": true})));
    let cloudfront = emu
        .boto3(&format!(
            "out = ec2.describe_managed_prefix_lists(Filters=[{{'Name': 'prefix-list-name', 'Values': ['{CLOUDFRONT}']}}])['PrefixLists'][0]['PrefixListId']"
        ))
        .as_str()
        .unwrap()
        .to_string();
    let text = seed_with_lb_rule(&format!(
        "      - protocol: tcp\n        ports: 443\n        prefixList: {CLOUDFRONT}\n        description: CloudFront only\n"
    ));
    let config = emu.write_config("cloudfront.yaml", &text);
    let apply = |config: &str| {
        let run = emu.reconciler(&["apply", "--config", config, "--once"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    };
    apply(&config);
    assert!(
        lb_rules(&emu).contains(&(443, cloudfront.clone())),
        "{:?}",
        lb_rules(&emu)
    );

    // Revoked by hand: restored by the next pass.
    emu.boto3(&format!(
        "gid = ec2.describe_security_groups(Filters=[{{'Name': 'group-name', 'Values': ['LoadBalancerGroup']}}])['SecurityGroups'][0]['GroupId']\n\
         ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 443, 'ToPort': 443, 'PrefixListIds': [{{'PrefixListId': '{cloudfront}'}}]}}])"
    ));
    assert!(!lb_rules(&emu).contains(&(443, cloudfront.clone())));
    apply(&config);
    assert!(lb_rules(&emu).contains(&(443, cloudfront.clone())));
    let plan = emu.reconciler(&["plan", "--config", &config]);
    assert_eq!(plan.code, 0, "in sync: {}{}", plan.stdout, plan.stderr);

    // The plain seed does not declare it: the plan to revoke it says
    // "CloudFront" before anyone cuts it.
    let plan = emu.reconciler(&["plan", "--config", &seed_config()]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(&format!(
            "tcp 443 from prefix list {CLOUDFRONT} ({cloudfront})"
        )),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_group_of_another_account_is_authorized_with_the_account_and_then_in_sync() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"cross_account_groups": true})));
    let text = seed_with_lb_rule(
        "      - protocol: tcp\n        ports: 443\n        sourceGroupId: sg-0123456789abcdef0\n        sourceAccount: \"111122223333\"\n",
    );
    let config = emu.write_config("peered.yaml", &text);
    let run = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        lb_rules(&emu).contains(&(443, "111122223333/sg-0123456789abcdef0".into())),
        "{:?}",
        lb_rules(&emu)
    );
    let plan = emu.reconciler(&["plan", "--config", &config]);
    assert_eq!(plan.code, 0, "in sync: {}{}", plan.stdout, plan.stderr);
}

/// LoadBalancerGroup full of rules that may all carry port 80 while its
/// declared tcp 80 rule is missing: nothing may go first (additive before
/// destructive), so the plan says it is blocked, with the numbers.
#[test]
fn a_swap_the_rule_quota_blocks_is_shown_with_the_numbers_and_what_to_do() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"rule_quota": 60})));
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    emu.boto3(
        "gid = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['LoadBalancerGroup']}])['SecurityGroups'][0]['GroupId']\n\
         perms = [{'IpProtocol': 'tcp', 'FromPort': 80, 'ToPort': 80, 'IpRanges': [{'CidrIp': f'10.0.{i}.0/24'}]} for i in range(60)]\n\
         ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)",
    );
    let plan = emu.reconciler(&["plan", "--config", &seed_config()]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    for expected in [
        "blocked by the rule quota: group LoadBalancerGroup uses 60 of 60 IPv4 rules",
        "60 of 60 IPv4 rules used -> 61 of 60 needed",
        "quotas.rulesPerSecurityGroup",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "{expected}\n{}",
            plan.stdout
        );
    }
}

/// An instance already carrying five other groups: the declared one would
/// be a sixth. Reported for that instance; the other instance and the
/// groups' rules are reconciled as usual.
#[test]
fn a_sixth_group_is_a_per_instance_report_and_the_rest_is_reconciled() {
    let emu = Emulator::start();
    emu.control("POST", "ec2", Some(&json!({"strict_group_writes": true})));
    let (instance, eni) = first_instance(&emu);
    let others: Vec<String> = (1..=4)
        .map(|i| someone_elses_group(&emu, &format!("other-{i}")))
        .collect();
    emu.boto3(&format!(
        "default = [g['GroupId'] for g in ec2.describe_network_interfaces(NetworkInterfaceIds=['{eni}'])['NetworkInterfaces'][0]['Groups'] if g['GroupName'] == 'default']\n\
         ec2.modify_network_interface_attribute(NetworkInterfaceId='{eni}', Groups=default + {others:?})"
    ));
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    let run = emu.reconciler(&["apply", "--config", &seed_config(), "--once", "-o", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out = run.json();
    let report = out["remaining"]["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["kind"] == "too-many-groups")
        .unwrap_or_else(|| panic!("no too-many-groups report: {out}"));
    assert_eq!(report["resource"], format!("instance/{instance}"));
    assert_eq!(groups_of(&emu, &instance).0.len(), 5, "nothing written");
    let plan = emu.reconciler(&["plan", "--config", &seed_config(), "-o", "json"]);
    let left: Vec<String> = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        ["too-many-groups"],
        "the rest converged: {}",
        plan.stdout
    );
}
