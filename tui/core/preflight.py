"""The preflight: what the account and the disk say about an import before its first byte is
sent (`check PROFILE`, and `run`, `resume` and the wizard before they upload).

Each check is a function of the import's context returning results `{"id", "status", "field",
"message", "fix"}`; they run side by side in a thread pool, so the whole preflight costs about
the slowest call. Every call is a read (through the one EC2 facade, tui/core/account.py) but
two: the bucket-write marker (a zero-byte PUT and its DELETE under the run's folder, so the
bucket is left as it was) and ImportInstance with DryRun=true. `run --dry-run` writes nothing,
so it skips the marker. The facts relied on are in docs/protocol.md section 9.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tui.core import aws, facts, retry, s3keys
from tui.core.account import Account, Subnet
from tui.core.errors import EXIT_AWS, EXIT_BAD_INPUT, EXIT_OK, AwsError, InputError, WizardError

if TYPE_CHECKING:
    from tui.core.plan import ImportPlan
    from tui.core.request import LaunchSpec

LS = "request.LaunchSpecification"
PLACEMENT = f"{LS}.Placement"
MARKER_NAME = ".ec2-import-wizard-check"
# Codes that mean AWS gave no answer to the question (exit 3, not 2): the network, throttling
# beyond botocore's retries, AWS's own trouble, credentials that could not be had.
UNANSWERED = frozenset(
    {
        aws.NETWORK_ERROR,
        "NoCredentials",
        "SSOTokenExpired",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "503",
        "500",
    }
)
# A check still throttled after botocore's 5 tries (aws.PREFLIGHT) runs again, whole, up to 3
# more times within a minute: a busy account's burst passes, and a check is all reads (the
# marker's PUT and DELETE repeat harmlessly).
THROTTLED_POLICY = retry.RetryPolicy(
    retryable=retry.is_throttling, attempts=4, base_delay=4.0, max_delay=16.0, deadline=60.0
)


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    field: str
    message: str
    fix: str = ""
    # AWS could not be asked (network, throttling, 5xx): a fail of this kind exits 3, not 2.
    unanswered: bool = dataclass_field(default=False, compare=False)

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "status": str(self.status),
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
        }

    @property
    def line(self) -> str:
        """One line a user reads: status, id, field, message and fix."""
        fix = f"; fix: {self.fix}" if self.fix and self.status != Status.PASS else ""
        where = f" {self.field}:" if self.field else ""
        return f"{self.status:<4} {self.id:<16}{where} {self.message}{fix}"


def passed(check_id: str, field_: str, message: str) -> CheckResult:
    return CheckResult(check_id, Status.PASS, field_, message)


def warned(check_id: str, field_: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(check_id, Status.WARN, field_, message, fix)


def failed(check_id: str, field_: str, message: str, fix: str) -> CheckResult:
    return CheckResult(check_id, Status.FAIL, field_, message, fix)


class PreflightFailed(WizardError):
    """The preflight found a fail: nothing was uploaded or created. Exit 2, or 3 when every
    fail is AWS not answering."""

    def __init__(self, report: Report):
        fails = report.failures
        shown = "; ".join(f"{c.field or c.id}: {c.message} (fix: {c.fix})" for c in fails)
        super().__init__(f"preflight failed, nothing was uploaded: {shown}")
        self.report = report
        self.exit_code = report.exit_code
        self.code = "PreflightFailed"


@dataclass(frozen=True)
class Report:
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == Status.FAIL]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == Status.WARN]

    @property
    def exit_code(self) -> int:
        if self.ok:
            return EXIT_OK
        if all(c.unanswered for c in self.failures):
            return EXIT_AWS
        return EXIT_BAD_INPUT

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}

    def raise_for_failures(self) -> None:
        if not self.ok:
            raise PreflightFailed(self)


@dataclass(frozen=True)
class Context:
    """What the checks look at: the plan (profile and image), where requests go, the run id
    whose keys the upload will use, and what the caller wants."""

    plan: ImportPlan
    target: aws.Target
    run_id: str
    write_marker: bool = True
    account: Account = dataclass_field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", Account.of(self.target, aws.PREFLIGHT))

    @property
    def spec(self) -> LaunchSpec:
        return self.plan.profile.request.LaunchSpecification

    def subnet(self) -> Subnet | None:
        """The profile's subnet (asked once: several checks need it)."""
        return _memo(self, "_subnet", lambda: self.account.subnet(self.spec.SubnetId or ""))


