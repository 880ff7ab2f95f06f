"""ECS fixes on top of moto 5.2.1 (models and response rendering).

Gaps fixed here (each verified against moto 5.2.1):

* Task ``lastStatus`` is a moto ManagedState that *advances on every
  DescribeTasks* (RUNNING -> DEACTIVATING -> STOPPING ...).  Pinned to a plain
  attribute: a task stays RUNNING until it is stopped.
* Tasks carry no ``networkBindings``, ``containerArn`` has the wrong format,
  ``containers[].taskArn`` is the task *definition* ARN, container
  ``lastStatus`` is PENDING forever, only the first container definition
  becomes a container, and container ``cpu``/``memory`` are JSON numbers
  (the shape says string; strict SDKs such as Rust's reject that).  New tasks
  are decorated with AWS-shaped containers, bridge-mode dynamic host ports
  (32768-65535, unique per container instance, not reused right away) and
  createdAt/startedAt/... timestamps.
* Service ``runningCount``/``pendingCount`` (and the PRIMARY deployment's
  counts) are made up by moto (UpdateService sets runningCount=desiredCount).
  They, the cluster's task counters and a container instance's
  ``runningTasksCount`` are derived from the real tasks instead.
* StopTask: unknown task -> HTTP 500 in moto (InvalidParameterException now);
  stopping a stopped (or stopping) task again double-freed resources (now a
  no-op); stoppedAt/stopCode/containers are filled in; stop hooks (target
  deregistration, see scheduler.py) run for every stop.  As in AWS, a task
  with load-balancer targets is first DEACTIVATING (desiredStatus STOPPED,
  targets draining, containers still RUNNING with their networkBindings) for
  ``SETTINGS.scheduler_delay`` seconds; the scheduler's tick then stops it
  (``finish_deactivating``).  Other tasks, or any task with delay 0, stop at
  once.
* ListTasks ignores serviceName, launchType, maxResults/nextToken and returns
  STOPPED tasks by default (AWS defaults desiredStatus to RUNNING).
* DescribeTasks matches task ids by substring across all clusters and never
  reports ``failures``.  DescribeServices accepts more than 10 services.
  ListContainerInstances ignores status/maxResults/nextToken.
* UpdateService stores the task definition string as given (family name)
  instead of the resolved ARN.
* CreateService ignores ``deploymentConfiguration`` (every service got
  200/100); the requested values are now kept, over those defaults.
* The JSON serializer writes non-string values into string-typed members
  verbatim (``"cpu": 0``); they are stringified.

Performance (no behaviour change): a service's tasks, a container instance's
tasks and its used host ports are found through ``task_index`` (a per-cluster
index by group and by container instance) instead of scanning every task of
the cluster, and ``finish_deactivating`` only looks at the tasks StopTask left
DEACTIVATING.  With 10,000 tasks this is what keeps the scheduler's tick and
the derived counts (runningCount, runningTasksCount) cheap.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from typing import Any, Callable

from moto.core import serialize as moto_serialize
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import (
    Cluster,
    Container,
    ContainerInstance,
    EC2ContainerServiceBackend,
    Service,
    Task,
    ecs_backends,
)
from moto.utilities.utils import get_partition

import events
import lifecycle
import read_lag
from paging import BadToken, paginate
from state import SETTINGS
from state import now as state_now

DYNAMIC_PORT_MIN = 32768
DYNAMIC_PORT_MAX = 65535

# Callbacks run (under the moto lock) after a task stopped: fn(backend, task).
STOP_HOOKS: list[Callable[[EC2ContainerServiceBackend, Task], None]] = []

# Per container-instance ARN: next host port to try (Docker-like: a freed port
# is not handed out again immediately, so a stale target never collides with
# the replacement task's target).
_port_cursor: dict[str, int] = {}

# Lets the scheduler mark its own stops (stopCode ServiceSchedulerInitiated).
_stop_context = threading.local()

_applied = False


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def cluster_tasks(backend: EC2ContainerServiceBackend, cluster_name: str) -> list[Task]:
    return list(backend.tasks.get(cluster_name, {}).values())


class _TaskIndex:
    """A cluster's tasks by group and by container instance.

    moto only ever adds tasks to ``backend.tasks[cluster]`` (a stopped task
    stays; a reset replaces the dict), and a dict keeps insertion order, so
    the index catches up by indexing the entries past the ones it has seen.
    Anything else (a smaller or different dict) rebuilds it."""

    __slots__ = ("source", "seen", "by_group", "by_instance")

    def __init__(self, source: dict[str, Task]) -> None:
        self.source = source
        self.seen = 0
        self.by_group: dict[str | None, list[Task]] = {}
        self.by_instance: dict[str | None, list[Task]] = {}


_indexes: dict[tuple[int, str], _TaskIndex] = {}
_EMPTY: dict[str, Task] = {}


def task_index(backend: EC2ContainerServiceBackend, cluster_name: str) -> _TaskIndex:
    """The up-to-date index of a cluster's tasks (call with the moto lock held)."""
    tasks = backend.tasks.get(cluster_name, _EMPTY)
    key = (id(backend), cluster_name)
    index = _indexes.get(key)
    if index is None or index.source is not tasks or index.seen > len(tasks):
        index = _indexes[key] = _TaskIndex(tasks)
    if index.seen < len(tasks):
        for task in itertools.islice(tasks.values(), index.seen, None):
            index.by_group.setdefault(task.group, []).append(task)
            index.by_instance.setdefault(task.container_instance_arn, []).append(task)
        index.seen = len(tasks)
    return index


