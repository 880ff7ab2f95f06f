#!/usr/bin/env python3
"""Drift injection against the emulator with direct AWS API calls (boto3).

Every subcommand prints one line of JSON and exits 0, or prints a message to
stderr and exits 1.  Endpoint: --endpoint URL or $AWS_ENDPOINT_URL.

  scale CLUSTER SERVICE N
  revoke-ingress GROUP PROTO FROM TO (--cidr CIDR | --source-group GROUP)
  authorize-ingress GROUP PROTO FROM TO (--cidr CIDR | --source-group GROUP) [--description D]
  detach-instance-group GROUP --index I      remove GROUP from the I-th container instance's
                                             EC2 instance (ListContainerInstances order)
  detach-lb-group LB GROUP                   (the VPC default group is attached if none would remain)
  deregister-target TG --index I             I-th healthy target (DescribeTargetHealth order)
  register-target TG INSTANCE_ID|INDEX PORT  INDEX = container-instance index
  set-health-check-path TG PATH
  stop-task-leaving-target CLUSTER SERVICE   stop one running task; its target stays registered
  stop-task CLUSTER SERVICE [--index I | --task ID]
  faults list|clear|add --service S --operation O --kind K [--rate R] [--count N] [--latency-ms MS] [--client reconciler|other] [--after N]
  calls [--reset]
  oracle [--reset]                           the safety oracle's document (--reset: zero it first)
  scheduler [--delay S] [--paused true|false]
  show [--cluster C --service S --target-group TG --load-balancer LB]
  deploy CLUSTER SERVICE [--force]           new task definition revision (same containers) + UpdateService,
                                             or forceNewDeployment; prints the new PRIMARY deployment
  deployments CLUSTER SERVICE                the service's deployments (id, status, rolloutState, counts)
  stop-instance INDEX|i-ID [--cluster C]     StopInstances (INDEX = container-instance index)
  create-cp-service NAME --provider P [--cluster C] [--like SERVICE] [--count N]
                                             switches capacity_providers on; a copy of SERVICE (same task
                                             definition and load balancers) with capacityProviderStrategy P
  terminate-instance INDEX|i-ID [--cluster C]
  add-trunk-eni INDEX|i-ID [--cluster C] [--groups sg-1,sg-2]
                                             attach a trunk ENI (device index 1) as ECS awsvpcTrunking does
  hooks list|clear|add --before ec2:Operation --do ACTION --target INSTANCE|LB --group GROUP [--client C] [--every]
                                             run ACTION (attach_group, detach_group, attach_lb_group,
                                             detach_lb_group) just before the next matching call

GROUP may be a group name or id; TG / LB a name or ARN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"


class CtlError(Exception):
    pass


class Ctl:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        cfg = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        kw = dict(endpoint_url=self.endpoint, region_name=REGION, config=cfg)
        self.ec2 = boto3.client("ec2", **kw)
        self.elbv2 = boto3.client("elbv2", **kw)
        self.ecs = boto3.client("ecs", **kw)

    # ---- control endpoint ------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_emulator/{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise CtlError(f"{method} /_emulator/{path}: HTTP {exc.code} {exc.read().decode(errors='replace')}")

    # ---- lookups -----------------------------------------------------------
    def group(self, name_or_id: str) -> dict[str, Any]:
        key = "group-id" if name_or_id.startswith("sg-") else "group-name"
        groups = self.ec2.describe_security_groups(Filters=[{"Name": key, "Values": [name_or_id]}])["SecurityGroups"]
        if not groups:
            raise CtlError(f"security group {name_or_id} not found")
        return groups[0]

    def target_group(self, name_or_arn: str) -> dict[str, Any]:
        kw = {"TargetGroupArns": [name_or_arn]} if name_or_arn.startswith("arn:") else {"Names": [name_or_arn]}
        return self.elbv2.describe_target_groups(**kw)["TargetGroups"][0]

    def load_balancer(self, name_or_arn: str) -> dict[str, Any]:
        kw = {"LoadBalancerArns": [name_or_arn]} if name_or_arn.startswith("arn:") else {"Names": [name_or_arn]}
        return self.elbv2.describe_load_balancers(**kw)["LoadBalancers"][0]

    def container_instances(self, cluster: str) -> list[dict[str, Any]]:
        arns = self.ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        if not arns:
            return []
        found = self.ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
        order = {a: i for i, a in enumerate(arns)}
        return sorted(found, key=lambda ci: order[ci["containerInstanceArn"]])

    def instance(self, instance_id: str) -> dict[str, Any]:
        res = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return res[0]["Instances"][0]

    def running_tasks(self, cluster: str, service: str) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
        if not arns:
            return []
        tasks = self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        return sorted(tasks, key=lambda t: (t.get("startedAt") or 0, t["taskArn"]))

    def permission(self, proto: str, from_port: int, to_port: int, cidr: str | None,
                   source_group: str | None, description: str | None = None) -> dict[str, Any]:
        if bool(cidr) == bool(source_group):
            raise CtlError("give exactly one of --cidr / --source-group")
        perm: dict[str, Any] = {"IpProtocol": proto, "FromPort": from_port, "ToPort": to_port}
        if cidr:
            key, entry = ("Ipv6Ranges", {"CidrIpv6": cidr}) if ":" in cidr else ("IpRanges", {"CidrIp": cidr})
            if description:
                entry["Description"] = description
            perm[key] = [entry]
        else:
            pair = {"GroupId": self.group(source_group)["GroupId"]}
            if description:
                pair["Description"] = description
            perm["UserIdGroupPairs"] = [pair]
        return perm

    # ---- subcommands -------------------------------------------------------
    def scale(self, a: argparse.Namespace) -> dict[str, Any]:
        svc = self.ecs.update_service(cluster=a.cluster, service=a.service, desiredCount=a.count)["service"]
        return {"service": svc["serviceName"], "desiredCount": svc["desiredCount"]}

    def revoke_ingress(self, a: argparse.Namespace) -> dict[str, Any]:
        group = self.group(a.group)
        perm = self.permission(a.proto, a.from_port, a.to_port, a.cidr, a.source_group)
        self.ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[perm])
        return {"revoked": perm, "group_id": group["GroupId"]}

    def authorize_ingress(self, a: argparse.Namespace) -> dict[str, Any]:
        group = self.group(a.group)
        perm = self.permission(a.proto, a.from_port, a.to_port, a.cidr, a.source_group, a.description)
        rules = self.ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[perm])
        return {"group_id": group["GroupId"],
                "rule_ids": [r["SecurityGroupRuleId"] for r in rules.get("SecurityGroupRules", [])]}

    def detach_instance_group(self, a: argparse.Namespace) -> dict[str, Any]:
        cis = self.container_instances(a.cluster)
        if a.index >= len(cis):
            raise CtlError(f"cluster {a.cluster} has {len(cis)} container instances")
        instance_id = cis[a.index]["ec2InstanceId"]
        group_id = self.group(a.group)["GroupId"]
        current = [g["GroupId"] for g in self.instance(instance_id)["SecurityGroups"]]
        if group_id not in current:
            raise CtlError(f"{a.group} is not attached to {instance_id}")
        keep = [g for g in current if g != group_id]
        if not keep:
            raise CtlError(f"{instance_id} would have no security group left")
        enis = self.instance(instance_id).get("NetworkInterfaces", [])
        if len(enis) > 1:
            # AWS refuses ModifyInstanceAttribute Groups with several ENIs: write the primary ENI's
            primary = next(n for n in enis if n["Attachment"]["DeviceIndex"] == 0)
            self.ec2.modify_network_interface_attribute(NetworkInterfaceId=primary["NetworkInterfaceId"], Groups=keep)
        else:
            self.ec2.modify_instance_attribute(InstanceId=instance_id, Groups=keep)
        return {"instance_id": instance_id, "groups": keep}

    def detach_lb_group(self, a: argparse.Namespace) -> dict[str, Any]:
        lb = self.load_balancer(a.load_balancer)
        group_id = self.group(a.group)["GroupId"]
        keep = [g for g in lb.get("SecurityGroups", []) if g != group_id]
        if not keep:
            default = self.ec2.describe_security_groups(Filters=[
                {"Name": "vpc-id", "Values": [lb["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}
            ])["SecurityGroups"][0]["GroupId"]
            keep = [default]
        self.elbv2.set_security_groups(LoadBalancerArn=lb["LoadBalancerArn"], SecurityGroups=keep)
        return {"load_balancer": lb["LoadBalancerName"], "security_groups": keep}

    def deregister_target(self, a: argparse.Namespace) -> dict[str, Any]:
        tg = self.target_group(a.target_group)
        descs = self.elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        healthy = [d["Target"] for d in descs if d["TargetHealth"]["State"] == "healthy"]
        if a.index >= len(healthy):
            raise CtlError(f"{tg['TargetGroupName']} has {len(healthy)} healthy targets")
        target = {"Id": healthy[a.index]["Id"], "Port": healthy[a.index]["Port"]}
        self.elbv2.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[target])
        return {"deregistered": target}

    def register_target(self, a: argparse.Namespace) -> dict[str, Any]:
        tg = self.target_group(a.target_group)
        instance_id = a.instance
        if instance_id.isdigit():
            cis = self.container_instances(a.cluster)
            instance_id = cis[int(instance_id)]["ec2InstanceId"]
        target = {"Id": instance_id, "Port": a.port}
        self.elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[target])
        return {"registered": target}

    def set_health_check_path(self, a: argparse.Namespace) -> dict[str, Any]:
        tg = self.target_group(a.target_group)
        out = self.elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath=a.path)
        return {"target_group": tg["TargetGroupName"], "HealthCheckPath": out["TargetGroups"][0]["HealthCheckPath"]}

    def _stop_one(self, cluster: str, service: str, index: int, reason: str) -> dict[str, Any]:
        tasks = self.running_tasks(cluster, service)
        if index >= len(tasks):
            raise CtlError(f"service {service} has {len(tasks)} running tasks")
        task = tasks[index]
        self.ecs.stop_task(cluster=cluster, task=task["taskArn"], reason=reason)
        bindings = [b for c in task.get("containers", []) for b in c.get("networkBindings", [])]
        return {"stopped": task["taskArn"], "containerInstanceArn": task.get("containerInstanceArn"),
                "hostPorts": [b["hostPort"] for b in bindings]}

    def stop_task(self, a: argparse.Namespace) -> dict[str, Any]:
        if a.task:
            # A task by id or ARN (e.g. the one a simulated copy runs in).
            out = self.ecs.stop_task(cluster=a.cluster, task=a.task, reason="Stopped by awsctl")
            return {"stopped": out["task"]["taskArn"]}
        return self._stop_one(a.cluster, a.service, a.index, "Stopped by awsctl")

    def stop_task_leaving_target(self, a: argparse.Namespace) -> dict[str, Any]:
        self.control("POST", "scheduler", {"deregister_on_stop": False, "for_next": 1})
        try:
            out = self._stop_one(a.cluster, a.service, a.index, "Stopped by awsctl (target left registered)")
        except Exception:
            self.control("POST", "scheduler", {"for_next": 0})
            raise
        return out

    def faults(self, a: argparse.Namespace) -> Any:
        if a.action == "list":
            return self.control("GET", "faults")
        if a.action == "clear":
            return self.control("DELETE", "faults")
        spec: dict[str, Any] = {"service": a.service, "operation": a.operation, "kind": a.kind, "rate": a.rate}
        if a.count is not None:
            spec["count"] = a.count
        if a.latency_ms is not None:
            spec["latency_ms"] = a.latency_ms
        if a.status is not None:
            spec["status"] = a.status
        if a.client is not None:
            spec["client"] = a.client
        if a.after is not None:
            spec["after"] = a.after
        return self.control("POST", "faults", spec)

    def calls(self, a: argparse.Namespace) -> Any:
        if a.reset:
            return self.control("POST", "calls/reset", {})
        return self.control("GET", "calls")

    def oracle(self, a: argparse.Namespace) -> Any:
        if a.reset:
            return self.control("POST", "oracle/reset", {})
        return self.control("GET", "oracle")

    def scheduler(self, a: argparse.Namespace) -> Any:
        body: dict[str, Any] = {}
        if a.delay is not None:
            body["delay"] = a.delay
        if a.paused is not None:
            body["paused"] = a.paused == "true"
        return self.control("POST", "scheduler", body) if body else self.control("GET", "scheduler")

    def show(self, a: argparse.Namespace) -> dict[str, Any]:
        svc = self.ecs.describe_services(cluster=a.cluster, services=[a.service])["services"]
        cis = self.container_instances(a.cluster)
        ci_to_instance = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in cis}
        tasks = []
        for t in self.running_tasks(a.cluster, a.service):
            ports = [b["hostPort"] for c in t.get("containers", []) for b in c.get("networkBindings", [])]
            tasks.append({"taskArn": t["taskArn"], "lastStatus": t["lastStatus"],
                          "instance": ci_to_instance.get(t.get("containerInstanceArn")), "hostPorts": ports})
        names = {}
        for g in self.ec2.describe_security_groups()["SecurityGroups"]:
            names[g["GroupId"]] = g["GroupName"]
        rules: dict[str, list[dict[str, Any]]] = {}
        paginator = self.ec2.get_paginator("describe_security_group_rules")
        for page in paginator.paginate():
            for r in page["SecurityGroupRules"]:
                if r.get("IsEgress"):
                    continue
                entry = {"id": r["SecurityGroupRuleId"], "proto": r.get("IpProtocol"),
                         "from": r.get("FromPort"), "to": r.get("ToPort")}
                if r.get("CidrIpv4") or r.get("CidrIpv6"):
                    entry["cidr"] = r.get("CidrIpv4") or r.get("CidrIpv6")
                if r.get("ReferencedGroupInfo"):
                    gid = r["ReferencedGroupInfo"].get("GroupId")
                    entry["source_group"] = names.get(gid, gid)
                if r.get("Description"):
                    entry["description"] = r["Description"]
                if r.get("Tags"):
                    entry["tags"] = {t["Key"]: t["Value"] for t in r["Tags"]}
                rules.setdefault(names.get(r["GroupId"], r["GroupId"]), []).append(entry)
        instances = {}
        for ci in cis:
            inst = self.instance(ci["ec2InstanceId"])
            instances[ci["ec2InstanceId"]] = [g["GroupName"] for g in inst.get("SecurityGroups", [])]
        lb = self.load_balancer(a.load_balancer)
        tg = self.target_group(a.target_group)
        health = self.elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        return {
            "service": {"desiredCount": svc[0]["desiredCount"], "runningCount": svc[0]["runningCount"],
                        "pendingCount": svc[0]["pendingCount"]} if svc else None,
            "tasks": tasks,
            "ingress_rules": rules,
            "instance_groups": instances,
            "alb_groups": [names.get(g, g) for g in lb.get("SecurityGroups", [])],
            "health_check_path": tg.get("HealthCheckPath"),
            "targets": [{"id": d["Target"]["Id"], "port": d["Target"].get("Port"),
                         "state": d["TargetHealth"]["State"]} for d in health],
        }

    # ---- real-ECS behaviours ----------------------------------------------
    TD_KEYS = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory",
               "taskRoleArn", "executionRoleArn", "volumes", "placementConstraints")

    def deploy(self, a: argparse.Namespace) -> dict[str, Any]:
        """A new deployment: a new revision of the service's task definition
        (same containers), or --force: forceNewDeployment."""
        (svc,) = self.ecs.describe_services(cluster=a.cluster, services=[a.service])["services"]
        if a.force:
            self.ecs.update_service(cluster=a.cluster, service=a.service, forceNewDeployment=True)
        else:
            td = self.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
            new = self.ecs.register_task_definition(**{k: td[k] for k in self.TD_KEYS if td.get(k)})
            self.ecs.update_service(cluster=a.cluster, service=a.service,
                                    taskDefinition=new["taskDefinition"]["taskDefinitionArn"])
        (svc,) = self.ecs.describe_services(cluster=a.cluster, services=[a.service])["services"]
        primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
        return {"deployment": primary["id"], "taskDefinition": primary["taskDefinition"]}

    def _instance_id(self, cluster: str, ref: str) -> str:
        if ref.startswith("i-"):
            return ref
        cis = self.container_instances(cluster)
        if int(ref) >= len(cis):
            raise CtlError(f"cluster {cluster} has {len(cis)} container instances")
        return cis[int(ref)]["ec2InstanceId"]

    def stop_instance(self, a: argparse.Namespace) -> dict[str, Any]:
        instance_id = self._instance_id(a.cluster, a.instance)
        out = self.ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
        return {"stopped": instance_id, "state": out["CurrentState"]["Name"]}

    def terminate_instance(self, a: argparse.Namespace) -> dict[str, Any]:
        instance_id = self._instance_id(a.cluster, a.instance)
        out = self.ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"][0]
        return {"terminated": instance_id, "state": out["CurrentState"]["Name"]}

    def create_cp_service(self, a: argparse.Namespace) -> dict[str, Any]:
        """A copy of an existing service (same task definition, same load
        balancers) that uses a capacity-provider strategy instead of a
        launch type.  Creates the provider (an Auto Scaling group provider)
        and associates it with the cluster first, unless it exists / is
        built in (FARGATE, FARGATE_SPOT)."""
        self.control("POST", "scheduler", {"capacity_providers": True})
        (like,) = self.ecs.describe_services(cluster=a.cluster, services=[a.like])["services"]
        known = {p["name"] for p in self.ecs.describe_capacity_providers()["capacityProviders"]}
        if a.provider not in known:
            self.ecs.create_capacity_provider(name=a.provider, autoScalingGroupProvider={
                "autoScalingGroupArn": f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"
                                       f"00000000-0000-0000-0000-000000000000:autoScalingGroupName/{a.provider}"})
        (cluster,) = self.ecs.describe_clusters(clusters=[a.cluster])["clusters"]
        providers = list(cluster.get("capacityProviders") or [])
        if a.provider not in providers:
            self.ecs.put_cluster_capacity_providers(
                cluster=a.cluster, capacityProviders=providers + [a.provider],
                defaultCapacityProviderStrategy=cluster.get("defaultCapacityProviderStrategy") or [])
        svc = self.ecs.create_service(
            cluster=a.cluster, serviceName=a.name, taskDefinition=like["taskDefinition"],
            desiredCount=like["desiredCount"] if a.count is None else a.count,
            loadBalancers=like.get("loadBalancers") or [],
            capacityProviderStrategy=[{"capacityProvider": a.provider, "weight": 1, "base": 0}],
        )["service"]
        return {"service": svc["serviceArn"], "capacityProviderStrategy": svc.get("capacityProviderStrategy"),
                "launchType": svc.get("launchType")}

    def add_trunk_eni(self, a: argparse.Namespace) -> dict[str, Any]:
        spec: dict[str, Any] = {"instance": self._instance_id(a.cluster, a.instance)}
        if a.groups:
            spec["groups"] = [self.group(g)["GroupId"] for g in a.groups.split(",")]
        return self.control("POST", "ec2", {"add_trunk_eni": spec})["trunk_eni"]

    def hooks(self, a: argparse.Namespace) -> Any:
        if a.action == "list":
            return self.control("GET", "hooks")
        if a.action == "clear":
            return self.control("DELETE", "hooks")
        if not (a.before and a.do and a.target and a.group):
            raise CtlError("hooks add needs --before, --do, --target and --group")
        group = a.group if a.group.startswith("sg-") else self.group(a.group)["GroupId"]
        key = "load_balancer" if a.do.endswith("_lb_group") else "instance"
        return self.control("POST", "hooks", {"before": a.before, "client": a.client, "once": not a.every,
                                              "do": {a.do: {key: a.target, "group": group}}})

    def deployments(self, a: argparse.Namespace) -> dict[str, Any]:
        (svc,) = self.ecs.describe_services(cluster=a.cluster, services=[a.service])["services"]
        keys = ("id", "status", "rolloutState", "taskDefinition", "desiredCount", "runningCount", "pendingCount")
        return {"deployments": [{k: d.get(k) for k in keys} for d in svc.get("deployments", [])]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("scale")
    s.add_argument("cluster"); s.add_argument("service"); s.add_argument("count", type=int)

    for name in ("revoke-ingress", "authorize-ingress"):
        s = sub.add_parser(name)
        s.add_argument("group"); s.add_argument("proto")
        s.add_argument("from_port", type=int); s.add_argument("to_port", type=int)
        s.add_argument("--cidr"); s.add_argument("--source-group")
        if name == "authorize-ingress":
            s.add_argument("--description")

    s = sub.add_parser("detach-instance-group")
    s.add_argument("group"); s.add_argument("--index", type=int, default=0)
    s.add_argument("--cluster", default="nestjs-cluster")

    s = sub.add_parser("detach-lb-group")
    s.add_argument("load_balancer"); s.add_argument("group")

    s = sub.add_parser("deregister-target")
    s.add_argument("target_group"); s.add_argument("--index", type=int, default=0)

    s = sub.add_parser("register-target")
    s.add_argument("target_group"); s.add_argument("instance"); s.add_argument("port", type=int)
    s.add_argument("--cluster", default="nestjs-cluster")

    s = sub.add_parser("set-health-check-path")
    s.add_argument("target_group"); s.add_argument("path")

    for name in ("stop-task-leaving-target", "stop-task"):
        s = sub.add_parser(name)
        s.add_argument("cluster"); s.add_argument("service"); s.add_argument("--index", type=int, default=0)
        if name == "stop-task":
            s.add_argument("--task", help="stop this task (id or ARN) instead of the I-th")

    s = sub.add_parser("faults")
    s.add_argument("action", choices=["list", "clear", "add"])
    s.add_argument("--service", default="*"); s.add_argument("--operation", default="*")
    s.add_argument("--kind", default="throttle", choices=["throttle", "5xx", "latency", "drop"])
    s.add_argument("--rate", type=float, default=1.0); s.add_argument("--count", type=int)
    s.add_argument("--latency-ms", type=int); s.add_argument("--status", type=int, choices=[500, 503])
    s.add_argument("--client", choices=["reconciler", "other", "*"]); s.add_argument("--after", type=int)

    s = sub.add_parser("calls")
    s.add_argument("--reset", action="store_true")

    s = sub.add_parser("oracle")
    s.add_argument("--reset", action="store_true")

    s = sub.add_parser("scheduler")
    s.add_argument("--delay", type=float); s.add_argument("--paused", choices=["true", "false"])

    s = sub.add_parser("deploy")
    s.add_argument("cluster"); s.add_argument("service"); s.add_argument("--force", action="store_true")

    s = sub.add_parser("deployments")
    s.add_argument("cluster"); s.add_argument("service")

    for name in ("stop-instance", "terminate-instance"):
        s = sub.add_parser(name)
        s.add_argument("instance", help="container-instance index or i-...")
        s.add_argument("--cluster", default="nestjs-cluster")

    s = sub.add_parser("add-trunk-eni")
    s.add_argument("instance", help="container-instance index or i-...")
    s.add_argument("--cluster", default="nestjs-cluster")
    s.add_argument("--groups", help="comma-separated group names or ids (default: the primary ENI's)")

    s = sub.add_parser("hooks")
    s.add_argument("action", choices=["list", "clear", "add"])
    s.add_argument("--before"); s.add_argument("--client", default="*", choices=["reconciler", "other", "*"])
    s.add_argument("--do", choices=["attach_group", "detach_group", "attach_lb_group", "detach_lb_group"])
    s.add_argument("--target", help="instance id (attach/detach_group) or load balancer name/ARN")
    s.add_argument("--group"); s.add_argument("--every", action="store_true", help="fire on every matching call")

    s = sub.add_parser("create-cp-service")
    s.add_argument("name"); s.add_argument("--provider", required=True)
    s.add_argument("--cluster", default="nestjs-cluster"); s.add_argument("--like", default="nestjs-api")
    s.add_argument("--count", type=int)

    s = sub.add_parser("show")
    s.add_argument("--cluster", default="nestjs-cluster"); s.add_argument("--service", default="nestjs-api")
    s.add_argument("--target-group", default="nestjs-api-tg"); s.add_argument("--load-balancer", default="nestjs-api-alb")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.endpoint:
        print("awsctl: give --endpoint or set AWS_ENDPOINT_URL", file=sys.stderr)
        return 2
    try:
        ctl = Ctl(args.endpoint)
        result = getattr(ctl, args.cmd.replace("-", "_"))(args)
    except CtlError as exc:
        print(f"awsctl {args.cmd}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - botocore errors, connection errors
        print(f"awsctl {args.cmd}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, default=str, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
