"""The response values: litellm's image response as ``GeneratedImage`` values, and a batch's results.

Making the values is pure (no network, no files). A value's ``save()`` and its notebook
display are one-line delegations to the modules that write files (``_files``, ``_download``)
and show images (``_notebook``), which know nothing of this one.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from llamabot_imagebot import _download, _files, _notebook, _routing
from llamabot_imagebot._exceptions import InvalidImageError, NoImageError, NotSentError
from llamabot_imagebot._formats import EXTENSIONS, SNIFF_BYTES, DataURI, decode_base64, require_image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _field(obj: Any, name: str) -> Any:
    """Read ``name`` from a pydantic object, a plain object or a mapping."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str | None:
    """Return ``value`` if it is a non-empty string (mocks and None are not)."""
    return value if isinstance(value, str) and value else None


class GeneratedImage:
    """One generated image, as a value: its bytes or its URL, its MIME type, the revised prompt.

    Immutable. Base64 and ``data:`` URIs are decoded when the value is made, and the MIME
    type is read from the bytes, so an image that is not one fails here. A URL is kept as
    it came (nothing is fetched): ``llamabot.bot.imagebot.generated_image_bytes``
    downloads it, ``save`` streams it to a file.

    :param url: The image URL as the provider sent it (``http(s)://`` or ``data:``).
    :param b64_json: Base64 image data, if the provider sent it.
    :param revised_prompt: The prompt as the provider rewrote it, if it did.
    :param prompt: The prompt this image was made from.
    :param model: The model that made it.
    :param path: Where it was saved (set on the values a saving call returns).
    :raises InvalidImageError: If the base64 or ``data:`` URI does not hold a PNG, JPEG,
        WEBP, GIF or SVG image.
    """

    __slots__ = ("_b64", "data", "mime_type", "model", "path", "prompt", "revised_prompt", "url")

    url: str | None
    data: bytes | None
    _b64: str | None
    mime_type: str | None
    revised_prompt: str | None
    prompt: str | None
    model: str | None
    path: Path | None

    def __init__(
        self,
        url: str | None = None,
        b64_json: str | None = None,
        revised_prompt: str | None = None,
        prompt: str | None = None,
        model: str | None = None,
        path: Path | None = None,
    ) -> None:
        data = None
        if b64_json:
            data = decode_base64(b64_json)
        elif url and url[:5].lower() == "data:":
            data, url = DataURI.parse(url).decode(), None
        elif url and urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
            # A provider's answer is untrusted: file:, javascript: and the like never come back.
            scheme = urllib.parse.urlsplit(url).scheme or "relative"
            msg = (
                f"The provider answered with a {scheme}: URL instead of an image; ImageBot only "
                "returns http(s) URLs and data:image/* URIs."
            )
            raise InvalidImageError(msg)
        fields = {
            "url": url if data is None else None,
            "data": data,
            # The provider's own base64 text is kept (not copied) so that b64_json costs nothing.
            "_b64": b64_json or None,
            "mime_type": None if data is None else require_image(data[:SNIFF_BYTES], "The generated image"),
            "revised_prompt": revised_prompt,
            "prompt": prompt,
            "model": model,
            "path": Path(path) if path is not None else None,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        msg = f"GeneratedImage is immutable; use image.replace({name}=...) for a changed copy."
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by fields (an immutable value: ``__setattr__`` refuses the default way)."""
        return (_restore_image, tuple(getattr(self, name) for name in self.__slots__))

    def replace(self, **changes: Any) -> GeneratedImage:
        """A copy with some fields changed (``path`` or ``revised_prompt``, say)."""
        copy = object.__new__(GeneratedImage)
        for name in self.__slots__:
            object.__setattr__(copy, name, changes.get(name, getattr(self, name)))
        return copy

    def __eq__(self, other: object) -> bool:
        """Images are equal when every field is."""
        if not isinstance(other, GeneratedImage):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__ if n != "_b64")

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show where the image is, never megabytes of base64."""
        where = f"url={self.url[:80]!r}" if self.url else f"mime_type={self.mime_type!r}, bytes={len(self.data or b'')}"
        return f"GeneratedImage({where}, revised_prompt={self.revised_prompt!r})"

    @property
    def b64_json(self) -> str | None:
        """The image as base64 (None for an image known by URL only)."""
        if self._b64 is None and self.data is not None:
            return base64.b64encode(self.data).decode("ascii")
        return self._b64

    @property
    def is_remote(self) -> bool:
        """Whether the image is known by its ``http(s)`` URL only (its bytes not fetched)."""
        return self.data is None

    @property
    def extension(self) -> str | None:
        """The file extension of the image's real format, such as ``.png`` (None until a URL is fetched)."""
        return EXTENSIONS.get(self.mime_type or "")

    @property
    def data_uri(self) -> str | None:
        """The image as a ``data:`` URI carrying its real MIME type (None for a URL image)."""
        if self.data is None:
            return None
        return f"data:{self.mime_type};base64,{self.b64_json}"

    @property
    def reference(self) -> str:
        """What ``return_url=True`` returns: the URL as is, else a data URI."""
        return self.url or self.data_uri or ""

    def save(self, path: str | Path) -> Path:
        """Write the image to ``path`` atomically (a URL is streamed), creating parent folders.

        :param path: Where to write it; an existing file is replaced whole.
        :return: The path written.
        """
        source = self.data if self.data is not None else _download.stream_url(self.url or "")
        return _files.write(source, Path(path), complete=self.data is None)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Show the image when it is a notebook cell's value (a URL by reference)."""
        return _notebook.mimebundle(self)

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


def _restore_image(*values: Any) -> GeneratedImage:
    image = object.__new__(GeneratedImage)
    for name, value in zip(GeneratedImage.__slots__, values, strict=True):
        object.__setattr__(image, name, value)
    return image


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

    def replaced(self, images: Iterable[GeneratedImage]) -> GeneratedImages:
        """The same response's metadata with other image values (the saved copies, say)."""
        copy = GeneratedImages(images, cost=self.cost, model=self.model, prompt=self.prompt)
        copy.settings = self.settings
        return copy

    def _repr_html_(self) -> str:
        """Show every image side by side when the list is a notebook cell's value."""
        return _notebook.gallery_html(self)


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
    cost: float | None = None,
    max_bytes: int | None = None,
    start: int = 0,
    limit: int | None = None,
) -> GeneratedImages:
    """Collect the images of a litellm ``ImageResponse`` (or a look-alike).

    :param response: What ``litellm.image_generation`` returned.
    :param prompt: The prompt, kept on each image.
    :param model: The model, kept on each image.
    :param cost: What the response cost in USD, where known.
    :param max_bytes: The largest image accepted; base64 over it is refused before decoding.
    :param start: Skip the answer's first ``start`` items (the first image is read on its own).
    :param limit: Read at most this many images.
    :return: The images; at least one when ``start`` is 0.
    :raises NoImageError: If the response holds no image.
    :raises InvalidImageError: If an image is not one, or is over ``max_bytes``.
    """
    images = GeneratedImages(cost=cost, model=model, prompt=prompt)
    for item in _items(response)[start:]:
        if limit is not None and len(images) >= limit:
            break
        url, b64 = _text(_field(item, "url")), _text(_field(item, "b64_json"))
        if url or b64:
            _within(max_bytes, b64 or (url if (url or "")[:5].lower() == "data:" else None))
            revised = _text(_field(item, "revised_prompt"))
            images.append(GeneratedImage(url=url, b64_json=b64, revised_prompt=revised, prompt=prompt, model=model))
    if not images and start == 0:
        msg = f"No images found in response from {model or 'the provider'}. " + _why_empty(model)
        raise NoImageError(msg)
    return images


