"""The VM Import Manifest (docs/protocol.md section 2): model, XML writer, strict parser.

The manifest is what EC2 (or the sandbox) reads to find the uploaded parts, so the writer
emits exactly the element order of the AWS tools and the parser accepts nothing it cannot
vouch for: resume and the sandbox's conversion emulation rely on `parse_manifest` catching
every inconsistency (ranges, counts, sizes) with a message a person can act on.

XML comes from the standard library; `<!DOCTYPE>` is refused outright, so entity tricks
never reach the parser.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tui import __version__
from tui.core.facts import DEFAULT_PART_SIZE, MAX_IMAGE_BYTES

MANIFEST_VERSION = "2010-11-15"
FILE_FORMATS = ("RAW", "VHD", "VMDK")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
IMPORTER_NAME = "ec2-import-wizard"
IMPORTER_RELEASE = "2026-11-28"

_UINT = re.compile(r"[0-9]+")


class ManifestError(ValueError):
    """A manifest that is not well formed or not self-consistent."""


@dataclass
class ManifestPart:
    index: int
    start: int
    end: int  # INCLUSIVE, as in the manifest's byte-range
    key: str
    head_url: str
    get_url: str
    delete_url: str | None = None

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass
class Manifest:
    file_format: str
    size: int  # bytes of the uploaded file (= Image.Bytes = sum of the parts)
    volume_size: int  # GiB (= Volume.Size)
    parts: list[ManifestPart]
    self_destruct_url: str
    version: str = MANIFEST_VERSION
    importer_name: str = IMPORTER_NAME
    importer_version: str = __version__
    importer_release: str = IMPORTER_RELEASE

    def validate(self) -> None:
        """Raise ManifestError unless the manifest is self-consistent."""
        if self.version != MANIFEST_VERSION:
            raise ManifestError(
                f"unsupported manifest version {self.version!r} (expected {MANIFEST_VERSION!r})"
            )
        if self.file_format not in FILE_FORMATS:
            raise ManifestError(
                f"unknown file-format {self.file_format!r} (expected one of "
                f"{', '.join(FILE_FORMATS)})"
            )
        if self.size < 1:
            raise ManifestError(f"import/size must be at least 1 byte, got {self.size}")
        if self.size >= MAX_IMAGE_BYTES:
            raise ManifestError(f"import/size {self.size} is not under 16 TiB")
        if self.volume_size < 1:
            raise ManifestError(
                f"import/volume-size must be at least 1 GiB, got {self.volume_size}"
            )
        if not self.self_destruct_url:
            raise ManifestError("self-destruct-url is empty")
        if not self.parts:
            raise ManifestError("import/parts lists no part")
        expected_start = 0
        for position, part in enumerate(self.parts):
            where = f"part {position}"
            if part.index != position:
                raise ManifestError(
                    f"{where}: index {part.index} out of order (parts must be numbered 0..N-1 "
                    "in order)"
                )
            if part.start < 0 or part.end < part.start:
                raise ManifestError(
                    f"{where}: byte-range start={part.start} end={part.end} is empty or reversed "
                    "(end is inclusive)"
                )
            if part.start != expected_start:
                kind = (
                    "overlaps the previous part" if part.start < expected_start else "leaves a gap"
                )
                raise ManifestError(
                    f"{where}: byte-range starts at {part.start}, expected {expected_start}: {kind}"
                )
            expected_start = part.end + 1
            for name, value in (
                ("key", part.key),
                ("head-url", part.head_url),
                ("get-url", part.get_url),
            ):
                if not value:
                    raise ManifestError(f"{where}: {name} is empty")
            if part.delete_url is not None and not part.delete_url:
                raise ManifestError(f"{where}: delete-url is empty")
        if expected_start != self.size:
            raise ManifestError(
                f"the parts cover {expected_start} bytes but import/size says {self.size}"
            )

    def to_xml(self, *, validate: bool = True) -> bytes:
        """The manifest as UTF-8 XML, element order as section 2; escaping by ElementTree.

        `validate=False` lets tests write deliberately broken manifests.
        """
        if validate:
            self.validate()
        root = ET.Element("manifest")
        _sub(root, "version", self.version)
        _sub(root, "file-format", self.file_format)
        importer = ET.SubElement(root, "importer")
        _sub(importer, "name", self.importer_name)
        _sub(importer, "version", self.importer_version)
        _sub(importer, "release", self.importer_release)
        _sub(root, "self-destruct-url", self.self_destruct_url)
        imp = ET.SubElement(root, "import")
        _sub(imp, "size", str(self.size))
        _sub(imp, "volume-size", str(self.volume_size))
        parts = ET.SubElement(imp, "parts", {"count": str(len(self.parts))})
        for part in self.parts:
            el = ET.SubElement(parts, "part", {"index": str(part.index)})
            ET.SubElement(el, "byte-range", {"start": str(part.start), "end": str(part.end)})
            _sub(el, "key", part.key)
            _sub(el, "head-url", part.head_url)
            _sub(el, "get-url", part.get_url)
            if part.delete_url is not None:
                _sub(el, "delete-url", part.delete_url)
        # ElementTree's own declaration uses single quotes and no `standalone`: write ours.
        return XML_DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8")


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def plan_parts(size: int, part_size: int = DEFAULT_PART_SIZE) -> list[tuple[int, int]]:
    """Cut `size` bytes into (start, end) ranges of `part_size`, `end` INCLUSIVE; the last
    one is short. An empty file has no parts."""
    if part_size < 1:
        raise ValueError(f"part size must be at least 1 byte, got {part_size}")
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]


# ---------------------------------------------------------------------------------------------
# Strict parsing


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check a manifest; every problem is a ManifestError naming the element."""
    if not isinstance(data, bytes | bytearray):
        raise ManifestError("a manifest is bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ManifestError("a manifest must not contain a DOCTYPE or entity declarations")
    try:
        root = ET.fromstring(bytes(data))
    except ET.ParseError as exc:
        raise ManifestError(f"not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # e.g. an unknown encoding in the declaration
        raise ManifestError(f"unreadable XML declaration: {exc}") from None
    if root.tag != "manifest":
        raise ManifestError(f"root element is <{root.tag}>, expected <manifest> (no namespace)")
    _no_attrs(root, "manifest")
    _no_text(root, "manifest")
    version, file_format, importer, self_destruct, imp = _children(
        root, "manifest", ["version", "file-format", "importer", "self-destruct-url", "import"]
    )
    name, imp_version, release = _children(importer, "importer", ["name", "version", "release"])
    size_el, volume_el, parts_el = _children(imp, "import", ["size", "volume-size", "parts"])

    _no_attrs(parts_el, "import/parts", allowed=("count",))
    count = _uint(parts_el.get("count"), "import/parts@count")
    parts: list[ManifestPart] = []
    for position, part_el in enumerate(parts_el):
        where = f"import/parts/part[{position}]"
        if part_el.tag != "part":
            raise ManifestError(f"unexpected <{part_el.tag}> in import/parts (only <part>)")
        _no_attrs(part_el, where, allowed=("index",))
        _no_text(part_el, where)
        index = _uint(part_el.get("index"), f"{where}@index")
        tags = [c.tag for c in part_el]
        wanted = ["byte-range", "key", "head-url", "get-url"]
        if tags == [*wanted, "delete-url"]:
            wanted.append("delete-url")
        children = _children(part_el, where, wanted)
        byte_range = children[0]
        if len(byte_range) or (byte_range.text or "").strip():
            raise ManifestError(f"{where}/byte-range must be empty (start and end are attributes)")
        _no_attrs(byte_range, f"{where}/byte-range", allowed=("start", "end"))
        start = _uint(byte_range.get("start"), f"{where}/byte-range@start")
        end = _uint(byte_range.get("end"), f"{where}/byte-range@end")
        parts.append(
            ManifestPart(
                index=index,
                start=start,
                end=end,
                key=_text(children[1], f"{where}/key"),
                head_url=_url(children[2], f"{where}/head-url"),
                get_url=_url(children[3], f"{where}/get-url"),
                delete_url=_url(children[4], f"{where}/delete-url") if len(children) > 4 else None,
            )
        )
    _no_text(parts_el, "import/parts")
    if count != len(parts):
        raise ManifestError(
            f"import/parts@count says {count} but {len(parts)} <part> elements follow"
        )

    manifest = Manifest(
        file_format=_text(file_format, "file-format"),
        size=_uint(_text(size_el, "import/size"), "import/size"),
        volume_size=_uint(_text(volume_el, "import/volume-size"), "import/volume-size"),
        parts=parts,
        self_destruct_url=_url(self_destruct, "self-destruct-url"),
        version=_text(version, "version"),
        importer_name=_text(name, "importer/name", allow_empty=True),
        importer_version=_text(imp_version, "importer/version", allow_empty=True),
        importer_release=_text(release, "importer/release", allow_empty=True),
    )
    manifest.validate()
    return manifest


def _children(el: ET.Element, where: str, wanted: list[str]) -> list[ET.Element]:
    """The children of `el`, which must be exactly `wanted`, in that order."""
    got = [c.tag for c in el]
    if got != wanted:
        missing = [t for t in wanted if t not in got]
        extra = [t for t in got if t not in wanted]
        if missing:
            why = f"missing <{missing[0]}>"
        elif extra:
            why = f"unexpected <{extra[0]}>"
        elif len(got) != len(set(got)):
            dup = next(t for t in got if got.count(t) > 1)
            why = f"<{dup}> appears more than once"
        else:
            why = "elements out of order"
        raise ManifestError(
            f"{where}: {why} (expected {', '.join(wanted)}; found {', '.join(got) or 'nothing'})"
        )
    for child in el:
        _no_attrs(child, f"{where}/{child.tag}", allowed=_ATTRS_OK.get(child.tag, ()))
    _no_text(el, where)
    return list(el)


_ATTRS_OK = {"parts": ("count",), "part": ("index",), "byte-range": ("start", "end")}


def _no_attrs(el: ET.Element, where: str, allowed: tuple[str, ...] = ()) -> None:
    extra = sorted(set(el.attrib) - set(allowed))
    if extra:
        raise ManifestError(f"{where}: unexpected attribute {extra[0]!r}")


def _no_text(el: ET.Element, where: str) -> None:
    """A container element holds elements only (whitespace between them is fine)."""
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise ManifestError(f"{where}: stray text between elements")


def _text(el: ET.Element, where: str, *, allow_empty: bool = False) -> str:
    if len(el):
        raise ManifestError(f"{where}: expected text, found <{el[0].tag}>")
    text = (el.text or "").strip()
    if not text and not allow_empty:
        raise ManifestError(f"{where} is empty")
    return text


def _url(el: ET.Element, where: str) -> str:
    url = _text(el, where)
    if not url.startswith(("https://", "http://")):
        raise ManifestError(f"{where}: {url[:60]!r} is not an http(s) URL")
    return url


def _uint(text: str | None, where: str) -> int:
    if text is None:
        raise ManifestError(f"{where} is missing")
    text = text.strip()
    # Stricter than int(): no sign, no underscores, no non-ASCII digits.
    if not _UINT.fullmatch(text) or len(text) > 20:
        raise ManifestError(f"{where}: {text[:40]!r} is not a non-negative integer")
    return int(text)
