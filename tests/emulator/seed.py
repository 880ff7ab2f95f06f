#!/usr/bin/env python3
"""Seed topology for the emulator, built with boto3 through the public API.

Creates (us-east-1, default VPC): security groups LoadBalancerGroup and
EC2InstanceWithLoadBalancer, cluster nestjs-cluster with two EC2 container
instances, task definition nestjs-api, ALB nestjs-api-alb with target group
nestjs-api-tg and an HTTP:80 listener, and service nestjs-api (desiredCount 2,
behind the target group); then waits until the emulator's scheduler runs two
tasks registered as healthy targets.

    seed.py --endpoint http://127.0.0.1:PORT     # prints the ids as JSON
    from seed import seed; ids = seed(endpoint)  # same, as a dict
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
AMI_ID = "ami-04681a1dbd79675a5"  # amzn2-ami-hvm-2.0.20180810-x86_64-gp2, ships with moto
INSTANCE_TYPE = "t3.micro"
CLUSTER = "nestjs-cluster"
SERVICE = "nestjs-api"
FAMILY = "nestjs-api"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nestjs-api:latest"
ALB = "nestjs-api-alb"
TARGET_GROUP = "nestjs-api-tg"
LB_GROUP = "LoadBalancerGroup"
INSTANCE_GROUP = "EC2InstanceWithLoadBalancer"


def clients(endpoint_url: str) -> tuple[Any, Any, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"})
    kw = dict(endpoint_url=endpoint_url, region_name=REGION, config=cfg)
    return boto3.client("ec2", **kw), boto3.client("elbv2", **kw), boto3.client("ecs", **kw)


def _emulator_draining_seconds(endpoint_url: str) -> int:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/_emulator/scheduler", timeout=5) as resp:
            return int(json.load(resp)["draining_seconds"])
    except Exception:  # noqa: BLE001 - plain moto or older emulator
        return 300


def seed(endpoint_url: str, draining_seconds: int | None = None, wait_seconds: float = 30.0) -> dict[str, Any]:
    ec2, elbv2, ecs = clients(endpoint_url)
    if draining_seconds is None:
        draining_seconds = _emulator_draining_seconds(endpoint_url)

    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    subnets.sort(key=lambda s: s["AvailabilityZone"])
    subnet_ids = [s["SubnetId"] for s in subnets[:2]]
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]

    lb_sg = ec2.create_security_group(
        GroupName=LB_GROUP, Description="Load balancer security group", VpcId=vpc_id
    )["GroupId"]
    inst_sg = ec2.create_security_group(
        GroupName=INSTANCE_GROUP, Description="EC2 instances behind the load balancer", VpcId=vpc_id
    )["GroupId"]
    lb_rule = ec2.authorize_security_group_ingress(
        GroupId=lb_sg,
        IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTP from anywhere"}],
        }],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    inst_rule = ec2.authorize_security_group_ingress(
        GroupId=inst_sg,
        IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 32768, "ToPort": 65535,
            "UserIdGroupPairs": [{"GroupId": lb_sg}],
        }],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
    instance_ids: list[str] = []
    container_instance_arns: list[str] = []
    for i, subnet_id in enumerate(subnet_ids * (2 if len(subnet_ids) == 1 else 1)):
        inst = ec2.run_instances(
            ImageId=AMI_ID, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1,
            SubnetId=subnet_id, SecurityGroupIds=[default_sg, inst_sg],
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": f"ecs-{CLUSTER}-{i}"}]}],
        )["Instances"][0]
        instance_ids.append(inst["InstanceId"])
        doc = {
            "instanceId": inst["InstanceId"], "region": REGION, "accountId": "123456789012",
            "availabilityZone": inst["Placement"]["AvailabilityZone"], "instanceType": INSTANCE_TYPE,
            "imageId": AMI_ID, "privateIp": inst.get("PrivateIpAddress"),
        }
        ci = ecs.register_container_instance(
            cluster=CLUSTER,
            instanceIdentityDocument=json.dumps(doc),
            totalResources=[
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 7482},
            ],
        )["containerInstance"]
        container_instance_arns.append(ci["containerInstanceArn"])

    task_definition_arn = ecs.register_task_definition(
        family=FAMILY,
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[{
            "name": "api",
            "image": IMAGE,
            "memory": 512,
            "essential": True,
            "portMappings": [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}],
            "environment": [{"name": "NODE_ENV", "value": "production"}, {"name": "PORT", "value": "3000"}],
        }],
    )["taskDefinition"]["taskDefinitionArn"]

    alb = elbv2.create_load_balancer(
        Name=ALB, Subnets=subnet_ids, SecurityGroups=[lb_sg], Scheme="internet-facing",
        Type="application", IpAddressType="ipv4",
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=TARGET_GROUP, Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType="instance",
        HealthCheckProtocol="HTTP", HealthCheckPath="/",
    )["TargetGroups"][0]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(draining_seconds)}],
    )
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )["Listeners"][0]["ListenerArn"]

    service_arn = ecs.create_service(
        cluster=CLUSTER, serviceName=SERVICE, taskDefinition=FAMILY, desiredCount=2,
        launchType="EC2", schedulingStrategy="REPLICA",
        loadBalancers=[{"targetGroupArn": tg["TargetGroupArn"], "containerName": "api", "containerPort": 3000}],
    )["service"]["serviceArn"]

    task_arns = _wait_for_service(ecs, elbv2, tg["TargetGroupArn"], 2, wait_seconds)

    return {
        "endpoint": endpoint_url,
        "region": REGION,
        "account_id": "123456789012",
        "vpc_id": vpc_id,
        "subnet_ids": subnet_ids,
        "default_security_group_id": default_sg,
        "security_groups": {LB_GROUP: lb_sg, INSTANCE_GROUP: inst_sg},
        "security_group_rule_ids": {LB_GROUP: lb_rule, INSTANCE_GROUP: inst_rule},
        "ami_id": AMI_ID,
        "instance_ids": instance_ids,
        "cluster_arn": cluster_arn,
        "container_instance_arns": container_instance_arns,
        "task_definition_arn": task_definition_arn,
        "load_balancer_arn": alb["LoadBalancerArn"],
        "load_balancer_dns": alb["DNSName"],
        "target_group_arn": tg["TargetGroupArn"],
        "listener_arn": listener_arn,
        "service_arn": service_arn,
        "task_arns": task_arns,
        "draining_seconds": draining_seconds,
    }


def _wait_for_service(ecs: Any, elbv2: Any, tg_arn: str, want: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        task_arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="RUNNING")["taskArns"]
        healthy = [
            d for d in elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"
        ]
        if len(task_arns) == want and len(healthy) == want:
            return sorted(task_arns)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"service {SERVICE} did not reach {want} running tasks with healthy targets "
                f"(tasks={len(task_arns)}, healthy targets={len(healthy)}); is the emulator's scheduler running?"
            )
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description="Create the ecs-reconciler seed topology.")
    parser.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--draining-seconds", type=int, default=None)
    parser.add_argument("--wait-seconds", type=float, default=30.0)
    args = parser.parse_args()
    try:
        result = seed(args.endpoint, args.draining_seconds, args.wait_seconds)
    except Exception as exc:  # noqa: BLE001
        print(f"seed failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
