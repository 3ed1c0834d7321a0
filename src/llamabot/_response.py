"""Turn a litellm image response into image results: references, bytes, MIME types.

Pure code: no network and no files. Fetching a URL and writing files live in
:mod:`llamabot._io`; :class:`GeneratedImage` only delegates to it on request.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamabot._exceptions import InvalidImageError, NoImageError

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

    :param head: The first bytes of the content; :data:`SNIFF_BYTES` suffice.
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


def iter_base64(data: str, chunk_chars: int = 4 << 20) -> Iterator[bytes]:
    """Decode base64 piece by piece, so a large image is never held whole in memory.

    :param data: Base64 text.
    :param chunk_chars: Characters per piece (a multiple of 4).
    :return: An iterator over the decoded bytes.
    :raises InvalidImageError: If ``data`` is not valid base64.
    """
    if len(data) % 4 or "\n" in data or " " in data or "\r" in data:
        yield decode_base64(data)  # unusual layout: one tolerant decode
        return
    for start in range(0, len(data), chunk_chars):
        try:
            yield base64.b64decode(data[start : start + chunk_chars], validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = "The provider's b64_json image data is not valid base64."
            raise InvalidImageError(msg) from exc


def _base64_head(data: str) -> bytes:
    """Decode just enough of a base64 string to sniff its format."""
    chunk = "".join(data[: SNIFF_BYTES * 2].split())
    if len(data) > SNIFF_BYTES * 2:
        chunk = chunk[: len(chunk) // 4 * 4]
    return decode_base64(chunk)


@dataclass(frozen=True)
class DataURI:
    """A parsed ``data:`` URI."""

    mime_type: str
    payload: str
    is_base64: bool

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

    def head(self) -> bytes:
        """Return the first bytes the URI carries, without decoding all of it."""
        if self.is_base64:
            return _base64_head(self.payload)
        return urllib.parse.unquote_to_bytes(self.payload[: SNIFF_BYTES * 3])


def _field(obj: Any, name: str) -> Any:
    """Read ``name`` from a pydantic object, a plain object or a mapping."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str | None:
    """Return ``value`` if it is a non-empty string (mocks and None are not)."""
    return value if isinstance(value, str) and value else None


