"""The wizard's unsaved profile: a nested dict in the profile file's own shape, edited field by
field, validated by the same pydantic models as a profile file.

Headless (no textual) so it is tested without a terminal; the TUI's screens read and write it by
dotted paths such as `request.LaunchSpecification.Placement.Tenancy`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.errors import InputError

# pydantic and the models load on first validation, not with the first screen.
if TYPE_CHECKING:
    from tui.core.profiles import Profile

DRAFT_NAME = "new-import"  # stands in for the name until the user saves

_LS = "request.LaunchSpecification"
# What exists in one region only: a profile opened on another region leaves these out.
REGION_BOUND = (
    f"{_LS}.SubnetId",
    f"{_LS}.PrivateIpAddress",
    f"{_LS}.GroupIds",
    f"{_LS}.GroupNames",
    f"{_LS}.Placement.AvailabilityZone",
    f"{_LS}.Placement.AvailabilityZoneId",
    f"{_LS}.Placement.GroupName",
    f"{_LS}.Placement.GroupId",
    f"{_LS}.Placement.PartitionNumber",
    f"{_LS}.Placement.HostId",
    f"{_LS}.Placement.HostResourceGroupArn",
)


def parse_value(kind: str, text: str) -> Any:
    """A field's text as the model's type; blank means unset. Raises ValueError with a message
    meant for the field's error line."""
    text = text.strip() if kind != "text" else text
    if text == "":
        return None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "list":
        items = [t.strip() for t in text.split(",")]
        if any(not t for t in items):
            raise ValueError("empty item: separate values with single commas")
        return items
    if kind == "bool":
        low = text.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    return text


def format_value(value: Any) -> str:
    """The text a field shows for a model value (inverse of parse_value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _prune(node: dict[str, Any]) -> None:
    for key in list(node):
        value = node[key]
        if isinstance(value, dict):
            _prune(value)
            if not value:
                del node[key]


class Draft:
    def __init__(self, data: dict[str, Any] | None = None, origin: Path | None = None):
        self.data: dict[str, Any] = copy.deepcopy(data) if data else {}
        self.origin = origin  # the profile file it came from: relative paths resolve there
        self.data.setdefault("request", {}).setdefault("Platform", "Windows")

    @classmethod
    def from_profile(cls, profile: Profile, origin: Path | None = None) -> Draft:
        data = profile.model_dump(mode="json", exclude_none=True)
        path = data.get("source", {}).get("path")
        if path and origin is not None and not Path(path).is_absolute():
            # Keep the draft independent of where it will be saved.
            data["source"]["path"] = str((origin.parent / path).resolve())
        return cls(data, origin)

    def get(self, path: str) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> None:
        parts = path.split(".")
        node = self.data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
            _prune(self.data)
        else:
            node[parts[-1]] = value

    def profile_data(self, name: str | None = None) -> dict[str, Any]:
        data = copy.deepcopy(self.data)
        data["name"] = name or data.get("name") or DRAFT_NAME
        return data

    def errors(self) -> dict[str, str]:
        """Every problem, by dotted field path (a table's path for errors across fields)."""
        from pydantic import ValidationError

        from tui.core.profiles import Profile, _describe

        try:
            Profile.model_validate(self.profile_data())
        except ValidationError as exc:
            out: dict[str, str] = {}
            for err in exc.errors():
                field, msg = _describe(dict(err), Profile)
                out.setdefault(field, msg)
            return out
        return {}

    def profile(self, name: str | None = None) -> Profile:
        from pydantic import ValidationError

        from tui.core.profiles import Profile, validation_error

        try:
            return Profile.model_validate(self.profile_data(name))
        except ValidationError as exc:
            raise validation_error(exc, Profile, "draft") from None

    def image_path(self) -> Path | None:
        path = self.get("source.path")
        return Path(path).expanduser() if path else None


def errors_under(errors: dict[str, str], prefixes: tuple[str, ...]) -> dict[str, str]:
    """The errors that belong to one screen's fields."""
    return {
        k: v for k, v in errors.items() if any(k == p or k.startswith(p + ".") for p in prefixes)
    }


__all__ = ["DRAFT_NAME", "Draft", "InputError", "errors_under", "format_value", "parse_value"]
