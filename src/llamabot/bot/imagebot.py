"""ImageBot: a text prompt in, an image out, through any provider litellm supports."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Union

from llamabot import _io, _notebook, _providers
from llamabot._exceptions import RetiredModelWarning
from llamabot._response import GeneratedImages, parse_response, slugify

_SIZE = re.compile(r"^(\d+)[xX](\d+)$")
RESPONSE_FORMATS = ("url", "b64_json")


class ImageBot:
    """ImageBot class for generating images.

    :param model: The model to use. Defaults to "dall-e-3".
    :param size: The size of the image to generate. Defaults to "1024x1024".
    :param quality: Optional quality setting for models that support it.
    :param n: The number of images to generate. Defaults to 1.
    :param response_format: The LiteLLM image response format to request.
        Defaults to "url".
    :param api_key: Optional API key to pass through to LiteLLM.
    :param api_base: Optional API base URL to pass through to LiteLLM.
    :param api_version: Optional API version to pass through to LiteLLM.
    :param timeout: Maximum time, in seconds, to wait for image generation.
    :param image_generation_kwargs: Additional provider-specific keyword arguments
        to pass through to ``litellm.image_generation``.
    """

    #: Largest image, in bytes, downloaded from a provider's URL.
    max_image_bytes: int = _io.DEFAULT_MAX_BYTES

    def __init__(
        self,
        model: str = "dall-e-3",
        size: str = "1024x1024",
        quality: Optional[str] = None,
        n: int = 1,
        response_format: str = "url",
        api_key: Optional[str] = None,
        api_base: Optional[str] = None,
        api_version: Optional[str] = None,
        timeout: int = 600,
        **image_generation_kwargs: Any,
    ) -> None:
        self.model = model
        self.size = size
        self.quality = quality
        self.n = n
        self.response_format = response_format
        self.api_key = api_key
        self.api_base = api_base
        self.api_version = api_version
        self.timeout = timeout
        self.image_generation_kwargs = image_generation_kwargs
        self._validate()
        if api_base is None and _providers.is_retired(model):
            warnings.warn(
                f"{model!r} no longer works: {_providers.REPLACEMENT_HINT}",
                RetiredModelWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        """Show the settings, with every credential masked."""
        shown = {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "response_format": self.response_format,
            "api_key": None if self.api_key is None else "***",
            "api_base": self.api_base,
            "api_version": self.api_version,
            "timeout": self.timeout,
        }
        for key, value in self.image_generation_kwargs.items():
            shown[key] = "***" if _providers.is_secret_name(key) and value is not None else value
        return f"ImageBot({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __call__(
        self,
        prompt: str,
        return_url: bool = False,
        save_path: Optional[Path] = None,
    ) -> Union[str, Path]:
        """Generate an image from a text prompt.

        With ``n > 1`` every image is saved (``name``, ``name_2``, …) and the first
        is returned. In a Jupyter kernel the images are also displayed inline.

        :param prompt: The text prompt describing the image to generate.
        :param return_url: Whether to return a displayable image reference instead
            of saving the file. If True, overrides save_path. URL responses return
            the image URL; base64 responses return a data URI.
        :param save_path: The path to save the generated image to. If None, a
            filename will be generated from the prompt.
        :return: The image URL or data URI if ``return_url`` is True, otherwise the
            Path of the saved image.
        :raises ValueError: If no generated image data is found in the response.
        """
        deadline = time.monotonic() + self.timeout
        images = self.generate(prompt)
        if return_url:
            references = [image.reference for image in images]
            _notebook.show(images)
            return references[0]
        paths = self._save_all(images, prompt, save_path, deadline)
        _notebook.show(images)
        return paths[0]

    def generate(self, prompt: str) -> GeneratedImages:
        """Generate every image the settings ask for, without saving any.

        :param prompt: The text prompt describing the image to generate.
        :return: The images (URL, base64, data URI, MIME type, bytes,
            ``revised_prompt``, ``save(path)``), with ``cost`` where litellm reports it.
        :raises ValueError: If no generated image data is found in the response.
        """
        kwargs = self._request(prompt)
        import litellm

        try:
            # Looked up at call time so that mocker.patch("litellm.image_generation") works.
            response = litellm.image_generation(**kwargs)
        except Exception as exc:
            _providers.enrich(exc, self.model, self.api_key, self.image_generation_kwargs)
            raise
        return self._images(response, prompt)

    def _request(self, prompt: str) -> dict[str, Any]:
        """Validate the prompt and settings, and build litellm's kwargs."""
        if not isinstance(prompt, str):
            msg = f"prompt must be a string, not {type(prompt).__name__}."
            raise TypeError(msg)
        if not prompt.strip():
            msg = "prompt is empty; describe the image to generate."
            raise ValueError(msg)
        self._validate()
        _providers.check_prompt(self.model, prompt, self.image_generation_kwargs)
        settings = {
            "model": self.model,
            "prompt": prompt,
            "size": self.size,
            "n": self.n,
            "quality": self.quality,
            "response_format": self.response_format,
            "timeout": self.timeout,
            "api_key": self.api_key,
            "api_base": self.api_base,
            "api_version": self.api_version,
        }
        kwargs, dropped = _providers.request_kwargs(settings, self.image_generation_kwargs)
        _providers.warn_dropped(self.model, dropped, stacklevel=4)
        return kwargs

    def _images(self, response: Any, prompt: str) -> GeneratedImages:
        return parse_response(
            response, prompt=prompt, model=self.model, timeout=self.timeout, max_bytes=self.max_image_bytes
        )

    def _save_all(
        self, images: GeneratedImages, prompt: str, save_path: Optional[Path], deadline: float
    ) -> list[Path]:
        """Save every image: the first at ``save_path`` (or a name from the prompt), the rest beside it."""
        limits = {"timeout": self.timeout, "max_bytes": self.max_image_bytes, "deadline": deadline}
        paths = []
        for index, image in enumerate(images):
            if save_path is not None and index == 0:
                paths.append(_io.save_image(image, Path(save_path), **limits))
            elif save_path is not None:
                first = Path(save_path)
                paths.append(
                    _io.save_new(image, first.parent, first.stem, suffix=first.suffix or None, start=index + 1, **limits)
                )
            else:
                paths.append(_io.save_new(image, Path.cwd(), slugify(prompt), start=index + 1, **limits))
        return paths

    def _validate(self) -> None:
        """Reject settings no provider accepts, before any network call."""
        if not isinstance(self.model, str) or not self.model.strip():
            msg = f"model must be a non-empty string such as 'gpt-image-1', not {self.model!r}."
            raise ValueError(msg)
        if self.size is not None and (not isinstance(self.size, str) or not (_SIZE.match(self.size) or self.size == "auto")):
            msg = f"size must look like '1024x1024' (width x height) or be 'auto', not {self.size!r}."
            raise ValueError(msg)
        if isinstance(self.n, bool) or not isinstance(self.n, int):
            msg = f"n must be a whole number, not {type(self.n).__name__}."
            raise TypeError(msg)
        if self.n < 1:
            msg = f"n must be at least 1, not {self.n}."
            raise ValueError(msg)
        if self.response_format is not None and self.response_format not in RESPONSE_FORMATS:
            msg = f"response_format must be 'url' or 'b64_json', not {self.response_format!r}."
            raise ValueError(msg)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
            msg = f"timeout must be a number of seconds, not {type(self.timeout).__name__}."
            raise TypeError(msg)
        if not self.timeout > 0:
            msg = f"timeout must be a positive number of seconds, not {self.timeout}."
            raise ValueError(msg)
        if self.quality is not None and not isinstance(self.quality, str):
            msg = f"quality must be a string such as 'high' or 'hd', not {type(self.quality).__name__}."
            raise TypeError(msg)
        _providers.check_settings(self.model, self.size, self.quality, self.n, self.image_generation_kwargs)
