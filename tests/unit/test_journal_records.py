"""The journal's own rules, on real files: run ids are checked before any path is built from
them, `check_writable` says which folder cannot take a record and what to do, and a record
round-trips through its file (an older record, without the fields added since, still loads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.records import make_record
from tui.core.errors import EXIT_BAD_INPUT, InputError
from tui.core.identity import identify
from tui.core.journal import DamagedRecord, Journal, RunRecord


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "g" * 36, "", "0" * 8 + "/.."])
def test_no_path_is_built_from_an_id_that_is_not_a_run_id(tmp_path: Path, bad: str) -> None:
    journal = Journal(tmp_path / "runs")
    for build in (journal.path_for, journal.lock_path_for, journal.load):
        with pytest.raises(InputError) as refused:
            build(bad)
        assert refused.value.field == "RUN_ID" and "is not a run id" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_record_round_trips_and_an_older_one_still_loads(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(1 << 20))
    journal = Journal(tmp_path / "runs")
    record = make_record(
        image_path=str(image), bucket="my-bucket", image_bytes=1 << 20, image_format="RAW",
        image_identity=identify(image), part_size=1 << 18, parts_total=4, parts_done=[0, 2],
        state="uploading",
    )  # fmt: skip
    journal.save(record)
    assert journal.load(record.run_id) == record
    path = journal.path_for(record.run_id)
    older = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("image_identity",)}
    path.write_text(json.dumps(older))
    loaded = journal.load(record.run_id[:8])  # prefix lookups work as they did
    assert loaded.image_identity is None and loaded.parts_done == [0, 2]
    assert loaded.confirmed_parts() == {}  # no checksums: a resume re-checks those parts
    journal.save(make_record(run_id=record.run_id[:8] + "-0000-4000-8000-000000000002"))
    with pytest.raises(InputError, match="matches several runs"):
        journal.load(record.run_id[:4])


def test_a_damaged_record_names_its_file_and_field(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "runs")
    record = make_record()
    journal.save(record)
    path = journal.path_for(record.run_id)
    path.write_text(json.dumps({**json.loads(path.read_text()), "parts_total": -1}))
    with pytest.raises(DamagedRecord) as damaged:
        journal.load(record.run_id)
    assert damaged.value.exit_code == EXIT_BAD_INPUT and damaged.value.source == str(path)
    assert str(damaged.value).startswith(f"run record {path} is damaged: parts_total: ")
    assert journal.scan().damaged[0].path == path and journal.list() == []


def test_check_writable_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("a file where the state folder should be")
    journal = Journal(tmp_path / "home" / "runs")
    with pytest.raises(InputError) as refused:
        journal.check_writable()
    assert refused.value.source == str(journal.root)
    assert "is not a folder" in str(refused.value) and "EC2_IMPORT_WIZARD_HOME" in str(
        refused.value
    )
    ok = Journal(tmp_path / "state" / "runs")
    ok.check_writable()  # makes the folder, leaves nothing in it
    assert list(ok.root.iterdir()) == []


def test_confirmed_parts_keep_their_checksums(tmp_path: Path) -> None:
    """Each confirmed part's MD5 is saved beside its index, so a resume need not re-read the
    part to know it; checksums that do not pair with the parts are a damaged record."""
    journal = Journal(tmp_path / "runs")
    record = make_record(part_size=1 << 18, parts_total=4, image_bytes=1 << 20)
    record.set_confirmed_parts({2: "b" * 32, 0: "a" * 32})
    journal.save(record)
    loaded = journal.load(record.run_id)
    assert (loaded.parts_done, loaded.confirmed_parts()) == ([0, 2], {0: "a" * 32, 2: "b" * 32})
    path = journal.path_for(record.run_id)
    for md5s, problem in (
        (["a" * 32], "parts_md5: 1 checksums for the 2 parts"),
        (["a" * 32, "not-hex"], "parts_md5: 'not-hex' is not an MD5"),
    ):
        path.write_text(json.dumps({**json.loads(path.read_text()), "parts_md5": md5s}))
        with pytest.raises(DamagedRecord, match=problem):
            journal.load(record.run_id)


def test_a_runs_part_log_saves_at_most_once_a_second(tmp_path: Path) -> None:
    """16,384 parts confirmed as fast as they come: the record is written a bounded number of
    times (the throttle plus the last save), and holds every part with its MD5 after it."""
    import time

    from tui.core.pipeline import PartLog

    saves: list[int] = []

    class Counting(Journal):
        def save(self, record: RunRecord) -> None:
            saves.append(len(record.parts_done))
            super().save(record)

    journal = Counting(tmp_path / "runs")
    n = 16384
    record = make_record(part_size=1 << 20, parts_total=n, image_bytes=n << 20)
    log = PartLog(journal, record, {})
    started = time.monotonic()
    for i in range(n):
        log.done(i, f"{i:032x}")
    log.flush()
    assert len(saves) <= time.monotonic() - started + 2
    loaded = journal.load(record.run_id)
    assert loaded.confirmed_parts() == {i: f"{i:032x}" for i in range(n)}