def _memo(ctx: Context, name: str, make: Callable[[], Any]) -> Any:
    # Checks run in threads; two asking at once both ask AWS, which is harmless.
    if name not in ctx.__dict__:
        object.__setattr__(ctx, name, make())
    return ctx.__dict__[name]


CheckFn = Callable[[Context], Iterable[CheckResult]]


# -- the checks ---------------------------------------------------------------------------------


def check_region(ctx: Context) -> Iterable[CheckResult]:
    # Also for an endpoint: the sandbox answers as EC2 would in that region.
    region = ctx.target.region
    if region in facts.IMPORT_REGIONS:
        yield passed("region", "aws.region", f"{region} offers ImportInstance")
    else:
        yield failed(
            "region",
            "aws.region",
            f"ImportInstance is not offered in {region}",
            "use one of " + ", ".join(sorted(facts.IMPORT_REGIONS)),
        )


def estimated_life_s(image_bytes: int) -> float:
    """How long the presigned URLs must live: upload plus conversion (facts.py's estimate)."""
    upload = image_bytes / facts.UPLOAD_ESTIMATE_BYTES_PER_S
    convert = max(
        facts.CONVERSION_ESTIMATE_MIN_S, image_bytes / facts.CONVERSION_ESTIMATE_BYTES_PER_S
    )
    return upload + convert


def _credential_expiry(credentials: Any) -> float | None:
    """When refreshable credentials (SSO, assumed roles, credential_process) expire, in epoch
    seconds; None when botocore does not say. botocore keeps it on a private attribute only."""
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry.timestamp() if expiry is not None and hasattr(expiry, "timestamp") else None


def check_credentials(ctx: Context) -> Iterable[CheckResult]:
    fld = "aws.profile"
    credentials = aws.session(ctx.target).get_credentials()
    if credentials is None:
        yield failed(
            "credentials",
            fld,
            "no AWS credentials found",
            "run `aws configure`, set AWS_PROFILE or give --aws-profile, or use --sandbox",
        )
        return
    token = credentials.get_frozen_credentials().token
    if not token:
        yield passed("credentials", fld, "long-term credentials")
        return
    need = estimated_life_s(ctx.plan.image_bytes)
    expiry = _credential_expiry(credentials)
    if expiry is None:
        yield warned(
            "credentials",
            fld,
            "the credentials are temporary (a session token) and say not when they expire: the "
            "manifest's presigned URLs die with them, and this import needs about "
            f"{need / 3600:.1f} h",
            "use long-term credentials (an IAM user's access key) for the import",
        )
        return
    left = expiry - time.time()
    if left < need:
        yield failed(
            "credentials",
            fld,
            f"the temporary credentials expire in {left / 60:.0f} min, before the upload and "
            f"conversion end (about {need / 3600:.1f} h): EC2 could not read the parts then",
            "use long-term credentials, or get credentials that live longer "
            "(e.g. a longer session duration)",
        )
    else:
        yield passed(
            "credentials",
            fld,
            f"temporary credentials, valid {left / 3600:.1f} h (about {need / 3600:.1f} h needed)",
        )


