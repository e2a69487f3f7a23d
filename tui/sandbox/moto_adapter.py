"""Everything the sandbox uses from moto, in one place, checked before it is used.

The emulation runs in the server's process, so it uses moto's backends directly rather than
calling itself over HTTP: no credentials to invent, no faults or throttling applied to our own
bookkeeping, and no moto request parsing to depend on. Backends, the request handler and the
dispatcher app are moto's internals, not its API, so this is the only module that imports moto;
it calls moto with keyword arguments only (a reordered signature cannot swap values), and it
checks, before the first use, that what it relies on is still there (`check_moto`): the sandbox
then refuses to run with one clear line instead of failing half-way through an import.

Importing this module does not import moto.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tui.core.errors import InputError
from tui.sandbox.ec2xml import Ec2Error

if TYPE_CHECKING:
    from moto.core.types import Base64EncodedString
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.instances import Instance
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from werkzeug.serving import WSGIRequestHandler

# The moto releases the sandbox was tested with; pyproject.toml's `sandbox` extra says the same.
SUPPORTED = ">=5.1,<5.3"
_LOWEST, _BELOW = (5, 1), (5, 3)
_INSTALL = "pip install 'moto[server,s3,ec2]>=5.1,<5.3'"

# moto's backends are plain dicts mutated from request threads; our own changes go one at a time.
LOCK = threading.RLock()

# ImportInstance instances have no AMI of their own; describe_instances shows this placeholder.
IMPORTED_IMAGE_ID = "ami-00000000"

Stage = Literal["server", "ec2"]
STAGES: tuple[Stage, ...] = ("server", "ec2")
Importer = Callable[[str], object]


class UnsupportedMoto(InputError):
    """moto is missing, outside SUPPORTED, or no longer has what the sandbox uses: one line
    naming the version and what changed (exit 2: nothing was sent or written)."""


# ---------------------------------------------------------------------------------------------
# What we use, and the check


@dataclass(frozen=True)
class _Use:
    """One thing taken from moto: `name` (a dotted path) in `module`."""

    stage: Stage  # "server": checked before serving; "ec2": before the EC2 backend is built
    module: str
    name: str
    call: tuple[str, ...] | None = None  # called by us with exactly these keyword arguments
    sets: tuple[str, ...] = field(default=())  # a class: the instance attributes we read or write


# Keep in step with the calls below: each keyword listed is one the call passes.
_USES = (
    _Use("server", "moto.core", "DEFAULT_ACCOUNT_ID"),
    _Use("server", "moto.iam.models", "get_account_id_from", call=("access_key",)),
    _Use("server", "moto.s3.models", "s3_backends"),
    _Use("server", "moto.s3.models", "S3Backend", sets=("buckets",)),
    _Use(
        "server", "moto.s3.models", "S3Backend.create_bucket", call=("bucket_name", "region_name")
    ),
    _Use("server", "moto.moto_server.werkzeug_app", "create_backend_app"),
    _Use(
        "server",
        "moto.moto_server.werkzeug_app",
        "DomainDispatcherApplication",
        call=("create_app",),
    ),
    _Use("ec2", "moto.ec2.models", "ec2_backends"),
    _Use("ec2", "moto.ec2.models", "EC2Backend.describe_availability_zones", call=()),
    _Use(
        "ec2",
        "moto.ec2.models",
        "EC2Backend.get_security_group_by_name_or_id",
        call=("group_name_or_id",),
    ),
    _Use(
        "ec2",
        "moto.ec2.models",
        "EC2Backend.run_instances",
        call=(
            "image_id",
            "count",
            "user_data",
            "security_group_names",
            # the rest go to moto's **kwargs, which takes any name
            "instance_type",
            "is_instance_type_default",
            "placement",
            "region_name",
            "subnet_id",
            "security_group_ids",
            "private_ip",
            "tags",
            "block_device_mappings",
            "instance_initiated_shutdown_behavior",
            "monitoring_state",
        ),
    ),
    _Use("ec2", "moto.ec2.models", "EC2Backend.stop_instances", call=("instance_ids",)),
    _Use("ec2", "moto.ec2.models", "EC2Backend.terminate_instances", call=("instance_ids",)),
    _Use("ec2", "moto.ec2.models", "EC2Backend.create_volume", call=("size", "zone_name")),
    _Use(
        "ec2",
        "moto.ec2.models",
        "EC2Backend.attach_volume",
        call=("volume_id", "instance_id", "device_path", "delete_on_termination"),
    ),
    _Use("ec2", "moto.ec2.models.instances", "Reservation", sets=("instances",)),
    _Use("ec2", "moto.ec2.models.instances", "Instance", sets=("id", "platform", "architecture")),
    _Use("ec2", "moto.ec2.models.elastic_block_store", "Volume", sets=("id",)),
    _Use(
        "ec2",
        "moto.ec2.models.availability_zones_and_regions",
        "Zone",
        sets=("name", "zone_id"),
    ),
)

_passed: dict[Stage, str] = {}  # the stages checked in this process: the version they passed
_check_lock = threading.Lock()


def installed_version() -> str | None:
    """The installed moto's version, from its metadata (moto is not imported)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_version(version: str | None) -> str:
    """`version` if it is inside SUPPORTED; else UnsupportedMoto saying what to install."""
    if version is None:
        raise UnsupportedMoto(
            "the sandbox needs moto, which is not installed: "
            "pip install 'ec2-import-wizard[sandbox]'"
        )
    m = re.match(r"(\d+)\.(\d+)", version)
    if m is None or not _LOWEST <= (int(m.group(1)), int(m.group(2))) < _BELOW:
        raise UnsupportedMoto(
            f"moto {version} is installed but the sandbox supports moto {SUPPORTED} only: "
            f"{_INSTALL}"
        )
    return version


