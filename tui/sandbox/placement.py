"""Placement groups, which moto lacks (CreatePlacementGroup and DescribePlacementGroups answer
"not implemented"): kept here per account and region, answered in EC2's XML with EC2's codes,
so the preflight's placement check runs against the sandbox as against EC2.

And the sandbox's stand-in for an IAM policy that lacks actions: EC2 actions named in
EC2_IMPORT_WIZARD_SANDBOX_DENY (e.g. "ec2:ImportInstance") are answered UnauthorizedOperation,
dry run or not, as EC2 answers a caller whose policy does not allow them; S3's object writes
("s3:PutObject", "s3:DeleteObject") are answered 403 AccessDenied, as S3 answers them.
`ACTION:N` (e.g. "ec2:StartInstances:1") denies only the first N calls (a permission granted
while a run waits, so that its `resume` passes).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass

from tui.sandbox import ec2xml
from tui.sandbox.ec2xml import Ec2Error

DENY_ENV = "EC2_IMPORT_WIZARD_SANDBOX_DENY"
STRATEGIES = ("cluster", "spread", "partition")

Params = dict[str, str]


_denied_so_far: dict[str, int] = {}  # action -> calls refused (for `ACTION:N`)


def denied(action: str) -> bool:
    """`action` ("ec2:ImportInstance", "s3:PutObject") is one the sandbox's policy lacks now."""
    for item in os.environ.get(DENY_ENV, "").split(","):
        service, _, rest = item.strip().partition(":")
        name, _, count = rest.partition(":")
        if f"{service}:{name}" != action:
            continue
        if not count.isdigit():
            return True
        with _lock:
            done = _denied_so_far.get(action, 0)
            if done >= int(count):
                return False
            _denied_so_far[action] = done + 1
            return True
    return False


def check_allowed(action: str) -> None:
    if denied(f"ec2:{action}"):
        raise Ec2Error(
            "UnauthorizedOperation",
            f"You are not authorized to perform this operation. User is not authorized to "
            f"perform: ec2:{action}",
            status=403,
        )


@dataclass(frozen=True)
class PlacementGroup:
    name: str
    group_id: str
    strategy: str


_lock = threading.Lock()
_groups: dict[tuple[str, str], dict[str, PlacementGroup]] = {}


def _indexed(params: Params, prefix: str) -> list[str]:
    return [v for k, v in sorted(params.items()) if k.startswith(f"{prefix}.")]


def _xml(group: PlacementGroup) -> dict[str, str]:
    return {
        "groupName": group.name,
        "groupId": group.group_id,
        "strategy": group.strategy,
        "state": "available",
    }


def create(store: object, params: Params, account: str, region: str) -> bytes:
    name = params.get("GroupName") or ""
    if not name:
        raise Ec2Error("MissingParameter", "The request must contain the parameter GroupName")
    strategy = params.get("Strategy") or "cluster"
    if strategy not in STRATEGIES:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({strategy}) for parameter strategy is invalid. Supported values: "
            + ", ".join(STRATEGIES),
        )
    with _lock:
        groups = _groups.setdefault((account, region), {})
        if name in groups:
            raise Ec2Error(
                "InvalidPlacementGroup.Duplicate", f"The placement group '{name}' already exists."
            )
        group = PlacementGroup(name, f"pg-{secrets.token_hex(9)[:17]}", strategy)
        groups[name] = group
    return ec2xml.response(
        "CreatePlacementGroup", {"return": "true", "placementGroup": _xml(group)}
    )


def describe(store: object, params: Params, account: str, region: str) -> bytes:
    names = _indexed(params, "GroupName")
    ids = _indexed(params, "GroupId")
    with _lock:
        groups = list(_groups.get((account, region), {}).values())
    for name in names:
        if not any(g.name == name for g in groups):
            raise Ec2Error(
                "InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown."
            )
    for gid in ids:
        if not any(g.group_id == gid for g in groups):
            raise Ec2Error(
                "InvalidPlacementGroupId.NotFound", f"The placement group ID '{gid}' does not exist"
            )
    if names or ids:
        groups = [g for g in groups if g.name in names or g.group_id in ids]
    return ec2xml.response(
        "DescribePlacementGroups", {"placementGroupSet": [_xml(g) for g in groups]}
    )


ACTIONS = {"CreatePlacementGroup": create, "DescribePlacementGroups": describe}
