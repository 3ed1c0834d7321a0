"""Pure facts about image bytes: formats, MIME types, base64, data URIs, file names.

No network, no files, no other llamabot module but the exceptions: the value type
(``llamabot._response``), the I/O (``llamabot._io``) and the notebook display
(``llamabot._notebook``) all build on it.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse

from llamabot_imagebot._exceptions import InvalidImageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
}
SUFFIX_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}
# Enough bytes to recognise every format above, SVG's XML prologue included.
SNIFF_BYTES = 1024
#: Largest image, in bytes, downloaded from a URL, unless a bot says otherwise.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
#: Seconds a download may wait for the server at each step, unless a bot says otherwise.
DEFAULT_TIMEOUT = 600.0

_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)
_MAX_STEM = 60


def sniff_mime(head: bytes) -> str | None:
    """Return the image MIME type that ``head`` (the first bytes) starts with.

    :param head: The first bytes of the content; ``SNIFF_BYTES`` suffice.
    :return: ``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif``,
        ``image/svg+xml``, or ``None`` when the bytes are not a known image.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    return None


def require_image(head: bytes, what: str) -> str:
    """Return the MIME type of ``head``, or raise if it is not an image.

    :param head: The first bytes of the content.
    :param what: Where the bytes came from, for the error message.
    :return: The sniffed MIME type.
    :raises InvalidImageError: If the bytes are not PNG, JPEG, WEBP, GIF or SVG.
    """
    mime = sniff_mime(head)
    if mime is None:
        preview = head[:32].decode("latin-1").encode("unicode_escape").decode("ascii")
        msg = (
            f"{what} is not an image (it starts with {preview!r}); expected PNG, "
            "JPEG, WEBP, GIF or SVG. The provider may have answered with an error page."
        )
        raise InvalidImageError(msg)
    return mime


#: How much of a file's end :func:`require_complete` needs.
TAIL_BYTES = 16
_PNG_END = b"IEND\xaeB`\x82"


def require_complete(head: bytes, tail: bytes, size: int, mime: str) -> None:
    """Refuse a PNG, JPEG or WEBP whose structure says it was cut short (or padded).

    :param head: The file's first bytes (at least 12).
    :param tail: The file's last :data:`TAIL_BYTES` bytes.
    :param size: The file's size in bytes.
    :param mime: Its sniffed MIME type; other formats are not checked.
    :raises InvalidImageError: If the image is incomplete.
    """
    problem = None
    if mime == "image/png" and not tail.endswith(_PNG_END):
        problem = "a PNG ends with an IEND chunk"
    elif mime == "image/jpeg" and not tail.rstrip(b"\x00\r\n").endswith(b"\xff\xd9"):
        problem = "a JPEG ends with an end-of-image marker"
    elif mime == "image/webp" and int.from_bytes(head[4:8], "little") + 8 != size:
        problem = f"this WEBP says it is {int.from_bytes(head[4:8], 'little') + 8:,} bytes long"
    if problem:
        msg = (
            f"The generated image is incomplete ({size:,} bytes, but {problem}); nothing was saved. "
            "The download was cut short or the provider sent a damaged file: generate it again."
        )
        raise InvalidImageError(msg)


def decode_base64(data: str | bytes) -> bytes:
    """Decode base64 image data strictly, tolerating line breaks and missing padding.

    :param data: Base64 text.
    :return: The decoded bytes.
    :raises InvalidImageError: If ``data`` is not valid base64.
    """
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Slow path only for unusual input: some providers wrap lines or drop padding.
    compact = "".join(data.decode("ascii", "replace").split() if isinstance(data, bytes) else data.split())
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = "The provider's b64_json image data is not valid base64."
        raise InvalidImageError(msg) from exc


class DataURI:
    """A parsed ``data:`` URI."""

    __slots__ = ("is_base64", "mime_type", "payload")

    def __init__(self, mime_type: str, payload: str, is_base64: bool) -> None:
        self.mime_type, self.payload, self.is_base64 = mime_type, payload, is_base64

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataURI):
            return NotImplemented
        return (self.mime_type, self.payload, self.is_base64) == (other.mime_type, other.payload, other.is_base64)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def parse(cls, uri: str) -> DataURI:
        """Parse ``data:[<mime>][;base64],<payload>``.

        :param uri: The data URI.
        :return: Its parts.
        :raises InvalidImageError: If ``uri`` is not a well-formed data URI.
        """
        header, sep, payload = uri.partition(",")
        if not sep or not header.lower().startswith("data:"):
            msg = "The image reference is not a well-formed data: URI."
            raise InvalidImageError(msg)
        params = header[5:].split(";")
        is_b64 = params[-1].strip().lower() == "base64"
        mime = params[0].strip().lower() or "text/plain"
        return cls(mime, payload, is_b64)

    def decode(self) -> bytes:
        """Return the bytes the URI carries."""
        if self.is_base64:
            return decode_base64(self.payload)
        return urllib.parse.unquote_to_bytes(self.payload)


def slugify(prompt: str, max_length: int = _MAX_STEM) -> str:
    """Derive a safe, readable file stem from a prompt.

    Lowercase ASCII words joined by ``_``, at most ``max_length`` characters,
    never empty, never a path separator, leading dot or Windows device name.

    :param prompt: Any text.
    :param max_length: The longest stem to return.
    :return: The stem, such as ``a_painting_of_a_sunset``.
    """
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode("ascii")
    stem = ""
    for word in re.findall(r"[a-z0-9]+", ascii_text.lower()):
        candidate = f"{stem}_{word}" if stem else word
        if len(candidate) > max_length:
            stem = stem or word[:max_length]
            break
        stem = candidate
    stem = stem or "image"
    return f"{stem}_image" if stem in _WINDOWS_RESERVED else stem


def numbered(stem: str, number: int) -> str:
    """The ``number``-th name for a stem: ``stem`` itself, then ``stem_2``, ``stem_3``…"""
    return stem if number == 1 else f"{stem}_{number}"


def iter_chunks(data: bytes | bytearray | memoryview, size: int = 1 << 20) -> Iterator[memoryview]:
    """Yield ``data`` in slices without copying it."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]
