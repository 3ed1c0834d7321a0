"""A batch's journal: JSON lines in the output folder, so a re-run resumes where a run stopped.

Two lines per prompt, each flushed at once: before it is sent, the file name chosen for
it (``stem``); once its files are saved, their names (``paths``). So a crash between
the two leaves a file the re-run recognises by its planned name, instead of making the
image again under another name. A line torn by a crash is skipped on reading. A prompt is known by
a key made from the settings that shape its images (model, size, quality, n and the
extra provider arguments), its text and which occurrence of that text it is, so a
re-run with other settings makes new images, and a prompt listed twice is made twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

NAME = ".imagebot-journal.jsonl"
VERSION = 1
#: Settings that change how a request travels, not which image comes back.
_TRANSPORT = frozenset({"timeout", "num_retries", "api_base", "api_version", "api_key", "response_format"})


def fingerprint(model: str, settings: Mapping[str, Any]) -> str:
    """What the images of a batch depend on, besides the prompt (credentials and transport left out)."""
    shaping = {key: value for key, value in settings.items() if key not in _TRANSPORT and value is not None}
    text = json.dumps([model, shaping], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prompt_keys(prompts: Iterable[str], settings_fingerprint: str) -> list[str]:
    """Each prompt's key: its settings, its text and its occurrence (the second "a fox" is not the first)."""
    seen: dict[str, int] = {}
    keys = []
    for prompt in prompts:
        occurrence = seen.get(prompt, 0)
        seen[prompt] = occurrence + 1
        text = json.dumps([settings_fingerprint, prompt, occurrence])
        keys.append(hashlib.sha256(text.encode()).hexdigest()[:24])
    return keys


def read(path: Path) -> dict[str, dict[str, Any]]:
    """Each key's record in the journal at ``path``: its planned ``stem`` and, once saved, its ``paths``."""
    records: dict[str, dict[str, Any]] = {}
    try:
        with path.open("rb") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(record, dict) and record.get("v") == VERSION and isinstance(record.get("key"), str):
                    records[record["key"]] = {**records.get(record["key"], {}), **record}
    except FileNotFoundError:
        pass
    return records


def find_saved(folder: Path, stem: str) -> list[Path] | None:
    """The image saved under a planned ``stem`` (any image extension), if one is there and complete."""
    from llamabot._formats import EXTENSIONS

    for suffix in dict.fromkeys(EXTENSIONS.values()):
        found = complete_files(folder, [f"{stem}{suffix}"])
        if found:
            return found
    return None


def intact(record: Mapping[str, Any], folder: Path) -> list[Path] | None:
    """The record's files, if every one is still there and a complete image.

    A file edited since (another size, still a whole image) counts as there: it is
    yours now, and making it again would be paid for twice.
    """
    names = record.get("paths")
    if not isinstance(names, list) or not names:
        return None
    return complete_files(folder, [str(name) for name in names])


def complete_files(folder: Path, names: list[str]) -> list[Path] | None:
    """The files ``names`` in ``folder``, if every one is there and a complete image."""
    from llamabot._formats import require_complete, sniff_mime
    from llamabot._io import _ends

    paths = []
    for name in names:
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return None
        head, tail = _ends(path)
        mime = sniff_mime(head)
        if mime is None:
            return None
        try:
            require_complete(head, tail or head, size, mime)
        except ValueError:
            return None
        paths.append(path)
    return paths


def _ends_torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a write cut short)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            if file.tell() == 0:
                return False
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except OSError:
        return False


def _relative(path: Path, folder: Path) -> str:
    """``path``'s name inside ``folder`` (no system call in the usual case: the batch named it so)."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return os.path.relpath(path, folder)


class Journal:
    """The journal of one batch in ``folder``, appended to from any thread.

    :param folder: The batch's output folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / NAME
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def planned(self, key: str, index: int, prompt: str, stem: str) -> None:
        """Record the file name chosen for a prompt, before it is sent."""
        self._write({"v": VERSION, "key": key, "index": index, "prompt": prompt, "stem": stem})

    def append(self, key: str, index: int, prompt: str, paths: Iterable[Path], cost: float | None) -> None:
        """Record one saved prompt: written and flushed before this returns."""
        record = {
            "v": VERSION,
            "key": key,
            "index": index,
            "prompt": prompt,
            "paths": [_relative(path, self.folder) for path in paths],
            "cost": cost,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                torn = _ends_torn(self.path)
                self._file = self.path.open("a", encoding="utf-8")
                if torn:  # a crash mid-line: end it, or this record would be glued to it
                    self._file.write("\n")
            self._file.write(line)
            self._file.flush()  # a kill -9 after this keeps the line (the OS has it)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