def service_tasks(service: Service) -> list[Task]:
    index = task_index(service._backend, service.cluster_name)
    return list(index.by_group.get(f"service:{service.name}", ()))


def instance_tasks(backend: EC2ContainerServiceBackend, cluster_name: str, ci_arn: str | None) -> list[Task]:
    """Every task (any status) placed on one container instance."""
    return list(task_index(backend, cluster_name).by_instance.get(ci_arn, ()))


def find_container_instance(
    backend: EC2ContainerServiceBackend, cluster_name: str, arn: str | None
) -> ContainerInstance | None:
    if not arn:
        return None
    return backend.container_instances.get(cluster_name, {}).get(arn.split("/")[-1])


def add_service_event(service: Service, message: str) -> None:
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
    del service.events[100:]


def _used_host_ports(backend: EC2ContainerServiceBackend, cluster_name: str, ci_arn: str) -> set[int]:
    used: set[int] = set()
    for task in instance_tasks(backend, cluster_name, ci_arn):
        if task.last_status == "STOPPED":
            continue
        for container in task.containers:
            for binding in getattr(container, "network_bindings", None) or []:
                used.add(int(binding["hostPort"]))
    return used


def _allocate_host_port(ci_arn: str, used: set[int]) -> int:
    span = DYNAMIC_PORT_MAX - DYNAMIC_PORT_MIN + 1
    start = _port_cursor.get(ci_arn, DYNAMIC_PORT_MIN)
    for i in range(span):
        port = DYNAMIC_PORT_MIN + (start - DYNAMIC_PORT_MIN + i) % span
        if port not in used:
            _port_cursor[ci_arn] = port + 1 if port < DYNAMIC_PORT_MAX else DYNAMIC_PORT_MIN
            used.add(port)
            return port
    raise InvalidParameterException("No free host port left on the container instance.")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _make_container(task: Task, cdef: dict[str, Any], network_mode: str, used: set[int] | None) -> Container:
    container = Container.__new__(Container)  # moto's __init__ only knows container #0
    partition = get_partition(task.region_name)
    container.container_arn = (
        f"arn:{partition}:ecs:{task.region_name}:{task._account_id}:container/"
        f"{task.cluster_name}/{task.id}/{uuid.uuid4()}"
    )
    container.task_arn = task.task_arn
    container.name = cdef.get("name")
    container.image = cdef.get("image")
    container.runtime_id = secrets.token_hex(32)
    container.last_status = "RUNNING"
    container.exitCode = None  # moto's attribute name; absent while running
    container.network_interfaces = []
    container.health_status = "UNKNOWN"
    container.cpu = _opt_str(cdef.get("cpu", 0))
    container.memory = _opt_str(cdef.get("memory"))
    container.memory_reservation = _opt_str(cdef.get("memoryReservation"))
    bindings: list[dict[str, Any]] = []
    if network_mode in ("bridge", "host") and used is not None:
        for mapping in cdef.get("portMappings") or []:
            container_port = mapping.get("containerPort")
            if container_port is None:
                continue
            host_port = mapping.get("hostPort") or 0
            if network_mode == "host":
                host_port = container_port
            elif not host_port:
                host_port = _allocate_host_port(task.container_instance_arn, used)
            used.add(int(host_port))
            bindings.append(
                {
                    "bindIP": "0.0.0.0",
                    "containerPort": int(container_port),
                    "hostPort": int(host_port),
                    "protocol": mapping.get("protocol") or "tcp",
                }
            )
    container.network_bindings = bindings
    return container


