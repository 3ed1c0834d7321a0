"""Writing images to files, atomically: the only module that creates, renames or deletes them.

Every write goes to a temporary file in the destination folder, then is renamed into
place, so a failed or interrupted call leaves no partial file and never damages an
existing one. A name is taken with a hard link (or ``O_EXCL``), which fails atomically if
another thread or process took it first; which names to try is the caller's choice.

A temporary file is locked (``flock``) for as long as its writer holds it, so a later run
removes only the temporary files of writers that are gone, whatever PID namespace they ran in.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from llamabot_imagebot._exceptions import ContentCredentialsWarning, ImageFormatWarning, warn
from llamabot_imagebot._formats import (
    EXTENSIONS,
    SNIFF_BYTES,
    SUFFIX_MIME,
    TAIL_BYTES,
    iter_chunks,
    require_complete,
    require_image,
)
from llamabot_imagebot._provenance import EMBEDDABLE, HEAD_BYTES, content_credentials, plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, BinaryIO

    Source = bytes | memoryview | Iterable[bytes | memoryview]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: temporary files are judged by age alone
    fcntl = None  # type: ignore[assignment]

_COPY_CHUNK = 1 << 20
_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
_HOST = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum() or c == "-")[:32] or "host"
#: ImageBot's temporary files, exactly: ``.imagebot-<host>-<pid>-<16 hex digits>.part``.
PART_NAME = re.compile(r"\.imagebot-[A-Za-z0-9-]{1,32}-\d{1,10}-[0-9a-f]{16}\.part")
#: A temporary file this old is a killed run's even where locks cannot tell (no ``flock``).
STALE_PART_SECONDS = 3600
#: A temporary file younger than this is left alone: its writer may not have locked it yet.
FRESH_PART_SECONDS = 2.0
_SALT = secrets.randbits(32)
_COUNT = itertools.count()
_swept: set[Path] = set()
_swept_lock = threading.Lock()


@contextlib.contextmanager
def _part(folder: Path) -> Iterator[tuple[Path, int]]:
    """A new temporary file in ``folder``, open (its descriptor) and locked while the block runs; removed unless kept.

    The caller keeps the file by renaming or linking it away inside the block; whatever is left
    under the temporary name when the block ends is deleted. A descriptor, not a file object:
    ``os.fdopen`` makes three more system calls (fstat, isatty, lseek), each handing the GIL to
    another of a batch's busy threads; ``_buffered`` gives one where a library needs it.
    """
    # os.open with 0o666 honours the umask, unlike mkstemp's 0o600.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for tries_left in range(3, -1, -1):
        # A random part per process and a count: unique without asking the OS for randomness each time
        # (a system call, which hands the GIL to another of a batch's busy threads).
        tmp = folder / f".imagebot-{_HOST}-{os.getpid()}-{_SALT:08x}{next(_COUNT) & 0xFFFFFFFF:08x}.part"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # the folder is made when first needed: a batch's items then skip a mkdir each
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # another machine's process with our host name, PID and random part
            if tries_left:
                continue
            raise
        break
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp, fd
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(fd)


def _buffered(fd: int) -> BinaryIO:
    """A file object over a temporary file's descriptor (for Pillow and copies), leaving the descriptor open."""
    return os.fdopen(fd, "wb", closefd=False)


