"""``import llamabot``: llamabot's import path for llamabot-imagebot, whose code lives in ``llamabot_imagebot``.

A thin face: every name is ``llamabot_imagebot``'s own object, so ``llamabot.ImageBot is
llamabot_imagebot.ImageBot``. This folder is shared with the real llamabot, which installs
the same files; ``llamabot_imagebot`` is never shared, so the ``imagebot`` command and
``import llamabot_imagebot`` keep working whichever was installed last.
"""

from __future__ import annotations

import os
import sys
import warnings

import llamabot_imagebot
from llamabot_imagebot import (
    ContentCredentialsWarning as ContentCredentialsWarning,
)
from llamabot_imagebot import (
    DependencyChangedWarning as DependencyChangedWarning,
)
from llamabot_imagebot import (
    FolderBusyError as FolderBusyError,
)
from llamabot_imagebot import (
    HistoryWarning as HistoryWarning,
)
from llamabot_imagebot import (
    ImageBotError as ImageBotError,
)
from llamabot_imagebot import (
    ImageDownloadError as ImageDownloadError,
)
from llamabot_imagebot import (
    ImageFormatWarning as ImageFormatWarning,
)
from llamabot_imagebot import (
    ImageSaveError as ImageSaveError,
)
from llamabot_imagebot import (
    InvalidImageError as InvalidImageError,
)
from llamabot_imagebot import (
    JournalWarning as JournalWarning,
)
from llamabot_imagebot import (
    LlamabotConflictWarning as LlamabotConflictWarning,
)
from llamabot_imagebot import (
    NoImageError as NoImageError,
)
from llamabot_imagebot import (
    NotSentError as NotSentError,
)
from llamabot_imagebot import (
    RemoteError as RemoteError,
)
from llamabot_imagebot import (
    ResumedWarning as ResumedWarning,
)
from llamabot_imagebot import (
    RetiredModelWarning as RetiredModelWarning,
)
from llamabot_imagebot import (
    UnknownModelError as UnknownModelError,
)
from llamabot_imagebot import (
    UnsupportedSettingWarning as UnsupportedSettingWarning,
)
from llamabot_imagebot import __all__ as __all__

#: Marks these files as llamabot-imagebot's (``imagebot --version`` reads it to tell which llamabot is installed).
_FACE_OF = "llamabot-imagebot"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from llamabot_imagebot import (
        BatchOptions as BatchOptions,
    )
    from llamabot_imagebot import (
        BatchResult as BatchResult,
    )
    from llamabot_imagebot import (
        GeneratedImage as GeneratedImage,
    )
    from llamabot_imagebot import (
        GeneratedImages as GeneratedImages,
    )
    from llamabot_imagebot import (
        ImageBot as ImageBot,
    )
    from llamabot_imagebot import (
        RefusedError as RefusedError,
    )
    from llamabot_imagebot import (
        __version__ as __version__,
    )
    from llamabot_imagebot import (
        image_info as image_info,
    )


def _other_llamabot() -> str | None:
    """The real llamabot distribution, if it is installed beside this one (they share ``llamabot/``).

    Found by its ``llamabot-<version>.dist-info`` folder on ``sys.path``: listing a few folders
    keeps ``import llamabot`` fast, where ``importlib.metadata`` would not.
    """
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
    warnings.warn(
        f"Both llamabot-imagebot and {_other.replace('llamabot-', 'llamabot ', 1)} install the `llamabot` package, "
        "and llamabot-imagebot's was installed last: the real llamabot's modules are hidden behind it. To use the "
        "real llamabot here, run `pip install --force-reinstall --no-deps llamabot`; ImageBot then stays available "
        "as `import llamabot_imagebot` and the `imagebot` command. Separate virtual environments avoid the clash.",
        llamabot_imagebot.LlamabotConflictWarning,
        stacklevel=2,
    )


def __getattr__(name: str) -> object:
    """The names ``llamabot_imagebot`` loads on first use (``ImageBot``, ``RefusedError``, …), the same objects."""
    if name in __all__:
        value = getattr(llamabot_imagebot, name)
        if name != "__version__":
            globals()[name] = value
        return value
    msg = f"module 'llamabot' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
