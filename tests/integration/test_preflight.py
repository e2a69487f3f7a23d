"""The preflight end to end against the sandbox: a profile broken in one way is refused by
`check` and by `run` with exit 2, a message naming the field and the fix, nothing written to the
bucket and no conversion task made; warnings are told and do not stop; a dead endpoint is exit 3.

Most cases run the CLI in-process (`tui.cli.main`), which keeps each case near a second; the
ones about credentials run it in a subprocess, whose environment is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers.aws import REGION, client, spawn_sandbox
from tests.helpers.cli import cli, cli_env
from tests.helpers.disks import make_guest_raw, qemu_convert
from tui.cli import main

ZONE = "us-east-1a"
LS = "request.LaunchSpecification"


@pytest.fixture(scope="module")
def world(sandbox: str, ec2: Any) -> dict[str, str]:
    """What the broken profiles point at: the default VPC's subnets, another VPC with a subnet
    and a group, an address in use, a placement group."""
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = {
        s["AvailabilityZone"]: s
        for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}]
        )["Subnets"]
    }
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(
        VpcId=other_vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=ZONE
    )
    other_group = ec2.create_security_group(
        GroupName="preflight-other", Description="another VPC's", VpcId=other_vpc
    )["GroupId"]
    subnet_a = subnets[ZONE]
    eni = ec2.create_network_interface(
        SubnetId=subnet_a["SubnetId"], PrivateIpAddress="172.31.0.20"
    )
    ec2.create_placement_group(GroupName="preflight-pg", Strategy="spread")
    default_group = ec2.describe_security_groups(
        Filters=[
            {"Name": "group-name", "Values": ["default"]},
            {"Name": "vpc-id", "Values": [default_vpc["VpcId"]]},
        ]
    )["SecurityGroups"][0]["GroupId"]
    return {
        "subnet_a": subnet_a["SubnetId"],
        "cidr_a": subnet_a["CidrBlock"],
        "subnet_b": subnets["us-east-1b"]["SubnetId"],
        "other_subnet": other_subnet["Subnet"]["SubnetId"],
        "other_group": other_group,
        "default_group": default_group,
        "eni": eni["NetworkInterface"]["NetworkInterfaceId"],
    }


def profile_data(image: Path, bucket: str, **launch: Any) -> dict[str, Any]:
    return {
        "name": "preflight",
        "aws": {"region": REGION},
        "source": {"path": str(image), "bucket": bucket, "key_prefix": "imports"},
        "request": {
            "Platform": "Windows",
            "LaunchSpecification": {
                "Architecture": "x86_64",
                "InstanceType": "m5.large",
                "Placement": {"AvailabilityZone": ZONE},
                **launch,
            },
        },
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "preflight.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def task_count(ec2: Any) -> int:
    return len(ec2.describe_conversion_tasks()["ConversionTasks"])


def objects(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


Edit = Callable[[dict[str, Any], dict[str, str]], None]


def launch(**values: Any) -> Edit:
    def edit(data: dict[str, Any], world: dict[str, str]) -> None:
        spec = data["request"]["LaunchSpecification"]
        for key, value in values.items():
            value = value.format(**world) if isinstance(value, str) else value
            if isinstance(value, list):
                value = [v.format(**world) for v in value]
            if key == "Placement":
                spec["Placement"] = {k: v.format(**world) for k, v in value.items()}
            else:
                spec[key] = value

    return edit


def source(**values: Any) -> Edit:
    def edit(data: dict[str, Any], world: dict[str, str]) -> None:
        data["source"].update(values)

    return edit


def aws_table(**values: Any) -> Edit:
    def edit(data: dict[str, Any], world: dict[str, str]) -> None:
        data["aws"].update(values)

    return edit


# (case, edit, check id that fails, field named, words of the fix)
BROKEN: list[tuple[str, Edit, str, str, str]] = [
    ("region", aws_table(region="eu-north-1"), "region", "aws.region", "use one of"),
    (
        "bucket-missing",
        source(bucket="preflight-no-such-bucket"),
        "bucket",
        "source.bucket",
        "create it in us-east-1",
    ),
    (
        "bucket-elsewhere",
        source(bucket="{euro_bucket}"),
        "bucket",
        "source.bucket",
        "use a bucket in us-east-1",
    ),
    (
        "zone-unknown",
        launch(Placement={"AvailabilityZone": "us-east-1z"}),
        "zone",
        f"{LS}.Placement.AvailabilityZone",
        "use one of us-east-1a",
    ),
    (
        "zone-id-disagrees",
        launch(Placement={"AvailabilityZone": ZONE, "AvailabilityZoneId": "use1-az1"}),
        "zone",
        f"{LS}.Placement.AvailabilityZoneId",
        "make them agree",
    ),
    (
        "subnet-missing",
        launch(SubnetId="subnet-0123abcd"),
        "subnet",
        f"{LS}.SubnetId",
        "pick a subnet of this region",
    ),
    (
        "subnet-other-zone",
        launch(SubnetId="{subnet_b}"),
        "subnet",
        f"{LS}.Placement.AvailabilityZone",
        "set AvailabilityZone to us-east-1b",
    ),
    (
        "ip-outside",
        launch(SubnetId="{subnet_a}", PrivateIpAddress="10.200.0.5"),
        "private-ip",
        f"{LS}.PrivateIpAddress",
        "use an address inside",
    ),
    (
        "ip-reserved",
        launch(SubnetId="{subnet_a}", PrivateIpAddress="172.31.0.3"),
        "private-ip",
        f"{LS}.PrivateIpAddress",
        "use an address from 172.31.0.4",
    ),
    (
        "ip-broadcast",
        launch(SubnetId="{subnet_a}", PrivateIpAddress="172.31.15.255"),
        "private-ip",
        f"{LS}.PrivateIpAddress",
        "use an address from",
    ),
    (
        "ip-in-use",
        launch(SubnetId="{subnet_a}", PrivateIpAddress="172.31.0.20"),
        "private-ip",
        f"{LS}.PrivateIpAddress",
        "use a free address",
    ),
    (
        "ip-without-subnet",
        launch(PrivateIpAddress="172.31.0.30"),
        "private-ip",
        f"{LS}.PrivateIpAddress",
        "set request.LaunchSpecification.SubnetId",
    ),
    (
        "group-missing",
        launch(GroupIds=["sg-0123abcd"]),
        "security-groups",
        f"{LS}.GroupIds",
        "pick a group of this account",
    ),
    (
        "group-other-vpc",
        launch(SubnetId="{subnet_a}", GroupIds=["{other_group}"]),
        "security-groups",
        f"{LS}.GroupIds",
        "use groups of vpc-",
    ),
    (
        "group-name-missing",
        launch(GroupNames=["no-such-group"]),
        "security-groups",
        f"{LS}.GroupNames",
        "use the name of a group",
    ),
    (
        "group-names-in-vpc",
        launch(SubnetId="{other_subnet}", GroupNames=["preflight-other"]),
        "security-groups",
        f"{LS}.GroupNames",
        "list them in request.LaunchSpecification.GroupIds",
    ),
    (
        "architecture-arm64",
        launch(Architecture="arm64"),
        "architecture",
        f"{LS}.Architecture",
        "set Architecture to x86_64",
    ),
    (
        "type-not-in-zone",
        launch(InstanceType="mac1.metal"),
        "instance-type",
        f"{LS}.InstanceType",
        "pick a type offered there",
    ),
    (
        "type-wrong-arch",
        launch(InstanceType="a1.large"),
        "instance-type",
        f"{LS}.InstanceType",
        "pick an instance type for x86_64",
    ),
    (
        "placement-group-missing",
        launch(Placement={"AvailabilityZone": ZONE, "GroupName": "no-such-pg"}),
        "placement",
        f"{LS}.Placement.GroupName",
        "create it first",
    ),
    (
        "host-missing",
        launch(Placement={"AvailabilityZone": ZONE, "HostId": "h-0123456789abcdef0"}),
        "placement",
        f"{LS}.Placement.HostId",
        "allocate it first",
    ),
    (
        "guest-no-table",
        source(path="{no_table_image}"),
        "guest-table",
        "source.path",
        "import the whole disk",
    ),
    (
        "guest-bitlocker",
        source(path="{bitlocker_image}"),
        "guest-filesystem",
        "source.path",
        "manage-bde -off",
    ),
    (
        "volume-too-small",
        source(volume_size=1, path="{big_image}"),
        "volume-size",
        "source.volume_size",
        "raise source.volume_size",
    ),
]


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory, qemu_img: str) -> Path:
    """A 2 GiB virtual disk in a few KiB (a dynamic VHD)."""
    path = tmp_path_factory.mktemp("big") / "big.vhd"
    subprocess.run([qemu_img, "create", "-q", "-f", "vpc", str(path), "2G"], check=True)
    return path


@pytest.fixture(scope="module")
def guest_images(qemu_img: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stream-optimized VMDKs of a disk without a partition table, of a bootable NTFS one and
    of one whose volume is BitLocker's."""
    root = tmp_path_factory.mktemp("guests")
    return {
        kind: qemu_convert(
            make_guest_raw(root / f"{kind}.raw", kind),
            root / f"{kind}.vmdk",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        )
        for kind in ("none", "mbr-active", "bitlocker")
    }


