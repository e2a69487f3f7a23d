"""The few moto backend calls the conversion emulation needs, in one place.

The emulation runs in the server's process, so it uses moto's backends directly rather than
calling itself over HTTP: no credentials to invent, no faults or throttling applied to our own
bookkeeping, and no moto request parsing to depend on. Imported only once moto has loaded.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from tui.sandbox.ec2xml import Ec2Error

# moto's backends are plain dicts mutated from request threads; our own changes go one at a time.
LOCK = threading.RLock()

# ImportInstance instances have no AMI of their own; describe_instances shows this placeholder.
IMPORTED_IMAGE_ID = "ami-00000000"


def account_for(access_key: str | None) -> str:
    """The account moto itself would use for this access key (MOTO_ACCOUNT_ID, IAM, default)."""
    from moto.core import DEFAULT_ACCOUNT_ID

    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if not access_key:
        return DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def ec2(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _as_ec2_error(exc: Exception) -> Ec2Error:
    code = getattr(exc, "code", None) or getattr(exc, "error_type", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(code, str):
        return Ec2Error(code, message, 400)
    return Ec2Error("InvalidParameterValue", message, 400)


def zones(account: str, region: str) -> list[str]:
    return [z.name for z in ec2(account, region).describe_availability_zones()]


def create_stopped_instance(account: str, region: str, spec: dict[str, Any]) -> tuple[str, str]:
    """A stopped Windows instance with no volume yet; returns (instance id, its zone)."""
    backend = ec2(account, region)
    with LOCK:
        groups = []
        for name in spec.get("group_names", []):
            # moto crashes on an unknown group name instead of answering EC2's error.
            if backend.get_security_group_by_name_or_id(name) is None:
                raise Ec2Error(
                    "InvalidGroup.NotFound", f"The security group '{name}' does not exist"
                )
            groups.append(name)
        try:
            reservation = backend.run_instances(
                IMPORTED_IMAGE_ID,
                1,
                spec.get("user_data"),
                groups,
                instance_type=spec.get("instance_type") or "m1.small",
                is_instance_type_default=not spec.get("instance_type"),
                placement=spec.get("zone"),
                region_name=region,
                subnet_id=spec.get("subnet_id"),
                security_group_ids=spec.get("group_ids", []),
                private_ip=spec.get("private_ip"),
                tags={},
                # An empty mapping: no default root volume; the imported one comes at the end.
                block_device_mappings=[],
                instance_initiated_shutdown_behavior=spec.get("shutdown_behavior"),
                monitoring_state="enabled" if spec.get("monitoring") else "disabled",
            )
        except Ec2Error:
            raise
        except Exception as exc:
            raise _as_ec2_error(exc) from None
        instance = reservation.instances[0]
        instance.platform = "windows"
        if spec.get("architecture"):
            instance.architecture = spec["architecture"]
        backend.stop_instances([instance.id])
        placement = getattr(instance, "placement", None) or instance._placement
        return instance.id, str(getattr(placement, "zone", placement))


def terminate(account: str, region: str, instance_id: str | None) -> None:
    if not instance_id:
        return
    with LOCK, contextlib.suppress(Exception):  # already gone: nothing to undo
        ec2(account, region).terminate_instances([instance_id])


def create_volume(
    account: str, region: str, size_gib: int, zone: str, instance_id: str | None
) -> str:
    """The converted volume; attached as the root device when there is an instance."""
    backend = ec2(account, region)
    with LOCK:
        volume = backend.create_volume(size=size_gib, zone_name=zone)
        if instance_id:
            backend.attach_volume(volume.id, instance_id, "/dev/sda1", True)
        return str(volume.id)


def ensure_bucket(name: str, region: str, account: str | None = None) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[account or DEFAULT_ACCOUNT_ID]["aws"]
    with LOCK:
        if name not in backend.buckets:
            backend.create_bucket(name, region)


def prewarm(region: str = "us-east-1") -> None:
    """Build the EC2 backend (AMIs, instance types, zones) before the first request needs it."""
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = ec2(DEFAULT_ACCOUNT_ID, region)
    backend.describe_availability_zones()