def check_bucket(ctx: Context) -> Iterable[CheckResult]:
    from tui.core.upload import bucket as buckets

    src = ctx.plan.profile.source
    if ctx.plan.image_path is None or src.bucket is None:
        yield passed("bucket", "source.manifest_url", "the image is already uploaded")
        return
    s3 = aws.client(ctx.target, "s3", aws.PREFLIGHT)
    try:
        buckets.check_bucket(s3, src.bucket, ctx.target.region, create=False)
    except InputError as exc:
        if "does not exist" in exc.message and ctx.target.sandbox:
            yield passed("bucket", "source.bucket", f"{src.bucket} will be created in the sandbox")
            return
        fix = (
            f"create it in {ctx.target.region}, or name a bucket you have there"
            if "does not exist" in exc.message
            else f"use a bucket in {ctx.target.region}"
        )
        yield failed("bucket", "source.bucket", exc.message, fix)
        return
    except AwsError as exc:
        if exc.code == "AccessDenied":
            yield failed(
                "bucket",
                "source.bucket",
                exc.message,
                "grant s3:ListBucket on it, or use a bucket of this account",
            )
            return
        raise
    except Exception as exc:
        raise aws.map_error(exc) from None
    yield passed("bucket", "source.bucket", f"{src.bucket} is in {ctx.target.region}")
    if not ctx.write_marker:
        return
    key = f"{s3keys.run_folder(src.key_prefix, ctx.run_id)}/{MARKER_NAME}"
    fld = "source.key_prefix"
    try:
        s3.put_object(Bucket=src.bucket, Key=key, Body=b"")
    except Exception as exc:
        err = aws.map_error(exc)
        if isinstance(err, AwsError) and err.code in UNANSWERED:
            raise err from None
        yield failed(
            "bucket-write",
            fld,
            f"cannot write under s3://{src.bucket}/{s3keys.run_folder(src.key_prefix, '')}: {err}",
            "grant s3:PutObject on the bucket and prefix",
        )
        return
    try:
        s3.delete_object(Bucket=src.bucket, Key=key)
    except Exception as exc:
        yield warned(
            "bucket-write",
            fld,
            f"wrote s3://{src.bucket}/{key} but could not delete it ({aws.map_error(exc)})",
            "grant s3:DeleteObject (cleanup needs it too) and delete the marker",
        )
        return
    yield passed("bucket-write", fld, f"a marker was written and deleted under s3://{src.bucket}")


def check_zone(ctx: Context) -> Iterable[CheckResult]:
    placement = ctx.spec.Placement
    zone = placement.AvailabilityZone if placement else None
    zone_id = placement.AvailabilityZoneId if placement else None
    if not zone and not zone_id:
        yield passed("zone", f"{PLACEMENT}.AvailabilityZone", "EC2 picks the zone")
        return
    known = dict(ctx.account.zones())
    if zone and zone not in known:
        yield failed(
            "zone",
            f"{PLACEMENT}.AvailabilityZone",
            f"{zone} is not a zone of {ctx.target.region}",
            "use one of " + ", ".join(sorted(known)),
        )
        return
    if zone_id and zone_id not in known.values():
        yield failed(
            "zone",
            f"{PLACEMENT}.AvailabilityZoneId",
            f"{zone_id} is not a zone id of {ctx.target.region}",
            "use one of " + ", ".join(sorted(v for v in known.values() if v)),
        )
        return
    if zone and zone_id and known[zone] and known[zone] != zone_id:
        yield failed(
            "zone",
            f"{PLACEMENT}.AvailabilityZoneId",
            f"{zone_id} is not {zone} (whose id in this account is {known[zone]})",
            "give one of AvailabilityZone and AvailabilityZoneId, or make them agree",
        )
        return
    yield passed("zone", f"{PLACEMENT}.AvailabilityZone", f"{zone or zone_id} is a zone here")


def check_subnet(ctx: Context) -> Iterable[CheckResult]:
    fld = f"{LS}.SubnetId"
    spec = ctx.spec
    if not spec.SubnetId:
        yield passed("subnet", fld, "no subnet: the default VPC")
        return
    subnet = ctx.subnet()
    if subnet is None:
        yield failed(
            "subnet",
            fld,
            f"{spec.SubnetId} does not exist in {ctx.target.region}",
            "pick a subnet of this region (the launch-specification screen lists them)",
        )
        return
    placement = spec.Placement
    zone = placement.AvailabilityZone if placement else None
    zone_id = placement.AvailabilityZoneId if placement else None
    if zone and zone != subnet.zone:
        yield failed(
            "subnet",
            f"{PLACEMENT}.AvailabilityZone",
            f"{spec.SubnetId} is in {subnet.zone}, not in {zone}",
            f"set AvailabilityZone to {subnet.zone}, or leave it out",
        )
        return
    if zone_id and subnet.zone_id and zone_id != subnet.zone_id:
        yield failed(
            "subnet",
            f"{PLACEMENT}.AvailabilityZoneId",
            f"{spec.SubnetId} is in {subnet.zone_id}, not in {zone_id}",
            f"set AvailabilityZoneId to {subnet.zone_id}, or leave it out",
        )
        return
    yield passed("subnet", fld, f"{subnet.subnet_id} ({subnet.cidr}, {subnet.zone})")


