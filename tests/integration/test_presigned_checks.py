"""The check of the manifest's presigned GET URL says what went wrong in words: a GET that
returns other bytes than were written is named as such (it used to read "answered HTTP 0")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.aws import make_s3_client
from tests.helpers.proxy import FaultyProxy
from tui.core.errors import AwsError
from tui.core.upload import UploadOptions, upload_image


def test_a_manifest_read_back_wrong_is_named(
    s3_endpoint: str, bucket: str, disk_images: dict[str, Path]
) -> None:
    def fault(method: str, path: str, n: int) -> Any:
        if method == "GET" and path.endswith("manifest.xml"):
            return 200, {"Content-Type": "application/xml"}, b"<manifest>not ours</manifest>"
        return None

    proxy = FaultyProxy(s3_endpoint, fault)
    try:
        s3 = make_s3_client(proxy.url)
        with pytest.raises(AwsError) as info:
            upload_image(s3, disk_images["raw"], bucket, "", "run", file_format="RAW",
                         volume_size=1, options=UploadOptions(part_size=1 << 20))  # fmt: skip
    finally:
        proxy.close()
    assert info.value.code == "PresignedUrlCheck"
    assert "returned other bytes than were written" in info.value.message
    assert "HTTP 0" not in str(info.value)