def write_all(fd: int, chunk: bytes | memoryview) -> None:
    """Write all of ``chunk``: ``os.write`` may write less (a disk filling up), which must not pass unseen."""
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def _fill(fd: int, source: Source, cancel: threading.Event | None, complete: bool) -> str:
    """Write ``source`` into the file ``fd``; return the MIME type its bytes say (``InvalidImageError`` if none)."""
    head, tail, size, mime = b"", b"", 0, None
    chunks = iter_chunks(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        if mime is None:
            head += bytes(chunk[: SNIFF_BYTES - len(head)])
            if len(head) >= SNIFF_BYTES:
                mime = require_image(head, "The generated image")
        write_all(fd, chunk)
        size += len(chunk)
        tail = (tail + bytes(chunk[-TAIL_BYTES:]))[-TAIL_BYTES:]
    mime = mime or require_image(head, "The generated image")
    if complete:  # a download can be cut short; bytes the provider sent inline cannot
        require_complete(head, tail, size, mime)
    os.fsync(fd)
    return mime


def write(
    source: Source,
    path: Path,
    *,
    provenance: dict[str, Any] | None = None,
    complete: bool = False,
    cancel: threading.Event | None = None,
) -> Path:
    """Write an image to ``path`` atomically, replacing any file there.

    :param source: The image's bytes, or its body in chunks (a download).
    :param path: Its destination; parent folders are created. Without an extension, the image's real one is added.
    :param provenance: Metadata to embed (or keep in a sidecar); ``None`` writes the bytes as sent.
    :param complete: Refuse a PNG, JPEG or WEBP whose structure says it was cut short (for downloads).
    :param cancel: When set, the write stops and nothing is left behind.
    :return: Where it was written.
    """
    path = Path(path)
    return _place(source, path.parent, provenance, complete, cancel, path=path)


def write_new(
    source: Source,
    folder: Path,
    names: Iterable[str],
    *,
    suffix: str | None = None,
    provenance: dict[str, Any] | None = None,
    complete: bool = False,
    cancel: threading.Event | None = None,
) -> Path:
    """Write an image under the first of ``names`` (stems, without extension) that no file has.

    :param suffix: The extension to use (the image is converted to it where possible); by default its real one.
    :return: The path written; never one that existed before.
    """
    return _place(source, Path(folder), provenance, complete, cancel, names=names, suffix=suffix)


def _place(
    source: Source,
    folder: Path,
    provenance: dict[str, Any] | None,
    complete: bool,
    cancel: threading.Event | None,
    *,
    path: Path | None = None,
    names: Iterable[str] = (),
    suffix: str | None = None,
) -> Path:
    remove_stale_parts(folder)
    with _part(folder) as (tmp, fd):
        mime = _fill(fd, source, cancel, complete)
        if path is not None and not path.suffix:  # "dog" would be a PNG no program opens by name: "dog.png"
            path = path.with_name(path.name + EXTENSIONS[mime])
        wanted = path if path is not None else (folder / f"x{suffix}" if suffix else None)
        with _converted(tmp, mime, wanted) as (tmp, mime), _embedded(tmp, mime, provenance) as (tmp, sidecar):
            if path is not None:
                os.replace(tmp, path)
            else:
                path = _claim(tmp, folder, names, suffix or EXTENSIONS[mime])
    if sidecar and provenance is not None:
        _write_sidecar(path, provenance)
    return path


def _claim(tmp: Path, folder: Path, names: Iterable[str], suffix: str) -> Path:
    """Give ``tmp`` the first free name, atomically, without ever replacing a file."""
    for stem in names:
        target = folder / f"{stem}{suffix}"
        try:
            os.link(tmp, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.EINVAL):
                raise
            # No hard links here (some network and FAT file systems): reserve the name with
            # O_EXCL, then replace our own empty placeholder.
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                continue
            os.replace(tmp, target)
        return target
    msg = f"No free file name left for {suffix} files in {folder}."
    raise FileExistsError(msg)


@contextlib.contextmanager
def _converted(tmp: Path, mime: str, path: Path | None) -> Iterator[tuple[Path, str]]:
    """``tmp`` converted to the format ``path``'s extension names (Pillow), or as it is with a warning."""
    wanted = SUFFIX_MIME.get(path.suffix.lower()) if path is not None else None
    if path is None or wanted is None or wanted == mime:
        yield tmp, mime
        return
    if mime in _PILLOW_FORMATS and wanted in _PILLOW_FORMATS:
        try:
            from PIL import Image
        except ImportError:
            pass
        else:
            if content_credentials(read_bytes(tmp, HEAD_BYTES), mime):
                warn(
                    f"Converting the generated {mime} to {wanted} for {path.name!r} drops the provider's "
                    "Content Credentials (its signed C2PA manifest): the converted file cannot carry them. "
                    f"Save it as {path.stem}{EXTENSIONS[mime]} to keep them.",
                    ContentCredentialsWarning,
                )
            with _part(tmp.parent) as (converted, fd), Image.open(tmp) as img, _buffered(fd) as file:
                out = img.convert("RGB") if wanted == "image/jpeg" and img.mode not in ("RGB", "L") else img
                out.save(file, format=_PILLOW_FORMATS[wanted])
                file.flush()
                os.fsync(fd)
                yield converted, wanted
            return
    warn(
        f"The generated image is {mime} but {path.name!r} names {wanted}; wrote the {mime} bytes unchanged. "
        "Install Pillow (pip install 'llamabot-imagebot[pillow]') to convert, "
        f"or save it as {path.stem}{EXTENSIONS[mime]}.",
        ImageFormatWarning,
    )
    yield tmp, mime


@contextlib.contextmanager
def _embedded(tmp: Path, mime: str, provenance: dict[str, Any] | None) -> Iterator[tuple[Path, bool]]:
    """``tmp`` with provenance embedded, and whether a sidecar is needed instead.

    Only the file's start is read and rewritten; the rest is copied as it is.
    """
    if provenance is None:
        yield tmp, False
        return
    if mime not in EMBEDDABLE:
        yield tmp, True
        return
    with open(tmp, "rb") as source:
        head = source.read(HEAD_BYTES)
        planned = (
            None if content_credentials(head, mime) else plan(head, os.fstat(source.fileno()).st_size, mime, provenance)
        )
        if planned is None:  # the provider's signed manifest must stay byte for byte where it is
            source.close()
            yield tmp, True
            return
        keep_from, head, tail = planned
        with _part(tmp.parent) as (out, fd), _buffered(fd) as file:
            file.write(head)
            source.seek(keep_from)
            shutil.copyfileobj(source, file, _COPY_CHUNK)
            file.write(tail)
            file.flush()
            os.fsync(fd)
            source.close()
            yield out, False


def _write_sidecar(path: Path, provenance: dict[str, Any]) -> None:
    """Write ``<file>.json`` beside an image that cannot carry its provenance inside."""
    with _part(path.parent) as (tmp, fd):
        write_all(fd, json.dumps(provenance, ensure_ascii=False, indent=2).encode("utf-8"))
        os.fsync(fd)
        os.replace(tmp, sidecar_path(path))


def sidecar_path(path: Path) -> Path:
    """Where the provenance of an image that cannot carry it inside is kept."""
    return path.with_name(path.name + ".json")


def read_bytes(path: Path, limit: int = -1) -> bytes:
    """A file's bytes, or its first ``limit`` bytes."""
    with open(path, "rb") as file:
        return file.read(limit)


def _writer_gone(part: Path) -> bool:
    """Whether no one holds this temporary file open: its writer is gone (the lock dies with the process).

    This process's own files, and files made in the last two seconds (whose writer may be between
    creating and locking them), are never judged gone.
    """
    age = time.time() - part.stat().st_mtime
    if fcntl is None:
        return age > STALE_PART_SECONDS
    if age < FRESH_PART_SECONDS or f"-{os.getpid()}-" in part.name:
        return False
    fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def remove_stale_parts(folder: Path) -> None:
    """Delete a killed run's temporary files in ``folder``, once per folder and process.

    Only names in ImageBot's exact pattern are touched, and only when no process holds them
    (their writer's lock is gone), so a live writer's file, even another machine's on a shared
    folder, is never removed.
    """
    seen = folder.absolute()  # no system call: a batch's every item asks
    if seen in _swept:
        return
    key = folder.resolve()
    with _swept_lock:
        if key in _swept:
            _swept.add(seen)
            return
        _swept.update((key, seen))
    with contextlib.suppress(OSError):
        entries = list(os.scandir(folder))
        for entry in entries:
            if PART_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):  # gone already, or not ours to delete
                    if _writer_gone(Path(entry.path)):
                        os.unlink(entry.path)
