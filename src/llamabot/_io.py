"""The only I/O ImageBot does itself: download image URLs and write files atomically.

Every write goes to a temporary file in the destination folder, then is renamed
into place, so a failed or interrupted call leaves no partial file and never
damages an existing one. Derived names never overwrite: each image claims the
first free ``stem``, ``stem_2``, ``stem_3``… with a hard link, which fails
atomically if another thread or process took the name first.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import socket
import threading
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from llamabot._exceptions import ContentCredentialsWarning, ImageDownloadError, ImageFormatWarning
from llamabot._formats import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    EXTENSIONS,
    SNIFF_BYTES,
    SUFFIX_MIME,
    TAIL_BYTES,
    iter_chunks,
    numbered,
    require_complete,
    require_image,
)
from llamabot._provenance import EMBEDDABLE, HEAD_BYTES, content_credentials, extract, plan, record
from llamabot._redact import redact_url

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from llamabot._response import GeneratedImage

_CHUNK = 1 << 16
_COPY_CHUNK = 1 << 20
_MAX_REDIRECTS = 5
_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


def _check_scheme(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        msg = f"Refusing to fetch an image from a {scheme or 'relative'}: URL; only http and https are fetched."
        raise ImageDownloadError(msg)


def _remaining(deadline: float | None, timeout: float, url: str) -> float:
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        msg = f"Timed out downloading the generated image from {redact_url(url)}; raise `timeout` to wait longer."
        raise ImageDownloadError(errno.ETIMEDOUT, msg)
    return min(timeout, left)


def stream_url(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float | None = None,
) -> Iterator[bytes]:
    """Yield an image URL's body in chunks: http(s) only, redirects checked, size capped.

    :param url: The image URL.
    :param timeout: Seconds to wait for the server at each step.
    :param max_bytes: Largest body accepted.
    :param deadline: A ``time.monotonic()`` instant by which the download must end.
    :return: An iterator over the body's chunks.
    :raises ImageDownloadError: On a refused scheme, HTTP error, oversize body,
        network failure or timeout.
    """
    import requests
    import urllib3

    try:
        for _ in range(_MAX_REDIRECTS + 1):
            _check_scheme(url)
            response = requests.get(url, stream=True, allow_redirects=False, timeout=_remaining(deadline, timeout, url))
            if not response.is_redirect:
                break
            response.close()
            url = urllib.parse.urljoin(url, response.headers["location"])
        else:
            msg = f"Too many redirects fetching the generated image from {redact_url(url)}."
            raise ImageDownloadError(msg)
        with response:
            if response.status_code >= 400:
                msg = (
                    f"Downloading the generated image from {redact_url(url)} failed with HTTP "
                    f"{response.status_code} {response.reason}. Result URLs expire (OpenAI's after "
                    "60 minutes, Azure's after 24 hours): generate again and save promptly."
                )
                raise ImageDownloadError(msg)
            declared = response.headers.get("Content-Length", "")
            if isinstance(declared, str) and declared.isdigit() and int(declared) > max_bytes:
                raise ImageDownloadError(_too_large(url, max_bytes))
            total = 0
            # read1 returns whatever has arrived (at least a byte), so the deadline is checked
            # however slowly the server sends; iter_content would wait for whole 64 KiB chunks.
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageDownloadError(_too_large(url, max_bytes))
                _remaining(deadline, timeout, url)
                yield chunk
            if isinstance(declared, str) and declared.isdigit() and total != int(declared):
                msg = (
                    f"The download from {redact_url(url)} ended after {total:,} bytes, but the server "
                    f"announced {int(declared):,}; nothing was saved. Generate the image again."
                )
                raise ImageDownloadError(msg)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        msg = f"Could not download the generated image from {redact_url(url)}: {type(exc).__name__}."
        raise ImageDownloadError(msg) from exc


def _too_large(url: str, max_bytes: int) -> str:
    return (
        f"The image at {redact_url(url)} is larger than the {max_bytes:,}-byte limit; "
        "raise ImageBot.max_image_bytes if you expect images this large."
    )


def fetch_image(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Download an image URL into memory (size capped), refusing what is not an image.

    :param url: The image URL.
    :param timeout: Seconds to wait for the server at each step.
    :param max_bytes: Largest body accepted.
    :return: The image bytes.
    :raises InvalidImageError: If the body is not an image (an error page served as 200).
    """
    data = b"".join(stream_url(url, timeout=timeout, max_bytes=max_bytes))
    require_image(data[:SNIFF_BYTES], "The downloaded image")
    return data


