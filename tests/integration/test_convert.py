"""Any VM disk in (issue 15): real images of every format qemu-img writes, made in the run, each
probed, imported through the sandbox with `run`, and the image in S3 converted back to raw by
qemu-img with the same content as the source; broken ones refused with exit 2, nothing sent."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import KEEP_UPLOAD, cli, cli_env, events, reassemble, records, write_profile
from tests.helpers.disks import make_source_raw, qemu_convert

MIB = 1 << 20
SIZE = 16 * MIB

OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>{files}</References>
  <DiskSection><Info>Virtual disks</Info>{disks}</DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
"""


def write_ovf(path: Path, disks: list[tuple[str, str]]) -> Path:
    files = "".join(f'<File ovf:href="{name}" ovf:id="file{i}"/>' for i, (name, _) in
                    enumerate(disks))  # fmt: skip
    entries = "".join(
        f'<Disk ovf:capacity="{SIZE}" ovf:diskId="disk{i}" ovf:fileRef="file{i}" '
        f'ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#{fmt}"/>'
        for i, (_, fmt) in enumerate(disks)
    )
    path.write_text(OVF.format(files=files, disks=entries))
    return path


def make_ova(folder: Path, name: str, members: list[str]) -> Path:
    """An OVA as VMware writes one: `tar` of the .ovf first, then the disks."""
    ova = folder / name
    subprocess.run(["tar", "-cf", str(ova), "-C", str(folder), *members], check=True)
    return ova