def _decorate_new_task(task: Task, task_definition: Any) -> None:
    now = utcnow()
    backend = task._backend
    task.created_at = now
    task.pull_started_at = now
    task.pull_stopped_at = now
    task.started_at = now
    task.connectivity = "CONNECTED"
    task.connectivity_at = now
    task.version = 1
    task.health_status = "UNKNOWN"
    task.stopped_reason = None
    task.stop_code = None
    task.stopping_at = None
    task.stopped_at = None
    task.execution_stopped_at = None
    task.cpu = _opt_str(task_definition.cpu)
    task.memory = _opt_str(task_definition.memory)
    task.emu_targets = []  # (target_group_arn, instance_id, port) registered for it
    ci = find_container_instance(backend, task.cluster_name, task.container_instance_arn)
    used = None
    if ci is not None:
        task.availability_zone = ci.attributes.get("ecs.availability-zone")
        used = _used_host_ports(backend, task.cluster_name, task.container_instance_arn)
    network_mode = task_definition.network_mode or "bridge"
    task.containers = [
        _make_container(task, cdef, network_mode, used) for cdef in task_definition.container_definitions
    ]


def _mark_stopped(task: Task, code: str) -> None:
    now = utcnow()
    task.stop_code = code
    task.stopping_at = task.stopping_at or now
    task.execution_stopped_at = now
    task.stopped_at = now
    task.connectivity = "DISCONNECTED"
    task.version = (getattr(task, "version", 1) or 1) + 1
    for container in task.containers:
        container.last_status = "STOPPED"
        container.exitCode = 137 if code != "EssentialContainerExited" else 1
        container.reason = None