def check_installed() -> str:
    """The cheap part of the check, for before anything is bound or served: the version."""
    return check_version(installed_version())


def check_moto(
    *stages: Stage, import_module: Importer | None = None, version: str | None = None
) -> str:
    """Verify that moto is in SUPPORTED and has, with the parameters we pass, everything the
    given stages use (default: all); return its version. On a mismatch raise UnsupportedMoto
    naming the version, every change found and SUPPORTED.

    The sandbox checks "server" before serving and "ec2" before building the EC2 backend (its
    import alone takes a second); each stage is checked once per process. `import_module` and
    `version` stand in for the installed moto (tests); such a check is not remembered."""
    stages = stages or STAGES
    if import_module is not None or version is not None:
        return _check(stages, import_module or importlib.import_module, version)
    if not all(s in _passed for s in stages):  # once checked, the request path takes no lock
        with _check_lock:
            todo = tuple(s for s in stages if s not in _passed)
            if todo:
                found = _check(todo, importlib.import_module, None)
                _passed.update(dict.fromkeys(todo, found))
    return _passed[stages[0]]


def _check(stages: tuple[Stage, ...], import_module: Importer, version: str | None) -> str:
    version = check_version(version or installed_version())
    problems = [p for use in _USES if use.stage in stages for p in _problems(use, import_module)]
    if "server" in stages:
        problems += _handler_problems(import_module)
    if "ec2" in stages:
        problems += _zone_problems(import_module)
    if problems:
        raise UnsupportedMoto(
            f"moto {version} is not what the sandbox was tested with (moto {SUPPORTED}): "
            + "; ".join(problems)
        )
    return version


def _resolve(module: str, name: str, import_module: Importer) -> tuple[object, str | None]:
    """(the object, None) or (None, why it is not there)."""
    try:
        obj: object = import_module(module)
    except Exception as exc:
        return None, f"{module} cannot be imported ({type(exc).__name__}: {exc})"
    for part in name.split("."):
        if not hasattr(obj, part):
            return None, f"{module} has no {name}"
        obj = getattr(obj, part)
    return obj, None


def _problems(use: _Use, import_module: Importer) -> list[str]:
    obj, missing = _resolve(use.module, use.name, import_module)
    if missing is not None:
        return [missing]
    where = f"{use.module}.{use.name}"
    problems = []
    if use.call is not None:
        why = _binds(obj, use.call, method="." in use.name)
        if why is not None:
            problems.append(f"{where}() no longer takes our arguments ({why})")
    if use.sets:
        if not isinstance(obj, type):
            return [f"{where} is no longer a class"]
        absent = [a for a in use.sets if a not in _constructor_names(obj)]
        if absent:
            problems.append(f"{where} no longer has {', '.join(absent)}")
    return problems


