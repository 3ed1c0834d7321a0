"""``RefusedError``: a provider's safety system said no. Heavy: it subclasses litellm's exception.

It is both an ``ImageBotError`` and a ``litellm.ContentPolicyViolationError``, so code written
for litellm still catches it. This module imports litellm, so it is imported only when a
refusal is raised or the name is asked for (``llamabot.RefusedError``).
"""

from __future__ import annotations

import litellm

from llamabot_imagebot._exceptions import ImageBotError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Where a refusal happened: the prompt, an input image (an edit's), the generated image, or not said.
STAGES = ("prompt", "input", "output", "unknown")


class RefusedError(ImageBotError, litellm.ContentPolicyViolationError):
    """The provider's safety system refused the request: never retried, and a batch goes on without it.

    :param message: What happened and what to do.
    :param provider: litellm's provider name.
    :param model: The model asked.
    :param stage: ``"prompt"``, ``"input"`` (an edit's image), ``"output"`` (the image made) or ``"unknown"``.
    :param code: The provider's own code (``moderation_blocked``, ``IMAGE_SAFETY``, …).
    :param reason: The provider's own words, scrubbed of secrets.
    """

    is_refusal = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        stage: str = "unknown",
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        litellm.ContentPolicyViolationError.__init__(
            self, message=message, model=model or "", llm_provider=provider or ""
        )
        self.text = message
        self.provider = provider
        self.model = model
        self.stage = stage if stage in STAGES else "unknown"
        self.code = code
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by fields, so that a refusal travels back from a worker process as itself."""
        fields = {
            "provider": self.provider,
            "model": self.model,
            "stage": self.stage,
            "code": self.code,
            "reason": self.reason,
        }
        return (_rebuild, (self.message, fields))


def _rebuild(message: str, fields: dict[str, Any]) -> RefusedError:
    return RefusedError(message, **fields)
