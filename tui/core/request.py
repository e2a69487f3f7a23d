"""The ImportInstance request: pydantic models in the API's own names, validated, flattened by
botocore's own EC2 serializer.

Enum values come from botocore's service model (loaded lazily: the TUI's first screen must paint
before botocore loads), never copied by hand. botocore checks types and required members but not
enum values, IP syntax or id shapes: those are checked here.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import re
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tui.core.facts import MAX_VOLUME_GIB, is_loopback_host
from tui.core.redact import redact_url

if TYPE_CHECKING:  # botocore loads when the model is first needed, not with the first paint
    from botocore.model import OperationModel, ServiceModel, StringShape

API_VERSION = "2016-11-15"
OPERATION = "ImportInstance"

# The manifest URL of an image not yet uploaded: preview shows where it will go.
PLACEHOLDER_RE = re.compile(r"^<not yet uploaded: presigned GET of s3://[^>]+>$")


# ---------------------------------------------------------------------------------------------
# botocore's service model (lazily)


@cache
def ec2_service_model() -> ServiceModel:
    # Straight from botocore's data files: a session would read AWS_PROFILE and the config.
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    return ServiceModel(create_loader().load_service_model("ec2", "service-2"), "ec2")


@cache
def operation_model() -> OperationModel:
    return ec2_service_model().operation_model(OPERATION)


@cache
def enum_values(shape_name: str) -> tuple[str, ...]:
    """Valid values of an enum shape of the EC2 model, e.g. `InstanceType` (about 1,400)."""
    shape: StringShape = ec2_service_model().shape_for(shape_name)  # type: ignore[assignment]
    return tuple(shape.enum)


def check_enum(value: str, shape_name: str, what: str) -> str:
    valid = enum_values(shape_name)
    if value in valid:
        return value
    close = difflib.get_close_matches(value, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if len(valid) <= 8:
        hint += f" (valid: {', '.join(valid)})"
    raise ValueError(f"{value!r} is not a valid {what}{hint}")


# ---------------------------------------------------------------------------------------------
# Models (field names are the API's member names; order as in the service model)


class StrictModel(BaseModel):
    """Every model of a profile: unknown keys are errors, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


NonEmpty = Annotated[str, Field(min_length=1)]


class PlacementSpec(StrictModel):
    AvailabilityZoneId: NonEmpty | None = None
    Affinity: NonEmpty | None = None
    GroupName: NonEmpty | None = None
    PartitionNumber: Annotated[int, Field(ge=1)] | None = None
    HostId: NonEmpty | None = None
    Tenancy: str | None = None
    SpreadDomain: NonEmpty | None = None
    HostResourceGroupArn: NonEmpty | None = None
    GroupId: NonEmpty | None = None
    AvailabilityZone: NonEmpty | None = None

    @field_validator("Tenancy")
    @classmethod
    def _tenancy(cls, v: str | None) -> str | None:
        return None if v is None else check_enum(v, "Tenancy", "Tenancy")

    @field_validator("GroupId")
    @classmethod
    def _group_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"pg-[0-9a-f]{8}([0-9a-f]{9})?", v):
            raise ValueError(f"{v!r} is not a placement group id (pg- and 8 or 17 hex digits)")
        return v


class UserDataSpec(StrictModel):
    Data: str = Field(description="plain text in profiles; base64-encoded when sent")