def read_bytes(path: Path, limit: int = -1) -> bytes:
    """A file's bytes, or its first ``limit`` bytes."""
    with open(path, "rb") as file:
        return file.read(limit)


def _source(
    image: GeneratedImage, timeout: float, max_bytes: int, deadline: float | None
) -> Iterable[bytes | memoryview]:
    """The image's bytes in pieces: its bytes, or streamed from its URL."""
    if image.data is not None:
        return iter_chunks(image.data)
    return stream_url(image.url or "", timeout=timeout, max_bytes=max_bytes, deadline=deadline)


def _write_temp(
    image: GeneratedImage,
    directory: Path,
    timeout: float,
    max_bytes: int,
    deadline: float | None,
    cancel: threading.Event | None,
) -> tuple[Path, str]:
    """Write the image into a new temporary file in ``directory``; return it and the MIME type."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(directory)
    with _temp_file(directory) as (tmp, file):
        head, tail, size, mime = b"", b"", 0, None
        for chunk in _source(image, timeout, max_bytes, deadline):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            if mime is None:
                head += bytes(chunk[: SNIFF_BYTES - len(head)])
                if len(head) >= SNIFF_BYTES:
                    mime = require_image(head, "The generated image")
            file.write(chunk)
            size += len(chunk)
            tail = (tail + bytes(chunk[-TAIL_BYTES:]))[-TAIL_BYTES:]
        mime = mime or require_image(head, "The generated image")
        if image.data is None:  # a download can be cut short; bytes the provider sent inline cannot
            require_complete(head, tail, size, mime)
    return tmp, mime


#: A temporary file this old in a folder being saved into was left by a killed process.
STALE_PART_SECONDS = 3600
_HOST = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum() or c == "-")[:32] or "host"
_swept: set[Path] = set()
_swept_lock = threading.Lock()


def _writer_gone(part: Path) -> bool:
    """Whether the process that named this temporary file (on this machine) no longer runs."""
    fields = part.name[len(".imagebot-") : -len(".part")].rsplit("-", 2)
    if len(fields) != 3 or fields[0] != _HOST or not fields[1].isdigit() or os.name != "posix":
        return False  # another machine's (a shared folder), or an older name: only age tells
    try:
        os.kill(int(fields[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_stale_parts(directory: Path) -> None:
    """Delete a killed run's ``.imagebot-*.part`` files in ``directory``, once per folder and process.

    A file is stale when the process on this machine that wrote it is gone (a kill -9), or when
    it is over an hour old; a file another live process is writing is left alone.
    """
    key = directory.resolve()
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    cutoff = time.time() - STALE_PART_SECONDS
    for part in directory.glob(".imagebot-*.part"):
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if _writer_gone(part) or part.stat().st_mtime < cutoff:
                part.unlink()


def _match_suffix(tmp: Path, mime: str, path: Path) -> tuple[Path, str]:
    """Convert ``tmp`` to the format ``path``'s extension names, or warn if that cannot be done."""
    wanted = SUFFIX_MIME.get(path.suffix.lower())
    if wanted is None or wanted == mime:
        return tmp, mime
    if mime in _PILLOW_FORMATS and wanted in _PILLOW_FORMATS:
        try:
            from PIL import Image
        except ImportError:
            pass
        else:
            if content_credentials(read_bytes(tmp, HEAD_BYTES), mime):
                warnings.warn(
                    f"Converting the generated {mime} to {wanted} for {path.name!r} drops the provider's "
                    "Content Credentials (its signed C2PA manifest): the converted file cannot carry them. "
                    f"Save it as {path.stem}{EXTENSIONS[mime]} to keep them.",
                    ContentCredentialsWarning,
                    stacklevel=4,
                )
            converted = _temp_name(tmp.parent)
            try:
                with Image.open(tmp) as img:
                    out = img.convert("RGB") if wanted == "image/jpeg" and img.mode not in ("RGB", "L") else img
                    out.save(converted, format=_PILLOW_FORMATS[wanted])
            except BaseException:
                converted.unlink(missing_ok=True)
                raise
            tmp.unlink()
            return converted, wanted
    real = EXTENSIONS[mime]
    warnings.warn(
        f"The generated image is {mime} but {path.name!r} names {wanted}; wrote the {mime} "
        f"bytes unchanged. Install Pillow (pip install 'llamabot-imagebot[pillow]') to convert, "
        f"or save it as {path.stem}{real}.",
        ImageFormatWarning,
        stacklevel=4,
    )
    return tmp, mime