@pytest.fixture(scope="module")
def euro_bucket(s3: Any) -> str:
    name = "preflight-euro-bucket"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


@pytest.mark.parametrize(
    ("case", "edit", "check_id", "field", "fix"), BROKEN, ids=[c[0] for c in BROKEN]
)
def test_broken_profile_is_refused_by_check_and_run(
    case,
    edit,
    check_id,
    field,
    fix,
    world,
    big_image,
    euro_bucket,
    guest_images,
    disk_images,
    sandbox,
    sandbox_bucket,
    s3,
    ec2,
    cli_home,
    tmp_path,
    capsys,
):
    started = time.monotonic()
    names = {
        **world,
        "big_image": str(big_image),
        "euro_bucket": euro_bucket,
        "no_table_image": str(guest_images["none"]),
        "bitlocker_image": str(guest_images["bitlocker"]),
    }
    data = profile_data(disk_images["vmdk_stream"], sandbox_bucket)
    edit(data, names)
    if "path" in data["source"]:
        data["source"]["path"] = data["source"]["path"].format(**names)
    data["source"]["bucket"] = data["source"]["bucket"].format(**names)
    profile = str(write(tmp_path, data))
    tasks_before = task_count(ec2)

    code, out, err = in_process(capsys, "--endpoint-url", sandbox, "check", profile, "--json")
    assert code == 2, (out, err)
    report = json.loads(out)
    assert report["ok"] is False
    fails = [c for c in report["checks"] if c["status"] == "fail"]
    mine = next((c for c in fails if c["id"] == check_id), None)
    assert mine is not None, fails
    assert mine["field"] == field and fix in mine["fix"], mine
    assert set(mine) == {"id", "status", "field", "message", "fix"}

    text_code, text, _ = in_process(capsys, "--endpoint-url", sandbox, "check", profile)
    assert text_code == 2 and f"fail {check_id}" in text and fix in text

    code, out, err = in_process(capsys, "--endpoint-url", sandbox, "run", profile, "--json")
    assert code == 2, (out, err)
    said = out + err
    assert field in said and (fix in said or case == "volume-too-small"), said
    assert "upload" not in [json.loads(line)["event"] for line in out.splitlines() if line]

    assert objects(s3, sandbox_bucket) == []
    assert task_count(ec2) == tasks_before
    assert list((cli_home / "runs").glob("*")) == []  # no record, and no lock file left
    assert time.monotonic() - started < 10


