"""A batch's journal: JSON lines in the output folder, so a re-run resumes where a run stopped.

Two lines per prompt, each in the OS's hands before the batch goes on: before it is sent,
the file name chosen for it (``stem``); once its files are saved, their names (``paths``), or
that the provider refused it (``refused``). A worker of a batch writes the line of the item it
finished and the name of the next one it takes in one write. A crash between the two lines
leaves files the re-run recognises by their planned name, instead of paying for the images
again under other names. A prompt is known by a key made from the settings that shape its
images (model, size, quality, n and the extra provider arguments), its text, what it was made
from (an edit's inputs) and which occurrence of that text it is, so a re-run with other
settings makes new images, and a prompt listed twice is made twice.

The journal may come from a shared or downloaded folder: what it says is checked before use.
Names are plain file names inside the folder with an image extension, costs are finite and
positive, the journal itself is a regular file read with a size bound, and a bad line is
skipped with one warning. While a run uses it, it holds a lock on it: a second run of a batch
in the same folder is refused at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import threading
import time
from pathlib import Path

from llamabot_imagebot._exceptions import FolderBusyError, JournalWarning, warn
from llamabot_imagebot._files import write_all
from llamabot_imagebot._formats import EXTENSIONS, SNIFF_BYTES, SUFFIX_MIME, require_complete, sniff_mime
from llamabot_imagebot._info import file_ends

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one run per folder is up to the user
    fcntl = None  # type: ignore[assignment]

NAME = ".imagebot-journal.jsonl"
VERSION = 1
#: The largest journal read (a million prompts' lines fit in it); the rest is ignored, with a warning.
MAX_BYTES = 512 * 1024 * 1024
#: The longest file name written or adopted (most file systems allow 255 bytes).
MAX_NAME_BYTES = 240
_IMAGE_SUFFIXES = frozenset(SUFFIX_MIME)
#: Settings that change how a request travels, not which image comes back.
_TRANSPORT = frozenset({"timeout", "num_retries", "api_base", "api_version", "api_key", "response_format"})


def fingerprint(model: str, settings: Mapping[str, Any]) -> str:
    """What the images of a batch depend on, besides the prompt (credentials and transport left out)."""
    shaping = {key: value for key, value in settings.items() if key not in _TRANSPORT and value is not None}
    text = json.dumps([model, shaping], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def item_keys(items: Iterable[tuple[str, Any]], settings_fingerprint: str) -> list[str]:
    """Each item's key: the settings, its prompt, what it is made from, and its occurrence."""
    seen: dict[str, int] = {}
    keys = []
    for prompt, made_from in items:
        text = json.dumps([prompt, made_from], sort_keys=True, default=str)
        occurrence = seen.get(text, 0)
        seen[text] = occurrence + 1
        data = json.dumps(
            [settings_fingerprint, text, occurrence] if made_from else [settings_fingerprint, prompt, occurrence]
        )
        keys.append(hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:24])
    return keys


def safe_name(name: Any, *, image: bool) -> bool:
    """A name the journal may use: plain (no folder, not hidden, no NUL), short enough, and an image's
    file name (``image``) or a stem with no extension at all (the image's real one is added to it)."""
    if not isinstance(name, str) or not name or name in (".", "..") or name.startswith("."):
        return False
    if any(bad in name for bad in ("/", "\\", "\x00")) or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return False
    return os.path.splitext(name)[1].lower() in _IMAGE_SUFFIXES if image else "." not in name