def _temp_name(directory: Path) -> Path:
    return directory / f".imagebot-{_HOST}-{os.getpid()}-{secrets.token_hex(8)}.part"


@contextlib.contextmanager
def _temp_file(directory: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """A new temporary file in ``directory``, open for writing: on disk when the block ends, gone if it fails."""
    tmp = _temp_name(directory)
    # os.open with 0o666 honours the umask, unlike mkstemp's 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            yield tmp, file
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _embed(tmp: Path, mime: str, provenance: dict[str, Any] | None) -> tuple[Path, bool]:
    """Embed provenance into the temporary file; return it and whether a sidecar is needed instead.

    Only the file's start is read and rewritten; the rest is copied as it is.
    """
    if provenance is None:
        return tmp, False
    if mime not in EMBEDDABLE:
        return tmp, True
    with open(tmp, "rb") as source:
        head = source.read(HEAD_BYTES)
        if content_credentials(head, mime):
            return tmp, True  # the provider's signed manifest must stay byte for byte where it is
        planned = plan(head, os.fstat(source.fileno()).st_size, mime, provenance)
        if planned is None:
            return tmp, True
        keep_from, head, tail = planned
        with _temp_file(tmp.parent) as (out, file):
            file.write(head)
            source.seek(keep_from)
            shutil.copyfileobj(source, file, _COPY_CHUNK)
            file.write(tail)
    tmp.unlink()
    return out, False


def _write_sidecar(path: Path, provenance: dict[str, Any]) -> None:
    """Write ``<file>.json`` beside an image that cannot carry its provenance inside."""
    with _temp_file(path.parent) as (tmp, file):
        file.write(json.dumps(provenance, ensure_ascii=False, indent=2).encode("utf-8"))
    os.replace(tmp, sidecar_path(path))


def sidecar_path(path: Path) -> Path:
    """Where the provenance of an image that cannot carry it inside is kept."""
    return path.with_name(path.name + ".json")


def image_info(path: str | Path) -> dict[str, Any] | None:
    """Read back what made a saved image: our record, and the provider's Content Credentials.

    :param path: An image saved with provenance (``imagebot_metadata=True``, or the command line).
    :return: Our record's fields (prompt, revised prompt, model, provider, settings, time,
        version), embedded in the file or kept in ``<file>.json``; plus, when the file carries
        a signed C2PA manifest, ``content_credentials`` (claim generator, issuer, AI source type,
        whether it validates). ``None`` if the file has neither. Never raises for a malformed or
        hostile file, and reads at most 2 MiB of it (the C2PA check reads the manifest).
    """
    from llamabot._formats import sniff_mime

    path = Path(path)
    head, tail = _ends(path)
    # The sidecar first: ImageBot writes one only where it could not embed, and a file may carry a
    # record that someone else put there.
    found = record(_ends(sidecar_path(path))[0]) or extract(head, tail)
    mime = sniff_mime(head[:SNIFF_BYTES])
    if mime is not None and content_credentials(head, mime):
        from llamabot import _credentials

        found = {**(found or {}), "content_credentials": _credentials.describe(path, mime)}
    return found


#: How much of a file's start and end ``image_info`` reads: our records sit within them.
INFO_BYTES = 1 << 20


def _ends(path: Path) -> tuple[bytes, bytes]:
    """A regular file's first and last :data:`INFO_BYTES` (empty for anything else: devices, pipes)."""
    import stat

    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return b"", b""
        with path.open("rb") as file:
            head = file.read(INFO_BYTES)
            size = os.fstat(file.fileno()).st_size
            if size <= INFO_BYTES:
                return head, b""
            file.seek(max(INFO_BYTES, size - INFO_BYTES))
            return head, file.read(INFO_BYTES)
    except OSError:
        return b"", b""


def save_image(
    image: GeneratedImage,
    path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``image`` to ``path`` atomically, replacing any file there.

    :param image: The image.
    :param path: Its destination; parent folders are created. Without an extension, the
        image's real one is added.
    :param timeout: Seconds to wait for a URL's server at each step.
    :param max_bytes: Largest download accepted.
    :param deadline: A ``time.monotonic()`` instant by which a download must end.
    :param cancel: When set, the write stops and nothing is left behind.
    :param provenance: Metadata to embed (or keep in a sidecar); ``None`` writes the bytes as sent.
    :return: Where it was written: ``path``, with the extension added if it had none.
    """
    path = Path(path)
    tmp, mime = _write_temp(image, path.parent, timeout, max_bytes, deadline, cancel)
    if not path.suffix:  # "dog" would be a PNG no program opens by name: "dog.png"
        path = path.with_name(path.name + EXTENSIONS[mime])
    try:
        tmp, mime = _match_suffix(tmp, mime, path)
        tmp, sidecar = _embed(tmp, mime, provenance)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if sidecar and provenance is not None:
        _write_sidecar(path, provenance)
    return path


def save_new(
    image: GeneratedImage,
    directory: Path,
    stem: str,
    *,
    suffix: str | None = None,
    start: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``image`` under the first free name ``stem``, ``stem_2``, … in ``directory``.

    :param image: The image.
    :param directory: The destination folder; created if missing.
    :param stem: The file name without extension.
    :param suffix: The extension to use; by default the one of the image's real format.
    :param start: The first number to try: 1 tries ``stem`` itself, 2 starts at ``stem_2``.
    :param timeout: Seconds to wait for a URL's server at each step.
    :param max_bytes: Largest download accepted.
    :param deadline: A ``time.monotonic()`` instant by which a download must end.
    :param cancel: When set, the write stops and nothing is left behind.
    :param provenance: Metadata to embed (or keep in a sidecar); ``None`` writes the bytes as sent.
    :return: The path written; never one that existed before.
    """
    directory = Path(directory)
    tmp, mime = _write_temp(image, directory, timeout, max_bytes, deadline, cancel)
    try:
        if suffix:
            tmp, mime = _match_suffix(tmp, mime, directory / f"{stem}{suffix}")
        tmp, sidecar = _embed(tmp, mime, provenance)
        path = _claim(tmp, directory, stem, suffix or EXTENSIONS[mime], start)
    finally:
        tmp.unlink(missing_ok=True)
    if sidecar and provenance is not None:
        _write_sidecar(path, provenance)
    return path


def _claim(tmp: Path, directory: Path, stem: str, suffix: str, start: int) -> Path:
    """Give ``tmp`` the first free name, atomically, without ever replacing a file."""
    for number in range(start, start + 100_000):
        target = directory / f"{numbered(stem, number)}{suffix}"
        try:
            os.link(tmp, target)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here (some network and FAT file systems): reserve the name
            # with O_EXCL, then replace our own empty placeholder.
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                continue
            os.replace(tmp, target)
        return target
    msg = f"No free file name left for {stem}{suffix} in {directory}."
    raise FileExistsError(msg)


def save_all(
    images: Sequence[GeneratedImage],
    prompt: str,
    save_path: str | os.PathLike[str] | None,
    directory: str | os.PathLike[str] | None,
    *,
    provenance: Sequence[dict[str, Any] | None],
    **limits: Any,
) -> list[Path]:
    """Save one response's images: the first at ``save_path`` (replaced whole), the others beside it
    as ``stem_2``, ``stem_3``…; without ``save_path``, under names from the prompt that never replace a file.

    :param images: The images, in order.
    :param prompt: The prompt, for derived names.
    :param save_path: Where the first image goes; a folder means "inside it, under a derived name".
    :param directory: The folder for derived names (default: the working folder, as a relative path).
    :param provenance: Each image's provenance to embed, or None.
    :param limits: ``timeout``, ``max_bytes``, ``deadline`` and ``cancel`` for the writes.
    :return: The paths written, in order.
    """
    from llamabot._formats import slugify

    if save_path is not None and Path(save_path).is_dir():
        directory, save_path = save_path, None
    paths = []
    for index, (image, meta) in enumerate(zip(images, provenance, strict=True)):
        if save_path is not None and index == 0:
            paths.append(save_image(image, Path(save_path), provenance=meta, **limits))
        elif save_path is not None:
            first = Path(save_path)
            suffix = first.suffix or None
            paths.append(
                save_new(image, first.parent, first.stem, suffix=suffix, start=index + 1, provenance=meta, **limits)
            )
        else:
            folder = Path(directory) if directory is not None else Path()
            paths.append(save_new(image, folder, slugify(prompt), start=index + 1, provenance=meta, **limits))
    return paths