def test_valid_profile_passes_and_leaves_the_bucket_empty(
    guest_images, world, sandbox, sandbox_bucket, s3, ec2, cli_home, tmp_path, capsys
):
    data = profile_data(
        guest_images["mbr-active"],
        sandbox_bucket,
        SubnetId=world["subnet_a"],
        PrivateIpAddress="172.31.0.40",
        GroupIds=[world["default_group"]],
        Placement={"AvailabilityZone": ZONE, "GroupName": "preflight-pg"},
    )
    tasks_before = task_count(ec2)
    code, out, err = in_process(
        capsys, "--endpoint-url", sandbox, "check", str(write(tmp_path, data)), "--json"
    )
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["ok"] is True
    assert {c["status"] for c in report["checks"]} == {"pass"}
    ids = [c["id"] for c in report["checks"]]
    for expected in (
        "region",
        "credentials",
        "bucket",
        "bucket-write",
        "subnet",
        "private-ip",
        "security-groups",
        "instance-type",
        "architecture",
        "placement",
        "volume-size",
        "task-slots",
        "import-dry-run",
        "guest-table",
        "guest-boot",
        "guest-filesystem",
    ):
        assert expected in ids
    assert objects(s3, sandbox_bucket) == []  # the marker was deleted
    assert task_count(ec2) == tasks_before