# --------------------------------------------------------------------------
# model patches
# --------------------------------------------------------------------------
def _patch_models() -> None:
    # Task.lastStatus: plain attribute instead of the auto-advancing ManagedState.
    def _get_last_status(self: Task) -> str:
        return self._status

    def _set_last_status(self: Task, value: str) -> None:
        # The first status is set inside moto's __init__: its event goes
        # out once the task is complete (task_init below).
        changed = hasattr(self, "_status") and self._status != value
        self._status = value
        if changed and events.PUBLISHER.enabled:
            events.PUBLISHER.task_changed(self)  # "ECS Task State Change" (events.py)

    Task.last_status = property(_get_last_status, _set_last_status)

    orig_task_init = Task.__init__

    def task_init(self: Task, *args: Any, **kwargs: Any) -> None:
        orig_task_init(self, *args, **kwargs)
        task_definition = args[1] if len(args) > 1 else kwargs["task_definition"]
        _decorate_new_task(self, task_definition)
        read_lag.record_task(self)
        if events.PUBLISHER.enabled:
            events.PUBLISHER.task_changed(self)

    Task.__init__ = task_init

    # hostPort 0 (dynamic) must not be reserved as port "0" on the instance.
    orig_reqs = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calc_reqs(task_definition: Any) -> dict[str, Any]:
        reqs = orig_reqs(task_definition)
        reqs["PORTS"] = [p for p in reqs["PORTS"] if p]
        return reqs

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calc_reqs)

    # Service counts derived from real tasks.
    def running_count(self: Service) -> int:
        as_of = self.__dict__.get("_emu_as_of")  # a lagged read (read_lag.py)
        if as_of is not None:
            return sum(1 for _, last, _ in read_lag.states_at(service_tasks(self), as_of) if last == "RUNNING")
        return sum(1 for t in service_tasks(self) if t.last_status == "RUNNING")

    def pending_count(self: Service) -> int:
        as_of = self.__dict__.get("_emu_as_of")
        if as_of is not None:
            return sum(
                1 for _, last, _ in read_lag.states_at(service_tasks(self), as_of) if last in lifecycle.STARTING
            )
        return sum(
            1 for t in service_tasks(self) if t.last_status in ("PROVISIONING", "PENDING", "ACTIVATING")
        )

    def ignore_set(self: Any, value: Any) -> None:
        pass

    Service.running_count = property(running_count, ignore_set)
    Service.pending_count = property(pending_count, ignore_set)

    def get_deployments(self: Service) -> list[dict[str, Any]]:
        deployments = self.__dict__.get("_emu_deployments") or []
        if deployments:
            primary = deployments[0]
            running, pending = self.running_count, self.pending_count
            desired = self.desired_count if self.status == "ACTIVE" else 0
            primary["desiredCount"] = desired
            primary["runningCount"] = running
            primary["pendingCount"] = pending
            primary["taskDefinition"] = self.task_definition
            if running == desired and pending == 0:
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
        return deployments

    def set_deployments(self: Service, value: list[dict[str, Any]]) -> None:
        self.__dict__["_emu_deployments"] = value

    Service.deployments = property(get_deployments, set_deployments)

    orig_service_init = Service.__init__

    def service_init(self: Service, *args: Any, **kwargs: Any) -> None:
        orig_service_init(self, *args, **kwargs)
        self.created_at = utcnow()
        self.created_by = f"arn:aws:iam::{self._account_id}:root"
        self.role_arn = self.role_arn or None
        self.health_check_grace_period_seconds = None
        self.deployment_configuration = {
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        }

    Service.__init__ = service_init

    # Cluster counters derived from tasks/services.
    orig_cluster_init = Cluster.__init__

    def cluster_init(self: Cluster, *args: Any, **kwargs: Any) -> None:
        account_id = args[1] if len(args) > 1 else kwargs["account_id"]
        self.__dict__["_emu_account_id"] = account_id
        orig_cluster_init(self, *args, **kwargs)

    Cluster.__init__ = cluster_init

    def _cluster_backend(self: Cluster) -> EC2ContainerServiceBackend | None:
        account_id = self.__dict__.get("_emu_account_id")
        if account_id is None:
            return None
        return ecs_backends[account_id][self.region_name]

    def cluster_running(self: Cluster) -> int:
        backend = _cluster_backend(self)
        if backend is None:
            return 0
        return sum(1 for t in cluster_tasks(backend, self.name) if t.last_status == "RUNNING")

    def cluster_pending(self: Cluster) -> int:
        backend = _cluster_backend(self)
        if backend is None:
            return 0
        return sum(1 for t in cluster_tasks(backend, self.name) if t.last_status in lifecycle.STARTING)

    def cluster_services(self: Cluster) -> int:
        backend = _cluster_backend(self)
        if backend is None:
            return 0
        return sum(
            1 for s in backend.services.values() if s.cluster_name == self.name and s.status == "ACTIVE"
        )

    Cluster.running_tasks_count = property(cluster_running, ignore_set)
    Cluster.pending_tasks_count = property(cluster_pending, ignore_set)
    Cluster.active_services_count = property(cluster_services, ignore_set)

    def ci_running(self: ContainerInstance) -> int:
        return sum(
            1
            for t in instance_tasks(self._backend, self.cluster_name, self.container_instance_arn)
            if t.last_status == "RUNNING"
        )

    ContainerInstance.running_tasks_count = property(ci_running, ignore_set)

    # StopTask.
    orig_stop = EC2ContainerServiceBackend.stop_task

    def stop_task(self: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str) -> Task:
        cluster = self._get_cluster(cluster_str)
        task_id = (task_str or "").split("/")[-1]
        task = next((t for t in cluster_tasks(self, cluster.name) if t.id == task_id), None)
        if task is None:
            raise InvalidParameterException("The referenced task was not found.")
        if task.last_status == "STOPPED" or task.desired_status == "STOPPED":
            # Already stopped, or stopping (DEACTIVATING): a no-op, as in AWS.
            # Going on would free the task's resources twice, run the stop
            # hooks again (deregistering a target left behind on purpose) and
            # cut DEACTIVATING short.
            return task
        code = getattr(_stop_context, "code", None) or "UserInitiated"
        orig_stop(self, cluster.name, task.task_arn, reason or "Task stopped by user")
        behind_load_balancer = bool(getattr(task, "emu_targets", None))
        for hook in STOP_HOOKS:
            hook(self, task)
        if lifecycle.enabled():
            # The full AWS lifecycle (lifecycle.py): DEACTIVATING until the
            # targets drained, then STOPPING, DEPROVISIONING, STOPPED.
            lifecycle.begin_stop(self, task, code)
        elif behind_load_balancer and SETTINGS.scheduler_delay > 0:
            # As in AWS: a task behind a load balancer first deregisters its
            # targets (DEACTIVATING, desiredStatus STOPPED) and only then
            # stops; finish_deactivating() completes it.  stopCode,
            # stoppedReason and stoppingAt are set at once (AWS's StopTask
            # response already carries them); stoppedAt comes with STOPPED.
            task.last_status = "DEACTIVATING"
            task.stop_code = code
            task.stopping_at = utcnow()
            task.emu_stop_code = code
            task.emu_stop_at = state_now() + SETTINGS.scheduler_delay
            _deactivating(self)[task.task_arn] = task
            for container in task.containers:
                container.last_status = "RUNNING"
        else:
            _mark_stopped(task, code)
        read_lag.record_task(task)
        return task

    EC2ContainerServiceBackend.stop_task = stop_task

    orig_update_service = EC2ContainerServiceBackend.update_service

    def update_service(self: EC2ContainerServiceBackend, props: dict[str, Any]) -> Service:
        task_definition_str = props.get("task_definition")
        service = orig_update_service(self, props)
        if task_definition_str:
            service.task_definition = self.describe_task_definition(task_definition_str).arn
        return service

    EC2ContainerServiceBackend.update_service = update_service


