"""The profile case tables: BASE, a valid profile with a presigned manifest URL; LOCAL, the same
with a local image and a bucket; `edit` to derive one from another; and CASES, every validation
rule with the field path and the words its message must name (tests/unit/test_profiles.py checks
them on the loader, tests/integration/test_bad_input_corpus.py through `run`)."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "name": "base",
    "aws": {"region": "us-east-1"},
    "source": {
        "manifest_url": "https://s3.amazonaws.com/b/k/disk.vmdkmanifest.xml?X-Amz-Signature=abc",
        "format": "VMDK",
        "bytes": 1179593728,
        "volume_size": 12,
    },
    "request": {
        "Platform": "Windows",
        "LaunchSpecification": {"Architecture": "x86_64", "InstanceType": "m1.xlarge"},
    },
}


def edit(path: str, value: Any = ..., base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of BASE with `path` (dotted) set to value, or deleted when value is ..."""
    data = copy.deepcopy(base or BASE)
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return data


LOCAL = edit("source", {"path": "disk.vmdk", "bucket": "my-bucket"})

# (profile data or raw text, field path expected in the message, words expected in the reason)
CASES: list[tuple[str, Any, str, str]] = [
    ("invalid-toml", 'name = "x"\n[source\n', "", "not valid TOML"),
    ("wrong-type-size", edit("source.volume_size", "12"), "source.volume_size", "valid integer"),
    (
        "wrong-type-monitoring",
        edit("request.LaunchSpecification.Monitoring", "yes"),
        "request.LaunchSpecification.Monitoring",
        "valid boolean",
    ),
    (
        "unknown-key-typo",
        edit("request.LaunchSpecification.InstanceTyp", "m1.large"),
        "request.LaunchSpecification.InstanceTyp",
        "did you mean 'InstanceType'",
    ),
    ("unknown-top-key", edit("sorce", {}), "sorce", "did you mean 'source'"),
    (
        "unknown-placement-key",
        edit("request.LaunchSpecification.Placement", {"Zone": "a"}),
        "request.LaunchSpecification.Placement.Zone",
        "unknown key",
    ),
    ("disk-images-in-request", edit("request.DiskImages", []), "request.DiskImages", "unknown key"),
    ("missing-platform", edit("request.Platform"), "request.Platform", "required"),
    ("missing-source", edit("source"), "source", "required"),
    ("missing-name", edit("name"), "name", "required"),
    (
        "expiry-too-long",
        edit("source.url_expiry_days", 8, LOCAL),
        "source.url_expiry_days",
        "less than or equal to 7",
    ),
    (
        "expiry-zero",
        edit("source.url_expiry_days", 0, LOCAL),
        "source.url_expiry_days",
        "greater than or equal to 1",
    ),
    (
        "volume-zero",
        edit("source.volume_size", 0),
        "source.volume_size",
        "greater than or equal to 1",
    ),
    ("bytes-zero", edit("source.bytes", 0), "source.bytes", "greater than or equal to 1"),
    (
        "both-sources",
        edit("source.path", "disk.vmdk", edit("source.bucket", "my-bucket")),
        "source",
        "exactly one",
    ),
    ("neither-source", edit("source", {"bucket": "my-bucket"}), "source", "exactly one"),
    ("path-without-bucket", edit("source", {"path": "d.vmdk"}), "source", "`bucket` is required"),
    ("bytes-with-path", edit("source.bytes", 5, LOCAL), "source", "`bytes` is measured"),
    ("manifest-without-bytes", edit("source.bytes"), "source", "also needs bytes"),
    (
        "manifest-http",
        edit("source.manifest_url", "http://example.com/m.xml"),
        "source.manifest_url",
        "not an https URL",
    ),
    (
        "manifest-ftp",
        edit("source.manifest_url", "ftp://127.0.0.1/m.xml"),
        "source.manifest_url",
        "not an https URL",
    ),
    (
        "credentials",
        edit("aws.aws_secret_access_key", "abc"),
        "aws.aws_secret_access_key",
        "credentials never go in a profile",
    ),
    (
        "credentials-nested",
        edit("source.session_token", "abc"),
        "source.session_token",
        "credentials never go",
    ),
    (
        "platform-linux",
        edit("request.Platform", "Linux"),
        "request.Platform",
        "not a valid Platform (valid: Windows)",
    ),
    (
        "instance-type-typo",
        edit("request.LaunchSpecification.InstanceType", "m1.xlargee"),
        "request.LaunchSpecification.InstanceType",
        "did you mean 'm1.xlarge'",
    ),
    (
        "architecture",
        edit("request.LaunchSpecification.Architecture", "amd64"),
        "request.LaunchSpecification.Architecture",
        "not a valid Architecture",
    ),
    (
        "tenancy",
        edit("request.LaunchSpecification.Placement", {"Tenancy": "shared"}),
        "request.LaunchSpecification.Placement.Tenancy",
        "not a valid Tenancy",
    ),
    (
        "shutdown",
        edit("request.LaunchSpecification.InstanceInitiatedShutdownBehavior", "halt"),
        "request.LaunchSpecification.InstanceInitiatedShutdownBehavior",
        "not a valid shutdown behavior",
    ),
    (
        "private-ip",
        edit("request.LaunchSpecification.PrivateIpAddress", "10.0.0.256"),
        "request.LaunchSpecification.PrivateIpAddress",
        "not an IPv4 address",
    ),
    (
        "private-ip-v6",
        edit("request.LaunchSpecification.PrivateIpAddress", "fe80::1"),
        "request.LaunchSpecification.PrivateIpAddress",
        "not an IPv4 address",
    ),
    (
        "group-id",
        edit("request.LaunchSpecification.GroupIds", ["sg-12"]),
        "request.LaunchSpecification.GroupIds",
        "not a security group id",
    ),
    (
        "subnet-id",
        edit("request.LaunchSpecification.SubnetId", "sub-0123abcd"),
        "request.LaunchSpecification.SubnetId",
        "not a subnet id",
    ),
    (
        "placement-group-id",
        edit("request.LaunchSpecification.Placement", {"GroupId": "sg-01234567"}),
        "request.LaunchSpecification.Placement.GroupId",
        "not a placement group id",
    ),
    (
        "partition-zero",
        edit("request.LaunchSpecification.Placement", {"PartitionNumber": 0}),
        "request.LaunchSpecification.Placement.PartitionNumber",
        "greater than or equal to 1",
    ),
    (
        "empty-group-name",
        edit("request.LaunchSpecification.GroupNames", [""]),
        "request.LaunchSpecification.GroupNames.0",
        "at least 1 character",
    ),
    (
        "user-data-string",
        edit("request.LaunchSpecification.UserData", "echo hi"),
        "request.LaunchSpecification.UserData",
        "valid dictionary",
    ),
    (
        "bucket-name",
        edit("source.bucket", "My_Bucket", LOCAL),
        "source.bucket",
        "not an S3 bucket name",
    ),
    ("key-prefix", edit("source.key_prefix", "/abs", LOCAL), "source.key_prefix", "no leading '/'"),
    *(
        (f"key-prefix-{name}", edit("source.key_prefix", prefix, LOCAL), "source.key_prefix", why)
        for name, prefix, why in (
            ("dotdot", "../../etc", "a '..' folder, which a URL resolves to another folder"),
            ("dot", ".", "a '.' folder"),
            ("dot-inside", "imports/./x", "a '.' folder"),
            ("empty-folder", "a//b", "empty folder ('//'): use a single '/'"),
            ("query", "a?b#c&X-Amz-Signature=1", "'?' (U+003F), not one of S3's safe key"),
            ("space", "my imports", "' ' (U+0020), not one of S3's safe key characters: use"),
            ("non-ascii", "importé", "(U+00E9), not one of S3's safe key characters"),
        )
    ),
    *(
        (f"bucket-{name}", edit("source.bucket", bucket, LOCAL), "source.bucket", why)
        for name, bucket, why in (
            ("ip", "192.168.1.1", "not an S3 bucket name: it must not be formatted as an IP"),
            ("short", "ab", "it has 2 characters, S3 takes 3 to 63"),
            ("long", "a" * 64, "it has 64 characters, S3 takes 3 to 63"),
            ("edge", "-imports-", "must begin and end with a lowercase letter or a digit"),
            ("dots", "my..imports", "must not have two dots in a row"),
            ("underscore", "my_imports", "'_' is not allowed (lowercase letters, digits"),
            ("xn", "xn--imports", "names beginning with 'xn--' are reserved"),
            ("sthree", "sthree-imports", "names beginning with 'sthree-' are reserved"),
            ("demo", "amzn-s3-demo-imports", "names beginning with 'amzn-s3-demo-' are reserved"),
            ("s3alias", "imports-s3alias", "names ending with '-s3alias' are reserved"),
            ("ol-s3", "imports--ol-s3", "names ending with '--ol-s3' are reserved"),
            ("mrap", "imports.mrap", "names ending with '.mrap' are reserved"),
            ("x-s3", "imports--x-s3", "names ending with '--x-s3' are reserved"),
        )
    ),
    *(
        (f"path-{name}", edit("source.path", path, LOCAL), "source.path", why)
        for name, path, why in (
            ("newline", "disk\n.vmdk", "a control character (U+000A) in its name: rename the file"),
            ("tab", "disk\t.vmdk", "a control character (U+0009) in its name: rename the file"),
            ("del", "disk\x7f.vmdk", "a control character (U+007F) in its name: rename the file"),
            ("c1", "disk\x85.vmdk", "a control character (U+0085) in its name: rename the file"),
            ("folder", "in\x1b/disk.vmdk", "a control character (U+001B)"),
        )
    ),
    ("region", edit("aws.region", "useast1"), "aws.region", "not an AWS region name"),
    (
        "endpoint",
        edit("aws.endpoint_url", "localhost:5000"),
        "aws.endpoint_url",
        "not an endpoint URL",
    ),
    (
        "endpoint-cleartext",
        edit("aws.endpoint_url", "http://example.com"),
        "aws.endpoint_url",
        "cleartext: use https://, or http:// only to a loopback address",
    ),
    (
        "endpoint-userinfo",
        edit("aws.endpoint_url", "http://user:pw@127.0.0.1:5000"),
        "aws.endpoint_url",
        "no user name or password",
    ),
    (
        "endpoint-path-query",
        edit("aws.endpoint_url", "https://example.com/api?x=1"),
        "aws.endpoint_url",
        "not an endpoint URL: use https://",
    ),
    (
        "manifest-userinfo",
        edit("source.manifest_url", "https://u:p@s3.amazonaws.com/b/m.xml"),
        "source.manifest_url",
        "no user name or password",
    ),
    # tomllib recurses on brackets (RecursionError) and is quadratic in a dotted key's length.
    ("nested-arrays", 'name = "x"\nx = ' + "[" * 5000 + "]" * 5000, "", "deeper than 32 levels"),
    ("nested-inline", "x = " + "{a = " * 2000 + "1" + "}" * 2000, "", "deeper than 32 levels"),
    ("nested-dotted-key", "a" + ".a" * 3000 + " = 1", "", "deeper than 32 levels"),
    ("nested-tables", "[" + ".".join(["t"] * 40) + "]", "", "deeper than 32 levels"),
    ("name", edit("name", "my profile!"), "name", "not a profile name"),
    ("format", edit("source.format", "VHDX"), "source.format", "not a valid disk image format"),
    (
        "description-empty",
        edit("request.Description", ""),
        "request.Description",
        "at least 1 character",
    ),
]
