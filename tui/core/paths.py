"""Where state lives: platformdirs, moved wholesale by EC2_IMPORT_WIZARD_HOME."""

from __future__ import annotations

import os
from pathlib import Path

APP = "ec2-import-wizard"
HOME_ENV = "EC2_IMPORT_WIZARD_HOME"


def _home() -> Path | None:
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else None


def profiles_dir(override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    home = _home()
    if home:
        return home / "profiles"
    import platformdirs

    return platformdirs.user_config_path(APP) / "profiles"


def runs_dir() -> Path:
    home = _home()
    if home:
        return home / "runs"
    import platformdirs

    return platformdirs.user_state_path(APP) / "runs"


def logs_dir() -> Path:
    """Where the wizard writes its crash and error reports (beside the run records)."""
    home = _home()
    if home:
        return home / "logs"
    import platformdirs

    return platformdirs.user_state_path(APP) / "logs"


def cache_dir() -> Path:
    """Where converted images wait for their upload (platformdirs' user cache dir)."""
    home = _home()
    if home:
        return home / "cache"
    import platformdirs

    return platformdirs.user_cache_path(APP)


def copies_dir() -> Path:
    """Where the wizard saves what it would copy, for a terminal that takes no OSC 52."""
    return cache_dir() / "copied"


def config_file() -> Path:
    """The wizard's own settings (the theme): a small TOML file beside the profiles."""
    home = _home()
    if home:
        return home / "config.toml"
    import platformdirs

    return platformdirs.user_config_path(APP) / "config.toml"


def demo_dir() -> Path:
    """Where the wizard makes its demo disk image (sandbox mode)."""
    home = _home()
    if home:
        return home / "demo"
    import tempfile

    return Path(tempfile.gettempdir()) / "ec2-import-wizard-demo"


def make_private_dir(folder: Path) -> Path:
    """Create `folder` with every missing parent, each 0700 (`mkdir(parents=True, mode=...)`
    gives the mode to the leaf only: the parents it creates get 0777 less the umask). Folders
    that exist are left as they are."""
    missing: list[Path] = []
    here = folder
    while not here.exists() and here.parent != here:
        missing.append(here)
        here = here.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # another process made it meanwhile: its folder, not ours to change
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask; ours is exact
    return folder
