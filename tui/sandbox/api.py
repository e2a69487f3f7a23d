"""The four conversion-task actions moto lacks: parameters in, EC2's XML out.

Parameters arrive flattened as botocore serializes them (docs/protocol.md section 5); enum
values are checked against botocore's own service model, as EC2 does and botocore does not.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from tui.core.facts import ACTIVE_TASK_LIMIT, GIB, IMPORT_REGIONS, MAX_VOLUME_GIB, TASK_ID_RE
from tui.sandbox import ec2xml, moto_adapter, placement
from tui.sandbox.ec2xml import Ec2Error
from tui.sandbox.engine import (
    ConversionTask,
    TaskStore,
    VolumeJob,
    new_task_id,
)

Params = dict[str, str]


# Allowed values by parameter: the enum shape each one has in botocore's EC2 model.
_ENUM_SHAPES = {
    "Platform": "PlatformValues",
    "Architecture": "ArchitectureValues",
    "InstanceType": "InstanceType",
    "InstanceInitiatedShutdownBehavior": "ShutdownBehavior",
    "Tenancy": "Tenancy",
    "Format": "DiskImageFormat",
}


def _enums() -> dict[str, tuple[str, ...]]:
    from tui.core.request import enum_values

    return {kind: enum_values(shape) for kind, shape in _ENUM_SHAPES.items()}


def warm() -> None:
    _enums()


def _missing(name: str) -> Ec2Error:
    return Ec2Error("MissingParameter", f"The request must contain the parameter {name}")


def _enum(params: Params, key: str, kind: str, *, required: bool = False) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise _missing(key)
        return None
    allowed = _enums()[kind]
    if value not in allowed:
        shown = ", ".join(allowed) if len(allowed) <= 8 else f"see the {kind} values of the API"
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {key} is invalid. Supported values: {shown}",
        )
    return value


def _positive_int(params: Params, key: str) -> int:
    text = params.get(key)
    if text is None or text == "":
        raise _missing(key)
    try:
        value = int(text)
    except ValueError:
        raise Ec2Error(
            "InvalidParameterValue", f"Value ({text}) for parameter {key} is not an integer"
        ) from None
    if value < 1:
        raise Ec2Error("InvalidParameterValue", f"Value ({text}) for parameter {key} must be > 0")
    return value


def _bool(params: Params, key: str) -> bool:
    return params.get(key, "").lower() == "true"


def _indexed(params: Params, prefix: str) -> list[str]:
    """Values of `Prefix.1`, `Prefix.2`, ... in index order."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)$")
    found = sorted((int(m.group(1)), v) for k, v in params.items() if (m := pat.match(k)))
    return [v for _, v in found]


def _check_region(action: str, region: str) -> None:
    # Our reading (docs/protocol.md section 7): EC2's answer for an action a region lacks is not
    # documented; UnsupportedOperation is EC2's common code for "not supported" requests.
    if region not in IMPORT_REGIONS:
        raise Ec2Error(
            "UnsupportedOperation",
            f"The operation {action} is not supported in the {region} region; it is offered in "
            + ", ".join(sorted(IMPORT_REGIONS)),
        )


def _zone(
    params: Params, name_key: str, id_key: str, account: str, region: str
) -> tuple[str | None, str | None]:
    """(zone name, zone id) from a zone's name or its id (never both, as EC2's Placement says);
    (None, None) if neither is given. InvalidParameterValue for one the region does not have."""
    name = params.get(name_key) or None
    zone_id = params.get(id_key) or None
    if name and zone_id:
        raise Ec2Error(
            "InvalidParameterCombination",
            f"Only one of {name_key} and {id_key} can be specified",
        )
    zones = moto_adapter.zone_ids(account, region)  # name -> id
    if name:
        if name not in zones:
            raise Ec2Error("InvalidParameterValue", f"Invalid availability zone: [{name}]")
        return name, zones[name]
    if zone_id:
        by_id = {v: k for k, v in zones.items()}
        if zone_id not in by_id:
            raise Ec2Error("InvalidParameterValue", f"Invalid availability zone ID: [{zone_id}]")
        return by_id[zone_id], zone_id
    return None, None