class GeneratedImage:
    """One generated image: a URL, or base64 data, as the provider returned it.

    :param url: The image URL (``http(s)://`` or ``data:``), if the provider sent one.
    :param b64_json: Base64 image data, if the provider sent it.
    :param revised_prompt: The prompt as the provider rewrote it, if it did.
    :param prompt: The prompt this image was made from.
    :param model: The model that made it.
    :param path: Where the image was last saved, once it has been.
    """

    def __init__(
        self,
        url: str | None = None,
        b64_json: str | None = None,
        revised_prompt: str | None = None,
        prompt: str | None = None,
        model: str | None = None,
        path: Path | None = None,
        _data: bytes | None = None,
        _mime: str | None = None,
        _timeout: float = DEFAULT_TIMEOUT,
        _max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.url = url
        self.b64_json = b64_json
        self.revised_prompt = revised_prompt
        self.prompt = prompt
        self.model = model
        self.path = path
        self._data = _data
        self._mime = _mime
        self._timeout = _timeout
        self._max_bytes = _max_bytes
        self._bundle: dict[str, Any] | None = None

    def __repr__(self) -> str:
        """Show where the image is, never megabytes of base64."""
        if self.url and not self.is_data_uri:
            where = f"url={self.url[:80]!r}"
        else:
            where = f"mime_type={self.mime_type!r}, base64_chars={len(self.b64_json or self.url or '')}"
        return f"GeneratedImage({where}, revised_prompt={self.revised_prompt!r})"

    @property
    def is_data_uri(self) -> bool:
        """Whether the image arrived as a ``data:`` URI in ``url``."""
        return (self.url or "")[:5].lower() == "data:"

    @property
    def is_remote(self) -> bool:
        """Whether the image must be downloaded from an ``http(s)`` URL."""
        return bool(self.url) and not self.is_data_uri and not self.b64_json

    @property
    def mime_type(self) -> str:
        """The image's real MIME type, read from its bytes (a URL is fetched once)."""
        if self._mime is None:
            self._mime = require_image(self.head(), "The generated image")
        return self._mime

    @property
    def extension(self) -> str:
        """The file extension of the image's real format, such as ``.png``."""
        return EXTENSIONS[self.mime_type]

    def head(self) -> bytes:
        """Return the image's first bytes, decoding as little as possible."""
        if self._data is not None:
            return self._data[:SNIFF_BYTES]
        if self.b64_json:
            return _base64_head(self.b64_json)
        if self.is_data_uri:
            return DataURI.parse(self.url or "").head()
        return self.data[:SNIFF_BYTES]

    @property
    def data(self) -> bytes:
        """The image bytes: base64 decoded, or the URL downloaded (once, then kept)."""
        if self._data is None:
            if self.b64_json:
                self._data = decode_base64(self.b64_json)
            elif self.is_data_uri:
                self._data = DataURI.parse(self.url or "").decode()
            elif self.url:
                from llamabot import _io

                self._data = _io.fetch_bytes(self.url, timeout=self._timeout, max_bytes=self._max_bytes)
            else:  # pragma: no cover - parse_response never builds such an image
                raise NoImageError("This image has neither a URL nor base64 data.")
            self._mime = require_image(self._data[:SNIFF_BYTES], "The generated image")
        return self._data

    @property
    def data_uri(self) -> str:
        """The image as a ``data:`` URI carrying its real MIME type."""
        if self.is_data_uri and not self.b64_json:
            return self.url or ""
        if self.b64_json:
            payload = self.b64_json if "\n" not in self.b64_json else "".join(self.b64_json.split())
        else:
            payload = base64.b64encode(self.data).decode("ascii")
        return f"data:{self.mime_type};base64,{payload}"

    @property
    def reference(self) -> str:
        """What ``return_url=True`` returns: the URL as is, else a data URI."""
        if self.url:
            if self.is_data_uri:
                self.mime_type  # noqa: B018 - a data URI must carry image data
            return self.url
        return self.data_uri

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Show the image when it is a notebook cell's value (computed once, then kept)."""
        if self._bundle is None:
            from llamabot._notebook import mimebundle

            self._bundle = mimebundle(self)
        return self._bundle

    def _repr_png_(self) -> bytes | None:
        """PNG for notebooks, when the image (or its thumbnail) is a PNG."""
        return self._repr_mimebundle_().get("image/png")

    def _repr_jpeg_(self) -> bytes | None:
        """JPEG for notebooks, when the image (or its thumbnail) is a JPEG."""
        return self._repr_mimebundle_().get("image/jpeg")

    def _repr_svg_(self) -> str | None:
        """SVG for notebooks, when the image is an SVG."""
        return self._repr_mimebundle_().get("image/svg+xml")

    def _repr_html_(self) -> str | None:
        """An ``<img>`` pointing at the URL, for URL results (nothing is downloaded)."""
        return self._repr_mimebundle_().get("text/html")

    def save(self, path: str | Path) -> Path:
        """Write the image to ``path`` atomically, creating parent folders.

        :param path: Where to write it; an existing file is replaced whole.
        :return: The path written.
        """
        from llamabot import _io

        return _io.save_image(self, Path(path), timeout=self._timeout, max_bytes=self._max_bytes)


class GeneratedImages(list[GeneratedImage]):
    """Every image of one response, in order, with what the call cost.

    :param images: The images.
    :param cost: The cost in USD where litellm reports it, else ``None``.
    :param model: The model that made them.
    :param prompt: The prompt they were made from.
    """

    def __init__(
        self,
        images: Iterable[GeneratedImage] = (),
        *,
        cost: float | None = None,
        model: str | None = None,
        prompt: str | None = None,
    ) -> None:
        super().__init__(images)
        #: The settings sent to the provider, without prompt, model or credentials.
        self.settings: dict[str, Any] = {}
        self.cost = cost
        self.model = model
        self.prompt = prompt

    def __repr__(self) -> str:
        """Show the images and the cost."""
        return f"GeneratedImages({list.__repr__(self)}, cost={self.cost!r})"

    def _repr_html_(self) -> str:
        """Show every image side by side when the list is a notebook cell's value."""
        from llamabot._notebook import gallery_html

        return gallery_html(self)


def _items(response: Any) -> list[Any]:
    data = _field(response, "data")
    if isinstance(data, (list, tuple)):
        return list(data)
    try:
        return list(data or [])
    except TypeError:
        return []


def parse_response(
    response: Any,
    *,
    prompt: str | None = None,
    model: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cost: float | None = None,
) -> GeneratedImages:
    """Collect every image of a litellm ``ImageResponse`` (or a look-alike).

    :param response: What ``litellm.image_generation`` returned.
    :param prompt: The prompt, kept on each image.
    :param model: The model, kept on each image.
    :param timeout: Seconds a later download of a URL image may wait at each step.
    :param max_bytes: Largest download accepted for a URL image.
    :param cost: What the response cost in USD, where known.
    :return: The images, at least one.
    :raises NoImageError: If the response holds no image.
    """
    images = GeneratedImages(cost=cost, model=model, prompt=prompt)
    for item in _items(response):
        url, b64 = _text(_field(item, "url")), _text(_field(item, "b64_json"))
        if url or b64:
            revised = _text(_field(item, "revised_prompt"))
            images.append(
                GeneratedImage(
                    url=url,
                    b64_json=b64,
                    revised_prompt=revised,
                    prompt=prompt,
                    model=model,
                    _timeout=timeout,
                    _max_bytes=max_bytes,
                )
            )
    if not images:
        msg = f"No images found in response from {model or 'the provider'}. " + _why_empty(model)
        raise NoImageError(msg)
    return images


_EMPTY_REASONS = {
    "openrouter/": "OpenRouter's model answered with text only: it declined the prompt or could not draw it.",
    "gemini/": "Gemini answers without an image when its safety filter blocks the prompt (finishReason SAFETY).",
    "vertex_ai/": "Vertex answers without an image when its safety filter blocks the prompt.",
}


def _why_empty(model: str | None) -> str:
    """What an empty answer usually means for this provider (litellm drops the provider's own words)."""
    for prefix, reason in _EMPTY_REASONS.items():
        if (model or "").startswith(prefix):
            return f"{reason} Rephrase the prompt or try again."
    return "The provider may have refused the prompt (content policy); rephrase it or try again."


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


def iter_chunks(data: bytes, size: int = 1 << 20) -> Iterator[memoryview]:
    """Yield ``data`` in slices without copying it."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]