def test_skip_check_lets_a_run_past_a_failing_check(
    disk_images, sandbox, sandbox_bucket, cli_home, tmp_path, capsys
):
    data = profile_data(disk_images["vmdk_stream"], sandbox_bucket, InstanceType="mac1.metal")
    profile = str(write(tmp_path, data))
    code, out, _ = in_process(
        capsys,
        "--endpoint-url",
        sandbox,
        "check",
        profile,
        "--json",
        "--skip-check",
        "instance-type",
    )
    assert code == 0
    skipped = next(c for c in json.loads(out)["checks"] if c["id"] == "instance-type")
    assert skipped["status"] == "warn" and "skipped" in skipped["message"]
    code, _, err = in_process(
        capsys, "--endpoint-url", sandbox, "check", profile, "--skip-check", "nope"
    )
    assert code == 2 and "--skip-check" in err and "instance-type" in err


def test_dead_endpoint_is_exit_3(disk_images, dead_endpoint, cli_home, tmp_path, capsys):
    profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], "preflight-bucket")))
    code, out, _ = in_process(capsys, "--endpoint-url", dead_endpoint, "check", profile, "--json")
    assert code == 3
    report = json.loads(out)
    assert report["ok"] is False
    assert any("could not be asked" in c["message"] for c in report["checks"])
    code, _, _ = in_process(capsys, "--endpoint-url", dead_endpoint, "run", profile, "--json")
    assert code == 3


# -- a sandbox of their own: full task slots, and credentials that may not import ------------


@pytest.fixture(scope="module")
def denying_sandbox() -> Iterator[str]:
    sb = spawn_sandbox(env={"EC2_IMPORT_WIZARD_SANDBOX_DENY": "ec2:ImportInstance"})
    try:
        yield sb.endpoint
    finally:
        sb.stop()


def test_import_not_allowed_names_the_iam_action(
    disk_images, denying_sandbox, cli_home, tmp_path, capsys
):
    s3 = client(denying_sandbox, "s3")
    s3.create_bucket(Bucket="preflight-deny")
    profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], "preflight-deny")))
    code, out, _ = in_process(capsys, "--endpoint-url", denying_sandbox, "check", profile, "--json")
    assert code == 2
    dry = next(c for c in json.loads(out)["checks"] if c["id"] == "import-dry-run")
    assert dry["status"] == "fail" and "ec2:ImportInstance" in dry["fix"]
    code, out, _ = in_process(capsys, "--endpoint-url", denying_sandbox, "run", profile, "--json")
    assert code == 2 and "ec2:ImportInstance" in out
    assert objects(s3, "preflight-deny") == []


def test_full_task_slots_warn_and_do_not_stop(
    disk_images, denying_sandbox, cli_home, tmp_path, capsys
):
    ec2 = client(denying_sandbox, "ec2")
    s3 = client(denying_sandbox, "s3")
    s3.create_bucket(Bucket="preflight-slots")
    for _ in range(5):  # no manifest there: each stays active (Pending), as on AWS
        ec2.import_volume(
            AvailabilityZone=ZONE,
            Image={
                "Format": "RAW",
                "Bytes": 1024,
                "ImportManifestUrl": "https://127.0.0.1/none.xml",
            },
            Volume={"Size": 1},
        )
    profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], "preflight-slots")))
    code, out, _ = in_process(
        capsys,
        "--endpoint-url",
        denying_sandbox,
        "check",
        profile,
        "--json",
        "--skip-check",
        "import-dry-run",
    )
    assert code == 0
    slots = next(c for c in json.loads(out)["checks"] if c["id"] == "task-slots")
    assert slots["status"] == "warn" and "waits for one to finish" in slots["message"]
    assert "cancel one" in slots["fix"]


# -- credentials, in a subprocess of their own environment --------------------------------------


def test_temporary_credentials_without_expiry_warn(disk_images, sandbox, sandbox_bucket, tmp_path):
    env = cli_env(tmp_path / "home", tmp_path)
    env["AWS_SESSION_TOKEN"] = "preflight-session-token"
    profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], sandbox_bucket)))
    result = cli(env, "--endpoint-url", sandbox, "check", profile, "--json")
    assert result.returncode == 0, result.stderr
    creds = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "credentials")
    assert creds["status"] == "warn" and "long-term credentials" in creds["fix"]