def check_private_ip(ctx: Context) -> Iterable[CheckResult]:
    fld = f"{LS}.PrivateIpAddress"
    spec = ctx.spec
    if not spec.PrivateIpAddress:
        yield passed("private-ip", fld, "EC2 assigns the address")
        return
    if not spec.SubnetId:
        yield failed(
            "private-ip",
            fld,
            "a private IP address needs the subnet it belongs to",
            f"set {LS}.SubnetId, or leave the address out",
        )
        return
    subnet = ctx.subnet()
    if subnet is None or not subnet.cidr:
        yield warned("private-ip", fld, "not checked: the subnet is unknown", "fix the subnet")
        return
    address = ipaddress.IPv4Address(spec.PrivateIpAddress)
    network = ipaddress.IPv4Network(subnet.cidr)
    if address not in network:
        yield failed(
            "private-ip",
            fld,
            f"{address} is outside {subnet.subnet_id}'s range {network}",
            f"use an address inside {network}",
        )
        return
    offset = int(address) - int(network.network_address)
    if offset < facts.SUBNET_RESERVED_HEAD or address == network.broadcast_address:
        first = network.network_address + facts.SUBNET_RESERVED_HEAD
        last = network.broadcast_address - 1
        yield failed(
            "private-ip",
            fld,
            f"{address} is one of the five addresses AWS reserves in {network}",
            f"use an address from {first} to {last}",
        )
        return
    holder = ctx.account.ip_in_use(str(address), subnet.subnet_id)
    if holder is not None:
        yield failed(
            "private-ip",
            fld,
            f"{address} is in use by {holder}",
            "use a free address, or leave it out and let EC2 assign one",
        )
        return
    yield passed("private-ip", fld, f"{address} is free in {network}")