def _volume_size(params: Params, key: str, image_format: str, image_bytes: int) -> int:
    """Volume.Size in GiB. Our reading (EC2 documents neither): over EBS's 16,384 GiB, or too
    small for a RAW image (whose virtual size is its byte count), is InvalidParameterValue."""
    size = _positive_int(params, key)
    if size > MAX_VOLUME_GIB:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({size}) for parameter {key} is invalid: a volume holds at most "
            f"{MAX_VOLUME_GIB} GiB",
        )
    if image_format == "RAW" and size * GIB < image_bytes:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({size}) for parameter {key} is invalid: it is smaller than the image "
            f"({image_bytes} bytes)",
        )
    return size


def _disk_image(params: Params, p: str, zone: str) -> VolumeJob:
    fmt = _enum(params, f"{p}Image.Format", "Format", required=True)
    image_bytes = _positive_int(params, f"{p}Image.Bytes")
    url = params.get(f"{p}Image.ImportManifestUrl") or ""
    if not url:
        raise _missing(f"{p}Image.ImportManifestUrl")
    if not url.startswith(("http://", "https://")):
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value for parameter {p}Image.ImportManifestUrl is not an http(s) URL",
        )
    assert fmt is not None
    size = _volume_size(params, f"{p}Volume.Size", fmt, image_bytes)
    return VolumeJob(
        zone=zone,
        image_format=fmt,
        image_bytes=image_bytes,
        manifest_url=url,
        volume_size=size,
        description=params.get(f"{p}Description"),
    )


def _check_limit(store: TaskStore, account: str) -> None:
    if store.active_count(account) >= ACTIVE_TASK_LIMIT:
        raise Ec2Error(
            "ResourceLimitExceeded",
            f"You have reached the limit of {ACTIVE_TASK_LIMIT} active conversion tasks; "
            "wait for one to finish or cancel one",
        )


def _new_task(
    store: TaskStore, kind: str, account: str, region: str, jobs: list[VolumeJob], **kw: Any
) -> ConversionTask:
    now = datetime.now(UTC)
    return ConversionTask(
        task_id=new_task_id(kind),
        kind=kind,
        account=account,
        region=region,
        created=now,
        expires=now + store.pacing.ttl,
        volumes=jobs,
        **kw,
    )


def import_instance(store: TaskStore, params: Params, account: str, region: str) -> bytes:
    placement.check_allowed("ImportInstance")
    _check_region("ImportInstance", region)
    platform = _enum(params, "Platform", "Platform", required=True)
    ls = "LaunchSpecification."
    arch = _enum(params, ls + "Architecture", "Architecture")
    itype = _enum(params, ls + "InstanceType", "InstanceType")
    shutdown = _enum(
        params, ls + "InstanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior"
    )
    _enum(params, ls + "Placement.Tenancy", "Tenancy")
    user_data = params.get(ls + "UserData.Data")
    if user_data:
        # EC2 wants it base64-encoded and boto3 does not encode it for this action.
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise Ec2Error(
                "InvalidParameterValue", "Invalid BASE64 encoding of user data."
            ) from None
    prefixes = sorted(
        {m.group(1) for k in params if (m := re.match(r"(DiskImage\.\d+\.)", k))},
        key=lambda s: int(s.split(".")[1]),
    )
    if not prefixes:
        raise _missing("DiskImage.1.Image.ImportManifestUrl")
    jobs = [_disk_image(params, p, "") for p in prefixes]
    zone, _ = _zone(
        params,
        ls + "Placement.AvailabilityZone",
        ls + "Placement.AvailabilityZoneId",
        account,
        region,
    )
    if _bool(params, "DryRun"):  # a dry run checks the request, not the account's limits
        raise ec2xml.dry_run_ok()
    _check_limit(store, account)

    spec = moto_adapter.InstanceSpec(
        instance_type=itype,
        architecture=arch,
        zone=zone,
        subnet_id=params.get(ls + "SubnetId") or None,
        private_ip=params.get(ls + "PrivateIpAddress") or None,
        group_names=_indexed(params, ls + "GroupName"),
        group_ids=_indexed(params, ls + "GroupId"),
        shutdown_behavior=shutdown,
        monitoring=_bool(params, ls + "Monitoring"),
        user_data=user_data,
    )
    instance_id, actual_zone = moto_adapter.create_stopped_instance(account, region, spec)
    zone_id = moto_adapter.zone_ids(account, region).get(actual_zone)
    for job in jobs:
        job.zone, job.zone_id = actual_zone, zone_id
    task = _new_task(
        store,
        "instance",
        account,
        region,
        jobs,
        description=params.get("Description"),
        platform=platform,
        instance_id=instance_id,
    )
    store.add(task)
    return ec2xml.response("ImportInstance", {"conversionTask": store.snapshot(task)})


