"""Show images inline when, and only when, running in a Jupyter kernel.

IPython is not a dependency: it is only used when a kernel has already imported it.
Large images are shown as a bounded thumbnail (with Pillow) so that a notebook file
does not fill with megabytes of base64; a URL is shown by reference, never downloaded.
"""

from __future__ import annotations

import base64
import html
import io
import sys
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    #: A ``GeneratedImage`` (this module reads its fields and never imports the value module).
    GeneratedImage = Any

#: Images above this size are shown as a thumbnail when Pillow is installed.
MAX_INLINE_BYTES = 512 * 1024
THUMBNAIL_EDGE = 768


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython terminal is not one)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    # Colab's and VS Code's kernels subclass ipykernel's ZMQInteractiveShell.
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def _thumbnail(data: bytes, mime: str) -> tuple[bytes, str]:
    """A bounded-size rendition of a large raster image; the original when small or without Pillow."""
    if len(data) <= MAX_INLINE_BYTES or mime == "image/svg+xml":
        return data, mime
    try:
        from PIL import Image
    except ImportError:
        return data, mime
    with Image.open(io.BytesIO(data)) as img:
        img.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
        out = io.BytesIO()
        img.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


def _inline(image: GeneratedImage) -> tuple[bytes, str] | None:
    """The bytes to show and their MIME type; None for a URL not yet fetched (shown by reference)."""
    if image.data is None or image.mime_type is None:
        return None
    return _thumbnail(image.data, image.mime_type)


def mimebundle(image: GeneratedImage) -> dict[str, Any]:
    """The notebook representation of one image: a URL by reference, bytes bounded in size."""
    bundle: dict[str, Any] = {"text/plain": repr(image)}
    shown = _inline(image)
    if shown is None:
        src = html.escape(image.url or "", quote=True)
        # The prompt (as the provider revised it, if it did) describes the picture for screen readers.
        alt = html.escape(image.revised_prompt or image.prompt or "generated image", quote=True)
        bundle["text/html"] = f'<img src="{src}" alt="{alt}" style="max-width: 100%; height: auto;"/>'
        return bundle
    data, mime = shown
    bundle[mime] = data.decode("utf-8") if mime == "image/svg+xml" else data
    return bundle


def gallery_html(images: Iterable[GeneratedImage]) -> str:
    """HTML showing several images side by side (thumbnails, URLs by reference)."""
    tags = []
    for image in images:
        shown = _inline(image)
        if shown is None:
            src = image.url or ""
        else:
            src = f"data:{shown[1]};base64,{base64.b64encode(shown[0]).decode('ascii')}"
        alt = html.escape(image.revised_prompt or image.prompt or "generated image", quote=True)
        style = "max-width: 32%; height: auto; margin: 2px;"
        tags.append(f'<img src="{html.escape(src, quote=True)}" alt="{alt}" style="{style}"/>')
    return f"<div>{''.join(tags)}</div>"


class ImageReference(str):
    """The ``str`` that ``return_url=True`` returns in a notebook.

    It is the URL or data URI itself; only its notebook text form is shortened,
    so that a cell ending in the call does not print megabytes of base64 (the
    image itself was already displayed once).
    """

    __slots__ = ()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        text = str(self)
        if text.startswith("data:") and len(text) > 120:
            header = text.split(",", 1)[0]
            text = f"{header},… ({len(text):,} characters)"
        printer.text(repr(text))


def show(images: Iterable[GeneratedImage]) -> None:
    """Display each image once with IPython (the caller has checked that this is a notebook)."""
    try:
        from IPython.display import display

        for image in images:
            display(image)
    except Exception as exc:
        warnings.warn(f"Could not display the image inline: {exc}", RuntimeWarning, stacklevel=3)