def _deactivating(backend: EC2ContainerServiceBackend) -> dict[str, Task]:
    """Tasks stop_task left DEACTIVATING (kept on the backend, so a moto
    reset forgets them with everything else)."""
    registry = backend.__dict__.get("_emu_deactivating")
    if registry is None:
        registry = backend.__dict__["_emu_deactivating"] = {}
    return registry


def finish_deactivating(backend: EC2ContainerServiceBackend) -> None:
    """Moves tasks whose DEACTIVATING period is over to STOPPED (called by
    the scheduler's tick, under the moto lock).  Only the tasks stop_task
    made DEACTIVATING are looked at, not every task."""
    registry = _deactivating(backend)
    if not registry:
        return
    t = state_now()
    for arn, task in list(registry.items()):
        stop_at = getattr(task, "emu_stop_at", None)
        if task.last_status != "DEACTIVATING" or stop_at is None:
            del registry[arn]
        elif t >= stop_at:
            task.last_status = "STOPPED"
            task.emu_stop_at = None
            _mark_stopped(task, getattr(task, "emu_stop_code", "UserInitiated"))
            read_lag.record_task(task)
            del registry[arn]


def stop_task_as_scheduler(
    backend: EC2ContainerServiceBackend, cluster_name: str, task: Task, reason: str,
    code: str = "ServiceSchedulerInitiated",
) -> None:
    _stop_context.code = code
    try:
        backend.stop_task(cluster_name, task.task_arn, reason)
    finally:
        _stop_context.code = None


# --------------------------------------------------------------------------
# response patches
# --------------------------------------------------------------------------
def _max_results(resp: Any, lo: int, hi: int) -> int | None:
    value = resp._get_param("maxResults")
    if value is None:
        return None
    value = int(value)
    if not lo <= value <= hi:
        raise InvalidParameterException(f"maxResults must be between {lo} and {hi}.")
    return value


def _page(items: list[Any], resp: Any, default: int, hi: int) -> tuple[list[Any], str | None]:
    try:
        return paginate(items, _max_results(resp, 1, hi), resp._get_param("nextToken"), default)
    except BadToken:
        raise InvalidParameterException("Invalid nextToken.") from None