def raw_sha256(image: Path, fmt: str | None = None) -> str:
    """sha256 of an image's raw content, as qemu-img reads it."""
    out = image.with_name(image.name + ".check.raw")
    cmd = ["qemu-img", "convert", "-q", *(["-f", fmt] if fmt else []), "-O", "raw", str(image),
           str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.unlink()
    return digest


@pytest.fixture(scope="module")
def sources(qemu_img: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Name -> (path, expected format, expected plan action); "raw" is the content of them all."""
    root = tmp_path_factory.mktemp("convert")
    raw = make_source_raw(root / "source.raw", size=SIZE)
    made: dict[str, tuple[Path, str, str]] = {}

    def conv(name: str, fmt: str, *opts: str) -> Path:
        return qemu_convert(raw, root / name, fmt, *opts)

    made["vhdx_dynamic"] = (conv("dynamic.vhdx", "vhdx"), "VHDX", "convert")
    made["vhdx_fixed"] = (conv("fixed.vhdx", "vhdx", "-o", "subformat=fixed"), "VHDX", "convert")
    made["qcow2"] = (conv("disk.qcow2", "qcow2"), "QCOW2", "convert")
    made["qcow2_compressed"] = (conv("packed.qcow2", "qcow2", "-c"), "QCOW2", "convert")
    made["vdi"] = (conv("disk.vdi", "vdi"), "VDI", "convert")
    made["monolithicSparse"] = (conv("sparse.vmdk", "vmdk"), "VMDK", "convert")
    made["twoGbMaxExtentSparse"] = (
        conv("split.vmdk", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"), "VMDK", "convert"
    )  # fmt: skip
    made["monolithicFlat"] = (
        conv("flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat"), "VMDK", "convert"
    )  # fmt: skip
    ova_dir = root / "ova"
    ova_dir.mkdir()
    qemu_convert(raw, ova_dir / "vm-disk1.vmdk", "vmdk", "-o", "subformat=streamOptimized")
    write_ovf(ova_dir / "vm.ovf", [("vm-disk1.vmdk", "streamOptimized")])
    made["ova_stream"] = (
        make_ova(ova_dir, "vm.ova", ["vm.ovf", "vm-disk1.vmdk"]), "OVA", "upload-from-ova"
    )  # fmt: skip
    sparse_dir = root / "ova-sparse"
    sparse_dir.mkdir()
    qemu_convert(raw, sparse_dir / "vm-disk1.vmdk", "vmdk")
    write_ovf(sparse_dir / "vm.ovf", [("vm-disk1.vmdk", "monolithicSparse")])
    made["ova_sparse"] = (
        make_ova(sparse_dir, "sparse.ova", ["vm.ovf", "vm-disk1.vmdk"]), "OVA", "convert"
    )  # fmt: skip
    # 32 MiB, 90% zeros (written out, no holes: the zero scan finds them).
    zeros = root / "zeros.raw"
    with zeros.open("wb") as fh:
        fh.write(raw.read_bytes()[: 3 * MIB] + bytes(29 * MIB))
    made["raw_zeros"] = (zeros, "RAW", "convert")
    content = {n: raw_sha256(p) for n, (p, _, _) in made.items() if not n.startswith("ova")}
    return {"made": made, "content": content, "raw": raw_sha256(raw, "raw")}


KINDS = [
    "vhdx_dynamic", "vhdx_fixed", "qcow2", "qcow2_compressed", "vdi", "monolithicSparse",
    "twoGbMaxExtentSparse", "monolithicFlat", "ova_stream", "ova_sparse", "raw_zeros",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_probe_names_format_and_plan(kind: str, sources: dict[str, Any], tmp_path: Path) -> None:
    path, fmt, action = sources["made"][kind]
    result = cli(cli_env(tmp_path / "home", tmp_path), "probe", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == fmt and report["importable"] is True
    assert report["virtual_bytes"] == (32 * MIB if kind == "raw_zeros" else SIZE)
    assert report["plan"]["action"] == action
    assert report["plan"]["upload_format"] == "VMDK"
    assert 0 < report["plan"]["send_bytes_estimate"] <= report["virtual_bytes"]
    if kind in ("twoGbMaxExtentSparse", "monolithicFlat"):
        assert report["extents"] and all(e["found"] for e in report["extents"])
    if kind.startswith("ova"):
        assert report["ova"]["disk"] == "vm-disk1.vmdk" and report["ova"]["left_out"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_imported_through_the_sandbox_with_the_same_content(
    kind: str, sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    path, _, action = sources["made"][kind]
    home = tmp_path / "home"
    profile = write_profile(
        tmp_path, f"conv-{kind.lower().replace('_', '-')}", path, sandbox_bucket, after=KEEP_UPLOAD
    )
    env = cli_env(home, tmp_path)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile), "--json", "--poll", "0.2")
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    names = [e["event"] for e in evs]
    assert evs[-1]["event"] == "done" and evs[-1]["state"] == "completed"
    assert evs[0]["event"] == "probe" and evs[0]["plan"] == action
    if action == "convert":
        assert names.index("converted") < names.index("uploaded")
        converted = next(e for e in evs if e["event"] == "converted")
        assert converted["reused"] is False
        # Removed once the import completed.
        assert not Path(converted["path"]).exists()
    else:
        assert "converted" not in names
    uploaded = next(e for e in evs if e["event"] == "uploaded")
    image = tmp_path / "from-s3.vmdk"
    image.write_bytes(reassemble(s3, sandbox_bucket, uploaded["manifest_key"]))
    want = sources["content"].get(kind, sources["raw"])
    assert raw_sha256(image, "vmdk") == want
    (record,) = records(home)
    assert record["image_format"] == "VMDK" and record["image_bytes"] == image.stat().st_size
    if kind == "raw_zeros":
        assert image.stat().st_size < path.stat().st_size // 4  # the zeros were not sent


def test_conversion_reused_when_source_unchanged(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, tmp_path: Path
) -> None:
    path = sources["made"]["qcow2"][0]
    env = cli_env(tmp_path / "home", tmp_path)
    profile = write_profile(tmp_path, "reuse", path, sandbox_bucket)
    first = cli(env, "--endpoint-url", sandbox, "upload", str(profile), "--json")
    assert first.returncode == 0, first.stderr
    made = next(e for e in events(first.stdout) if e["event"] == "converted")
    assert made["reused"] is False and Path(made["path"]).is_file()
    assert oct(Path(made["path"]).stat().st_mode & 0o777) == "0o600"
    assert oct(Path(made["path"]).parent.stat().st_mode & 0o777) == "0o700"
    second = cli(env, "--endpoint-url", sandbox, "upload", str(profile), "--json")
    again = next(e for e in events(second.stdout) if e["event"] == "converted")
    assert again["reused"] is True and again["path"] == made["path"]
    assert [e for e in events(second.stdout) if e["event"] == "convert"] == []


def test_text_mode_shows_the_plan_and_the_conversion(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, tmp_path: Path
) -> None:
    path = sources["made"]["vhdx_dynamic"][0]
    profile = write_profile(tmp_path, "text", path, sandbox_bucket)
    result = cli(cli_env(tmp_path / "home", tmp_path), "--endpoint-url", sandbox, "upload",
                 str(profile))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "convert: ImportInstance does not take VHDX" in result.stderr
    assert "converted VHDX to a stream-optimized VMDK" in result.stderr


def test_never_refuses_what_needs_converting(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any, tmp_path: Path
) -> None:
    path = sources["made"]["vdi"][0]
    profile = write_profile(tmp_path, "never", path, sandbox_bucket, convert="never")
    result = cli(cli_env(tmp_path / "home", tmp_path), "--endpoint-url", sandbox, "run",
                 str(profile))  # fmt: skip
    assert result.returncode == 2
    assert 'convert = "never"' in result.stderr and "qemu-img convert" in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket)["KeyCount"] == 0


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message, exit 2, nothing uploaded


def _bad(kind: str, sources: dict[str, Any], root: Path) -> tuple[Path, str]:
    made = sources["made"]
    if kind == "qcow2-backing":
        child = root / "child.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(made["qcow2"][0]),
                        "-F", "qcow2", str(child)], check=True)  # fmt: skip
        return child, "backing file"
    if kind == "missing-extent":
        folder = root / "flat"
        folder.mkdir()
        desc = qemu_convert(made["monolithicFlat"][0].with_name("source.raw"), folder / "d.vmdk",
                            "vmdk", "-o", "subformat=monolithicFlat")  # fmt: skip
        (folder / "d-flat.vmdk").unlink()
        return desc, "d-flat.vmdk"
    if kind == "truncated-vhdx":
        data = made["vhdx_dynamic"][0].read_bytes()
        cut = root / "cut.vhdx"
        cut.write_bytes(data[: len(data) // 3])
        return cut, "qemu-img cannot read this VHDX"
    if kind == "ova-no-disk":
        folder = root / "empty-ova"
        folder.mkdir()
        write_ovf(folder / "vm.ovf", [])
        return make_ova(folder, "empty.ova", ["vm.ovf"]), "lists no disk"
    if kind == "tar-not-ova":
        folder = root / "tar"
        folder.mkdir()
        (folder / "notes.txt").write_text("hello\n" * 200)
        return make_ova(folder, "backup.tar", ["notes.txt"]), "not an OVA"
    raise AssertionError(kind)


BAD = ["qcow2-backing", "missing-extent", "truncated-vhdx", "ova-no-disk", "tar-not-ova"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_refused_nothing_sent(
    kind: str, sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    path, hint = _bad(kind, sources, tmp_path)
    env = cli_env(tmp_path / "home", tmp_path)
    probed = cli(env, "probe", str(path), "--json")
    assert probed.returncode == 2
    report = json.loads(probed.stdout)
    assert report["importable"] is False and any(hint in p for p in report["problems"]), report
    profile = write_profile(tmp_path, "bad", path, sandbox_bucket)
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile))
    assert result.returncode == 2, result.stderr
    assert hint in result.stderr and "Traceback" not in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket)["KeyCount"] == 0
    assert records(tmp_path / "home") == []


@pytest.fixture
def small_cache(tmp_path: Path) -> Any:
    """The home's cache folder on a 2 MiB tmpfs (we run as root in CI; skipped elsewhere)."""
    cache = tmp_path / "home" / "cache"
    cache.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(cache)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield cache
    subprocess.run(["umount", str(cache)], check=True)


def test_no_free_space_refused_with_figures(
    small_cache: Path, sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    path = sources["made"]["raw_zeros"][0]
    profile = write_profile(tmp_path, "full", path, sandbox_bucket)
    result = cli(cli_env(tmp_path / "home", tmp_path), "--endpoint-url", sandbox, "run",
                 str(profile))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "free in" in result.stderr and str(small_cache) in result.stderr
    assert "Traceback" not in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket)["KeyCount"] == 0
    assert list(small_cache.iterdir()) == [] or not any(small_cache.rglob("*.vmdk"))


def test_missing_qemu_img_names_the_package(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any, tmp_path: Path
) -> None:
    path = sources["made"]["qcow2"][0]
    profile = write_profile(tmp_path, "noqemu", path, sandbox_bucket)
    env = cli_env(tmp_path / "home", tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = shutil.which("python3") or "python3"
    (bin_dir / "python3").symlink_to(python)
    env["PATH"] = str(bin_dir)  # no qemu-img on it
    result = cli(env, "--endpoint-url", sandbox, "run", str(profile))
    assert result.returncode == 2, result.stderr
    assert "qemu-utils" in result.stderr and "Traceback" not in result.stderr
    assert s3.list_objects_v2(Bucket=sandbox_bucket)["KeyCount"] == 0


def test_multi_disk_ova_says_what_is_left_out(sources: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    raw = sources["made"]["vdi"][0].with_name("source.raw")
    for name in ("boot.vmdk", "data.vmdk"):
        qemu_convert(raw, folder / name, "vmdk", "-o", "subformat=streamOptimized")
    write_ovf(
        folder / "vm.ovf", [("boot.vmdk", "streamOptimized"), ("data.vmdk", "streamOptimized")]
    )
    ova = make_ova(folder, "two.ova", ["vm.ovf", "boot.vmdk", "data.vmdk"])
    result = cli(cli_env(tmp_path / "home", tmp_path), "probe", str(ova), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ova"]["disk"] == "boot.vmdk"
    assert report["ova"]["left_out"] == ["data.vmdk"]
    assert any("left out: data.vmdk" in w for w in report["warnings"])


def test_small_descriptor_is_named_a_descriptor(sources: dict[str, Any]) -> None:
    """Issue 18 item 6: a descriptor under 512 bytes is a descriptor, not "too small"."""
    from tui.core.disk import probe_bytes

    desc = sources["made"]["monolithicFlat"][0]
    data = desc.read_bytes().rstrip(b"\0")  # qemu-img pads it to a sector; editors do not
    assert len(data) < 512
    r = probe_bytes(data, data, len(data), str(desc))
    assert r.variant == "VMDK descriptor (monolithicFlat)"
    assert not any("too small" in p for p in r.problems)


def test_sandbox_fails_a_broken_deflate_stream_as_ec2_does(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, tmp_path: Path
) -> None:
    """Header, grain directory and footer intact, one grain's deflated bytes zeroed: the probe
    cannot see it (it reads the two ends); EC2, inflating every grain, fails the task."""
    good = sources["made"]["ova_stream"][0].parent / "vm-disk1.vmdk"
    data = bytearray(good.read_bytes())
    first_grain = 128 * 512 + 12 + 64  # past the header's 128 sectors and the grain marker
    data[first_grain : first_grain + 256] = bytes(256)
    broken = tmp_path / "broken.vmdk"
    broken.write_bytes(bytes(data))
    home = tmp_path / "home"
    profile = write_profile(tmp_path, "broken-stream", broken, sandbox_bucket)
    result = cli(cli_env(home, tmp_path), "--endpoint-url", sandbox, "run", str(profile),
                 "--json", "--poll", "0.2")  # fmt: skip
    assert result.returncode == 1, result.stderr
    done = events(result.stdout)[-1]
    assert done["state"] == "cancelled"
    assert "Uncompressed data has invalid length" in json.dumps(events(result.stdout))


def test_resume_reuses_the_conversion_and_cleanup_removes_it(
    sources: dict[str, Any], sandbox: str, sandbox_bucket: str, s3: Any, tmp_path: Path
) -> None:
    """The record names the converted file: `resume` reuses it (same parts, nothing made
    again), and it is gone once the import completes; `cleanup` removes another run's."""
    path = sources["made"]["vdi"][0]
    home = tmp_path / "home"
    env = cli_env(home, tmp_path)
    profile = write_profile(tmp_path, "resume-conv", path, sandbox_bucket)
    first = cli(env, "--endpoint-url", sandbox, "upload", str(profile), "--json")
    assert first.returncode == 0, first.stderr
    made = next(e for e in events(first.stdout) if e["event"] == "converted")
    (record,) = records(home)
    assert record["converted_path"] == made["path"] and Path(made["path"]).is_file()
    resumed = cli(env, "--endpoint-url", sandbox, "resume", record["run_id"], "--json",
                  "--poll", "0.2")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    evs = events(resumed.stdout)
    again = next(e for e in evs if e["event"] == "converted")
    assert again["reused"] is True and again["path"] == made["path"]
    assert evs[-1]["state"] == "completed"
    assert not Path(made["path"]).exists()

    other = write_profile(tmp_path, "cleanup-conv", path, sandbox_bucket, key_prefix="other")
    second = cli(env, "--endpoint-url", sandbox, "upload", str(other), "--json")
    assert second.returncode == 0, second.stderr
    converted = Path(next(e for e in events(second.stdout) if e["event"] == "converted")["path"])
    run_id = next(r for r in records(home) if r["run_id"] != record["run_id"])["run_id"]
    cleaned = cli(env, "--endpoint-url", sandbox, "cleanup", run_id)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed the converted image" in cleaned.stdout and not converted.exists()


def test_interrupt_during_conversion_stops_qemu_img(
    sandbox: str, sandbox_bucket: str, s3: Any, tmp_path: Path, qemu_img: str
) -> None:
    """Ctrl-C while qemu-img converts: qemu-img is killed, no partial file stays in the cache,
    nothing is sent, exit 130."""
    import signal
    import sys

    from tests.helpers.cli import LiveRun
    from tests.helpers.disks import with_mbr

    image = tmp_path / "busy.raw"
    with image.open("wb") as fh:  # random data: qemu-img deflates it for a few seconds
        fh.write(with_mbr(os.urandom(8 * MIB)))  # a partition table: the preflight lets it by
        for _ in range(23):
            fh.write(os.urandom(8 * MIB))
    home = tmp_path / "home"
    profile = write_profile(tmp_path, "interrupt", image, sandbox_bucket, convert="always")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--endpoint-url", sandbox, "run", str(profile), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(home, tmp_path),
    )  # fmt: skip
    live = LiveRun(proc)
    try:
        live.wait_event(lambda e: e["event"] == "convert", timeout=60)
        proc.send_signal(signal.SIGINT)
        assert live.wait(60) == 130, live.stderr
    finally:
        live.kill()
    cache = home / "cache" / "converted"
    assert list(cache.iterdir()) == []
    assert not [c for c in _command_lines() if b"qemu-img" in c and bytes(image) in c]
    assert s3.list_objects_v2(Bucket=sandbox_bucket)["KeyCount"] == 0


def _command_lines() -> list[bytes]:
    """Every process's command line, from /proc (no procps needed)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" "))
            except OSError:
                continue  # ended meanwhile
    return lines