def _within(max_bytes: int | None, encoded: str | None) -> None:
    """Refuse base64 (or a data URI) that decodes to more than ``max_bytes``, without decoding it."""
    if max_bytes is not None and encoded is not None and len(encoded) * 3 // 4 > max_bytes + 3:
        msg = (
            f"The provider sent an image of about {len(encoded) * 3 // 4:,} bytes, over the "
            f"{max_bytes:,}-byte limit; raise ImageBot.max_image_bytes if you expect images this large."
        )
        raise InvalidImageError(msg)


def _why_empty(model: str | None) -> str:
    """What an empty answer usually means for this provider (litellm drops the provider's own words)."""
    reason = _routing.fact((model or "").split("/")[0], "empty")
    if reason:
        return f"{reason} Rephrase the prompt or try again."
    return "The provider may have refused the prompt (content policy); rephrase it or try again."


class BatchResult:
    """One prompt's outcome in a batch: its images (saved ones have ``path``) or the error.

    :param index: The prompt's position in the batch.
    :param prompt: The prompt.
    :param images: Its images, or ``None`` if it failed.
    :param error: What went wrong, or ``None`` if it succeeded (``NotSentError`` for a
        prompt a spending cap kept from being sent).
    :param resumed: Whether its images were already saved by an earlier run of the batch
        (found in the folder's journal, intact): nothing was requested for it this time.
    """

    __slots__ = ("error", "images", "index", "prompt", "resumed")

    def __init__(
        self,
        index: int,
        prompt: str,
        images: GeneratedImages | None,
        error: Exception | None,
        resumed: bool = False,
    ) -> None:
        self.index = index
        self.prompt = prompt
        self.images = images
        self.error = error
        self.resumed = resumed

    @property
    def sent(self) -> bool:
        """Whether it was sent to the provider in this run (not when resumed, nor when a cap kept it back)."""
        return not self.resumed and not isinstance(self.error, NotSentError)

    @property
    def ok(self) -> bool:
        """Whether the prompt made its images."""
        return self.error is None

    @property
    def outcome(self) -> GeneratedImages | Exception:
        """The images, or the error in their place (what ``generate_batch`` lists)."""
        if self.images is not None:
            return self.images
        assert self.error is not None  # a result holds one or the other
        return self.error

    @property
    def paths(self) -> list[Path]:
        """Where its images were saved (empty when nothing was saved)."""
        return [image.path for image in self.images or [] if image.path is not None]

    @property
    def cost(self) -> float | None:
        """What its response cost in USD, where litellm reports it."""
        return self.images.cost if self.images is not None else None

    def __repr__(self) -> str:
        """Show the prompt and what became of it."""
        outcome = f"error={self.error!r}" if self.error is not None else f"images={len(self.images or [])}"
        return f"BatchResult(index={self.index}, prompt={self.prompt!r}, {outcome}{', resumed' * self.resumed})"
