"""Capacity-provider strategies (switchable: ``capacity_providers``, off by default).

Off, moto's behaviour stays: CreateService ignores ``capacityProviderStrategy``
and invents ``launchType: EC2``; DescribeCapacityProviders without names is
an HTTP 500 and does not know FARGATE / FARGATE_SPOT.  On, as in AWS
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html):

* CreateService with ``capacityProviderStrategy`` (and no launchType) keeps
  the strategy (``base`` defaults to 0, ``weight`` to 0 as in the API) and
  has no launchType, in DescribeServices and in its deployment.  Giving both
  is InvalidParameterException, and so is a provider the cluster is not
  associated with (PutClusterCapacityProviders).  Without either, the
  cluster's defaultCapacityProviderStrategy is used when it has one.
* The service scheduler still places such a service's tasks on the cluster's
  EC2 container instances; they carry ``capacityProviderName``.
* DescribeCapacityProviders lists every provider when no names are given and
  knows the built-in FARGATE and FARGATE_SPOT providers.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.utilities.utils import get_partition

from state import SETTINGS

BUILT_IN = ("FARGATE", "FARGATE_SPOT")
_applied = False


class _BuiltIn:
    """FARGATE / FARGATE_SPOT as DescribeCapacityProviders shows them."""

    def __init__(self, name: str, account_id: str, region: str) -> None:
        self.name = name
        self.capacity_provider_arn = f"arn:{get_partition(region)}:ecs:{region}:{account_id}:capacity-provider/{name}"
        self.status = "ACTIVE"
        self.tags: list[dict[str, str]] = []


def strategy_of(service: Any) -> list[dict[str, Any]] | None:
    return getattr(service, "capacity_provider_strategy", None) or None


def _normalise(strategy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"capacityProvider": s["capacityProvider"], "weight": int(s.get("weight", 0) or 0),
             "base": int(s.get("base", 0) or 0)} for s in strategy]


def _patch() -> None:
    R = ecs_responses.EC2ContainerServiceResponse
    orig_create_service = R.create_service

    def create_service(self: Any) -> ActionResult:
        if not SETTINGS.capacity_providers:
            return orig_create_service(self)
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        strategy = self._get_param("capacityProviderStrategy")
        if strategy and self._get_param("launchType"):
            raise InvalidParameterException(
                "Specifying both a launch type and capacity provider strategy is not supported. "
                "Remove one and try again.")
        if not strategy and not self._get_param("launchType"):
            strategy = getattr(cluster, "default_capacity_provider_strategy", None) or None
        if strategy:
            associated = set(getattr(cluster, "capacity_providers", None) or [])
            for item in strategy:
                if item.get("capacityProvider") not in associated:
                    raise InvalidParameterException(
                        "The specified capacity provider strategy cannot contain a capacity provider that is "
                        "not associated with the cluster. Associate the capacity provider with the cluster or "
                        "specify a valid capacity provider and try again.")
        result = orig_create_service(self)
        if strategy:
            service = backend._get_service(cluster.name, self._get_param("serviceName"))
            service.launch_type = None
            service.capacity_provider_strategy = _normalise(strategy)
            for dep in service.__dict__.get("_emu_deployments") or []:
                dep.pop("launchType", None)
                dep.pop("platformFamily", None)
                dep["capacityProviderStrategy"] = service.capacity_provider_strategy
        return result

    R.create_service = create_service

    orig_describe = R.describe_capacity_providers

    def describe_capacity_providers(self: Any) -> ActionResult:
        if not SETTINGS.capacity_providers:
            return orig_describe(self)
        backend = self.ecs_backend
        names = self._get_param("capacityProviders")
        built_in = {n: _BuiltIn(n, backend.account_id, self.region) for n in BUILT_IN}
        if not names:
            return ActionResult({"capacityProviders": list(built_in.values())
                                 + list(backend.capacity_providers.values()), "failures": []})
        found, failures = [], []
        for name in names:
            provider = built_in.get(name.split("/")[-1]) or backend._get_provider(name)
            if provider is not None:
                found.append(provider)
            else:
                failures.append({"arn": name, "reason": "MISSING"})
        return ActionResult({"capacityProviders": found, "failures": failures})

    R.describe_capacity_providers = describe_capacity_providers


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
