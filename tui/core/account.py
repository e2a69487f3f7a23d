"""The one facade for what the wizard and the commands ask the AWS account: pick-lists (zones,
subnets, security groups, buckets, instance types), conversion tasks, cancel, cleanup.

Blocking calls: the TUI makes them in thread workers. The screens and the commands never touch
boto3 (imported lazily here, never at import time), and tests can hand the app a canned account
for deterministic snapshots. The import pipeline keeps its own calls (ImportInstance must not be
retried blindly; see tui/core/pipeline.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.core.aws import Target

if TYPE_CHECKING:  # the table's model loads with the tasks screen, not with the first paint
    from tui.core.journal import RunRecord
    from tui.core.tasks import TaskView


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    zone: str
    vpc_id: str

    @property
    def label(self) -> str:
        return f"{self.subnet_id}  {self.cidr}  {self.zone}"


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    name: str
    vpc_id: str

    @property
    def label(self) -> str:
        return f"{self.group_id}  {self.name}"


class Account:
    """The account behind a Target, resolved lazily (with --sandbox, resolving starts it)."""

    def __init__(self, resolve_target: Callable[[], Target], label: str):
        self._resolve = resolve_target
        self._target: Target | None = None
        self._lock = threading.Lock()
        self.label = label  # shown before the target is resolved (the header must not wait)

    @classmethod
    def of(cls, target: Target) -> Account:
        """The account behind a target already resolved (the commands)."""
        return cls(lambda: target, target.label)

    def target(self) -> Target:
        with self._lock:
            if self._target is None:
                self._target = self._resolve()
            return self._target

    def client(self, service: str) -> Any:
        from tui.core.aws import client

        return client(self.target(), service)

    def _call(self, service: str, op: str, **kw: Any) -> Any:
        from tui.core.aws import map_error

        try:
            return getattr(self.client(service), op)(**kw)
        except Exception as exc:
            raise map_error(exc) from None

    # pick-lists ---------------------------------------------------------------------------

    def zones(self) -> list[tuple[str, str]]:
        resp = self._call("ec2", "describe_availability_zones")
        return sorted((z["ZoneName"], z.get("ZoneId", "")) for z in resp["AvailabilityZones"])

    def subnets(self) -> list[Subnet]:
        resp = self._call("ec2", "describe_subnets")
        return sorted(
            (
                Subnet(
                    s["SubnetId"],
                    s.get("CidrBlock", ""),
                    s.get("AvailabilityZone", ""),
                    s.get("VpcId", ""),
                )
                for s in resp["Subnets"]
            ),
            key=lambda s: (s.zone, s.subnet_id),
        )

    def security_groups(self) -> list[SecurityGroup]:
        resp = self._call("ec2", "describe_security_groups")
        return sorted(
            (
                SecurityGroup(g["GroupId"], g.get("GroupName", ""), g.get("VpcId", ""))
                for g in resp["SecurityGroups"]
            ),
            key=lambda g: (g.name, g.group_id),
        )

    def buckets(self) -> list[str]:
        resp = self._call("s3", "list_buckets")
        return sorted(b["Name"] for b in resp.get("Buckets", []))

    def instance_types(self) -> tuple[str, ...]:
        from tui.core.request import enum_values

        return enum_values("InstanceType")

    def enum(self, shape: str) -> tuple[str, ...]:
        from tui.core.request import enum_values

        return enum_values(shape)

    # conversion tasks ---------------------------------------------------------------------

    def tasks(self, task_ids: Sequence[str] = ()) -> list[TaskView]:
        """DescribeConversionTasks: every task of the region, or the ones named."""
        from tui.core.tasks import views

        kw = {"ConversionTaskIds": list(task_ids)} if task_ids else {}
        return views(self._call("ec2", "describe_conversion_tasks", **kw))

    def cancel(self, task_id: str, reason: str | None = None) -> None:
        kw: dict[str, Any] = {"ConversionTaskId": task_id}
        if reason:
            kw["ReasonMessage"] = reason
        self._call("ec2", "cancel_conversion_task", **kw)

    def cleanup(
        self, task: TaskView | None, record: RunRecord | None, *, force: bool = False
    ) -> str:
        """Delete an upload's parts and manifest, found from the run record (its S3 keys) or
        the task (its manifest URL); refused while EC2 may still read them. What went, in words."""
        from tui.core import cleanup

        cleanup.refuse_if_active(task, force=force)
        bucket, key = cleanup.upload_location(record, task)
        return cleanup.delete(self.client("s3"), bucket, key)


def aws_profiles() -> list[str]:
    """Named profiles of ~/.aws/config and credentials."""
    import botocore.session

    return sorted(botocore.session.Session().available_profiles)
