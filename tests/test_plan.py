"""The batch's decisions without a server: the spending cap, the journal, the plan."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import llamabot as lmb
from llamabot_imagebot import _journal
from llamabot_imagebot._operations import Generate
from llamabot_imagebot._plan import Plan, Spending
from llamabot_imagebot._settings import Settings
from tests.fakes import PNG

SETTINGS = Settings(model="gpt-image-2", size="1024x1024", n=1, timeout=600, response_format="url")


class Bar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def plan(folder: Path, prompts: list[str], settings: Settings = SETTINGS, **options: object) -> Plan:
    chosen = {
        "save_dir": folder,
        "save_path": None,
        "journaled": True,
        "resume": None,
        "max_cost": None,
        "retry_refused": False,
        "progress": Bar(),
        **options,
    }
    return Plan(settings, [Generate(p) for p in prompts], **chosen)  # type: ignore[arg-type]


# The spending cap --------------------------------------------------------------------------


@pytest.mark.parametrize("reported", [0, -5.0, math.nan, math.inf, -math.inf, None, "0.01", True])
def test_a_cost_that_cannot_be_trusted_leaves_the_estimate_standing(reported):
    """A reported 0, negative, NaN, infinite, missing or non-numeric cost: the cap still holds at the list price."""
    cap = Spending(max_cost=0.04, price=0.01)
    sent = 0
    for index in range(20):
        if cap.admit(index, in_flight=0) is not True:
            break
        cap.settle(index, reported, failed=False)
        sent += 1
    assert sent == 4


def test_the_dearest_reported_cost_raises_the_estimate():
    """A prompt that cost more than listed makes every later estimate that much."""
    cap = Spending(max_cost=0.05, price=0.01)
    assert cap.admit(0, 0) is True
    cap.settle(0, 0.02, failed=False)
    assert cap.estimate() == 0.02
    admitted = [cap.admit(i, 0) for i in range(1, 4)]
    for i in range(1, 4):
        if admitted[i - 1]:
            cap.settle(i, 0.02, failed=False)
    assert admitted == [True, False, False] or sum(a is True for a in admitted) == 1


def test_an_unknown_price_sends_one_alone_then_stops_if_it_stays_unknown():
    """No price: one prompt goes alone (the others wait for it); an unknown cost then sends nothing more."""
    cap = Spending(max_cost=1.0, price=None)
    assert cap.admit(0, in_flight=0) is True
    assert cap.admit(1, in_flight=1) is None  # waits for the first
    cap.settle(0, None, failed=False)
    assert cap.admit(1, in_flight=0) is False and "unknown" in cap.reason("m")


def test_the_journals_spent_figures_are_checked_too(tmp_path):
    """A journal claiming -1000 (or NaN) was spent does not turn the cap off on resume."""
    (tmp_path / "a.png").write_bytes(PNG)
    first = plan(tmp_path, ["a"])
    key = first._keys[0]
    first.close()
    lines = [
        {"v": 1, "key": key, "index": 0, "prompt": "a", "paths": ["a.png"], "cost": -1000},
        {"v": 1, "key": "other", "index": 1, "prompt": "b", "paths": ["a.png"], "cost": float("nan")},
    ]
    (tmp_path / _journal.NAME).write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with pytest.warns(lmb.JournalWarning):
        resumed = plan(tmp_path, ["a"], max_cost=0.5)
    assert resumed.spending.spent == 0.0 and [r.index for r in resumed.resumed] == [0]
    resumed.close()


# The journal ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        ["../x.png"],
        ["/etc/passwd.png"],
        ["notes.txt"],
        ["a\x00b.png"],
        ["x" * 300 + ".png"],
        5,
        [["a.png"]],
        [None],
        [],
    ],
)
def test_a_tampered_journal_line_is_skipped_with_one_warning(tmp_path, paths):
    """Names outside the folder, not an image's, with a NUL or too long, or of the wrong type: skipped, never a crash."""
    record = {"v": 1, "key": "k", "index": 0, "prompt": "p", "paths": paths}
    (tmp_path / _journal.NAME).write_text(json.dumps(record) + "\n")
    with pytest.warns(lmb.JournalWarning) as caught:
        records = _journal.read(tmp_path / _journal.NAME)
    assert len(caught) == 1 and "paths" not in records.get("k", {})


