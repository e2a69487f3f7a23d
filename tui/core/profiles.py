"""Profiles: the saved form of the wizard (TOML, the API's own names) and the store on disk.

Every load error is one InputError naming the file, the field path and the reason; a profile is
never written half (atomic writes, mode 0600) and credentials never go in one.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from tui.core import paths
from tui.core.errors import InputError
from tui.core.facts import (
    MAX_IMAGE_BYTES,
    MAX_TAGS,
    MAX_URL_EXPIRY_DAYS,
    MAX_VOLUME_GIB,
    PROFILE_NAME_RE,
    REGION_RE,
    bucket_problem,
    endpoint_problem,
    image_path_problem,
    key_prefix_problem,
    profile_name_problem,
    tag_problem,
)
from tui.core.fsutil import atomic_write
from tui.core.request import ImportInstanceRequest, RequestSpec, StrictModel, check_manifest_url

# Key names that mean someone is about to put a credential in a profile.
CREDENTIAL_KEYS = frozenset(
    k.lower().replace("-", "_")
    for k in (
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "access_key_id",
        "secret_key",
        "secret_access_key",
        "session_token",
        "password",
        "credentials",
    )
)
MAX_PROFILE_BYTES = 1 << 20
MAX_NESTING = 32  # tables, arrays and dotted keys; a real profile nests 4 deep
# What the nesting count skips (strings, comments) and what it counts.
_TOML_TOKEN_RE = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*'
    r"|[][{}.=,\n]",
    re.DOTALL,
)


class AwsTarget(StrictModel):
    region: str | None = None
    profile: Annotated[str, Field(min_length=1)] | None = None
    endpoint_url: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not REGION_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not an AWS region name (e.g. us-east-1)")
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        problem = None if v is None else endpoint_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class Source(StrictModel):
    """The disk image: a local file uploaded by the tool, or an already uploaded manifest."""

    path: Annotated[str, Field(min_length=1)] | None = None
    bucket: str | None = None
    key_prefix: str = ""
    url_expiry_days: Annotated[int, Field(ge=1, le=MAX_URL_EXPIRY_DAYS)] = 7
    volume_size: Annotated[int, Field(ge=1, le=MAX_VOLUME_GIB)] | None = None
    format: str | None = None
    manifest_url: str | None = None
    bytes: Annotated[int, Field(ge=1, lt=MAX_IMAGE_BYTES)] | None = None
    # Convert to a stream-optimized VMDK with qemu-img: "auto" (absent) when ImportInstance
    # does not take the format or zeros make it pay, "always", or "never".
    convert: Literal["auto", "always", "never"] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        problem = None if v is None else image_path_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        problem = None if v is None else bucket_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        problem = key_prefix_problem(v)
        if problem:
            raise ValueError(problem)
        return v.strip("/")

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | None) -> str | None:
        from tui.core.request import check_enum

        return None if v is None else check_enum(v, "DiskImageFormat", "disk image format")

    @field_validator("manifest_url")
    @classmethod
    def _manifest(cls, v: str | None) -> str | None:
        return None if v is None else check_manifest_url(v)

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        if (self.path is None) == (self.manifest_url is None):
            raise ValueError(
                "give exactly one image source: `path` (a local disk image to upload) "
                "or `manifest_url` (an image already uploaded)"
            )
        if self.path is not None:
            if self.bucket is None:
                raise ValueError("`bucket` is required with `path`: the S3 bucket for the upload")
            if self.bytes is not None:
                raise ValueError(
                    "`bytes` is measured from the file; give it only with manifest_url"
                )
        else:
            missing = [k for k in ("format", "bytes", "volume_size") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"`manifest_url` also needs {', '.join(missing)}")
        return self


class AfterStep(StrEnum):
    """The [after] steps, in the order they run (tui/core/after.py)."""

    TAGS = "tags"
    START = "start"
    CLEANUP = "cleanup"


class After(StrictModel):
    """What the run does once the conversion task completed (docs/design.md section 2)."""

    # CreateTags on the instance and every volume of it.
    tags: dict[str, str] = Field(default_factory=dict)
    # "on-success": delete the run's S3 parts and manifest once the task completed.
    cleanup: Literal["on-success", "never"] = "on-success"
    # StartInstances, then wait until the instance is running.
    start: bool = False

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_TAGS:
            raise ValueError(f"{len(v)} tags: EC2 takes at most {MAX_TAGS} a resource; drop some")
        for key, value in v.items():
            problem = tag_problem(key, value)
            if problem:
                raise ValueError(problem)
        return v

    @property
    def is_default(self) -> bool:
        return self == After()


class Profile(StrictModel):
    name: str
    description: str | None = None
    aws: AwsTarget = Field(default_factory=AwsTarget)
    source: Source
    request: RequestSpec
    after: After = Field(default_factory=After)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        problem = profile_name_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    def image_path(self, origin: Path | None) -> Path | None:
        """The disk image path; a relative one resolves against the profile file's folder."""
        if self.source.path is None:
            return None
        p = Path(self.source.path).expanduser()
        if not p.is_absolute() and origin is not None:
            p = origin.parent / p
        return Path(os.path.normpath(p))

    def build_request(
        self, *, manifest_url: str, image_format: str, image_bytes: int, volume_size: int
    ) -> ImportInstanceRequest:
        return ImportInstanceRequest.build(
            self.request,
            manifest_url=manifest_url,
            image_format=image_format,
            image_bytes=image_bytes,
            volume_size=volume_size,
        )

    def with_after(
        self,
        *,
        tags: list[tuple[str, str]] | None = None,
        cleanup: str | None = None,
        start: bool | None = None,
    ) -> Profile:
        """This profile with `run`'s flags over its [after]: --tag KEY=VALUE merged over its
        tags, --cleanup and --start/--no-start instead of its own. InputError names the flag."""
        data = self.after.model_dump(mode="json")
        data["tags"] = {**data["tags"], **dict(tags or ())}
        if cleanup is not None:
            data["cleanup"] = cleanup
        if start is not None:
            data["start"] = start
        try:
            after = After.model_validate(data)
        except ValidationError as exc:
            err = validation_error(exc, After, "command line")
            flag = {"tags": "--tag", "cleanup": "--cleanup", "start": "--start"}
            name = (err.field or "").split(".")[0]
            raise InputError(err.message, field=flag.get(name, err.field)) from None
        return self.model_copy(update={"after": after})

    def to_toml(self) -> str:
        return dump_toml(self.model_dump(mode="json", exclude_none=True, exclude_defaults=False))


