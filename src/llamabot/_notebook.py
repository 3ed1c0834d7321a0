"""Show images inline when, and only when, running in a Jupyter kernel.

IPython is not a dependency: it is only used when a kernel has already imported it.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from llamabot._response import GeneratedImage


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython terminal is not one)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython is simply not a notebook
        return False
    # Colab's and VS Code's kernels subclass ipykernel's ZMQInteractiveShell.
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def display_object(image: GeneratedImage) -> object:
    """Return an IPython display object for ``image`` (a URL is shown, not downloaded)."""
    from IPython.display import SVG, Image

    if image.is_remote and image._data is None:
        return Image(url=image.url)
    if image.mime_type == "image/svg+xml":
        return SVG(data=image.data)
    return Image(data=image.data, format=image.extension.lstrip("."))


def show(images: Iterable[GeneratedImage]) -> None:
    """Display each image once in a notebook; do nothing elsewhere."""
    if not in_notebook():
        return
    try:
        from IPython.display import display

        for image in images:
            display(display_object(image))
    except Exception as exc:  # noqa: BLE001 - showing is a courtesy; the result still counts
        warnings.warn(f"Could not display the image inline: {exc}", RuntimeWarning, stacklevel=3)