class LaunchSpec(StrictModel):
    Architecture: str | None = None
    GroupNames: list[NonEmpty] | None = None
    GroupIds: list[str] | None = None
    AdditionalInfo: NonEmpty | None = None
    UserData: UserDataSpec | None = None
    InstanceType: str | None = None
    Placement: PlacementSpec | None = None
    Monitoring: bool | None = None
    SubnetId: str | None = None
    InstanceInitiatedShutdownBehavior: str | None = None
    PrivateIpAddress: str | None = None

    @field_validator("Architecture")
    @classmethod
    def _arch(cls, v: str | None) -> str | None:
        return None if v is None else check_enum(v, "ArchitectureValues", "Architecture")

    @field_validator("InstanceType")
    @classmethod
    def _itype(cls, v: str | None) -> str | None:
        return None if v is None else check_enum(v, "InstanceType", "InstanceType")

    @field_validator("InstanceInitiatedShutdownBehavior")
    @classmethod
    def _shutdown(cls, v: str | None) -> str | None:
        return None if v is None else check_enum(v, "ShutdownBehavior", "shutdown behavior")

    @field_validator("GroupIds")
    @classmethod
    def _group_ids(cls, v: list[str] | None) -> list[str] | None:
        for gid in v or ():
            if not re.fullmatch(r"sg-[0-9a-f]{8}([0-9a-f]{9})?", gid):
                raise ValueError(f"{gid!r} is not a security group id (sg- and 8 or 17 hex digits)")
        return v

    @field_validator("SubnetId")
    @classmethod
    def _subnet(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", v):
            raise ValueError(f"{v!r} is not a subnet id (subnet- and 8 or 17 hex digits)")
        return v

    @field_validator("PrivateIpAddress")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 address (e.g. 10.0.0.5)") from None
        return v


def check_manifest_url(url: str) -> str:
    """EC2 fetches the manifest itself: https, or plain http only to a loopback sandbox; a
    presigned URL carries its credentials in the query, never as user:password@."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if "@" in parts.netloc:
        raise ValueError("a manifest URL carries no user name or password before the host")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ValueError(
        f"{url[:60]!r} is not an https URL (plain http is allowed only for a loopback endpoint)"
    )


class DiskImageDetail(StrictModel):
    Format: str
    Bytes: Annotated[int, Field(ge=1, lt=16 * 2**40)]
    ImportManifestUrl: str

    @field_validator("Format")
    @classmethod
    def _format(cls, v: str) -> str:
        return check_enum(v, "DiskImageFormat", "disk image format")

    @field_validator("ImportManifestUrl")
    @classmethod
    def _url(cls, v: str) -> str:
        return v if PLACEHOLDER_RE.match(v) else check_manifest_url(v)


class VolumeDetail(StrictModel):
    Size: Annotated[int, Field(ge=1, le=MAX_VOLUME_GIB)]


class DiskImage(StrictModel):
    Description: NonEmpty | None = None
    Image: DiskImageDetail
    Volume: VolumeDetail


class RequestSpec(StrictModel):
    """What a profile's `[request]` table holds: everything but the disk image."""

    DryRun: bool | None = None
    Description: NonEmpty | None = None
    LaunchSpecification: LaunchSpec = Field(default_factory=LaunchSpec)
    Platform: str

    @field_validator("Platform")
    @classmethod
    def _platform(cls, v: str) -> str:
        return check_enum(v, "PlatformValues", "Platform")


class ImportInstanceRequest(RequestSpec):
    """The whole request. One disk image: ImportInstance imports single-volume VMs only."""

    DiskImages: Annotated[list[DiskImage], Field(min_length=1, max_length=1)]

    @classmethod
    def build(
        cls,
        spec: RequestSpec,
        *,
        manifest_url: str,
        image_format: str,
        image_bytes: int,
        volume_size: int,
    ) -> ImportInstanceRequest:
        image = DiskImage(
            Image=DiskImageDetail(
                Format=image_format, Bytes=image_bytes, ImportManifestUrl=manifest_url
            ),
            Volume=VolumeDetail(Size=volume_size),
        )
        return cls(**spec.model_dump(exclude_none=True), DiskImages=[image])

    def to_params(self) -> dict[str, Any]:
        """Keyword arguments for boto3's `ec2.import_instance`, in the service model's order."""
        data = self.model_dump(exclude_none=True)
        user_data = data.get("LaunchSpecification", {}).get("UserData")
        if user_data is not None:
            # boto3 base64-encodes UserData for RunInstances but not for ImportInstance.
            user_data["Data"] = base64.b64encode(user_data["Data"].encode()).decode("ascii")
        return _in_shape_order(operation_model().input_shape, data)


def _in_shape_order(shape: Any, value: Any) -> Any:  # botocore's shapes are untyped
    if shape.type_name == "structure":
        return {
            name: _in_shape_order(member, value[name])
            for name, member in shape.members.items()
            if name in value
        }
    if shape.type_name == "list":
        return [_in_shape_order(shape.member, item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# Flattening and preview


def flatten(params: dict[str, Any]) -> dict[str, str]:
    """The form body exactly as botocore will send it (Action and Version first)."""
    from botocore.exceptions import ParamValidationError
    from botocore.serialize import create_serializer

    try:
        body = create_serializer("ec2").serialize_to_request(params, operation_model())["body"]
    except ParamValidationError as exc:  # pragma: no cover - our models are stricter
        raise ValueError(str(exc)) from exc
    return {key: str(value) for key, value in body.items()}


def redact_params(flat: dict[str, str]) -> dict[str, str]:
    return {k: redact_url(v) if k.endswith("ImportManifestUrl") else v for k, v in flat.items()}


def redact_boto_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {**params}
    if "DiskImages" in out:
        out["DiskImages"] = [
            {
                **d,
                "Image": {
                    **d["Image"],
                    "ImportManifestUrl": redact_url(d["Image"]["ImportManifestUrl"]),
                },
            }
            for d in out["DiskImages"]
        ]
    return out


def as_get_url(endpoint: str, flat: dict[str, str]) -> str:
    """One GET-style URL like the API reference's "Sample Request"."""
    return endpoint.rstrip("/") + "/?" + urlencode(flat, quote_via=quote, safe="/:")


def as_lines(flat: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in flat.items())