def _checked(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record with every field that is not what ImageBot writes removed; whether anything was."""
    clean = dict(record)
    bad = False
    if "stem" in clean and not safe_name(clean["stem"], image=False):
        del clean["stem"]
        bad = True
    if "paths" in clean:
        paths = clean["paths"]
        if not isinstance(paths, list) or not paths or not all(safe_name(p, image=True) for p in paths):
            del clean["paths"]
            bad = True
    if "cost" in clean:
        cost = clean["cost"]
        ok = cost is None or (
            isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) and cost > 0
        )
        if not ok:
            clean["cost"] = None
            bad = True
    return clean, bad


def _open_regular(path: Path, flags: int) -> int:
    """Open ``path`` without following a symlink and without blocking on a FIFO; refuse anything but a file."""
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = f"{path} is not a regular file (a link, a device or a pipe): ImageBot will not use it as a journal."
        raise OSError(msg)
    return fd


def read(path: Path) -> dict[str, dict[str, Any]]:
    """Each key's record in the journal at ``path``: its planned ``stem`` and, once saved, its ``paths``."""
    records: dict[str, dict[str, Any]] = {}
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return records
    except OSError as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP: a symlink
            warn(f"{path} is a symbolic link: ImageBot does not follow it; the batch starts afresh.", JournalWarning)
            return records
        warn(f"{exc} The batch starts afresh.", JournalWarning)
        return records
    bad_lines = 0
    with os.fdopen(fd, "rb") as file:
        # read(MAX_BYTES + 1) would set aside MAX_BYTES of memory whatever the journal's size.
        data = file.read(min(os.fstat(fd).st_size, MAX_BYTES) + 1)
    if len(data) > MAX_BYTES:
        warn(f"{path} is over {MAX_BYTES:,} bytes; only its start was read.", JournalWarning)
        data = data[:MAX_BYTES]
    lines = data.split(b"\n")
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad_lines += number < len(lines) - 1  # the last line may be cut short by a crash: not a bad line
            continue
        if not (isinstance(record, dict) and record.get("v") == VERSION and isinstance(record.get("key"), str)):
            bad_lines += 1
            continue
        record, bad = _checked(record)
        bad_lines += bad
        records[record["key"]] = {**records.get(record["key"], {}), **record}
    if bad_lines:
        warn(
            f"{path}: {bad_lines} line{'s' * (bad_lines != 1)} that ImageBot did not write (or that name files "
            "outside the folder, or no image) were skipped.",
            JournalWarning,
        )
    return records


def intact(record: Mapping[str, Any], folder: Path) -> list[Path] | None:
    """The record's files, if every one is still there, a regular file, and a complete image.

    A file edited since (another size, still a whole image) counts as there: it is yours
    now, and making it again would be paid for twice.
    """
    names = record.get("paths")
    if not isinstance(names, list) or not names:
        return None
    return complete_files(folder, names)


def complete_files(folder: Path, names: Iterable[str]) -> list[Path] | None:
    """The files ``names`` in ``folder``, if every one is a regular file (not a link) and a complete image."""
    paths = []
    for name in names:
        if not safe_name(name, image=True):
            return None
        path = folder / name
        try:
            info = path.lstat()
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        head, tail = file_ends(path, SNIFF_BYTES)  # a resume reads thousands: a few bytes each tell a whole image
        mime = sniff_mime(head)
        if mime is None:
            return None
        try:
            require_complete(head, tail or head, info.st_size, mime)
        except ValueError:
            return None
        paths.append(path)
    return paths


def find_saved(folder: Path, stems: list[str]) -> list[Path] | None:
    """The images saved under planned names (``stems``: one per image, any image extension), if all are there."""
    found = []
    for stem in stems:
        match = None
        for suffix in dict.fromkeys(EXTENSIONS.values()):
            match = complete_files(folder, [f"{stem}{suffix}"])
            if match:
                break
        if not match:
            return None
        found += match
    return found


class Journal:
    """The journal of one batch in ``folder``, locked while the run uses it, appended to from any thread.

    :param folder: The batch's output folder (created if missing).
    :param fresh: Start the journal afresh (``resume=False``) instead of continuing it.
    :raises FolderBusyError: If another run holds the folder's journal.
    """

    def __init__(self, folder: Path, *, fresh: bool = False) -> None:
        self.folder = folder
        self.path = folder / NAME
        self._fd = -1
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        fd = _open_regular(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                msg = (
                    f"Another run is already making a batch in {folder} (it holds {NAME}). Two runs in one folder "
                    "would pay twice for the same prompts: wait for that one to finish (then run this again to "
                    "make what is missing), or give this run another folder."
                )
                raise FolderBusyError(msg) from None
        if fresh:
            os.ftruncate(fd, 0)
        else:
            _drop_torn_line(fd)
        self._fd = fd

    def saved(self, key: str, index: int, prompt: str, paths: Iterable[Path], cost: float | None) -> None:
        """Record one saved prompt: written before this returns."""
        self.append(saved_line(key, index, prompt, paths, cost))

    def append(self, lines: bytes) -> bool:
        """Append whole lines in one write (the OS has them when this returns); False if the journal is closed.

        Safe from any thread, without holding the batch's own lock: the file is opened to append,
        so each write lands whole at the end, and this lock only keeps ``close`` from taking the
        descriptor (whose number the OS could give another file) from a write under way.
        """
        with self._lock:
            if self._fd < 0:
                return False
            try:
                write_all(self._fd, lines)
            except OSError:
                with contextlib.suppress(OSError):  # the next line must not start inside a torn one
                    _drop_torn_line(self._fd)
                raise
            return True

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)  # closing the file releases the lock
                self._fd = -1


def planned_line(key: str, index: int, prompt: str, stem: str) -> bytes:
    """The line naming the file chosen for a prompt, written before it is sent."""
    return _line({"v": VERSION, "key": key, "index": index, "prompt": prompt, "stem": stem})


def saved_line(key: str, index: int, prompt: str, paths: Iterable[Path], cost: float | None) -> bytes:
    """The line of one saved prompt: its files' names and what it cost."""
    names = [Path(path).name for path in paths]
    return _line(
        {"v": VERSION, "key": key, "index": index, "prompt": prompt, "paths": names, "cost": cost, "time": _now()}
    )


def refused_line(key: str, index: int, prompt: str, reason: str) -> bytes:
    """The line saying the provider refused a prompt: a resumed run does not ask again unless told to."""
    return _line({"v": VERSION, "key": key, "index": index, "prompt": prompt, "refused": reason, "time": _now()})


def _line(record: dict[str, Any]) -> bytes:
    # ASCII escapes: a prompt holding a lone surrogate is still a line of valid UTF-8.
    return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _drop_torn_line(fd: int) -> None:
    """Cut a last line that lacks its newline (a write a crash cut short): this run's lines then start clean."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 16), max(0, size - (1 << 16)))
    if tail and not tail.endswith(b"\n"):
        cut = tail.rfind(b"\n")
        os.ftruncate(fd, size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= len(tail) else size))
