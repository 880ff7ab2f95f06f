#!/usr/bin/env python3
"""A generated large topology for benchmarks, and the desired-state YAML
that describes it exactly (so a steady ``plan`` against it plans nothing).

    topology.py --endpoint URL --services 1000 --targets-per-service 10 \\
                --groups 100 --clusters 10 --out-config PATH --out-ids PATH

Region us-east-1, account 123456789012, the default VPC.  With prefix P
(``--prefix``, default ``bench``) and zero-padded numbers:

* ``--groups`` G security groups ``P-sg-NNNN``.  Group g has two ingress
  rules: tcp 22 from ``10.<g/256>.<g%256>.0/24``, and either tcp 80 from
  0.0.0.0/0 (even g) or tcp 32768-65535 from group g-1 (odd g; with G = 1
  the group names itself).  The default egress rule is kept.
* ``--clusters`` C clusters ``P-cluster-NNN``.  Cluster c's EC2 instances
  (m5.xlarge, spread over the default subnets) carry groups ``default`` and
  ``P-sg-(c mod G)``, its ``instanceSecurityGroups``, and are registered as
  its container instances.  moto gives each container instance 4096 CPU and
  7482 MiB, so a cluster gets ceil(its tasks * (1 + headroom) / (7482 //
  task memory)) instances (task memory 128 MiB: 58 tasks an instance;
  headroom 0.25).
* ``--services`` S services ``P-svc-NNNN`` (service s in cluster s mod C),
  each with its own task definition family of the same name (bridge, EC2,
  container ``app``, memory 128, port 8080 on a dynamic host port),
  desiredCount ``--targets-per-service`` T, behind its own target group
  ``P-tg-NNNN`` (HTTP:80, instance targets, health check path ``/``).
* ceil(S / 50) ALBs ``P-alb-NNN`` (``--services-per-alb``), in the first two
  default subnets, each with group ``P-sg-((C + a) mod G)`` and an HTTP:80
  listener whose default action forwards to its first target group and whose
  rules (path ``/P-svc-NNNN/*``, priority 1..49) forward to the others.
  (The desired-state file does not require the association; it is there
  because a target group of a real ECS service belongs to a load balancer.)

It then waits until every service runs T tasks and every target group has T
healthy targets.

Two ways to build it (``--via``):

* ``control`` (default): ``POST /_emulator/topology`` - the emulator builds
  it in-process against moto's backends under the state lock (the
  ``build_in_process`` function below), and ``POST
  /_emulator/topology/status`` is polled for readiness.
* ``api``: boto3 calls over HTTP with ``--threads`` workers, as any client
  would (for comparison; much slower at 1,000 services).

Importable: ``Params``, ``plan``, ``render_yaml``, ``build(endpoint,
params)``, ``build_in_process`` (emulator side), ``status_in_process``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
AMI_ID = "ami-04681a1dbd79675a5"  # shipped with moto (as in seed.py)
INSTANCE_TYPE = "m5.xlarge"
INSTANCE_MEMORY = 7482  # what moto registers for every container instance
CONTAINER_NAME = "app"
CONTAINER_PORT = 8080
HEALTH_CHECK_PATH = "/"
LISTENER_PORT = 80
MAX_RULES_PER_LISTENER = 100  # AWS's default quota


# --------------------------------------------------------------------------
# the model: names and relations, derived from the parameters only
# --------------------------------------------------------------------------
@dataclass
class Params:
    services: int = 1
    targets_per_service: int = 2
    groups: int = 2
    clusters: int = 1
    prefix: str = "bench"
    services_per_alb: int = 50
    task_memory: int = 128
    headroom: float = 0.25

    def validate(self) -> None:
        if not 1 <= self.services <= 100_000:
            raise ValueError("services must be 1..100000")
        if not 0 <= self.targets_per_service <= 10_000:
            raise ValueError("targets_per_service must be 0..10000")
        if not 1 <= self.groups <= 65_536:
            raise ValueError("groups must be 1..65536")
        if not 1 <= self.clusters <= 1000:
            raise ValueError("clusters must be 1..1000")
        if not 1 <= self.services_per_alb <= MAX_RULES_PER_LISTENER:
            raise ValueError(f"services_per_alb must be 1..{MAX_RULES_PER_LISTENER}")
        if not 1 <= self.task_memory <= INSTANCE_MEMORY:
            raise ValueError(f"task_memory must be 1..{INSTANCE_MEMORY}")
        if not 0 <= self.headroom <= 10:
            raise ValueError("headroom must be 0..10")
        if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", self.prefix) or len(self.prefix) > 12:
            raise ValueError("prefix: 1-12 lower-case letters, digits and single hyphens, starting with a letter")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Params":
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown topology parameters {sorted(unknown)}; known: {sorted(known)}")
        kw: dict[str, Any] = {}
        for key, value in data.items():
            kw[key] = str(value) if key == "prefix" else (float(value) if key == "headroom" else int(value))
        params = cls(**kw)
        params.validate()
        return params


@dataclass
class Rule:
    from_port: int
    to_port: int
    cidr: str | None = None
    source_group: str | None = None  # a group name of this topology
    description: str = ""


@dataclass
class Group:
    name: str
    rules: list[Rule]


@dataclass
class Cluster:
    name: str
    instance_group: str
    instances: int


@dataclass
class Service:
    name: str
    cluster: str
    family: str
    target_group: str
    alb: str


@dataclass
class LoadBalancer:
    name: str
    group: str
    target_groups: list[str] = field(default_factory=list)  # [0] is the listener's default


@dataclass
class Topology:
    params: Params
    groups: list[Group]
    clusters: list[Cluster]
    services: list[Service]
    load_balancers: list[LoadBalancer]

    @property
    def tasks(self) -> int:
        return len(self.services) * self.params.targets_per_service


def plan(params: Params) -> Topology:
    """Every name and relation of the topology (no AWS involved)."""
    params.validate()
    p, n_groups = params.prefix, params.groups
    sg_width = max(4, len(str(n_groups - 1)))
    svc_width = max(4, len(str(params.services - 1)))
    n_albs = math.ceil(params.services / params.services_per_alb)
    alb_width = max(3, len(str(n_albs - 1)))
    cl_width = max(3, len(str(params.clusters - 1)))

    def sg(i: int) -> str:
        return f"{p}-sg-{i % n_groups:0{sg_width}d}"

    groups = []
    for g in range(n_groups):
        rules = [Rule(22, 22, cidr=f"10.{(g // 256) % 256}.{g % 256}.0/24", description="ssh from the bastion subnet")]
        if g % 2 == 0:
            rules.append(Rule(80, 80, cidr="0.0.0.0/0", description="http from anywhere"))
        else:
            rules.append(Rule(32768, 65535, source_group=sg(g - 1), description=f"dynamic ports from {sg(g - 1)}"))
        groups.append(Group(sg(g), rules))

    per_instance = INSTANCE_MEMORY // params.task_memory
    services = []
    per_cluster = [0] * params.clusters
    albs = [LoadBalancer(f"{p}-alb-{a:0{alb_width}d}", sg(params.clusters + a)) for a in range(n_albs)]
    for s in range(params.services):
        c = s % params.clusters
        per_cluster[c] += 1
        name = f"{p}-svc-{s:0{svc_width}d}"
        alb = albs[s // params.services_per_alb]
        tg = f"{p}-tg-{s:0{svc_width}d}"
        alb.target_groups.append(tg)
        services.append(Service(name, f"{p}-cluster-{c:0{cl_width}d}", name, tg, alb.name))
    clusters = []
    for c in range(params.clusters):
        tasks = per_cluster[c] * params.targets_per_service
        instances = max(1, math.ceil(tasks * (1 + params.headroom) / per_instance))
        clusters.append(Cluster(f"{p}-cluster-{c:0{cl_width}d}", sg(c), instances))
    for tg in [s.target_group for s in services]:
        if len(tg) > 32:
            raise ValueError(f"target group name {tg} is longer than 32 characters; use a shorter prefix")
    return Topology(params, groups, clusters, services, albs)


def render_yaml(topo: Topology) -> str:
    """The desired-state file (docs/config.md) for exactly this topology."""
    params = topo.params
    out = [
        "# Generated by tests/emulator/topology.py: "
        f"{params.services} services x {params.targets_per_service} tasks, {params.groups} security groups, "
        f"{params.clusters} clusters, {len(topo.load_balancers)} load balancers (prefix {params.prefix}).",
        "version: 1",
        "mode: enforce",
        "",
        "securityGroups:",
    ]
    for g in topo.groups:
        out += [f"  - name: {g.name}", "    ingress:"]
        for r in g.rules:
            ports = str(r.from_port) if r.from_port == r.to_port else f"{r.from_port}-{r.to_port}"
            out += ["      - protocol: tcp", f"        ports: {ports}"]
            out.append(f"        cidr: {r.cidr}" if r.cidr else f"        sourceGroup: {r.source_group}")
            out.append(f"        description: {r.description}")
    out += ["", "clusters:"]
    for c in topo.clusters:
        out += [f"  - name: {c.name}", f"    instanceSecurityGroups: [{c.instance_group}]"]
    out += ["", "services:"]
    for s in topo.services:
        out += [
            f"  - name: {s.name}",
            f"    cluster: {s.cluster}",
            f"    replicas: {params.targets_per_service}",
            "    launchType: EC2",
            "    schedulingStrategy: REPLICA",
            "    taskDefinition:",
            f"      family: {s.family}",
            f"      containerName: {CONTAINER_NAME}",
            f"      containerPort: {CONTAINER_PORT}",
            "      hostPort: 0",
        ]
    out += ["", "targetGroups:"]
    for s in topo.services:
        out += [
            f"  - name: {s.target_group}",
            "    targetType: instance",
            f"    healthCheckPath: {HEALTH_CHECK_PATH}",
            f"    service: {s.name}",
            f"    cluster: {s.cluster}",
            f"    containerName: {CONTAINER_NAME}",
            f"    containerPort: {CONTAINER_PORT}",
            "    membership: exclusive",
        ]
    out += ["", "loadBalancers:"]
    for lb in topo.load_balancers:
        out += [
            f"  - name: {lb.name}",
            f"    securityGroups: [{lb.group}]",
            "    listeners:",
            f"      - port: {LISTENER_PORT}",
            "        protocol: HTTP",
        ]
    return "\n".join(out) + "\n"


def _container_definition(family: str, memory: int) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/{family}:latest",
        "memory": memory,
        "essential": True,
        "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0, "protocol": "tcp"}],
        "environment": [{"name": "PORT", "value": str(CONTAINER_PORT)}],
    }


def _path_condition(service: str) -> list[dict[str, Any]]:
    return [{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/{service}/*"]}}]


# --------------------------------------------------------------------------
# emulator side: build directly against moto's backends (under state.LOCK)
# --------------------------------------------------------------------------
def _backends(account_id: str = ACCOUNT_ID, region: str = REGION) -> tuple[Any, Any, Any]:
    from moto.ec2.models import ec2_backends
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    return ec2_backends[account_id][region], ecs_backends[account_id][region], elbv2_backends[account_id][region]


def _default_network(ec2: Any) -> tuple[str, list[Any], Any]:
    vpc = ec2.get_default_vpc()
    if vpc is None:
        raise ValueError("the emulator has no default VPC (was it reset?)")
    subnets = sorted(ec2.describe_subnets(filters={"vpc-id": [vpc.id]}), key=lambda s: (s.availability_zone, s.id))
    return vpc.id, subnets, ec2.get_default_security_group(vpc.id)


def _conflicts(topo: Topology, ec2: Any, ecs: Any, elbv2: Any, vpc_id: str) -> list[str]:
    taken = []
    existing_groups = {g.name for g in ec2.groups.get(vpc_id, {}).values()}
    taken += [g.name for g in topo.groups if g.name in existing_groups]
    taken += [c.name for c in topo.clusters if c.name in ecs.clusters]
    taken += [s.family for s in topo.services if s.family in ecs.task_definitions]
    tg_names = {tg.name for tg in elbv2.target_groups.values()}
    taken += [s.target_group for s in topo.services if s.target_group in tg_names]
    lb_names = {lb.name for lb in elbv2.load_balancers.values()}
    taken += [lb.name for lb in topo.load_balancers if lb.name in lb_names]
    return taken


def build_in_process(params: Params) -> dict[str, Any]:
    """Creates the topology in moto's backends.  The caller holds state.LOCK
    (and calls state.mark_changed() after); the scheduler then starts the
    tasks.  Returns the ids (see ``ids`` in README.md)."""
    topo = plan(params)
    ec2, ecs, elbv2 = _backends()
    vpc_id, subnets, default_sg = _default_network(ec2)
    taken = _conflicts(topo, ec2, ecs, elbv2, vpc_id)
    if taken:
        raise ValueError(f"{len(taken)} names already exist (first: {taken[0]}); use another prefix")
    t0 = time.monotonic()

    group_ids: dict[str, str] = {}
    for g in topo.groups:
        group_ids[g.name] = ec2.create_security_group(g.name, f"{g.name} (generated benchmark topology)", vpc_id=vpc_id).id
    for g in topo.groups:
        for r in g.rules:
            ip_ranges = [{"CidrIp": r.cidr, "Description": r.description}] if r.cidr else []
            sources = [] if r.cidr else [{"GroupId": group_ids[r.source_group or ""], "Description": r.description}]
            ec2.authorize_security_group_ingress(
                group_name_or_id=group_ids[g.name], ip_protocol="tcp", from_port=r.from_port, to_port=r.to_port,
                ip_ranges=ip_ranges, source_groups=sources, prefix_list_ids=[], security_rule_ids=[],
            )

    clusters: dict[str, Any] = {}
    k = 0
    for c in topo.clusters:
        cluster = ecs.create_cluster(c.name)
        entry = clusters[c.name] = {"arn": cluster.arn, "instance_ids": [], "container_instance_arns": []}
        for i in range(c.instances):
            subnet = subnets[k % len(subnets)]
            k += 1
            reservation = ec2.run_instances(
                AMI_ID, 1, None, [],
                instance_type=INSTANCE_TYPE, is_instance_type_default=False, placement=None,
                region_name=REGION, subnet_id=subnet.id, key_name=None,
                security_group_ids=[default_sg.id, group_ids[c.instance_group]], nics=[], private_ip=None,
                associate_public_ip=None, tags={"instance": {"Name": f"ecs-{c.name}-{i}"}}, ebs_optimized=False,
                disable_api_stop=False, instance_market_options={}, instance_initiated_shutdown_behavior=None,
                launch_template={}, hibernation_options={}, monitoring_state="disabled",
                ipv6_address_count=None, metadata_options={}, client_token="ABCDE",
            )
            instance_id = reservation.instances[0].id
            ci = ecs.register_container_instance(c.name, instance_id)
            entry["instance_ids"].append(instance_id)
            entry["container_instance_arns"].append(ci.container_instance_arn)

    task_definitions: dict[str, str] = {}
    for s in topo.services:
        td = ecs.register_task_definition(
            s.family, [_container_definition(s.family, params.task_memory)],
            network_mode="bridge", requires_compatibilities=["EC2"],
        )
        task_definitions[s.family] = td.arn

    target_groups: dict[str, str] = {}
    for s in topo.services:
        tg = elbv2.create_target_group(
            s.target_group, vpc_id=vpc_id, protocol="HTTP", protocol_version=None, port=LISTENER_PORT,
            healthcheck_protocol="HTTP", healthcheck_port=None, healthcheck_path=HEALTH_CHECK_PATH,
            healthcheck_interval_seconds=None, healthcheck_timeout_seconds=None, healthcheck_enabled=None,
            healthy_threshold_count=None, unhealthy_threshold_count=None, matcher=None,
            ip_address_type=None, target_type="instance", tags=None,
        )
        target_groups[s.target_group] = tg.arn

    load_balancers: dict[str, Any] = {}
    lb_subnets = [s.id for s in subnets[:2]]
    for lb in topo.load_balancers:
        alb = elbv2.create_load_balancer(
            name=lb.name, security_groups=[group_ids[lb.group]], subnet_ids=lb_subnets, subnet_mappings=[],
            scheme="internet-facing", loadbalancer_type="application", ip_address_type="ipv4", tags=None,
        )
        listener = elbv2.create_listener(
            load_balancer_arn=alb.arn, protocol="HTTP", port=LISTENER_PORT, ssl_policy="ELBSecurityPolicy-2016-08",
            certificate=None, actions=[{"Type": "forward", "TargetGroupArn": target_groups[lb.target_groups[0]]}],
            alpn_policy=[], tags=None,
        )
        for priority, tg_name in enumerate(lb.target_groups[1:], start=1):
            service = tg_name.replace(f"{params.prefix}-tg-", f"{params.prefix}-svc-", 1)
            elbv2.create_rule(
                listener_arn=listener.arn, conditions=_path_condition(service), priority=priority,
                actions=[{"Type": "forward", "TargetGroupArn": target_groups[tg_name]}],
            )
        load_balancers[lb.name] = {"arn": alb.arn, "dns_name": alb.dns_name, "listener_arn": listener.arn,
                                   "target_groups": lb.target_groups}

    services: dict[str, Any] = {}
    for s in topo.services:
        svc = ecs.create_service(
            s.cluster, s.name, params.targets_per_service, s.family,
            [{"targetGroupArn": target_groups[s.target_group], "containerName": CONTAINER_NAME,
              "containerPort": CONTAINER_PORT}],
            "REPLICA", None, None, "EC2", propagate_tags="NONE",
        )
        services[s.name] = {"arn": svc.arn, "cluster": s.cluster, "target_group": s.target_group,
                            "load_balancer": s.alb, "family": s.family}

    return {
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "params": asdict(params),
        "vpc_id": vpc_id,
        "subnet_ids": [s.id for s in subnets],
        "default_security_group_id": default_sg.id,
        "security_groups": group_ids,
        "clusters": clusters,
        "task_definitions": task_definitions,
        "target_groups": target_groups,
        "load_balancers": load_balancers,
        "services": services,
        "build_seconds": round(time.monotonic() - t0, 3),
    }


def status_in_process(params: Params) -> dict[str, Any]:
    """Readiness of a topology (caller holds state.LOCK): services running
    T tasks and target groups with T healthy targets."""
    import ecs_patch
    from state import now

    topo = plan(params)
    _, ecs, elbv2 = _backends()
    tgs = {tg.name: tg for tg in elbv2.target_groups.values()}
    t = now()
    want = params.targets_per_service
    running = healthy = ready = 0
    for s in topo.services:
        service = ecs.services.get(f"{s.cluster}:{s.name}")
        n_running = 0
        if service is not None:
            n_running = sum(1 for task in ecs_patch.service_tasks(service) if task.last_status == "RUNNING")
        tg = tgs.get(s.target_group)
        n_healthy = 0
        if tg is not None:
            n_healthy = sum(1 for entry in tg.targets.values() if entry["healthy_at"] <= t)
        running += n_running
        healthy += n_healthy
        ready += int(n_running == want and n_healthy == want)
    return {
        "services": len(topo.services),
        "services_ready": ready,
        "desired_tasks": topo.tasks,
        "running_tasks": running,
        "healthy_targets": healthy,
        "ready": ready == len(topo.services),
    }


# --------------------------------------------------------------------------
# client side
# --------------------------------------------------------------------------
def _control(endpoint: str, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise RuntimeError(f"{method} /_emulator/{path}: HTTP {exc.code}: {detail}") from None


def _clients(endpoint: str, threads: int) -> tuple[Any, Any, Any]:
    import boto3
    from botocore.config import Config

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=max(10, threads),
                 read_timeout=120)
    kw = dict(endpoint_url=endpoint, region_name=REGION, config=cfg)
    return boto3.client("ec2", **kw), boto3.client("elbv2", **kw), boto3.client("ecs", **kw)


def build_via_api(endpoint: str, params: Params, threads: int = 8) -> dict[str, Any]:
    """Same topology through the public API (boto3, ``threads`` workers)."""
    topo = plan(params)
    ec2, elbv2, ecs = _clients(endpoint, threads)
    t0 = time.monotonic()
    pool = ThreadPoolExecutor(max(1, threads))

    def each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(pool.map(fn, list(items)))

    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    subnets.sort(key=lambda s: (s["AvailabilityZone"], s["SubnetId"]))
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]

    ids = each(lambda g: ec2.create_security_group(
        GroupName=g.name, Description=f"{g.name} (generated benchmark topology)", VpcId=vpc_id)["GroupId"],
        topo.groups)
    group_ids = {g.name: gid for g, gid in zip(topo.groups, ids)}

    def perm(r: Rule) -> dict[str, Any]:
        p: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": r.from_port, "ToPort": r.to_port}
        if r.cidr:
            p["IpRanges"] = [{"CidrIp": r.cidr, "Description": r.description}]
        else:
            p["UserIdGroupPairs"] = [{"GroupId": group_ids[r.source_group or ""], "Description": r.description}]
        return p

    each(lambda g: ec2.authorize_security_group_ingress(
        GroupId=group_ids[g.name], IpPermissions=[perm(r) for r in g.rules]), topo.groups)

    clusters: dict[str, Any] = {}
    for c in topo.clusters:
        clusters[c.name] = {"arn": ecs.create_cluster(clusterName=c.name)["cluster"]["clusterArn"],
                            "instance_ids": [], "container_instance_arns": []}
    slots = [(c, i) for c in topo.clusters for i in range(c.instances)]

    def launch(slot_index: int) -> tuple[str, str]:
        c, i = slots[slot_index]
        subnet = subnets[slot_index % len(subnets)]
        inst = ec2.run_instances(
            ImageId=AMI_ID, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
            SecurityGroupIds=[default_sg, group_ids[c.instance_group]],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"ecs-{c.name}-{i}"}]}],
        )["Instances"][0]
        doc = {"instanceId": inst["InstanceId"], "region": REGION, "accountId": ACCOUNT_ID,
               "availabilityZone": inst["Placement"]["AvailabilityZone"], "instanceType": INSTANCE_TYPE,
               "imageId": AMI_ID, "privateIp": inst.get("PrivateIpAddress")}
        ci = ecs.register_container_instance(cluster=c.name, instanceIdentityDocument=json.dumps(doc))
        return inst["InstanceId"], ci["containerInstance"]["containerInstanceArn"]

    for (c, _), (iid, ci_arn) in zip(slots, each(launch, range(len(slots)))):
        clusters[c.name]["instance_ids"].append(iid)
        clusters[c.name]["container_instance_arns"].append(ci_arn)

    arns = each(lambda s: ecs.register_task_definition(
        family=s.family, networkMode="bridge", requiresCompatibilities=["EC2"],
        containerDefinitions=[_container_definition(s.family, params.task_memory)],
    )["taskDefinition"]["taskDefinitionArn"], topo.services)
    task_definitions = {s.family: arn for s, arn in zip(topo.services, arns)}

    arns = each(lambda s: elbv2.create_target_group(
        Name=s.target_group, Protocol="HTTP", Port=LISTENER_PORT, VpcId=vpc_id, TargetType="instance",
        HealthCheckProtocol="HTTP", HealthCheckPath=HEALTH_CHECK_PATH,
    )["TargetGroups"][0]["TargetGroupArn"], topo.services)
    target_groups = {s.target_group: arn for s, arn in zip(topo.services, arns)}

    def make_alb(lb: LoadBalancer) -> dict[str, Any]:
        alb = elbv2.create_load_balancer(
            Name=lb.name, Subnets=[s["SubnetId"] for s in subnets[:2]], SecurityGroups=[group_ids[lb.group]],
            Scheme="internet-facing", Type="application", IpAddressType="ipv4",
        )["LoadBalancers"][0]
        listener = elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=LISTENER_PORT,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": target_groups[lb.target_groups[0]]}],
        )["Listeners"][0]["ListenerArn"]
        for priority, tg_name in enumerate(lb.target_groups[1:], start=1):
            service = tg_name.replace(f"{params.prefix}-tg-", f"{params.prefix}-svc-", 1)
            elbv2.create_rule(ListenerArn=listener, Priority=priority, Conditions=_path_condition(service),
                              Actions=[{"Type": "forward", "TargetGroupArn": target_groups[tg_name]}])
        return {"arn": alb["LoadBalancerArn"], "dns_name": alb["DNSName"], "listener_arn": listener,
                "target_groups": lb.target_groups}

    load_balancers = dict(zip([lb.name for lb in topo.load_balancers], each(make_alb, topo.load_balancers)))

    arns = each(lambda s: ecs.create_service(
        cluster=s.cluster, serviceName=s.name, taskDefinition=s.family, desiredCount=params.targets_per_service,
        launchType="EC2", schedulingStrategy="REPLICA",
        loadBalancers=[{"targetGroupArn": target_groups[s.target_group], "containerName": CONTAINER_NAME,
                        "containerPort": CONTAINER_PORT}],
    )["service"]["serviceArn"], topo.services)
    services = {s.name: {"arn": arn, "cluster": s.cluster, "target_group": s.target_group,
                         "load_balancer": s.alb, "family": s.family} for s, arn in zip(topo.services, arns)}
    pool.shutdown()
    return {
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "params": asdict(params),
        "vpc_id": vpc_id,
        "subnet_ids": [s["SubnetId"] for s in subnets],
        "default_security_group_id": default_sg,
        "security_groups": group_ids,
        "clusters": clusters,
        "task_definitions": task_definitions,
        "target_groups": target_groups,
        "load_balancers": load_balancers,
        "services": services,
        "build_seconds": round(time.monotonic() - t0, 3),
    }


def _chunks(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def verify_via_api(endpoint: str, ids: dict[str, Any]) -> list[str]:
    """Checks a built topology through the public API (boto3), as a client
    sees it: every service runs T RUNNING tasks, every target group holds
    exactly their (instance, host port) targets, all healthy, rules, groups,
    listeners present.  Returns the problems found (empty: all good)."""
    params = Params.from_dict(ids["params"])
    topo = plan(params)
    ec2, elbv2, ecs = _clients(endpoint, 4)
    want = params.targets_per_service
    problems: list[str] = []

    # ECS: container instances, services, tasks -> expected targets
    expected: dict[str, set[tuple[str, int]]] = {}
    by_cluster: dict[str, list[Service]] = {}
    for s in topo.services:
        by_cluster.setdefault(s.cluster, []).append(s)
    for c in topo.clusters:
        cl = ids["clusters"][c.name]
        ci_arns = [a for page in ecs.get_paginator("list_container_instances").paginate(cluster=c.name)
                   for a in page["containerInstanceArns"]]
        ci_to_instance: dict[str, str] = {}
        for chunk in _chunks(ci_arns, 100):
            for ci in ecs.describe_container_instances(cluster=c.name, containerInstances=chunk)["containerInstances"]:
                ci_to_instance[ci["containerInstanceArn"]] = ci["ec2InstanceId"]
        if sorted(ci_to_instance.values()) != sorted(cl["instance_ids"]):
            problems.append(f"cluster {c.name}: container instances {sorted(ci_to_instance.values())}")
        services = by_cluster.get(c.name, [])
        for chunk in _chunks(services, 10):
            described = {d["serviceName"]: d for d in ecs.describe_services(
                cluster=c.name, services=[s.name for s in chunk])["services"]}
            for s in chunk:
                d = described.get(s.name)
                if d is None:
                    problems.append(f"service {s.name}: missing")
                    continue
                got = (d["status"], d["desiredCount"], d["runningCount"], d.get("launchType"),
                       d.get("schedulingStrategy"), d["taskDefinition"], d["loadBalancers"])
                exp = ("ACTIVE", want, want, "EC2", "REPLICA", ids["task_definitions"][s.family],
                       [{"targetGroupArn": ids["target_groups"][s.target_group], "containerName": CONTAINER_NAME,
                         "containerPort": CONTAINER_PORT}])
                if got != exp:
                    problems.append(f"service {s.name}: {got} != {exp}")
        arns = [a for page in ecs.get_paginator("list_tasks").paginate(cluster=c.name, desiredStatus="RUNNING")
                for a in page["taskArns"]]
        counts: dict[str, int] = {}
        for chunk in _chunks(arns, 100):
            for task in ecs.describe_tasks(cluster=c.name, tasks=chunk)["tasks"]:
                service = (task.get("group") or "").removeprefix("service:")
                if task["lastStatus"] != "RUNNING":
                    problems.append(f"task {task['taskArn']}: {task['lastStatus']}")
                counts[service] = counts.get(service, 0) + 1
                for container in task["containers"]:
                    for b in container.get("networkBindings", []):
                        if container["name"] == CONTAINER_NAME and b["containerPort"] == CONTAINER_PORT:
                            expected.setdefault(service, set()).add(
                                (ci_to_instance.get(task["containerInstanceArn"], "?"), b["hostPort"]))
        for s in services:
            if counts.get(s.name, 0) != want or len(expected.get(s.name, ())) != want:
                problems.append(f"service {s.name}: {counts.get(s.name, 0)} RUNNING tasks, want {want}")

    # ELBv2: target groups, targets, load balancers, listeners, rules
    for chunk in _chunks(topo.services, 20):
        tgs = elbv2.describe_target_groups(Names=[s.target_group for s in chunk])["TargetGroups"]
        for tg in tgs:
            if (tg["HealthCheckPath"], tg["TargetType"], tg["Port"]) != (HEALTH_CHECK_PATH, "instance", LISTENER_PORT):
                problems.append(f"target group {tg['TargetGroupName']}: {tg}")
    for s in topo.services:
        descs = elbv2.describe_target_health(TargetGroupArn=ids["target_groups"][s.target_group])
        states = {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"]
                  for d in descs["TargetHealthDescriptions"]}
        if states != {k: "healthy" for k in expected.get(s.name, set())}:
            problems.append(f"target group {s.target_group}: {states} != tasks {sorted(expected.get(s.name, set()))}")
    for chunk in _chunks(topo.load_balancers, 20):
        lbs = {lb["LoadBalancerName"]: lb for lb in
               elbv2.describe_load_balancers(Names=[lb.name for lb in chunk])["LoadBalancers"]}
        for lb in chunk:
            live = lbs.get(lb.name)
            if live is None or live["SecurityGroups"] != [ids["security_groups"][lb.group]]:
                problems.append(f"load balancer {lb.name}: {live and live['SecurityGroups']}")
                continue
            listeners = elbv2.describe_listeners(LoadBalancerArn=live["LoadBalancerArn"])["Listeners"]
            if [(li["Port"], li["Protocol"]) for li in listeners] != [(LISTENER_PORT, "HTTP")]:
                problems.append(f"load balancer {lb.name}: listeners {listeners}")
                continue
            rules = elbv2.describe_rules(ListenerArn=listeners[0]["ListenerArn"])["Rules"]
            forwards = sorted(a["TargetGroupArn"] for r in rules for a in r["Actions"] if a["Type"] == "forward")
            if forwards != sorted(ids["target_groups"][tg] for tg in lb.target_groups):
                problems.append(f"load balancer {lb.name}: listener forwards to {len(forwards)} target groups")

    # EC2: ingress rules, instance groups
    group_ids = ids["security_groups"]
    names_by_id = {v: k for k, v in group_ids.items()}
    live_rules: dict[str, set[tuple[Any, ...]]] = {}
    for chunk in _chunks(list(group_ids.values()), 200):
        pages = ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": chunk}], PaginationConfig={"PageSize": 1000})
        for page in pages:
            for r in page["SecurityGroupRules"]:
                if r["IsEgress"]:
                    continue
                source = r.get("CidrIpv4") or names_by_id.get(r.get("ReferencedGroupInfo", {}).get("GroupId"), "?")
                live_rules.setdefault(names_by_id[r["GroupId"]], set()).add(
                    (r["IpProtocol"], r["FromPort"], r["ToPort"], source))
    for g in topo.groups:
        want_rules = {("tcp", r.from_port, r.to_port, r.cidr or r.source_group) for r in g.rules}
        if live_rules.get(g.name, set()) != want_rules:
            problems.append(f"group {g.name}: rules {live_rules.get(g.name)} != {want_rules}")
    for c in topo.clusters:
        instance_ids = ids["clusters"][c.name]["instance_ids"]
        for chunk in _chunks(instance_ids, 200):
            pages = ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": chunk}])
            for inst in (i for page in pages for r in page["Reservations"] for i in r["Instances"]):
                groups = {g["GroupId"] for g in inst["SecurityGroups"]}
                if inst["State"]["Name"] != "running" or groups != {ids["default_security_group_id"],
                                                                    group_ids[c.instance_group]}:
                    problems.append(f"instance {inst['InstanceId']}: {inst['State']['Name']} {sorted(groups)}")
    return problems


def wait_ready(endpoint: str, params: Params, timeout: float = 600.0, poll: float = 0.25) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = _control(endpoint, "POST", "topology/status", asdict(params))
        if status["ready"]:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"topology not ready after {timeout:.0f}s: {status}")
        time.sleep(poll)


def build(endpoint: str, params: Params, via: str = "control", threads: int = 8,
          wait_seconds: float = 600.0) -> dict[str, Any]:
    """Builds the topology in the emulator at ``endpoint`` and waits until
    it is ready.  Returns the ids, with ``timings`` (seconds)."""
    params.validate()
    t0 = time.monotonic()
    if via == "control":
        ids = _control(endpoint, "POST", "topology", asdict(params))
    elif via == "api":
        ids = build_via_api(endpoint, params, threads)
    else:
        raise ValueError("via must be control or api")
    created = time.monotonic() - t0
    status = wait_ready(endpoint, params, wait_seconds)
    ids["endpoint"] = endpoint
    ids["status"] = status
    ids["timings"] = {"create": round(created, 3), "ready": round(time.monotonic() - t0, 3), "via": via}
    return ids


def _write(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="emulator URL (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--services", type=int, default=1)
    parser.add_argument("--targets-per-service", type=int, default=2)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--services-per-alb", type=int, default=50)
    parser.add_argument("--task-memory", type=int, default=128, help="MiB per task (sets the instance count)")
    parser.add_argument("--headroom", type=float, default=0.25, help="spare instance capacity (0.25 = 25%%)")
    parser.add_argument("--out-config", help="write the desired-state YAML here")
    parser.add_argument("--out-ids", help="write the ids (JSON) here")
    parser.add_argument("--via", choices=("control", "api"), default="control")
    parser.add_argument("--threads", type=int, default=8, help="boto3 workers for --via api")
    parser.add_argument("--wait-seconds", type=float, default=600.0)
    parser.add_argument("--config-only", action="store_true", help="only write --out-config; no emulator needed")
    parser.add_argument("--verify", action="store_true",
                        help="then check the whole topology through the API (boto3); exit 1 on any problem")
    args = parser.parse_args(argv)
    try:
        params = Params(
            services=args.services, targets_per_service=args.targets_per_service, groups=args.groups,
            clusters=args.clusters, prefix=args.prefix, services_per_alb=args.services_per_alb,
            task_memory=args.task_memory, headroom=args.headroom,
        )
        topo = plan(params)
        if args.out_config:
            _write(args.out_config, render_yaml(topo))
        if args.config_only:
            return 0
        if not args.endpoint:
            raise ValueError("--endpoint (or $AWS_ENDPOINT_URL) is required")
        ids = build(args.endpoint.rstrip("/"), params, args.via, args.threads, args.wait_seconds)
    except Exception as exc:  # noqa: BLE001
        print(f"topology: {exc}", file=sys.stderr)
        return 1
    if args.out_ids:
        _write(args.out_ids, json.dumps(ids, indent=1) + "\n")
    problems: list[str] = []
    if args.verify:
        t0 = time.monotonic()
        problems = verify_via_api(args.endpoint.rstrip("/"), ids)
        ids["timings"]["verify"] = round(time.monotonic() - t0, 3)
        for problem in problems[:20]:
            print(f"topology: verify: {problem}", file=sys.stderr)
    summary = {
        "services": params.services, "tasks": topo.tasks, "groups": params.groups, "clusters": params.clusters,
        "instances": sum(len(c["instance_ids"]) for c in ids["clusters"].values()),
        "load_balancers": len(ids["load_balancers"]), "timings": ids["timings"],
    }
    if args.verify:
        summary["problems"] = len(problems)
    print(json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
