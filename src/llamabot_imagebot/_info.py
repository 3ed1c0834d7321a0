"""Reading back what made a saved image: our record, and the provider's signed Content Credentials."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from llamabot_imagebot import _credentials
from llamabot_imagebot._files import sidecar_path
from llamabot_imagebot._formats import SNIFF_BYTES, sniff_mime
from llamabot_imagebot._provenance import content_credentials, extract, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def image_info(path: str | Path) -> dict[str, Any] | None:
    """Read back what made a saved image: our record, and the provider's Content Credentials.

    :param path: An image saved with provenance (``imagebot_metadata=True``, or the command line).
    :return: Our record's fields (prompt, revised prompt, model, provider, settings, time,
        version), embedded in the file or kept in ``<file>.json``; plus, when the file carries
        a signed C2PA manifest, ``content_credentials`` (claim generator, issuer, AI source type,
        whether it validates). ``None`` if the file has neither. Never raises for a malformed or
        hostile file, and reads at most 2 MiB of it (the C2PA check reads the manifest).
    """
    path = Path(path)
    head, tail = file_ends(path)
    # The sidecar first: ImageBot writes one only where it could not embed, and a file may carry a
    # record that someone else put there.
    found = record(file_ends(sidecar_path(path))[0]) or extract(head, tail)
    mime = sniff_mime(head[:SNIFF_BYTES])
    if mime is not None and content_credentials(head, mime):
        found = {**(found or {}), "content_credentials": _credentials.describe(path, mime)}
    return found


#: How much of a file's start and end ``image_info`` reads: our records sit within them.
INFO_BYTES = 1 << 20


def file_ends(path: Path, limit: int = INFO_BYTES) -> tuple[bytes, bytes]:
    """A regular file's first and last ``limit`` bytes (the tail empty when the head holds it all;
    both empty for anything else: devices, pipes)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return b"", b""
        with path.open("rb") as file:
            head = file.read(limit)
            size = os.fstat(file.fileno()).st_size
            if size <= limit:
                return head, b""
            file.seek(max(limit, size - limit))
            return head, file.read(limit)
    except OSError:
        return b"", b""


def file_sha256(path: str | Path | None) -> str | None:
    """A file's SHA-256, read in slices (None when there is no such file)."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
