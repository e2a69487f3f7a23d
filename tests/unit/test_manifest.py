"""The VM Import Manifest: exact XML shape, round trip, and strict parsing."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui import __version__
from tui.core.manifest import (
    XML_DECLARATION,
    Manifest,
    ManifestError,
    ManifestPart,
    parse_manifest,
    plan_parts,
)

MIB = 1 << 20


def make_manifest(size: int = 25 * MIB, part_size: int = 10 * MIB, fmt: str = "VMDK") -> Manifest:
    parts = [
        ManifestPart(
            index=i,
            start=start,
            end=end,
            key=f"imports/run/disk.vmdk.part{i}",
            head_url=f"https://b.s3.amazonaws.com/imports/run/disk.vmdk.part{i}?X-Amz-A=1&m=HEAD",
            get_url=f"https://b.s3.amazonaws.com/imports/run/disk.vmdk.part{i}?X-Amz-A=1&m=GET",
            delete_url=f"https://b.s3.amazonaws.com/imports/run/disk.vmdk.part{i}?m=DELETE",
        )
        for i, (start, end) in enumerate(plan_parts(size, part_size))
    ]
    return Manifest(
        file_format=fmt,
        size=size,
        volume_size=1,
        parts=parts,
        self_destruct_url="https://b.s3.amazonaws.com/imports/run/disk.vmdkmanifest.xml?a=1&b=2",
    )


def test_plan_parts_inclusive_and_short_last() -> None:
    assert plan_parts(25 * MIB, 10 * MIB) == [
        (0, 10 * MIB - 1),
        (10 * MIB, 20 * MIB - 1),
        (20 * MIB, 25 * MIB - 1),
    ]
    assert plan_parts(10 * MIB, 10 * MIB) == [(0, 10485759)]  # the protocol doc's example
    assert plan_parts(0, 10) == []
    with pytest.raises(ValueError):
        plan_parts(10, 0)


def test_xml_shape_order_and_declaration() -> None:
    xml = make_manifest().to_xml()
    assert xml.startswith(XML_DECLARATION)
    assert b"&amp;" in xml and b"&b=" not in xml  # `&` in URLs escaped
    root = ET.fromstring(xml)
    assert root.tag == "manifest"
    assert [c.tag for c in root] == [
        "version",
        "file-format",
        "importer",
        "self-destruct-url",
        "import",
    ]
    assert root.findtext("version") == "2010-11-15"
    assert [c.tag for c in root.find("importer")] == ["name", "version", "release"]  # type: ignore[union-attr]
    assert root.findtext("importer/name") == "ec2-import-wizard"
    assert root.findtext("importer/version") == __version__
    imp = root.find("import")
    assert imp is not None
    assert [c.tag for c in imp] == ["size", "volume-size", "parts"]
    parts = imp.find("parts")
    assert parts is not None and parts.get("count") == "3"
    first = parts[0]
    assert first.get("index") == "0"
    assert [c.tag for c in first] == ["byte-range", "key", "head-url", "get-url", "delete-url"]
    assert first[0].attrib == {"start": "0", "end": str(10 * MIB - 1)}
    last = parts[2][0]
    assert last.attrib == {"start": str(20 * MIB), "end": str(25 * MIB - 1)}


def test_round_trip_and_optional_delete_url() -> None:
    m = make_manifest()
    assert parse_manifest(m.to_xml()) == m
    for part in m.parts:
        part.delete_url = None
    xml = m.to_xml()
    assert b"delete-url" not in xml
    assert parse_manifest(xml) == m


def test_parse_tolerates_pretty_printing() -> None:
    xml = make_manifest().to_xml()
    root = ET.fromstring(xml)
    ET.indent(root)
    pretty = XML_DECLARATION + b"\n" + ET.tostring(root)
    assert parse_manifest(pretty) == make_manifest()


def _mutate(fn: object) -> bytes:
    root = ET.fromstring(make_manifest().to_xml())
    fn(root)  # type: ignore[operator]
    return ET.tostring(root)


def _parts(root: ET.Element) -> ET.Element:
    el = root.find("import/parts")
    assert el is not None
    return el


def _set_size(root: ET.Element, value: str) -> None:
    el = root.find("import/size")
    assert el is not None
    el.text = value


def _swap_first_two(root: ET.Element) -> None:
    first, second = root[0], root[1]
    root.remove(first)
    root.insert(1, first)
    assert root[0] is second


def _no_parts(root: ET.Element) -> None:
    parts = _parts(root)
    for part in list(parts):
        parts.remove(part)
    parts.set("count", "0")


BAD: dict[str, tuple[object, str]] = {
    "wrong root": (lambda r: setattr(r, "tag", "import-manifest"), "root element"),
    "namespaced root": (lambda r: setattr(r, "tag", "{urn:x}manifest"), "root element"),
    "missing version": (lambda r: r.remove(r.find("version")), "missing <version>"),
    "extra element": (lambda r: ET.SubElement(r, "extra"), "unexpected <extra>"),
    "out of order": (_swap_first_two, "out of order"),
    "count mismatch": (lambda r: _parts(r).set("count", "4"), "count says 4"),
    "bad count": (lambda r: _parts(r).set("count", "three"), "not a non-negative integer"),
    "negative size": (lambda r: _set_size(r, "-5"), "not a non-negative integer"),
    "underscore int": (lambda r: _set_size(r, "26_214_400"), "not a non-negative integer"),
    "size mismatch": (lambda r: _set_size(r, str(25 * MIB + 1)), "import/size says"),
    "unknown format": (lambda r: setattr(r.find("file-format"), "text", "VHDX"), "file-format"),
    "bad version": (lambda r: setattr(r.find("version"), "text", "2016-11-15"), "version"),
    "index order": (lambda r: _parts(r)[1].set("index", "2"), "out of order"),
    "overlap": (lambda r: _parts(r)[1][0].set("start", str(10 * MIB - 1)), "overlaps"),
    "gap": (lambda r: _parts(r)[1][0].set("start", str(10 * MIB + 1)), "gap"),
    "reversed range": (lambda r: _parts(r)[2][0].set("end", "5"), "empty or reversed"),
    "missing key": (lambda r: _parts(r)[0].remove(_parts(r)[0][1]), "missing <key>"),
    "empty key": (lambda r: setattr(_parts(r)[0][1], "text", ""), "key is empty"),
    "not a url": (lambda r: setattr(_parts(r)[0][2], "text", "ftp://x"), r"not an http\(s\) URL"),
    "stray attribute": (lambda r: _parts(r)[0].set("foo", "1"), "unexpected attribute"),
    "stray text": (lambda r: setattr(r.find("import"), "text", "hello"), "stray text"),
    "no parts": (_no_parts, "no part"),
    "zero volume": (lambda r: setattr(r.find("import/volume-size"), "text", "0"), "volume-size"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_parse_is_strict(case: str) -> None:
    fn, message = BAD[case]
    with pytest.raises(ManifestError, match=message):
        parse_manifest(_mutate(fn))


@pytest.mark.parametrize(
    "data",
    [b"", b"not xml", b"<manifest>", b"\xff\xfe", b'<!DOCTYPE x [<!ENTITY a "b">]><manifest/>'],
)
def test_parse_garbage(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_manifest_error_is_a_value_error() -> None:
    assert issubclass(ManifestError, ValueError)


def test_to_xml_validates_unless_told_not_to() -> None:
    m = make_manifest()
    m.size += 1
    with pytest.raises(ManifestError):
        m.to_xml()
    assert b"<size>" in m.to_xml(validate=False)


# ---------------------------------------------------------------------------------------------
# Property-based: any plan, any text (escaped), round-trips exactly


_text = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 10**13),
    parts_wanted=st.integers(1, 40),
    fmt=st.sampled_from(["RAW", "VHD", "VMDK"]),
    volume=st.integers(1, 16384),
    key=_text,
    query=_text,
    with_delete=st.booleans(),
    importer=_text,
)
def test_round_trip_property(
    size: int,
    parts_wanted: int,
    fmt: str,
    volume: int,
    key: str,
    query: str,
    with_delete: bool,
    importer: str,
) -> None:
    part_size = max(1, -(-size // parts_wanted))
    url = "https://bucket.s3.amazonaws.com/" + key + "?q=" + query + "&x=<y>"
    m = Manifest(
        file_format=fmt,
        size=size,
        volume_size=volume,
        parts=[
            ManifestPart(i, s, e, f"{key}.part{i}", url, url, url if with_delete else None)
            for i, (s, e) in enumerate(plan_parts(size, part_size))
        ],
        self_destruct_url=url,
        importer_name=importer,
    )
    assert parse_manifest(m.to_xml()) == m


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_crashes_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(data)


_VALID = make_manifest(size=3 * MIB, part_size=MIB).to_xml()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_parse_corrupted_manifest_fails_cleanly(edits: list[tuple[int, int]]) -> None:
    """A valid manifest with a few bytes changed either still parses or is a ManifestError."""
    data = bytearray(_VALID)
    for at, value in edits:
        data[at] = value
    with contextlib.suppress(ManifestError):
        parse_manifest(bytes(data))


def test_unknown_encoding_in_the_declaration_is_a_manifest_error() -> None:
    """Found by hypothesis in CI: a corrupted declaration raised LookupError from the parser."""
    with pytest.raises(ManifestError, match="declaration"):
        parse_manifest(b'<?xml version="1.0" encoding="aTF-8"?><manifest/>')