def dump_toml(data: dict[str, Any]) -> str:
    # Defaults that say nothing (empty prefix) are left out to keep the file as a human wrote it.
    src = data.get("source", {})
    if src.get("key_prefix") == "":
        src.pop("key_prefix")
    if data.get("aws") == {}:
        data.pop("aws")
    if data.get("after") == After().model_dump(mode="json"):
        data.pop("after")
    return tomli_w.dumps(data)


# ---------------------------------------------------------------------------------------------
# Loading with clear errors


def field_path(parts: Any) -> str:
    """A dotted path; odd keys quoted so a message stays one readable line."""
    return ".".join(
        str(p) if re.fullmatch(r"[A-Za-z0-9_-]+", str(p)) else json.dumps(str(p)) for p in parts
    )


def _find_credentials(node: Any, path: tuple[str, ...] = ()) -> str | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower().replace("-", "_") in CREDENTIAL_KEYS:
                return field_path((*path, str(key)))
            found = _find_credentials(value, (*path, str(key)))
            if found:
                return found
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found = _find_credentials(item, (*path, str(i)))
            if found:
                return found
    return None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at `loc` (to suggest the names it has)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return None
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(err: dict[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    loc = tuple(err["loc"])
    field = field_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        names = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if not close and names:
            hint = f" (known: {', '.join(names)})"
        return field, f"unknown key{hint}"
    if kind == "missing":
        return field, "required field is missing"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if kind.endswith("_type"):
        msg = f"{msg} (got {type(err.get('input')).__name__} {err.get('input')!r:.60})"
    return field, msg


def validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> InputError:
    errors = exc.errors()
    field, msg = _describe(dict(errors[0]), model)
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InputError(msg, source=source, field=field or None)


def _too_deep(text: str) -> bool:
    """Whether TOML text nests deeper than MAX_NESTING, counted before tomllib, which recurses
    on brackets (RecursionError) and is quadratic in a dotted key's length."""
    depth = dots = 0
    for m in _TOML_TOKEN_RE.finditer(text):
        t = m.group()
        if t in ("[", "{"):
            depth, dots = depth + 1, 0
        elif t in ("]", "}"):
            depth, dots = max(depth - 1, 0), 0
        elif t == ".":
            dots += 1
        elif t in ("=", ",", "\n"):
            dots = 0
        if depth + dots > MAX_NESTING:
            return True
    return False


def parse_profile(text: str, source: str) -> Profile:
    if _too_deep(text):
        raise InputError(
            f"nests tables, arrays or dotted keys deeper than {MAX_NESTING} levels",
            source=source,
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=source) from None
    cred = _find_credentials(data)
    if cred:
        raise InputError(
            "credentials never go in a profile; they come from the AWS credential chain "
            "(aws configure, AWS_PROFILE, SSO or environment variables): remove this key",
            source=source,
            field=cred,
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Profile, source) from None


def load_profile(path: Path) -> Profile:
    source = str(path)
    try:
        if path.is_dir():
            raise InputError("is a folder, not a profile file", source=source)
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise InputError("is too large to be a profile (over 1 MiB)", source=source)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such profile file", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    return parse_profile(text, source)


# ---------------------------------------------------------------------------------------------
# The store


class ProfileStore:
    """Saved profiles, one NAME.toml each."""

    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else paths.profiles_dir()

    def path_for(self, name: str) -> Path:
        problem = profile_name_problem(name)
        if problem:
            raise InputError(problem)
        return self.root / f"{name}.toml"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.toml") if PROFILE_NAME_RE.fullmatch(p.stem))

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def load(self, name: str) -> Profile:
        path = self.path_for(name)
        if not path.exists():
            known = self.names()
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"no saved profile of that name in {self.root}{hint}", source=repr(name)
            )
        return load_profile(path)

    def save(self, profile: Profile, *, overwrite: bool = False) -> Path:
        path = self.path_for(profile.name)
        if path.exists() and not overwrite:
            raise InputError("a saved profile of that name exists", source=repr(profile.name))
        text = profile.to_toml()
        parse_profile(text, str(path))  # never save what we could not load back
        atomic_write(path, text)
        return path

    def delete(self, name: str) -> Path:
        path = self.path_for(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise InputError(
                f"no saved profile of that name in {self.root}", source=repr(name)
            ) from None
        return path

    def resolve(self, ref: str) -> tuple[Profile, Path]:
        """A saved name or a path to a .toml file, loaded."""
        looks_like_path = ref.endswith(".toml") or os.sep in ref or ref.startswith(".")
        if looks_like_path or (Path(ref).is_file() and not PROFILE_NAME_RE.fullmatch(ref)):
            path = Path(ref).expanduser()
            return load_profile(path), path.resolve()
        path = self.path_for(ref)
        return self.load(ref), path
