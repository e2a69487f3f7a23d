"""EC2's query-protocol XML, as boto3 parses it (docs/protocol.md section 7).

Success: `<XActionResponse xmlns=...><requestId>...`; errors: `<Response><Errors><Error>` with an
HTTP status >= 300 (below that boto3 reads an error as a success).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"


class Ec2Error(Exception):
    """An EC2 error response: code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def dry_run_ok() -> Ec2Error:
    # EC2 answers a dry run that would succeed with 412 and this code and message.
    return Ec2Error(
        "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", status=412
    )


def throttled() -> Ec2Error:
    return Ec2Error("RequestLimitExceeded", "Request limit exceeded.", status=503)


def request_id() -> str:
    return str(uuid.uuid4())


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text).lower() if isinstance(text, bool) else str(text)
    return el


def _tree(parent: ET.Element, data: dict[str, Any]) -> None:
    """dict -> elements: nested dicts are structures, lists are `<item>` lists, None is skipped."""
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            _tree(_sub(parent, key), value)
        elif isinstance(value, list):
            lst = _sub(parent, key)
            for entry in value:
                _tree(_sub(lst, "item"), entry)
        else:
            _sub(parent, key, value)


def response(action: str, body: dict[str, Any]) -> bytes:
    root = ET.Element(f"{action}Response", {"xmlns": EC2_XMLNS})
    _sub(root, "requestId", request_id())
    _tree(root, body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def error(code: str, message: str) -> bytes:
    root = ET.Element("Response")
    err = _sub(_sub(root, "Errors"), "Error")
    _sub(err, "Code", code)
    _sub(err, "Message", message)
    _sub(root, "RequestID", request_id())
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def s3_error(code: str, message: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """S3's error document (no namespace, `<Error>` at the root)."""
    root = ET.Element("Error")
    _sub(root, "Code", code)
    _sub(root, "Message", message)
    for tag, text in extra:
        _sub(root, tag, text)
    _sub(root, "RequestId", uuid.uuid4().hex[:16].upper())
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