def test_a_planned_name_is_never_another_files(tmp_path):
    """A journal planning `notes.txt` (or a hidden or outside name) for a prompt: the name is not used."""
    (tmp_path / "notes.txt").write_text("mine")
    first = plan(tmp_path, ["notes"])
    key = first._keys[0]
    first.close()
    for stem in ("notes.txt", "../escape", ".hidden"):
        (tmp_path / _journal.NAME).write_text(
            json.dumps({"v": 1, "key": key, "index": 0, "prompt": "notes", "stem": stem}) + "\n"
        )
        with pytest.warns(lmb.JournalWarning):
            again = plan(tmp_path, ["notes"])
        assert again.stems[0] == "notes_2" and 0 not in again._known  # "notes" is notes.txt's stem
        again.close()


def test_a_symlink_out_of_the_folder_is_never_adopted(tmp_path):
    """A journal naming a file that is a symlink (to an image elsewhere) does not count it as made."""
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.png").symlink_to(outside)
    assert _journal.complete_files(folder, ["a.png"]) is None


def test_a_journal_that_is_a_link_fifo_or_device_is_not_used(tmp_path):
    """A symlinked journal is not followed or written through; a FIFO neither hangs nor is read."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / _journal.NAME).symlink_to(target)
    with pytest.warns(lmb.JournalWarning):
        assert _journal.read(linked / _journal.NAME) == {}
    with pytest.raises(OSError, match="not a regular file|link"):
        _journal.Journal(linked)
    assert target.read_text() == "untouched\n"
    piped = tmp_path / "piped"
    piped.mkdir()
    os.mkfifo(piped / _journal.NAME)
    with pytest.warns(lmb.JournalWarning):
        assert _journal.read(piped / _journal.NAME) == {}


def test_a_second_run_in_the_same_folder_is_refused(tmp_path):
    """While one run holds the folder's journal, a second is refused at once, saying what to do."""
    first = _journal.Journal(tmp_path)
    with pytest.raises(lmb.FolderBusyError, match="wait for that one to finish"):
        _journal.Journal(tmp_path)
    first.close()
    _journal.Journal(tmp_path).close()  # free again once the first is done


def test_a_torn_last_line_is_cut_before_the_next_run_writes(tmp_path):
    """A line a crash cut short is dropped, so the next run's lines start clean (and read back without warning)."""
    path = tmp_path / _journal.NAME
    path.write_text('{"v": 1, "key": "a", "stem": "a"}\n{"v": 1, "key": "b", "st')
    journal = _journal.Journal(tmp_path)
    journal.append(_journal.planned_line("c", 2, "c", "c"))
    journal.close()
    assert set(_journal.read(path)) == {"a", "c"}


def test_a_lone_surrogate_in_a_prompt_is_still_a_line_of_valid_utf8(tmp_path):
    """A prompt holding a lone surrogate is journaled (escaped), and read back."""
    journal = _journal.Journal(tmp_path)
    journal.append(_journal.planned_line("k", 0, "bad \ud800 text", "bad_text"))
    journal.close()
    (tmp_path / _journal.NAME).read_text(encoding="utf-8")
    assert _journal.read(tmp_path / _journal.NAME)["k"]["prompt"] == "bad \ud800 text"


# The plan ---------------------------------------------------------------------------------


def test_each_prompt_gets_a_name_no_file_or_other_prompt_has(tmp_path):
    """Stems come from the prompts; a name a file has, or another prompt took, gets the next number."""
    (tmp_path / "a_cat.png").write_bytes(PNG)
    planned = plan(tmp_path, ["A cat", "a cat", "A dog"])
    assert planned.stems == {0: "a_cat_2", 1: "a_cat_3", 2: "a_dog"}
    planned.close()


def test_a_file_saved_before_a_crash_with_n_2_is_adopted_whole(tmp_path):
    """Two images saved under their planned names, then a crash before the journal said so: both adopted, none paid again."""
    settings = Settings(model="gpt-image-2", size="1024x1024", n=2, timeout=600, response_format="url")
    first = plan(tmp_path, ["a fox"], settings)
    assert first.write_down(None, 0)
    first.close()
    (tmp_path / "a_fox.png").write_bytes(PNG)
    (tmp_path / "a_fox_2.png").write_bytes(PNG)
    again = plan(tmp_path, ["a fox"], settings)
    assert [sorted(p.name for p in r.paths) for r in again.resumed] == [["a_fox.png", "a_fox_2.png"]]
    assert not again.todo
    again.close()
