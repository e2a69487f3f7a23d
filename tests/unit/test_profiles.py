"""Profiles: every validation rule gives exit 2 with the file, the field path and the reason,
changes nothing, and never a traceback; the store writes atomically with mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers.profiles import BASE, CASES, LOCAL, edit
from tui.cli import main
from tui.core.errors import InputError
from tui.core.profiles import Profile, ProfileStore, parse_profile


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(data if isinstance(data, str) else tomli_w.dumps(data))
    return path


@pytest.mark.parametrize(
    ("data", "field", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_rule_exits_2_naming_file_field_and_reason(tmp_path, capsys, data, field, reason):
    path = _write(tmp_path, data)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert main(["preview", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err  # one clear line
    assert str(path) in err
    assert f": {field}: " in err or not field
    assert reason in err
    assert "Traceback" not in err
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_base_profile_is_valid():
    assert parse_profile(tomli_w.dumps(BASE), "x").name == "base"


def test_http_manifest_allowed_for_loopback():
    for url in ("http://127.0.0.1:5000/b/m.xml", "http://localhost/b/m.xml"):
        parse_profile(tomli_w.dumps(edit("source.manifest_url", url)), "x")


ENDPOINTS_ACCEPTED = [
    "http://127.0.0.1:5000",
    "http://127.0.0.1:5000/",
    "http://127.8.0.1:5000",
    "http://localhost:5000",
    "http://[::1]:5000",
    "https://ec2.us-east-1.amazonaws.com",
    "https://proxy.example.com:8443/",
]


@pytest.mark.parametrize("url", ENDPOINTS_ACCEPTED)
def test_endpoint_https_or_loopback_http_is_accepted(url):
    assert parse_profile(tomli_w.dumps(edit("aws.endpoint_url", url)), "x").aws.endpoint_url == url


def test_endpoint_password_is_never_echoed(tmp_path, capsys):
    path = _write(tmp_path, edit("aws.endpoint_url", "http://me:hunter2@127.0.0.1:5000"))
    assert main(["preview", str(path)]) == 2
    err = capsys.readouterr().err
    assert "aws.endpoint_url" in err and "hunter2" not in err


def test_several_problems_are_counted():
    data = edit("request.Platform", "Linux", edit("source.volume_size", 0))
    with pytest.raises(InputError, match=r"and 1 more problem"):
        parse_profile(tomli_w.dumps(data), "x")


def test_not_utf8_and_folder_and_missing(tmp_path, capsys):
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    assert main(["preview", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert main(["preview", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["preview", str(tmp_path / "none.toml")]) == 2
    assert "no such profile file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The store


@pytest.fixture
def store(tmp_path, monkeypatch) -> ProfileStore:
    monkeypatch.setenv("EC2_IMPORT_WIZARD_HOME", str(tmp_path / "home"))
    return ProfileStore()


def test_home_env_moves_the_store(store, tmp_path, capsys):
    assert store.root == tmp_path / "home" / "profiles"
    assert main(["profiles", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(store.root)
    assert main(["--profiles-dir", str(tmp_path / "elsewhere"), "profiles", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "elsewhere")


def test_save_is_private_atomic_and_round_trips(store, capsys):
    profile = Profile.model_validate(BASE)
    path = store.save(profile)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["base.toml"]  # no temp file left
    assert store.load("base") == profile
    assert main(["profiles", "show", "base"]) == 0
    assert capsys.readouterr().out == path.read_text()
    assert main(["profiles", "list"]) == 0
    assert capsys.readouterr().out == "base\n"


def test_save_refuses_to_overwrite_unless_asked(store):
    profile = Profile.model_validate(BASE)
    store.save(profile)
    with pytest.raises(InputError, match="exists"):
        store.save(profile)
    changed = profile.model_copy(update={"description": "changed"})
    store.save(changed, overwrite=True)
    assert store.load("base").description == "changed"


def test_failed_write_leaves_the_old_file(store, monkeypatch):
    profile = Profile.model_validate(BASE)
    path = store.save(profile)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save(profile.model_copy(update={"description": "new"}), overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["base.toml"]


def test_delete_and_unknown_names(store, capsys):
    store.save(Profile.model_validate(BASE))
    assert main(["profiles", "show", "bsae"]) == 2
    assert "did you mean 'base'" in capsys.readouterr().err
    assert main(["profiles", "delete", "base"]) == 0
    assert not store.exists("base")
    assert main(["profiles", "delete", "base"]) == 2
    assert main(["profiles", "show", "../etc/passwd"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_profile_argument_takes_a_name_or_a_path(store, tmp_path, capsys):
    store.save(Profile.model_validate(BASE))
    assert main(["preview", "base"]) == 0
    by_name = capsys.readouterr().out
    assert main(["preview", str(store.path_for("base"))]) == 0
    assert capsys.readouterr().out == by_name


def test_relative_image_path_resolves_against_the_profile_folder(tmp_path):
    profile = parse_profile(tomli_w.dumps(LOCAL), "x")
    assert profile.image_path(tmp_path / "sub" / "p.toml") == tmp_path / "sub" / "disk.vmdk"


def test_resume_refuses_a_recorded_cleartext_endpoint():
    """A run record written before the endpoint rule is not resumed to it; --endpoint-url wins."""
    from tui.core.journal import RunRecord, new_run_id
    from tui.core.session import Options, Session

    record = RunRecord(
        run_id=new_run_id(), profile_name="p", profile={}, profile_origin=None, region="us-east-1"
    )
    record.endpoint_url = "http://me:hunter2@10.0.0.5:5000"
    with pytest.raises(InputError) as exc:
        Session().target_of(record)
    assert "endpoint_url" in str(exc.value) and "--endpoint-url" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    good = Session(Options(endpoint_url="http://127.0.0.1:5000")).target_of(record)
    assert good.endpoint_url == "http://127.0.0.1:5000"