def test_credentials_that_expire_before_the_conversion_fail(
    disk_images, sandbox, sandbox_bucket, s3, tmp_path
):
    expires = (datetime.now(UTC) + timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = tmp_path / "creds.json"
    issued.write_text(
        json.dumps(
            {
                "Version": 1,
                "AccessKeyId": "ASIAPREFLIGHT0000000",
                "SecretAccessKey": "preflight-secret",
                "SessionToken": "preflight-token",
                "Expiration": expires,
            }
        )
    )
    env = cli_env(tmp_path / "home", tmp_path)
    (tmp_path / "no-aws-config").write_text(
        f"[profile short]\ncredential_process = {sys.executable} -c "
        f"\"print(open('{issued}').read())\"\n"
    )
    data = profile_data(disk_images["vmdk_stream"], sandbox_bucket)
    data["aws"]["profile"] = "short"
    profile = str(write(tmp_path, data))
    result = cli(env, "--endpoint-url", sandbox, "check", profile, "--json")
    assert result.returncode == 2, result.stderr
    creds = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "credentials")
    assert creds["status"] == "fail" and creds["field"] == "aws.profile"
    assert "expire in" in creds["message"] and "long-term credentials" in creds["fix"]
    result = cli(env, "--endpoint-url", sandbox, "run", profile, "--json")
    assert result.returncode == 2 and "aws.profile" in result.stdout
    assert objects(s3, sandbox_bucket) == []


def test_resume_with_nothing_uploaded_runs_the_checks(
    disk_images, sandbox, sandbox_bucket, s3, ec2, cli_home, tmp_path, capsys
):
    """A run recorded before its first part (e.g. interrupted while checking its bucket) is
    checked again by `resume`; a recorded run with parts in S3 is not (nothing to protect)."""
    from tests.helpers.records import make_record
    from tui.core.journal import Journal, RunState

    image = disk_images["vmdk_stream"]
    data = profile_data(image, sandbox_bucket, InstanceType="mac1.metal")
    record = make_record(
        "resumed",
        profile=data,
        image_path=str(image),
        image_bytes=image.stat().st_size,
        image_format="VMDK",
        volume_size=1,
        bucket=sandbox_bucket,
        endpoint_url=sandbox,
        state=RunState.INTERRUPTED,
        interrupted_in=RunState.PLANNED,
    )
    Journal().save(record)
    tasks_before = task_count(ec2)
    code, out, err = in_process(capsys, "resume", record.run_id, "--json")
    assert code == 2, (out, err)
    assert f"{LS}.InstanceType" in out and "pick a type offered there" in out
    assert objects(s3, sandbox_bucket) == []
    assert task_count(ec2) == tasks_before


# The preflight's four EC2 checks each try botocore's 5 times at once: a burst of 20 throttled
# calls fails every one of them on a first round, whatever order they arrive in.
EC2_CHECKS_FIRST_ROUND = 4 * 5


def test_a_throttling_burst_is_waited_out(disk_images, cli_home, tmp_path, capsys):
    sb = spawn_sandbox("--faults", f"throttle-first={EC2_CHECKS_FIRST_ROUND}")
    try:
        client(sb.endpoint, "s3").create_bucket(Bucket="preflight-burst")
        profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], "preflight-burst")))
        code, out, _ = in_process(capsys, "--endpoint-url", sb.endpoint, "check", profile, "--json")
    finally:
        sb.stop()
    report = json.loads(out)
    assert [c for c in report["checks"] if c["status"] == "fail"] == []
    assert code == 0 and report["ok"] is True


@pytest.mark.parametrize(
    ("denied", "status", "fix", "left"),
    [
        ("s3:PutObject", "fail", "grant s3:PutObject", 0),
        ("s3:DeleteObject", "warn", "grant s3:DeleteObject", 1),  # the marker stays: it says so
    ],
)
def test_a_bucket_we_cannot_write_or_clean_is_told(
    denied, status, fix, left, disk_images, cli_home, tmp_path, capsys
):
    sb = spawn_sandbox(env={"EC2_IMPORT_WIZARD_SANDBOX_DENY": denied})
    try:
        s3 = client(sb.endpoint, "s3")
        s3.create_bucket(Bucket="preflight-write")
        profile = str(write(tmp_path, profile_data(disk_images["vmdk_stream"], "preflight-write")))
        code, out, _ = in_process(capsys, "--endpoint-url", sb.endpoint, "check", profile, "--json")
        markers = objects(s3, "preflight-write")
    finally:
        sb.stop()
    check = next(c for c in json.loads(out)["checks"] if c["id"] == "bucket-write")
    assert check["status"] == status and fix in check["fix"], check
    assert check["field"] == "source.key_prefix"
    assert code == (2 if status == "fail" else 0)
    assert len(markers) == left
    if left:
        assert markers[0] in check["message"]  # names the object it could not delete