def check_security_groups(ctx: Context) -> Iterable[CheckResult]:
    spec = ctx.spec
    ids, names = spec.GroupIds or [], spec.GroupNames or []
    if not ids and not names:
        yield passed("security-groups", f"{LS}.GroupIds", "the VPC's default group")
        return
    if spec.SubnetId:
        subnet = ctx.subnet()
        if subnet is None:
            yield warned(
                "security-groups",
                f"{LS}.GroupIds",
                "not checked: the subnet is unknown",
                "fix the subnet",
            )
            return
        vpc: str | None = subnet.vpc_id
        where = f"{subnet.subnet_id}'s VPC {subnet.vpc_id}"
        default = ctx.account.default_vpc()
    else:
        default = ctx.account.default_vpc()
        vpc, where = default, f"the default VPC {default}"
    if names and vpc and vpc != default:
        yield failed(
            "security-groups",
            f"{LS}.GroupNames",
            f"EC2 takes groups by id only in a VPC other than the default ({where})",
            f"list them in {LS}.GroupIds instead",
        )
        return
    if ids:
        found = {g.group_id: g for g in ctx.account.groups_by_id(ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            yield failed(
                "security-groups",
                f"{LS}.GroupIds",
                f"{', '.join(missing)} does not exist in {ctx.target.region}",
                "pick a group of this account and region (the launch-specification screen "
                "lists them)",
            )
            return
        elsewhere = [g.group_id for g in found.values() if vpc and g.vpc_id != vpc]
        if elsewhere:
            yield failed(
                "security-groups",
                f"{LS}.GroupIds",
                f"{', '.join(elsewhere)} belongs to another VPC than {where}",
                f"use groups of {vpc}",
            )
            return
    if names:
        found_names = {g.name for g in ctx.account.groups_by_name(names, vpc)}
        missing = [n for n in names if n not in found_names]
        if missing:
            yield failed(
                "security-groups",
                f"{LS}.GroupNames",
                f"no group named {', '.join(missing)} in {where}",
                "use the name of a group there, or its id in GroupIds",
            )
            return
    yield passed("security-groups", f"{LS}.GroupIds", f"{', '.join([*ids, *names])} in {where}")


def check_architecture(ctx: Context) -> Iterable[CheckResult]:
    fld = f"{LS}.Architecture"
    arch = ctx.spec.Architecture
    if arch is None:
        yield passed("architecture", fld, "not given (EC2's default, x86_64)")
    elif arch not in facts.IMPORT_ARCHITECTURES:
        yield failed(
            "architecture",
            fld,
            f"ImportInstance imports {' and '.join(facts.IMPORT_ARCHITECTURES)} only, not {arch}",
            "set Architecture to x86_64 (or i386 for a 32-bit Windows)",
        )
    else:
        yield passed("architecture", fld, f"{arch}")


def check_instance_type(ctx: Context) -> Iterable[CheckResult]:
    fld = f"{LS}.InstanceType"
    spec = ctx.spec
    itype = spec.InstanceType
    if not itype:
        yield passed("instance-type", fld, "not given: EC2's default")
        return
    zone = spec.Placement.AvailabilityZone if spec.Placement else None
    if not zone and spec.SubnetId:
        subnet = ctx.subnet()
        zone = subnet.zone if subnet else None
    where = zone or ctx.target.region
    if not ctx.account.instance_type_offered(itype, zone):
        yield failed(
            "instance-type",
            fld,
            f"{itype} is not offered in {where}",
            "pick a type offered there (aws ec2 describe-instance-type-offerings), or another zone",
        )
        return
    arch = spec.Architecture or "x86_64"
    supported = ctx.account.instance_type_architectures(itype)
    if supported is not None and arch not in supported:
        yield failed(
            "instance-type",
            fld,
            f"{itype} runs {', '.join(supported)}, not {arch}",
            f"pick an instance type for {arch} (e.g. m5.large)",
        )
        return
    yield passed("instance-type", fld, f"{itype} is offered in {where} and runs {arch}")


def check_placement(ctx: Context) -> Iterable[CheckResult]:
    placement = ctx.spec.Placement
    if placement is None or not (placement.GroupName or placement.GroupId or placement.HostId):
        yield passed("placement", PLACEMENT, "no placement group or dedicated host")
        return
    if placement.GroupName or placement.GroupId:
        fld = f"{PLACEMENT}.{'GroupName' if placement.GroupName else 'GroupId'}"
        which = placement.GroupName or placement.GroupId
        if not ctx.account.placement_group_exists(
            name=placement.GroupName, group_id=None if placement.GroupName else placement.GroupId
        ):
            yield failed(
                "placement",
                fld,
                f"placement group {which} does not exist in {ctx.target.region}",
                "create it first (aws ec2 create-placement-group), or leave it out",
            )
            return
    if placement.HostId and not ctx.account.host_exists(placement.HostId):
        yield failed(
            "placement",
            f"{PLACEMENT}.HostId",
            f"dedicated host {placement.HostId} does not exist in {ctx.target.region}",
            "allocate it first (aws ec2 allocate-hosts), or leave HostId out",
        )
        return
    yield passed("placement", PLACEMENT, "the placement group or host exists")


def check_volume_size(ctx: Context) -> Iterable[CheckResult]:
    plan = ctx.plan
    virtual = plan.probe.virtual_bytes if plan.probe else None
    if virtual is None:
        yield passed("volume-size", "source.volume_size", f"{plan.volume_size} GiB")
    elif plan.volume_size * facts.GIB < virtual:  # plan_import refuses this first
        yield failed(
            "volume-size",
            "source.volume_size",
            f"{plan.volume_size} GiB is smaller than the image's {virtual} bytes",
            f"set volume_size to at least {-(-virtual // facts.GIB)}",
        )
    else:
        yield passed(
            "volume-size", "source.volume_size", f"{plan.volume_size} GiB holds {virtual} bytes"
        )


def check_task_slots(ctx: Context) -> Iterable[CheckResult]:
    active = sum(1 for t in ctx.account.tasks() if t.state == "active")
    free = max(0, facts.ACTIVE_TASK_LIMIT - active)
    if free == 0:
        yield warned(
            "task-slots",
            "",
            f"all {facts.ACTIVE_TASK_LIMIT} conversion-task slots are taken: the run uploads, "
            "then waits for one to finish",
            "wait for a task to end, or cancel one (`ec2-import-wizard tasks`)",
        )
    else:
        yield passed(
            "task-slots", "", f"{free} of {facts.ACTIVE_TASK_LIMIT} conversion-task slots free"
        )


def manifest_url_for(ctx: Context) -> str:
    """The manifest URL the run will send: a presigned GET of its future manifest key (nothing
    is there yet; a dry run does not fetch it), or the profile's uploaded one."""
    src = ctx.plan.profile.source
    if src.manifest_url:
        return src.manifest_url
    assert ctx.plan.image_path is not None and src.bucket is not None
    key = s3keys.manifest_key(src.key_prefix, ctx.run_id, str(ctx.plan.image_path))
    s3 = aws.client(ctx.target, "s3", aws.PREFLIGHT)
    return str(
        s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": src.bucket, "Key": key},
            ExpiresIn=src.url_expiry_days * 86400,
        )
    )


def check_import_dry_run(ctx: Context) -> Iterable[CheckResult]:
    params = ctx.plan.request(manifest_url_for(ctx)).to_params()
    answer = ctx.account.dry_run_import(params)
    if answer is None:
        raise AwsError("EC2 ran ImportInstance although DryRun was set", code="DryRunIgnored")
    code, message = answer
    if code == "DryRunOperation":
        yield passed("import-dry-run", "", "ImportInstance with DryRun=true would succeed")
    elif code in ("UnauthorizedOperation", "AccessDenied", "AuthFailure"):
        yield failed(
            "import-dry-run",
            "aws.profile",
            f"these credentials may not call ImportInstance ({code})",
            "grant the IAM action ec2:ImportInstance (and s3:GetObject on the bucket for EC2)",
        )
    elif code in UNANSWERED:
        raise AwsError(message, code=code)
    else:
        yield failed(
            "import-dry-run",
            "request",
            f"EC2 refused the request: {code}: {message}",
            "fix the field EC2 names (`ec2-import-wizard preview` shows the request)",
        )


GUEST_CHECKS = ("guest-table", "guest-boot", "guest-filesystem")


def check_guest(ctx: Context) -> Iterable[CheckResult]:
    """What is inside the image (tui/core/guest.py), each problem as its check's result."""
    from tui.core.guest import inspect, source_view

    plan = ctx.plan
    if plan.image_path is None or plan.probe is None:
        for check_id in GUEST_CHECKS:
            yield passed(check_id, "source.manifest_url", "the image is already uploaded")
        return
    # What is read: the image as it is where it can be (an OVA's disk in place in the tar),
    # else what qemu-img made of it (the pipeline checks that before the upload).
    view = source_view(plan.probe)
    if view is None and plan.upload_path is not None:
        view = (str(plan.upload_path), "VMDK", "streamOptimized", 0)
    if view is None:
        for check_id in GUEST_CHECKS:
            yield passed(check_id, "source.path", "read after the conversion, before the upload")
        return
    path, image_format, variant, offset = view
    try:
        report = inspect(path, image_format, variant, plan.probe.virtual_bytes, offset)
    except (OSError, ValueError, zlib_error()) as exc:
        yield warned(
            "guest-table",
            "source.path",
            f"could not read inside the image ({exc})",
            "check the image with `ec2-import-wizard probe IMAGE`",
        )
        return
    shown = {
        "guest-table": f"{(report.partition_table or '').upper()} partition table",
        "guest-boot": f"boots by {report.boot}" if report.boot else "boot mode unknown",
        "guest-filesystem": ", ".join(
            f"{p.number}: {p.filesystem or 'unknown'}" for p in report.partitions
        )
        or "no partitions",
    }
    for check_id in GUEST_CHECKS:
        problems = [p for p in report.problems if p.check == check_id]
        if not problems:
            yield passed(check_id, "source.path", shown[check_id])
            continue
        worst = next((p for p in problems if p.status == "fail"), problems[0])
        yield CheckResult(
            check_id,
            Status(worst.status),
            "source.path",
            "; ".join(p.message for p in problems),
            worst.fix,
        )


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


# The order results are shown in; the ids are what `--skip-check` takes.
CHECKS: dict[str, tuple[CheckFn, tuple[str, ...]]] = {
    "region": (check_region, ("region",)),
    "credentials": (check_credentials, ("credentials",)),
    "bucket": (check_bucket, ("bucket", "bucket-write")),
    "zone": (check_zone, ("zone",)),
    "subnet": (check_subnet, ("subnet",)),
    "private-ip": (check_private_ip, ("private-ip",)),
    "security-groups": (check_security_groups, ("security-groups",)),
    "architecture": (check_architecture, ("architecture",)),
    "instance-type": (check_instance_type, ("instance-type",)),
    "placement": (check_placement, ("placement",)),
    "volume-size": (check_volume_size, ("volume-size",)),
    "task-slots": (check_task_slots, ("task-slots",)),
    "import-dry-run": (check_import_dry_run, ("import-dry-run",)),
    "guest": (check_guest, GUEST_CHECKS),
}
# Checks whose answers come from the disk, not the account (tui/core/guest.py adds them).
LOCAL_CHECKS: dict[str, Callable[[Context], Iterable[CheckResult]]] = {}


def check_ids() -> tuple[str, ...]:
    ids: list[str] = []
    for _, produced in CHECKS.values():
        ids += produced
    return (*ids, *LOCAL_CHECKS)


def validate_skips(skips: Iterable[str]) -> frozenset[str]:
    known = check_ids()
    for s in skips:
        if s not in known:
            raise InputError(
                f"{s!r} is not a check id: use one of {', '.join(known)}", field="--skip-check"
            )
    return frozenset(skips)


def _unanswered(check_id: str, fld: str, exc: BaseException) -> CheckResult:
    err = aws.map_error(exc)
    code = err.code if isinstance(err, AwsError) else None
    if code in UNANSWERED or code is None:
        fix = (
            "AWS is slowing this account's requests down: wait a few minutes, then check again"
            if retry.is_throttling(err)
            else "check the network, the endpoint and the credentials, then check again"
        )
        return CheckResult(
            check_id, Status.FAIL, fld, f"AWS could not be asked: {err}", fix, unanswered=True
        )
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
        return warned(
            check_id,
            fld,
            f"not checked: these credentials may not read it ({code})",
            "grant the ec2:Describe* actions (or ignore this if you know it is right)",
        )
    return failed(check_id, fld, f"{err}", "fix the field AWS names")


def run_checks(
    plan: ImportPlan,
    target: aws.Target,
    *,
    run_id: str,
    skip: Iterable[str] = (),
    write_marker: bool = True,
    workers: int | None = None,
) -> Report:
    """Every check side by side; the results in CHECKS' order. Never raises for what a check
    finds: an AWS error becomes that check's fail."""
    skipped = frozenset(skip)
    ctx = Context(plan, target, run_id, write_marker=write_marker and "bucket-write" not in skipped)
    todo = {**{k: v[0] for k, v in CHECKS.items()}, **LOCAL_CHECKS}

    def one(check_id: str, fn: CheckFn) -> list[CheckResult]:
        try:
            return THROTTLED_POLICY.call(lambda: list(fn(ctx)))
        except Exception as exc:
            return [_unanswered(check_id, "", exc)]

    # One thread per check by default (`workers=1`: in series, the benchmark's peer).
    pool_size = workers or len(todo)
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="preflight") as pool:
        futures = {cid: pool.submit(one, cid, fn) for cid, fn in todo.items() if cid not in skipped}
        results: list[CheckResult] = []
        for cid in todo:
            if cid in skipped:
                results.append(warned(cid, "", "skipped (--skip-check)", ""))
                continue
            results += [
                r if r.id not in skipped else warned(r.id, r.field, "skipped (--skip-check)", "")
                for r in futures[cid].result()
            ]
            if cid == "bucket" and "bucket-write" in skipped:
                results.append(warned("bucket-write", "", "skipped (--skip-check)", ""))
    return Report(tuple(results))


def run_guest_checks(
    plan: ImportPlan, target: aws.Target, *, run_id: str, skip: Iterable[str] = ()
) -> Report:
    """The guest checks alone: what the pipeline runs on a converted image before its upload."""
    skipped = frozenset(skip)
    ctx = Context(plan, target, run_id, write_marker=False)
    return Report(
        tuple(
            r if r.id not in skipped else warned(r.id, r.field, "skipped (--skip-check)", "")
            for r in check_guest(ctx)
        )
    )


def plan_failure(exc: InputError) -> Report:
    """The report of a profile whose image cannot be planned (missing, not importable, a
    volume too small): one fail, in the checks' own form."""
    fld = exc.field or "source.path"
    check_id = "volume-size" if fld == "source.volume_size" else "image"
    fix = {
        "volume-size": "raise source.volume_size to the image's virtual size, or leave it out",
        "image": "fix the field named (`ec2-import-wizard probe IMAGE` says what the image is)",
    }[check_id]
    return Report((failed(check_id, fld, exc.message, fix),))