def import_volume(store: TaskStore, params: Params, account: str, region: str) -> bytes:
    _check_region("ImportVolume", region)
    if not (params.get("AvailabilityZone") or params.get("AvailabilityZoneId")):
        raise Ec2Error(
            "MissingParameter",
            "The request must contain the parameter AvailabilityZone or AvailabilityZoneId",
        )
    job = _disk_image(params, "", "")
    zone, zone_id = _zone(params, "AvailabilityZone", "AvailabilityZoneId", account, region)
    assert zone is not None
    job.zone, job.zone_id = zone, zone_id
    if _bool(params, "DryRun"):  # a dry run checks the request, not the account's limits
        raise ec2xml.dry_run_ok()
    _check_limit(store, account)
    task = _new_task(store, "volume", account, region, [job], description=params.get("Description"))
    store.add(task)
    return ec2xml.response("ImportVolume", {"conversionTask": store.snapshot(task)})


def _lookup(store: TaskStore, task_id: str, account: str, region: str) -> ConversionTask:
    if not TASK_ID_RE.fullmatch(task_id):
        raise Ec2Error(
            "InvalidConversionTaskId.Malformed",
            f'Invalid id: "{task_id}" (expecting "import-i-..." or "import-vol-...")',
        )
    task = store.get(task_id, account, region)
    if task is None:
        raise Ec2Error(
            "InvalidConversionTaskId", f"The conversion task ID '{task_id}' does not exist"
        )
    return task


def describe(store: TaskStore, params: Params, account: str, region: str) -> bytes:
    ids = _indexed(params, "ConversionTaskId")
    tasks = [_lookup(store, i, account, region) for i in ids]
    if _bool(params, "DryRun"):
        raise ec2xml.dry_run_ok()
    if not ids:
        tasks = store.listing(account, region)
    return ec2xml.response(
        "DescribeConversionTasks", {"conversionTasks": [store.snapshot(t) for t in tasks]}
    )


def cancel(store: TaskStore, params: Params, account: str, region: str) -> bytes:
    task_id = params.get("ConversionTaskId")
    if not task_id:
        raise _missing("ConversionTaskId")
    task = _lookup(store, task_id, account, region)
    with store.lock:
        if task.state != "active":
            raise Ec2Error(
                "IncorrectState",
                f"Cannot cancel conversion task {task_id} because it is {task.state}",
            )
        if _bool(params, "DryRun"):
            raise ec2xml.dry_run_ok()
        store.cancel(task, params.get("ReasonMessage") or None)
    return ec2xml.response("CancelConversionTask", {"return": True})


ACTIONS = {
    "ImportInstance": import_instance,
    "ImportVolume": import_volume,
    "DescribeConversionTasks": describe,
    "CancelConversionTask": cancel,
    **placement.ACTIONS,  # moto has no placement groups
}
