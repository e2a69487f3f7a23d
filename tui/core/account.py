"""The one facade for what the wizard and the commands ask the AWS account: pick-lists (zones,
subnets, security groups, buckets, instance types), conversion tasks, cancel, cleanup, and the
preflight of a plan (the wizard's preview shows it).

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

from tui.core.aws import Budget, Target
from tui.core.errors import AwsError

if TYPE_CHECKING:  # the table's model loads with the tasks screen, not with the first paint
    from tui.core.journal import RunRecord
    from tui.core.plan import ImportPlan
    from tui.core.preflight import Report
    from tui.core.tasks import TaskView


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    zone: str
    vpc_id: str
    zone_id: str = ""

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

    def __init__(
        self, resolve_target: Callable[[], Target], label: str, budget: Budget | None = None
    ):
        self._resolve = resolve_target
        self.budget = budget  # None: aws.ORDINARY
        self._target: Target | None = None
        self._lock = threading.Lock()
        self.label = label  # shown before the target is resolved (the header must not wait)

    @classmethod
    def of(cls, target: Target, budget: Budget | None = None) -> Account:
        """The account behind a target already resolved (the commands)."""
        return cls(lambda: target, target.label, budget)

    def target(self) -> Target:
        with self._lock:
            if self._target is None:
                self._target = self._resolve()
            return self._target

    def client(self, service: str) -> Any:
        from tui.core.aws import ORDINARY, client

        return client(self.target(), service, self.budget or ORDINARY)

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

    # preflight reads (tui/core/preflight.py): each answers None or an empty set for "not
    # there" and raises AwsError for anything else ---------------------------------------

    def _missing_is_none(self, codes: tuple[str, ...], op: str, **kw: Any) -> Any:
        try:
            return self._call("ec2", op, **kw)
        except AwsError as exc:
            if exc.code in codes:
                return None
            raise

    def subnet(self, subnet_id: str) -> Subnet | None:
        resp = self._missing_is_none(
            ("InvalidSubnetID.NotFound",), "describe_subnets", SubnetIds=[subnet_id]
        )
        if not resp or not resp.get("Subnets"):
            return None
        s = resp["Subnets"][0]
        return Subnet(
            s["SubnetId"],
            s.get("CidrBlock", ""),
            s.get("AvailabilityZone", ""),
            s.get("VpcId", ""),
            s.get("AvailabilityZoneId", ""),
        )

    def default_vpc(self) -> str | None:
        resp = self._call(
            "ec2", "describe_vpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}]
        )
        vpcs = resp.get("Vpcs", [])
        return str(vpcs[0]["VpcId"]) if vpcs else None

    def groups_by_id(self, group_ids: Sequence[str]) -> list[SecurityGroup]:
        """The groups of these ids that exist (a filter, so one missing id is no error)."""
        resp = self._call(
            "ec2",
            "describe_security_groups",
            Filters=[{"Name": "group-id", "Values": list(group_ids)}],
        )
        return [
            SecurityGroup(g["GroupId"], g.get("GroupName", ""), g.get("VpcId", ""))
            for g in resp.get("SecurityGroups", [])
        ]

    def groups_by_name(self, names: Sequence[str], vpc_id: str | None) -> list[SecurityGroup]:
        filters = [{"Name": "group-name", "Values": list(names)}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        resp = self._call("ec2", "describe_security_groups", Filters=filters)
        return [
            SecurityGroup(g["GroupId"], g.get("GroupName", ""), g.get("VpcId", ""))
            for g in resp.get("SecurityGroups", [])
        ]

    def instance_type_offered(self, instance_type: str, zone: str | None) -> bool:
        """Offered in the zone, or (no zone) somewhere in the region."""
        filters = [{"Name": "instance-type", "Values": [instance_type]}]
        if zone:
            filters.append({"Name": "location", "Values": [zone]})
        resp = self._call(
            "ec2",
            "describe_instance_type_offerings",
            LocationType="availability-zone" if zone else "region",
            Filters=filters,
        )
        return bool(resp.get("InstanceTypeOfferings"))

    def instance_type_architectures(self, instance_type: str) -> list[str] | None:
        resp = self._missing_is_none(
            ("InvalidInstanceType",), "describe_instance_types", InstanceTypes=[instance_type]
        )
        types = (resp or {}).get("InstanceTypes", [])
        if not types:
            return None
        return list(types[0].get("ProcessorInfo", {}).get("SupportedArchitectures", []))

    def placement_group_exists(
        self, *, name: str | None = None, group_id: str | None = None
    ) -> bool:
        kw: dict[str, Any] = {"GroupNames": [name]} if name else {"GroupIds": [group_id]}
        codes = ("InvalidPlacementGroup.Unknown", "InvalidPlacementGroupId.NotFound")
        resp = self._missing_is_none(codes, "describe_placement_groups", **kw)
        return bool((resp or {}).get("PlacementGroups"))

    def host_exists(self, host_id: str) -> bool:
        codes = ("InvalidHostID.NotFound", "InvalidHostId.NotFound", "InvalidHostId.Malformed")
        resp = self._missing_is_none(codes, "describe_hosts", HostIds=[host_id])
        return bool((resp or {}).get("Hosts"))

    def ip_in_use(self, address: str, subnet_id: str) -> str | None:
        """The network interface holding `address` in the subnet, or None."""
        resp = self._call(
            "ec2",
            "describe_network_interfaces",
            Filters=[
                {"Name": "subnet-id", "Values": [subnet_id]},
                {"Name": "addresses.private-ip-address", "Values": [address]},
            ],
        )
        found = resp.get("NetworkInterfaces", [])
        return str(found[0]["NetworkInterfaceId"]) if found else None

    def dry_run_import(self, params: dict[str, Any]) -> tuple[str, str] | None:
        """ImportInstance with DryRun=true: AWS's answer (code, message); DryRunOperation means
        it would be allowed. None if EC2 ran it anyway."""
        from botocore.exceptions import ClientError

        from tui.core.aws import map_error

        try:
            # A dry run creates nothing, so the account's budget may retry it.
            self.client("ec2").import_instance(**{**params, "DryRun": True})
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code"):
                return str(err["Code"]), str(err.get("Message", ""))
            raise map_error(exc) from None
        except Exception as exc:
            raise map_error(exc) from None
        return None

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

    def check(self, plan: ImportPlan) -> Report:
        """The preflight of `plan` as a preview shows it: every check but the bucket-write
        marker, which writes (the run's own preflight writes it, before its first byte)."""
        from tui.core.journal import new_run_id
        from tui.core.preflight import run_checks

        return run_checks(plan, self.target(), run_id=new_run_id(), write_marker=False)

    # an imported instance, once its task completed ([after]; tui/core/after.py) -------------

    def instance(self, instance_id: str) -> Instance:
        """DescribeInstances of one instance: its state and the EBS volumes attached to it."""
        resp = self._call("ec2", "describe_instances", InstanceIds=[instance_id])
        found = [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]
        if not found:
            raise AwsError(
                f"EC2 lists no instance {instance_id}", code="InvalidInstanceID.NotFound"
            )
        item = found[0]
        volumes = tuple(
            str(m["Ebs"]["VolumeId"])
            for m in item.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("VolumeId")
        )
        return Instance(instance_id, str(item.get("State", {}).get("Name", "")), volumes)

    def tag(self, resource_ids: Sequence[str], tags: dict[str, str]) -> None:
        """CreateTags: one call for every resource (it takes up to 1,000 of them)."""
        self._call(
            "ec2",
            "create_tags",
            Resources=list(resource_ids),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def start(self, instance_id: str) -> str:
        """StartInstances; the state EC2 answers with (pending, or running if it already was)."""
        resp = self._call("ec2", "start_instances", InstanceIds=[instance_id])
        changes = resp.get("StartingInstances") or [{}]
        return str(changes[0].get("CurrentState", {}).get("Name", ""))


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str  # pending, running, stopping, stopped, shutting-down, terminated
    volume_ids: tuple[str, ...]


def aws_profiles() -> list[str]:
    """Named profiles of ~/.aws/config and credentials."""
    import botocore.session

    return sorted(botocore.session.Session().available_profiles)
