"""Exceptions and warnings raised by llamabot-imagebot itself.

Provider failures keep litellm's own exception types (every one subclasses
``openai.APIError``); ImageBot only adds notes to them, in one place
(``_providers.enrich``). What ImageBot raises on its own all derives from
``ImageBotError``, and from the built-in it is::

    ImageBotError
    ├── NoImageError (ValueError)         the provider answered, but with no image
    ├── UnknownModelError (ValueError)    litellm does not know the model (a typo?)
    ├── InvalidImageError (ValueError)    bytes, base64 or a data URI that is not an image
    ├── ImageDownloadError (OSError)      an image URL could not be fetched
    ├── ImageSaveError (OSError)          generated images could not be written (they are on it)
    ├── NotSentError                      a batch's spending cap kept a prompt from being sent
    ├── FolderBusyError (RuntimeError)    another run is making a batch in the same folder
    └── RemoteError                       an exception from a worker process that could not travel as itself

    UserWarning
    ├── RetiredModelWarning     litellm's model table says the model is shut down, or soon will be
    ├── UnsupportedSettingWarning   a setting the model does not accept was dropped
    ├── ImageFormatWarning      saved bytes do not match the file's extension
    ├── ContentCredentialsWarning   a conversion dropped the provider's signed C2PA manifest
    ├── HistoryWarning          a generation could not be recorded in the history
    ├── DependencyChangedWarning    litellm changed; ImageBot fell back to documented behaviour
    ├── JournalWarning          a batch journal held lines ImageBot did not write (skipped)
    ├── ResumedWarning          a batch returned images an earlier run had already saved
    └── LlamabotConflictWarning     the real llamabot is installed too (both own ``llamabot/``)
"""

from __future__ import annotations

import os
import sys
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs import time nobody needs at run time
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: The files whose frames a warning skips, so that it points at the caller's own line: this
#: package's, its ``llamabot`` face's, and the standard library's context managers ImageBot uses.
_OURS = (
    _HERE + os.sep,
    os.path.join(os.path.dirname(_HERE), "llamabot") + os.sep,
    os.path.join(os.path.dirname(os.__file__), "contextlib.py"),
)


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the first line outside this package (the user's), however deep the call."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_OURS):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, category, stacklevel=level)


class ImageBotError(Exception):
    """The root of every exception llamabot-imagebot raises itself (never of litellm's)."""


class NoImageError(ImageBotError, ValueError):
    """The provider's response holds no image (the reference's ``ValueError``)."""


class UnknownModelError(ImageBotError, ValueError):
    """litellm does not know the model, so it cannot route the request (raised before anything is sent)."""


class InvalidImageError(ImageBotError, ValueError):
    """Image data that cannot be decoded, or content that is not an image."""


class ImageDownloadError(ImageBotError, OSError):
    """An image URL returned by the provider could not be downloaded."""


class ImageSaveError(ImageBotError, OSError):
    """Generated images could not be written (a read-only folder, a full disk).

    The images were paid for: they are on the exception as ``images`` (what ``generate()``
    returns), so ``exc.images[0].save(other_path)`` still keeps them.
    """

    images: list[Any]


class NotSentError(ImageBotError):
    """A batch prompt that was never sent: sending it could have crossed the batch's ``max_cost``.

    Nothing was requested or paid for it; a re-run with a higher cap sends it (prompts
    already saved are skipped).
    """


class FolderBusyError(ImageBotError, RuntimeError):
    """Another run is making a batch in the same folder (it holds the folder's journal).

    Two runs in one folder would pay twice for the same prompts, so the second is refused at once.
    """


class RemoteError(ImageBotError):
    """An exception raised in another process (a Dask worker, say) that could not travel back as itself.

    Its message starts with the original type's name; ``type_name`` holds it.
    """

    type_name: str


class RetiredModelWarning(UserWarning):
    """litellm's model table says the model was shut down, or shuts down within 30 days.

    Emitted once per model per process, before its first request, naming the date and the
    table's ``successor_model``. Never emitted when a bot is built, nor for the reference's
    default model, so that suites run with ``-W error`` can build and call ``ImageBot()``.
    """


class UnsupportedSettingWarning(UserWarning):
    """A setting the model does not accept was dropped from the request."""


class ImageFormatWarning(UserWarning):
    """An image was saved under an extension that does not match its format."""


class HistoryWarning(UserWarning):
    """A generation could not be recorded in the history database."""


class DependencyChangedWarning(UserWarning):
    """litellm no longer offers (or keeps) something ImageBot relies on; ImageBot fell back to documented behaviour."""


class LlamabotConflictWarning(UserWarning):
    """The real llamabot is installed beside llamabot-imagebot: both provide the ``llamabot`` package."""


class JournalWarning(UserWarning):
    """A batch journal held lines ImageBot did not write, or names it will not use: they were skipped."""


class ResumedWarning(UserWarning):
    """A batch resumed: some prompts' images were already saved by an earlier run, and were not asked for again."""


class ContentCredentialsWarning(UserWarning):
    """Saving dropped the provider's Content Credentials (a format conversion cannot carry them)."""