def _binds(fn: object, keywords: tuple[str, ...], *, method: bool) -> str | None:
    """Why calling `fn` with exactly these keywords would fail, or None if it would not."""
    import inspect

    if not callable(fn):
        return "it is not callable"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        return f"its signature cannot be read: {exc}"
    args = (None,) if method else ()  # a function on a class: `self` comes first
    try:
        sig.bind(*args, **dict.fromkeys(keywords))
    except TypeError as exc:
        return f"{exc}; its signature is now {sig}"
    return None


def _constructor_names(cls: type) -> set[str]:
    """Names an instance of `cls` may have: the class's own attributes, and every name its
    constructors' code uses (instance attributes exist only once an instance does, and the
    backends are too costly to build just to look)."""
    names = set(dir(cls))
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        code = getattr(init, "__code__", None)
        if code is not None:
            names.update(code.co_names)
    return names


def _handler_problems(import_module: Importer) -> list[str]:
    handler, _ = _resolve("moto.moto_server.werkzeug_app", "MotoRequestHandler", import_module)
    if handler is None:
        return []  # before moto 5.2.5: werkzeug's own handler, as moto's server uses
    from werkzeug.serving import WSGIRequestHandler

    if isinstance(handler, type) and issubclass(handler, WSGIRequestHandler):
        return []
    return ["moto.moto_server.werkzeug_app.MotoRequestHandler is no longer a werkzeug handler"]


def _zone_problems(import_module: Importer) -> list[str]:
    cls, missing = _resolve("moto.ec2.models.instances", "Instance", import_module)
    if missing is not None:
        return []  # already reported
    if any(isinstance(getattr(cls, n, None), property) for n in ("availability_zone", "placement")):
        return []
    return ["moto.ec2.models.instances.Instance has neither availability_zone nor placement"]


# ---------------------------------------------------------------------------------------------
# The server


def request_handler(on_handled: Callable[[], None]) -> type[WSGIRequestHandler]:
    """The request handler for moto's app: moto's own where it has one (from 5.2.5 it keeps S3
    metadata headers with underscores, which werkzeug drops), else werkzeug's, as moto's
    server does. Quiet (no line per request) and HTTP/1.1 with persistent connections
    (`keepalive.KeepAlive`, as S3 keeps them); `on_handled` runs after each request."""
    check_moto("server")
    try:
        from moto.moto_server.werkzeug_app import MotoRequestHandler as Base
    except ImportError:
        from werkzeug.serving import WSGIRequestHandler as Base  # type: ignore[assignment]

    from tui.sandbox.keepalive import KeepAlive

    class Handler(KeepAlive, Base):
        def handle_one_request(self) -> None:
            super().handle_one_request()
            on_handled()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # no per-request line on the terminal (or under the TUI)

    return Handler


def wsgi_app() -> DomainDispatcherApplication:
    """moto's server app: every service, dispatched on the request's host and credentials."""
    check_moto("server")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_app=create_backend_app)


def account_for(access_key: str | None) -> str:
    """The account moto itself would use for this access key (MOTO_ACCOUNT_ID, IAM, default)."""
    check_moto("server")
    from moto.core import DEFAULT_ACCOUNT_ID

    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if not access_key:
        return DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key=access_key)


def ensure_bucket(name: str, region: str, account: str | None = None) -> None:
    check_moto("server")
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[account or DEFAULT_ACCOUNT_ID]["aws"]
    with LOCK:
        if name not in backend.buckets:
            backend.create_bucket(bucket_name=name, region_name=region)


# ---------------------------------------------------------------------------------------------
# EC2


def _ec2(account: str, region: str) -> EC2Backend:
    check_moto("ec2")
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def prewarm(region: str = "us-east-1") -> None:
    """Check moto's EC2 side and build its backend (AMIs, instance types, zones) before the
    first request needs it."""
    from moto.core import DEFAULT_ACCOUNT_ID

    _ec2(DEFAULT_ACCOUNT_ID, region).describe_availability_zones()