def _patch_responses() -> None:
    R = ecs_responses.EC2ContainerServiceResponse

    def list_tasks(self: Any) -> ActionResult:
        backend = self.ecs_backend
        cluster_str = self._get_param("cluster", "default")
        cluster = backend._get_cluster(cluster_str)
        tasks = cluster_tasks(backend, cluster.name)
        service_name = self._get_param("serviceName")
        if service_name:
            service = backend._get_service(cluster_str, service_name)
            tasks = [t for t in tasks if t.group == f"service:{service.name}"]
        container_instance = self._get_param("containerInstance")
        if container_instance:
            ci_id = container_instance.split("/")[-1]
            tasks = [t for t in tasks if (t.container_instance_arn or "").split("/")[-1] == ci_id]
        family = self._get_param("family")
        if family:
            tasks = [t for t in tasks if t.task_definition_arn.split("/")[-1].split(":")[0] == family]
        started_by = self._get_param("startedBy")
        if started_by:
            tasks = [t for t in tasks if t.started_by == started_by]
        launch_type = self._get_param("launchType")
        if launch_type:
            tasks = [t for t in tasks if (t.launch_type or "EC2") == launch_type]
        desired = self._get_param("desiredStatus") or "RUNNING"
        as_of = read_lag.as_of()
        if as_of is not None:  # a lagged read: membership as it was then
            tasks = [t for t, _, d in read_lag.states_at(tasks, as_of) if d == desired]
        else:
            tasks = [t for t in tasks if t.desired_status == desired]
        page, token = _page([t.task_arn for t in tasks], self, 100, 100)
        result: dict[str, Any] = {"taskArns": page}
        if token:
            result["nextToken"] = token
        return ActionResult(result)

    R.list_tasks = list_tasks

    def describe_tasks(self: Any) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        refs = self._get_param("tasks", []) or []
        if not refs:
            raise InvalidParameterException("Tasks cannot be empty.")
        if len(refs) > 100:
            raise InvalidParameterException("Tasks cannot contain more than 100 elements.")
        by_id = {t.id: t for t in cluster_tasks(backend, cluster.name)}
        found, failures = [], []
        as_of = read_lag.as_of()
        for ref in refs:
            task = by_id.get(ref.split("/")[-1])
            if task is not None and as_of is not None:
                task = read_lag.task_as_of(task, as_of)  # None: not created yet then
            if task is not None:
                found.append(task)
            else:
                arn = ref
                if not ref.startswith("arn:"):
                    arn = (
                        f"arn:{get_partition(self.region)}:ecs:{self.region}:{backend.account_id}:"
                        f"task/{cluster.name}/{ref}"
                    )
                failures.append({"arn": arn, "reason": "MISSING"})
        if "TAGS" in (self._get_param("include", []) or []):
            self._include_in_response(ecs_responses.DESCRIBE_TASKS_TAGS)
        else:
            self._exclude_from_response(ecs_responses.DESCRIBE_TASKS_TAGS)
        return ActionResult({"tasks": found, "failures": failures})

    R.describe_tasks = describe_tasks

    orig_describe_services = R.describe_services

    def describe_services(self: Any) -> ActionResult:
        services = self._get_param("services", []) or []
        if not services:
            raise InvalidParameterException("Services cannot be empty.")
        if len(services) > 10:
            raise InvalidParameterException("Services cannot contain more than 10 elements.")
        return orig_describe_services(self)

    R.describe_services = describe_services

    orig_create_service = R.create_service

    def create_service(self: Any) -> ActionResult:
        result = orig_create_service(self)
        requested = self._get_param("deploymentConfiguration")
        if requested:
            service = self.ecs_backend._get_service(
                self._get_param("cluster", "default"), self._get_param("serviceName")
            )
            service.deployment_configuration = {**service.deployment_configuration, **requested}
        return result

    R.create_service = create_service

    def list_container_instances(self: Any) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        instances = list(backend.container_instances.get(cluster.name, {}).values())
        status = self._get_param("status")
        if status:
            instances = [ci for ci in instances if ci.status == status]
        arns = sorted(ci.container_instance_arn for ci in instances)
        page, token = _page(arns, self, 100, 100)
        result: dict[str, Any] = {"containerInstanceArns": page}
        if token:
            result["nextToken"] = token
        return ActionResult(result)

    R.list_container_instances = list_container_instances


def _patch_serializer() -> None:
    def serialize_string(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        self._default_serialize(serialized, value, shape, key)

    moto_serialize.JSONSerializer._serialize_type_string = serialize_string


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    lifecycle.mark_stopped = _mark_stopped
    lifecycle.ON_CHANGE.append(read_lag.record_task)
    _patch_models()
    _patch_responses()
    _patch_serializer()
