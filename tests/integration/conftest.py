"""Fixtures for the integration tests: the sandbox as a user runs it (`ec2-import-wizard
sandbox` in a subprocess) and plain-boto3 clients for it, so these tests see what any AWS client
would. The helpers they build on live in tests/helpers/aws.py."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.aws import client, spawn_sandbox

FAST_RATE = 64 * 1024 * 1024  # bytes/s: a 4 MiB test image converts in well under a second


@pytest.fixture(scope="session")
def sandbox() -> Iterator[str]:
    """The endpoint URL of a session-wide sandbox converting at a fast rate."""
    sb = spawn_sandbox("--rate", str(FAST_RATE))
    try:
        yield sb.endpoint
    finally:
        sb.stop()


@pytest.fixture(scope="session")
def slow_sandbox() -> Iterator[str]:
    """A sandbox at 4 MiB/s, slow enough to watch a 4 MiB image go through every phase."""
    sb = spawn_sandbox("--rate", str(4 * 1024 * 1024))
    try:
        yield sb.endpoint
    finally:
        sb.stop()


@pytest.fixture(scope="session")
def ec2(sandbox: str) -> Any:
    return client(sandbox, "ec2")


@pytest.fixture(scope="session")
def s3(sandbox: str) -> Any:
    return client(sandbox, "s3")


@pytest.fixture
def sandbox_bucket(s3: Any) -> str:
    name = f"sbx-{random.randrange(16**8):08x}"
    s3.create_bucket(Bucket=name)
    return name
