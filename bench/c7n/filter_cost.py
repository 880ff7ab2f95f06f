#!/usr/bin/env python3
"""Time the emulator's (moto's) answer to the reads each tool makes, on the
bench-sg-* groups already there (run.py --setup-only first):

* c7n: one unfiltered DescribeSecurityGroups per policy (every group in the
  account, filtered client-side);
* ecs-reconciler: DescribeSecurityGroups with a group-name filter and
  DescribeSecurityGroupRules with a group-id filter, 200 values per call.

moto evaluates filters per (group or rule) x (filter value), so a filtered
call costs in proportion to groups x values; AWS does not behave like that.

    "$(bash bench/c7n/venv.sh)" bench/c7n/filter_cost.py --endpoint URL
Prints one JSON line: {"groups_in_account", "timings_s": {...}}.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import boto3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), required=False)
    ap.add_argument("--values", default="1,10,100,200")
    args = ap.parse_args()
    ec2 = boto3.client("ec2", endpoint_url=args.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")

    def timed(f):
        t0 = time.monotonic()
        r = f()
        return round(time.monotonic() - t0, 3), r

    out: dict[str, float] = {}
    out["DescribeSecurityGroups (all)"], r = timed(ec2.describe_security_groups)
    groups = [g for g in r["SecurityGroups"] if g["GroupName"].startswith("bench-sg-")]
    names = [g["GroupName"] for g in groups]
    ids = [g["GroupId"] for g in groups]
    for k in (int(v) for v in args.values.split(",")):
        if k > len(groups):
            continue
        out[f"DescribeSecurityGroups group-name x{k}"], _ = timed(
            lambda: ec2.describe_security_groups(
                Filters=[{"Name": "group-name", "Values": names[:k]}]))
        out[f"DescribeSecurityGroupRules group-id x{k}"], _ = timed(
            lambda: ec2.describe_security_group_rules(
                Filters=[{"Name": "group-id", "Values": ids[:k]}], MaxResults=1000))
        out[f"DescribeSecurityGroups GroupIds x{k}"], _ = timed(
            lambda: ec2.describe_security_groups(GroupIds=ids[:k]))
    print(json.dumps({"groups_in_account": len(r["SecurityGroups"]),
                      "bench_groups": len(groups), "timings_s": out}))


if __name__ == "__main__":
    main()
