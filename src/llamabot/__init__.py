"""llamabot-imagebot: llamabot's ImageBot, a text prompt in and an image out, on litellm.

Importing this package loads neither litellm nor requests; they load on first use.
"""

from __future__ import annotations

from llamabot._exceptions import (
    ContentCredentialsWarning,
    DependencyChangedWarning,
    HistoryWarning,
    ImageBotError,
    ImageDownloadError,
    ImageFormatWarning,
    ImageSaveError,
    InvalidImageError,
    LlamabotConflictWarning,
    NoImageError,
    NotSentError,
    RemoteError,
    RetiredModelWarning,
    UnsupportedSettingWarning,
)
from llamabot.bot.imagebot import ImageBot


def _other_llamabot() -> str | None:
    """The real llamabot distribution, if it is installed beside this one (they share ``llamabot/``).

    Found by its ``llamabot-<version>.dist-info`` folder on ``sys.path``: listing a few folders
    keeps ``import llamabot`` fast, where ``importlib.metadata`` would not.
    """
    import os
    import sys

    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as names:
                for name in names:
                    if name.name.startswith("llamabot-") and name.name.endswith((".dist-info", ".egg-info")):
                        return f"{name.name.rsplit('.', 1)[0]} (in {entry})"
        except OSError:
            continue
    return None


if (_other := _other_llamabot()) is not None:
    import warnings

    warnings.warn(
        f"Both llamabot-imagebot and {_other.replace('llamabot-', 'llamabot ', 1)} install the `llamabot` "
        "package; the one installed last replaced the other's files. Use separate virtual environments, "
        "or uninstall one (pip uninstall llamabot / pip uninstall llamabot-imagebot).",
        LlamabotConflictWarning,
        stacklevel=2,
    )

TYPE_CHECKING = False
if TYPE_CHECKING:
    __version__: str
    from llamabot._io import image_info
    from llamabot._response import BatchResult, GeneratedImage, GeneratedImages

# Loaded on first access: they pull in modules that `import llamabot` should not pay for.
_LAZY = {
    "BatchResult": "llamabot._response",
    "GeneratedImage": "llamabot._response",
    "GeneratedImages": "llamabot._response",
    "image_info": "llamabot._io",
}

__all__ = [
    "BatchResult",
    "ContentCredentialsWarning",
    "DependencyChangedWarning",
    "GeneratedImage",
    "GeneratedImages",
    "HistoryWarning",
    "ImageBot",
    "ImageBotError",
    "ImageDownloadError",
    "ImageFormatWarning",
    "ImageSaveError",
    "InvalidImageError",
    "LlamabotConflictWarning",
    "NoImageError",
    "NotSentError",
    "RemoteError",
    "RetiredModelWarning",
    "UnsupportedSettingWarning",
    "__version__",
    "image_info",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    # The version is read lazily: importlib.metadata costs import time nobody needs.
    if name == "__version__":
        from llamabot._version import version

        return version()
    msg = f"module 'llamabot' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
