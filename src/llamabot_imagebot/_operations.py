"""What a call asks for, as data: generate from a prompt, or edit images as a prompt says.

The operation is all that differs between a generation and an edit: the same step sends
either, with the same deadline, retries, pace, spending cap and records.
"""

from __future__ import annotations

from llamabot_imagebot import _inputs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Generate:
    """The operation "make images from a prompt"."""

    kind = "generate"
    __slots__ = ("prompt",)

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt

    def record(self) -> dict[str, Any]:
        """What the history and the files say the images were made from, beside the prompt."""
        return {}


class Edit:
    """The operation "change these images as the prompt says" (``mask``: where to change them).

    The inputs are read and checked here, before anything is sent: a missing file, a file that
    is not an image, or one over the largest input any provider accepts is a clear error.

    :param image: A path, bytes, a binary file, a ``GeneratedImage``, or a list of these.
    :param mask: One of the same kinds: where the image may change (transparent pixels).
    """

    kind = "edit"
    __slots__ = ("images", "mask", "prompt")

    def __init__(self, prompt: str, image: Any, mask: Any = None) -> None:
        values = list(image) if isinstance(image, (list, tuple)) else [image]
        if not values:
            msg = "An edit needs at least one image."
            raise ValueError(msg)
        self.prompt = prompt
        self.images = tuple(
            _inputs.read(value, f"image {number}" if len(values) > 1 else "the image", max_bytes=_inputs.LARGEST)
            for number, value in enumerate(values, 1)
        )
        self.mask = None if mask is None else _inputs.read(mask, "the mask", max_bytes=_inputs.LARGEST)

    def record(self) -> dict[str, Any]:
        made_from: dict[str, Any] = {"inputs": [image.sha256 for image in self.images]}
        if self.mask is not None:
            made_from["mask"] = self.mask.sha256
        return made_from


def with_inputs(kwargs: dict[str, Any], operation: Generate | Edit) -> dict[str, Any]:
    """An attempt's kwargs: for an edit, its inputs as new named in-memory files (a retry reads them afresh)."""
    if not isinstance(operation, Edit):
        return kwargs
    files = [image.upload() for image in operation.images]
    with_files = {**kwargs, "image": files if len(files) > 1 else files[0]}
    if operation.mask is not None:
        with_files["mask"] = operation.mask.upload()
    return with_files
