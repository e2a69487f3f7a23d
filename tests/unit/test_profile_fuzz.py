"""Property-based: random TOML and random field values never crash the loader. Each input gives
a valid profile or one clean InputError, every time."""

from __future__ import annotations

import copy
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.profiles import BASE, LOCAL
from tui.core.errors import InputError
from tui.core.profiles import Profile, parse_profile

KNOWN_KEYS = [
    "name",
    "description",
    "aws",
    "region",
    "profile",
    "endpoint_url",
    "source",
    "path",
    "bucket",
    "key_prefix",
    "url_expiry_days",
    "volume_size",
    "format",
    "manifest_url",
    "bytes",
    "request",
    "Platform",
    "Description",
    "DryRun",
    "LaunchSpecification",
    "Architecture",
    "InstanceType",
    "GroupIds",
    "GroupNames",
    "SubnetId",
    "PrivateIpAddress",
    "Monitoring",
    "UserData",
    "Data",
    "Placement",
    "Tenancy",
    "AvailabilityZone",
    "PartitionNumber",
    "aws_secret_access_key",
]
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "Windows",
            "x86_64",
            "m1.xlarge",
            "VMDK",
            "us-east-1",
            "10.0.0.5",
            "sg-0123456789abcdef0",
            "subnet-01234567",
            "https://a.b/m.xml",
        ]
    ),
)
toml_values = st.recursive(
    scalars.filter(lambda v: v is not None),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20,
)
documents = st.dictionaries(keys, toml_values, max_size=6)


def _load(text: str) -> Profile | None:
    try:
        return parse_profile(text, "fuzz.toml")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml: ") and "\n" not in message.strip()
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_toml_documents(doc):
    _load(tomli_w.dumps(doc))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text):
    _load(text)


FIELD_PATHS = [
    "name",
    "description",
    "aws",
    "aws.region",
    "aws.profile",
    "aws.endpoint_url",
    "source",
    "source.path",
    "source.bucket",
    "source.key_prefix",
    "source.url_expiry_days",
    "source.volume_size",
    "source.format",
    "source.manifest_url",
    "source.bytes",
    "request",
    "request.Platform",
    "request.Description",
    "request.DryRun",
    "request.LaunchSpecification",
    *(
        f"request.LaunchSpecification.{k}"
        for k in (
            "Architecture",
            "GroupNames",
            "GroupIds",
            "AdditionalInfo",
            "UserData",
            "InstanceType",
            "Placement",
            "Monitoring",
            "SubnetId",
            "InstanceInitiatedShutdownBehavior",
            "PrivateIpAddress",
        )
    ),
    *(
        f"request.LaunchSpecification.Placement.{k}"
        for k in (
            "AvailabilityZoneId",
            "Affinity",
            "GroupName",
            "PartitionNumber",
            "HostId",
            "Tenancy",
            "SpreadDomain",
            "HostResourceGroupArn",
            "GroupId",
            "AvailabilityZone",
        )
    ),
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([BASE, LOCAL]), st.sampled_from(FIELD_PATHS), toml_values)
def test_random_value_in_any_field(base, path, value):
    data: dict[str, Any] = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for p in parents:
        child = node.get(p)
        if not isinstance(child, dict):
            child = node[p] = {}
        node = child
    node[last] = value
    profile = _load(tomli_w.dumps(data))
    if profile is not None:  # whatever loads also saves and loads back the same
        assert parse_profile(profile.to_toml(), "again") == profile
