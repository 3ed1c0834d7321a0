"""An edit's inputs: every kind a user may pass, read once, checked, and handed to litellm as it reads them.

A path (``str`` or ``PathLike``), ``bytes``, a binary file object, or a ``GeneratedImage``
(one known only by URL is fetched with the same safe download as saving) becomes an
``InputImage``: its bytes, its real MIME type, a file name, and its SHA-256. litellm 1.110
uploads a ``str`` path as its literal text and fails on ``Path`` objects and
``(name, bytes, mime)`` tuples, so every input goes to it as a named in-memory file.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

from llamabot_imagebot import _download
from llamabot_imagebot._exceptions import InvalidImageError
from llamabot_imagebot._formats import EXTENSIONS, SNIFF_BYTES, sniff_mime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


#: The largest input any provider documents (OpenAI's 50 MB); each provider's own limit is checked before sending.
LARGEST = 50 * 1024 * 1024


class InputImage:
    """One input of an edit: its bytes, MIME type, a file name for the upload, and its SHA-256.

    :param data: The image's bytes.
    :param name: What it is called in messages and in the upload.
    :raises InvalidImageError: If the bytes are not a PNG, JPEG, WEBP, GIF or SVG image.
    """

    __slots__ = ("data", "mime_type", "name", "sha256")

    def __init__(self, data: bytes, name: str) -> None:
        mime = sniff_mime(data[:SNIFF_BYTES])
        if mime is None:
            msg = f"{name} is not an image (it starts with {data[:16]!r}); an edit takes PNG, JPEG, WEBP or GIF images."
            raise InvalidImageError(msg)
        self.data = data
        self.mime_type = mime
        self.name = name
        self.sha256 = hashlib.sha256(data).hexdigest()

    def upload(self) -> io.BytesIO:
        """A named in-memory file of the image: what litellm uploads correctly (a new one per attempt)."""
        stem = Path(self.name).stem if self.name and not self.name.startswith("<") else "image"
        upload = io.BytesIO(self.data)
        upload.name = f"{stem}{EXTENSIONS[self.mime_type]}"
        return upload

    def __repr__(self) -> str:
        return f"InputImage({self.name!r}, {self.mime_type}, {len(self.data):,} bytes, sha256={self.sha256[:12]}…)"


def read(value: Any, what: str, *, max_bytes: int, timeout: float = 600.0) -> InputImage:
    """One input as an ``InputImage``, checked before anything is sent.

    :param value: A path, bytes, a binary file object or a ``GeneratedImage``.
    :param what: What it is (``"image 1"``, ``"the mask"``), for messages.
    :param max_bytes: The provider's documented limit for one input.
    :raises FileNotFoundError: For a path that does not exist.
    :raises InvalidImageError: For what is not an image, or is over ``max_bytes``.
    :raises TypeError: For any other kind of value.
    """
    if isinstance(value, (str, os.PathLike)):
        data, name = _from_path(Path(value), what, max_bytes), str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, name = bytes(value), f"<{what}>"
    elif hasattr(value, "read"):
        data, name = _from_file(value, what, max_bytes), str(getattr(value, "name", f"<{what}>"))
    elif hasattr(value, "mime_type") and hasattr(value, "url"):  # a GeneratedImage
        data = (
            value.data
            if value.data is not None
            else _download.fetch_image(value.url or "", timeout=timeout, max_bytes=max_bytes)
        )
        name = str(value.path or f"<{what}>")
    else:
        msg = f"{what} must be a path, bytes, a binary file or a GeneratedImage, not {type(value).__name__}."
        raise TypeError(msg)
    if len(data) > max_bytes:
        raise InvalidImageError(_too_big(name, len(data), max_bytes))
    return InputImage(data, name)


def _from_path(path: Path, what: str, max_bytes: int) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError:
        msg = f"{what} ({path}) does not exist; nothing was sent."
        raise FileNotFoundError(msg) from None
    if not stat.S_ISREG(info.st_mode):
        msg = f"{what} ({path}) is not a regular file; nothing was sent."
        raise InvalidImageError(msg)
    if info.st_size > max_bytes:
        raise InvalidImageError(_too_big(str(path), info.st_size, max_bytes))
    return path.read_bytes()


def _from_file(file: Any, what: str, max_bytes: int) -> bytes:
    data = file.read(max_bytes + 1)
    if isinstance(data, str):
        msg = f"{what} is a file opened as text; open it in binary mode (open(path, 'rb'))."
        raise TypeError(msg)
    return bytes(data)


def _too_big(name: str, size: int, max_bytes: int) -> str:
    return (
        f"{name} is {size:,} bytes, over the {max_bytes:,} bytes the provider accepts for an edit's input; "
        "nothing was sent. Make it smaller (a lower resolution, or JPEG/WEBP)."
    )
