"""The sandbox's check of moto: it passes on the installed moto, and a moto that differs (its
version, a signature, a name) is refused with one line naming the version, what changed and the
supported range. A changed moto is the installed one with one module swapped for a fake."""

from __future__ import annotations

import importlib
import importlib.metadata
import types
from collections.abc import Callable

import pytest

pytest.importorskip("moto")

from moto.ec2.models import EC2Backend

from tui.sandbox.moto_adapter import (
    SUPPORTED,
    UnsupportedMoto,
    check_moto,
    check_version,
)

INSTALLED = importlib.metadata.version("moto")
TESTED_WITH = f"moto {INSTALLED} is not what the sandbox was tested with (moto >=5.1,<5.3): "


def _moto_with(module: str, **changes: object) -> Callable[[str], object]:
    """An importer for the installed moto, except that `module` has `changes` applied."""
    real = importlib.import_module(module)
    fake = types.SimpleNamespace(**{**vars(real), **changes})
    return lambda name: fake if name == module else importlib.import_module(name)


def _backend_with(**methods: object) -> type:
    """EC2Backend with some methods replaced (not a subclass: moto registers those by module)."""
    real = {n: getattr(EC2Backend, n) for n in dir(EC2Backend) if not n.startswith("__")}
    return type("EC2Backend", (), {**real, **methods})


def _refusal(importer: Callable[[str], object]) -> str:
    with pytest.raises(UnsupportedMoto) as exc:
        check_moto(import_module=importer)
    message = str(exc.value)
    assert "\n" not in message
    assert exc.value.exit_code == 2
    return message


def test_the_installed_moto_passes() -> None:
    assert SUPPORTED == ">=5.1,<5.3"
    assert check_moto() == INSTALLED
    assert check_moto("server") == INSTALLED
    assert check_moto(import_module=importlib.import_module) == INSTALLED


@pytest.mark.parametrize("version", ["5.1.0", "5.1.22", "5.2.0", "5.2.5", "5.2.99"])
def test_the_tested_range_passes(version: str) -> None:
    assert check_moto(version=version) == version


@pytest.mark.parametrize("version", ["5.0.28", "5.3.0", "5.3.0.dev1", "6.0.0", "4.2.14", "main"])
def test_a_version_outside_the_range_is_refused(version: str) -> None:
    with pytest.raises(UnsupportedMoto) as exc:
        check_moto(version=version)
    assert str(exc.value) == (
        f"moto {version} is installed but the sandbox supports moto >=5.1,<5.3 only: "
        "pip install 'moto[server,s3,ec2]>=5.1,<5.3'"
    )
    assert exc.value.exit_code == 2


def test_no_moto_at_all_says_what_to_install() -> None:
    with pytest.raises(UnsupportedMoto) as exc:
        check_version(None)
    assert str(exc.value) == (
        "the sandbox needs moto, which is not installed: pip install 'ec2-import-wizard[sandbox]'"
    )


def test_a_reordered_signature_passes_since_every_argument_is_passed_by_name() -> None:
    def create_volume(self: object, zone_name: str, size: int) -> None:
        pass

    reordered = _backend_with(create_volume=create_volume)
    assert check_moto(import_module=_moto_with("moto.ec2.models", EC2Backend=reordered))


def test_a_renamed_parameter_is_refused() -> None:
    def create_volume(self: object, size_gib: int, zone_name: str) -> None:
        pass

    renamed = _backend_with(create_volume=create_volume)
    message = _refusal(_moto_with("moto.ec2.models", EC2Backend=renamed))
    assert message.startswith(
        TESTED_WITH + "moto.ec2.models.EC2Backend.create_volume() no longer takes our arguments ("
    )
    assert "size_gib" in message


def test_a_new_required_parameter_is_refused() -> None:
    def get_account_id_from(access_key: str, partition: str) -> str:
        return "123456789012"

    message = _refusal(_moto_with("moto.iam.models", get_account_id_from=get_account_id_from))
    assert message == (
        TESTED_WITH + "moto.iam.models.get_account_id_from() no longer takes our arguments "
        "(missing a required argument: 'partition'; its signature is now "
        "(access_key: 'str', partition: 'str') -> 'str')"
    )


def test_a_positional_only_parameter_is_refused() -> None:
    def stop_instances(self: object, instance_ids: list[str], /) -> None:
        pass

    positional = _backend_with(stop_instances=stop_instances)
    message = _refusal(_moto_with("moto.ec2.models", EC2Backend=positional))
    assert "moto.ec2.models.EC2Backend.stop_instances() no longer takes our arguments" in message
    assert "positional" in message


def test_a_missing_name_and_an_unimportable_module_are_refused() -> None:
    iam = _moto_with("moto.iam.models")
    real = importlib.import_module("moto.iam.models")
    without = types.SimpleNamespace(
        **{k: v for k, v in vars(real).items() if k != "get_account_id_from"}
    )
    message = _refusal(lambda name: without if name == "moto.iam.models" else iam(name))
    assert message == TESTED_WITH + "moto.iam.models has no get_account_id_from"

    def no_s3(name: str) -> object:
        if name == "moto.s3.models":
            raise ModuleNotFoundError("No module named 'moto.s3.models'")
        return importlib.import_module(name)

    message = _refusal(no_s3)
    assert message.startswith(
        TESTED_WITH
        + "moto.s3.models cannot be imported (ModuleNotFoundError: No module named 'moto.s3.models'); "
    )


def test_an_instance_attribute_no_longer_set_is_refused() -> None:
    class Instance:
        def __init__(self) -> None:
            self.id = "i-1"
            self.architecture = "x86_64"

        @property
        def availability_zone(self) -> str:
            return "us-east-1a"

    message = _refusal(_moto_with("moto.ec2.models.instances", Instance=Instance))
    assert message == TESTED_WITH + "moto.ec2.models.instances.Instance no longer has platform"


def test_every_change_found_is_named_in_the_one_line() -> None:
    class Instance:
        def __init__(self) -> None:
            self.id = self.platform = self.architecture = ""

    def terminate_instances(self: object, ids: list[str]) -> None:
        pass

    instances = _moto_with("moto.ec2.models.instances", Instance=Instance)
    models = _moto_with(
        "moto.ec2.models", EC2Backend=_backend_with(terminate_instances=terminate_instances)
    )
    message = _refusal(lambda n: models(n) if n == "moto.ec2.models" else instances(n))
    assert "EC2Backend.terminate_instances() no longer takes our arguments" in message
    assert message.endswith(
        "; moto.ec2.models.instances.Instance has neither availability_zone nor placement"
    )


def test_a_request_handler_that_is_not_werkzeugs_is_refused() -> None:
    class MotoRequestHandler:
        pass

    importer = _moto_with("moto.moto_server.werkzeug_app", MotoRequestHandler=MotoRequestHandler)
    message = _refusal(importer)
    assert message == (
        TESTED_WITH
        + "moto.moto_server.werkzeug_app.MotoRequestHandler is no longer a werkzeug handler"
    )