def _as_ec2_error(exc: Exception) -> Ec2Error:
    # EC2's code is `code` on moto's errors, or `error_type` on early 5.1 ones (whose `code` is
    # the HTTP status); anything else is a bad value.
    message = getattr(exc, "message", None) or str(exc)
    for attr in ("code", "error_type"):
        code = getattr(exc, attr, None)
        if isinstance(code, str):
            return Ec2Error(code, message, 400)
    return Ec2Error("InvalidParameterValue", message, 400)


def zone_ids(account: str, region: str) -> dict[str, str]:
    """The region's zones: name -> zone id (us-east-1b -> use1-az1)."""
    return {z.name: z.zone_id for z in _ec2(account, region).describe_availability_zones()}


@dataclass(frozen=True)
class InstanceSpec:
    """ImportInstance's LaunchSpecification, as the instance is launched with it."""

    instance_type: str | None = None
    architecture: str | None = None
    zone: str | None = None
    subnet_id: str | None = None
    private_ip: str | None = None
    group_names: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    shutdown_behavior: str | None = None
    monitoring: bool = False
    user_data: str | None = None


def _zone_of(instance: Instance) -> str:
    # moto 5.1.0 has `placement` as the zone's name; later releases make it an object and add
    # `availability_zone`.
    zone = getattr(instance, "availability_zone", None)
    return str(zone if zone is not None else instance.placement)


def _user_data(encoded: str | None) -> Base64EncodedString | None:
    # moto 5.1.0 keeps user data as the base64 text; later releases wrap it, as moto's own
    # RunInstances does with this function.
    try:
        from moto.ec2.utils import parse_user_data
    except ImportError:
        return encoded  # type: ignore[return-value]
    return parse_user_data(encoded)


def create_stopped_instance(account: str, region: str, spec: InstanceSpec) -> tuple[str, str]:
    """A stopped Windows instance with no volume yet; returns (instance id, its zone)."""
    backend = _ec2(account, region)
    with LOCK:
        for name in spec.group_names:
            # moto crashes on an unknown group name instead of answering EC2's error.
            if backend.get_security_group_by_name_or_id(group_name_or_id=name) is None:
                raise Ec2Error(
                    "InvalidGroup.NotFound", f"The security group '{name}' does not exist"
                )
        try:
            reservation = backend.run_instances(
                image_id=IMPORTED_IMAGE_ID,
                count=1,
                user_data=_user_data(spec.user_data),
                security_group_names=list(spec.group_names),
                instance_type=spec.instance_type or "m1.small",
                is_instance_type_default=not spec.instance_type,
                placement=spec.zone,
                region_name=region,
                subnet_id=spec.subnet_id,
                security_group_ids=list(spec.group_ids),
                private_ip=spec.private_ip,
                tags={},
                # An empty mapping: no default root volume; the imported one comes at the end.
                block_device_mappings=[],
                instance_initiated_shutdown_behavior=spec.shutdown_behavior,
                monitoring_state="enabled" if spec.monitoring else "disabled",
            )
        except Ec2Error:
            raise
        except Exception as exc:
            raise _as_ec2_error(exc) from None
        instance = reservation.instances[0]
        instance.platform = "windows"
        if spec.architecture:
            instance.architecture = spec.architecture
        backend.stop_instances(instance_ids=[instance.id])
        return instance.id, _zone_of(instance)


def terminate(account: str, region: str, instance_id: str | None) -> None:
    if not instance_id:
        return
    backend = _ec2(account, region)
    with LOCK, contextlib.suppress(Exception):  # already gone: nothing to undo
        backend.terminate_instances(instance_ids=[instance_id])


def create_volume(
    account: str, region: str, size_gib: int, zone: str, instance_id: str | None
) -> str:
    """The converted volume; attached as the root device when there is an instance."""
    backend = _ec2(account, region)
    with LOCK:
        volume = backend.create_volume(size=size_gib, zone_name=zone)
        if instance_id:
            backend.attach_volume(
                volume_id=volume.id,
                instance_id=instance_id,
                device_path="/dev/sda1",
                delete_on_termination=True,
            )
        return str(volume.id)
