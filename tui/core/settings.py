"""The wizard's own settings: a small TOML file (`tui.core.paths.config_file`), read once when
the wizard starts and written when a setting changes. One setting so far, `theme`.

A file that cannot be used never stops the wizard and is never overwritten: loading it gives
the defaults and a warning that names the file and the problem; saving into it is refused.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from tui.core.errors import InputError

KNOWN = ("theme",)


@dataclass(frozen=True)
class Settings:
    theme: str | None = None  # a textual theme's name; None: textual's default


def _read(path: Path) -> dict[str, object] | None:
    """The file's table; None when there is no file. Raises InputError if it is not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read it ({exc})", source=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", source=str(path)) from None


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings, and one warning per problem (the defaults stand in for what is wrong)."""
    from tui.core.paths import config_file

    path = path or config_file()
    try:
        data = _read(path)
    except InputError as exc:
        return Settings(), [f"{exc}; the defaults are used and the file is left as it is"]
    if data is None:
        return Settings(), []
    warnings = [
        f"{path}: unknown setting {key!r} ignored (known: {', '.join(KNOWN)})"
        for key in data
        if key not in KNOWN
    ]
    theme = data.get("theme")
    if theme is not None and not (isinstance(theme, str) and theme.strip()):
        warnings.append(f"{path}: theme: must be a theme's name in quotes; the default is used")
        theme = None
    return Settings(theme=theme if isinstance(theme, str) else None), warnings


def save_setting(key: str, value: str, path: Path | None = None) -> Path:
    """Set one setting, keeping the file's others (its comments are not kept). Refused with an
    InputError when the file is not valid TOML: what the user wrote there is never lost."""
    import tomli_w

    from tui.core.fsutil import atomic_write
    from tui.core.paths import config_file

    assert key in KNOWN, key
    path = path or config_file()
    try:
        data = _read(path) or {}
    except InputError as exc:
        raise InputError(
            f"{exc.message}; not saved: fix or remove the file", source=exc.source
        ) from None
    data[key] = value
    atomic_write(path, tomli_w.dumps(data))
    return path
