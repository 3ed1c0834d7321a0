"""llamabot-imagebot: llamabot's ImageBot, a text prompt in and an image out, on litellm.

``import llamabot`` (llamabot's own import path) gives this package; ``import llamabot_imagebot``
gives it too, and keeps working beside the real llamabot. Importing it loads nothing heavy:
the class and its modules load on first use, litellm on the first call.
"""

from __future__ import annotations

from llamabot_imagebot._exceptions import (
    ContentCredentialsWarning,
    DependencyChangedWarning,
    FolderBusyError,
    HistoryWarning,
    ImageBotError,
    ImageDownloadError,
    ImageFormatWarning,
    ImageSaveError,
    InvalidImageError,
    JournalWarning,
    LlamabotConflictWarning,
    NoImageError,
    NotSentError,
    RemoteError,
    ResumedWarning,
    RetiredModelWarning,
    UnknownModelError,
    UnsupportedSettingWarning,
)
from llamabot_imagebot._version import version as _version

TYPE_CHECKING = False
if TYPE_CHECKING:
    __version__: str
    from llamabot_imagebot._info import image_info
    from llamabot_imagebot._options import BatchOptions
    from llamabot_imagebot._refusal import RefusedError
    from llamabot_imagebot._response import BatchResult, GeneratedImage, GeneratedImages
    from llamabot_imagebot.imagebot import ImageBot

#: Loaded on first access, so that ``import llamabot`` costs milliseconds.
LAZY = {
    "BatchOptions": "llamabot_imagebot._options",
    "BatchResult": "llamabot_imagebot._response",
    "GeneratedImage": "llamabot_imagebot._response",
    "GeneratedImages": "llamabot_imagebot._response",
    "ImageBot": "llamabot_imagebot.imagebot",
    "RefusedError": "llamabot_imagebot._refusal",
    "image_info": "llamabot_imagebot._info",
}

__all__ = [
    "BatchOptions",
    "BatchResult",
    "ContentCredentialsWarning",
    "DependencyChangedWarning",
    "FolderBusyError",
    "GeneratedImage",
    "GeneratedImages",
    "HistoryWarning",
    "ImageBot",
    "ImageBotError",
    "ImageDownloadError",
    "ImageFormatWarning",
    "ImageSaveError",
    "InvalidImageError",
    "JournalWarning",
    "LlamabotConflictWarning",
    "NoImageError",
    "NotSentError",
    "RefusedError",
    "RemoteError",
    "ResumedWarning",
    "RetiredModelWarning",
    "UnknownModelError",
    "UnsupportedSettingWarning",
    "__version__",
    "image_info",
]


def __getattr__(name: str) -> object:
    if name in LAZY:
        import importlib

        value = getattr(importlib.import_module(LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "__version__":  # read lazily: importlib.metadata costs import time nobody needs
        return _version()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
