"""Step 2, the launch specification: every LaunchSpecification member, Placement included.

Pick-lists come from the account in workers (zones, subnets with CIDR, security groups) and from
botocore's model (instance types, about 1,400, filtered as you type). Values are checked by the
request models' own validators as you type, plus what only the account knows: the private IP
inside the chosen subnet, the subnet in the chosen zone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from tui.core.account import SecurityGroup, Subnet
from tui.core.units import counted
from tui.messages import AccountChanged
from tui.screens.base import StepScreen
from tui.widgets.form import FieldValue, Form, FormField

LS = "request.LaunchSpecification"
PL = f"{LS}.Placement"
IP_EXAMPLE = "e.g. 10.0.0.5"


class SpecScreen(StepScreen):
    STEP = "2/4 Launch specification"
    PREFIXES = (LS,)

    def __init__(self) -> None:
        super().__init__()
        self._subnets: dict[str, Subnet] = {}
        # The account's lists once loaded (None: not, or they could not be): a well-formed id
        # missing from them is marked before Next, as the preflight would refuse it.
        self._listed_subnets: set[str] | None = None
        self._listed_groups: set[str] | None = None

    def compose(self) -> ComposeResult:
        yield from self.header()
        with Form(id="spec"):
            with Horizontal(id="spec-columns"):
                with Vertical(classes="column"):
                    yield Label("Launch specification", classes="section-title")
                    yield FormField(
                        f"{LS}.Architecture",
                        "Architecture",
                        kind="choice",
                        choices=["i386", "x86_64"],
                    )
                    yield FormField(
                        f"{LS}.InstanceType",
                        "Instance type",
                        placeholder="e.g. m5.large",
                        pick=True,
                    )
                    yield FormField(
                        f"{LS}.SubnetId", "Subnet", placeholder="e.g. subnet-1a2b3c4d", pick=True
                    )
                    yield FormField(f"{LS}.PrivateIpAddress", "Private IP", placeholder=IP_EXAMPLE)
                    yield FormField(
                        f"{LS}.GroupIds",
                        "Security group ids",
                        kind="list",
                        placeholder="e.g. sg-1a2b3c4d, sg-…",
                        pick=True,
                    )
                    yield FormField(
                        f"{LS}.GroupNames",
                        "Security group names",
                        kind="list",
                        placeholder="e.g. default",
                    )
                    yield FormField(f"{LS}.Monitoring", "Detailed monitoring", kind="bool")
                    yield FormField(
                        f"{LS}.InstanceInitiatedShutdownBehavior",
                        "Shutdown behavior",
                        kind="choice",
                        choices=["stop", "terminate"],
                    )
                    yield FormField(f"{LS}.AdditionalInfo", "Additional info")
                    yield FormField(f"{LS}.UserData.Data", "User data (text)", kind="text")
                with Vertical(classes="column"):
                    yield Label("Placement", classes="section-title")
                    yield FormField(
                        f"{PL}.AvailabilityZone",
                        "Availability zone",
                        pick=True,
                    )
                    yield FormField(
                        f"{PL}.AvailabilityZoneId", "Zone id", placeholder="or the zone's id"
                    )
                    yield FormField(
                        f"{PL}.Tenancy",
                        "Tenancy",
                        kind="choice",
                        choices=["default", "dedicated", "host"],
                    )
                    yield FormField(f"{PL}.GroupName", "Placement group name")
                    yield FormField(
                        f"{PL}.GroupId", "Placement group id", placeholder="e.g. pg-1a2b3c4d"
                    )
                    yield FormField(f"{PL}.PartitionNumber", "Partition number", kind="int")
                    yield FormField(f"{PL}.Affinity", "Affinity", placeholder="e.g. host")
                    yield FormField(
                        f"{PL}.HostId", "Dedicated host id", placeholder="e.g. h-1a2b3c4d"
                    )
                    yield FormField(f"{PL}.HostResourceGroupArn", "Host resource group")
                    yield FormField(f"{PL}.SpreadDomain", "Spread domain")
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button("Next: platform", variant="primary", id="next")
        yield from self.footer()

    def on_mount(self) -> None:
        for path, what in (
            (f"{PL}.AvailabilityZone", "zones"),
            (f"{LS}.SubnetId", "subnets"),
            (f"{LS}.GroupIds", "security groups"),
        ):
            self._field(path).set_hint(f"loading {what} from the account …")
        self._load_enums()
        self._load_account()
        self.query_one(f"#f-{LS.replace('.', '-')}-InstanceType", FormField).set_hint(
            "type to filter the instance types; ↓ to pick"
        )

    @on(AccountChanged)
    def _account_changed(self) -> None:
        self._load_account()

    def _field(self, path: str) -> FormField:
        return self.query_one(f"#f-{path.replace('.', '-')}", FormField)

    # pick-lists --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="enums", exit_on_error=False)
    def _load_enums(self) -> None:
        account = self.wizard.account
        enums = {
            f"{LS}.Architecture": account.enum("ArchitectureValues"),
            f"{LS}.InstanceInitiatedShutdownBehavior": account.enum("ShutdownBehavior"),
            f"{PL}.Tenancy": account.enum("Tenancy"),
        }
        types = account.instance_types()
        self.app.call_from_thread(self._show_enums, enums, types)

    def _show_enums(self, enums: dict[str, tuple[str, ...]], types: tuple[str, ...]) -> None:
        for path, values in enums.items():
            self._field(path).set_choices(values)
        self._field(f"{LS}.InstanceType").set_options([(t, t) for t in sorted(types)])

    @work(thread=True, exclusive=True, group="account", exit_on_error=False)
    def _load_account(self) -> None:
        account = self.wizard.account
        zones = _listed(account.zones)
        subnets = _listed(account.subnets)
        groups = _listed(account.security_groups)
        self.app.call_from_thread(self._show_account, zones, subnets, groups)

    def _show_account(
        self,
        zones: list[tuple[str, str]] | Exception,
        subnets: list[Subnet] | Exception,
        groups: list[SecurityGroup] | Exception,
    ) -> None:
        if isinstance(zones, Exception):
            self._cannot_list(f"{PL}.AvailabilityZone", "zones", zones)
        else:
            self._field(f"{PL}.AvailabilityZone").set_hint(
                f"{counted(len(zones), 'zone')}: type or pick (↓)"
            )
            self._field(f"{PL}.AvailabilityZone").set_options(
                [(z, f"{z}  ({zid})") for z, zid in zones]
            )
            if zones:  # examples from this account's own list, never from another region's
                name, zone_id = zones[0]
                self._field(f"{PL}.AvailabilityZone").set_placeholder(f"e.g. {name}")
                # The zone's own id: ids map to names differently in each account.
                self._field(f"{PL}.AvailabilityZoneId").set_placeholder(f"e.g. {zone_id}")
        if isinstance(subnets, Exception):
            self._cannot_list(f"{LS}.SubnetId", "subnets", subnets)
        else:
            self._subnets = {s.subnet_id: s for s in subnets}
            self._listed_subnets = set(self._subnets)
            self._subnet_hint()
            self._field(f"{LS}.SubnetId").set_options([(s.subnet_id, s.label) for s in subnets])
        if isinstance(groups, Exception):
            self._cannot_list(f"{LS}.GroupIds", "security groups", groups)
        else:
            self._field(f"{LS}.GroupIds").set_hint(
                f"{counted(len(groups), 'group')}: comma-separated; ↓ picks"
            )
            self._field(f"{LS}.GroupIds").set_options([(g.group_id, g.label) for g in groups])
            self._listed_groups = {g.group_id for g in groups}
        self.show_errors()

    def _cannot_list(self, path: str, what: str, exc: Exception) -> None:
        self._field(path).set_hint(f"cannot list {what}: {exc}")

    # checks only the account can make ----------------------------------------------------

    def field_changed(self, field: FormField, value: FieldValue) -> None:
        if field.path == f"{LS}.SubnetId":
            self._subnet_hint()
            # The IP's check depends on the subnet: show it as soon as both are there.
            if self.draft.get(f"{LS}.PrivateIpAddress"):
                self._touched.add(f"{LS}.PrivateIpAddress")

    def _subnet_hint(self) -> None:
        subnet = self._subnets.get(self.draft.get(f"{LS}.SubnetId") or "")
        self._field(f"{LS}.PrivateIpAddress").set_placeholder(_ip_example(subnet))
        if subnet:
            hint = f"{subnet.cidr} in {subnet.zone} ({subnet.vpc_id})"
        else:
            hint = (
                f"{counted(len(self._subnets), 'subnet')}: type or pick (↓)"
                if self._subnets
                else ""
            )
        self._field(f"{LS}.SubnetId").set_hint(hint)

    def extra_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        subnet = self._subnets.get(self.draft.get(f"{LS}.SubnetId") or "")
        ip = self.draft.get(f"{LS}.PrivateIpAddress")
        if subnet and ip and subnet.cidr:
            try:
                inside = ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(subnet.cidr)
            except ValueError:
                inside = True  # a malformed IP is the model's error, reported already
            if not inside:
                errors[f"{LS}.PrivateIpAddress"] = (
                    f"{ip} is not in {subnet.subnet_id} ({subnet.cidr})"
                )
        zone = self.draft.get(f"{PL}.AvailabilityZone")
        if subnet and zone and subnet.zone and zone != subnet.zone:
            errors[f"{PL}.AvailabilityZone"] = f"{subnet.subnet_id} is in {subnet.zone}, not {zone}"
        where = self.wizard.account.label
        subnet_id = self.draft.get(f"{LS}.SubnetId")
        if (
            self._listed_subnets is not None
            and isinstance(subnet_id, str)
            and _SUBNET_ID.fullmatch(subnet_id)
            and subnet_id not in self._listed_subnets
        ):
            errors[f"{LS}.SubnetId"] = f"{subnet_id} is not a subnet of {where}: pick one (↓)"
        group_ids = self.draft.get(f"{LS}.GroupIds") or []
        if self._listed_groups is not None and isinstance(group_ids, list):
            unknown = [
                g
                for g in group_ids
                if isinstance(g, str) and _GROUP_ID.fullmatch(g) and g not in self._listed_groups
            ]
            if unknown:
                errors[f"{LS}.GroupIds"] = (
                    f"{', '.join(unknown)}: no such security group in {where}: pick one (↓)"
                )
        return errors


T = TypeVar("T")
# Well-formed ids only: a malformed one is the request model's error, said already.
_SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?")
_GROUP_ID = re.compile(r"sg-[0-9a-f]{8}([0-9a-f]{9})?")


def _listed(call: Callable[[], list[T]]) -> list[T] | Exception:
    """A pick-list, or why the account would not give it (shown as the field's hint)."""
    try:
        return call()
    except Exception as exc:
        return exc


def _ip_example(subnet: Subnet | None) -> str:
    """An address the chosen subnet can give (AWS keeps its first four and its last); its
    CIDR is in the subnet's hint."""
    try:
        network = ipaddress.IPv4Network(subnet.cidr) if subnet else None
    except ValueError:
        network = None
    if network is None or network.num_addresses < 16:
        return IP_EXAMPLE
    return f"e.g. {network.network_address + 10}"
