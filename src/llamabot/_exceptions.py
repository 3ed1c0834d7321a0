"""Exceptions and warnings raised by llamabot-imagebot itself.

Provider failures keep litellm's own exception types (every one subclasses
``openai.APIError``); ImageBot only adds notes to them. What ImageBot raises on
its own::

    ValueError
    ├── NoImageError            the provider answered, but with no image
    └── InvalidImageError       bytes, base64 or a data URI that is not an image
    OSError
    └── ImageDownloadError      an image URL could not be fetched

    UserWarning
    ├── RetiredModelWarning     the model was shut down by its provider
    ├── UnsupportedSettingWarning   a setting the model does not accept was dropped
    ├── ImageFormatWarning      saved bytes do not match the file's extension
    ├── HistoryWarning          a generation could not be recorded in the history
    └── DependencyChangedWarning    litellm changed; ImageBot fell back to documented behaviour
"""

from __future__ import annotations


class NoImageError(ValueError):
    """The provider's response holds no image (the reference's ``ValueError``)."""


class InvalidImageError(ValueError):
    """Image data that cannot be decoded, or content that is not an image."""


class ImageDownloadError(OSError):
    """An image URL returned by the provider could not be downloaded."""


class RetiredModelWarning(UserWarning):
    """The chosen model has been shut down by its provider."""


class UnsupportedSettingWarning(UserWarning):
    """A setting the model does not accept was dropped from the request."""


class ImageFormatWarning(UserWarning):
    """An image was saved under an extension that does not match its format."""


class HistoryWarning(UserWarning):
    """A generation could not be recorded in the history database."""


class DependencyChangedWarning(UserWarning):
    """litellm no longer offers something ImageBot relies on; ImageBot fell back to documented behaviour."""
