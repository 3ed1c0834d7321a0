"""ImageBot: a text prompt in, an image out, through any provider litellm supports.

The class is a short composition of llamabot's own module-level steps, looked up in this
module at call time, so that ``mocker.patch("llamabot.bot.imagebot.<step>")`` changes what
it names (``llamabot.bot.imagebot`` is this module)::

    image_generation_kwargs_for_bot(bot, prompt)   what will be sent (built and checked once per call)
    generate_image_response(bot, prompt)           the litellm call, bounded in time, retried
    first_generated_image(response)                the first image (ValueError if none): returned and saved
    generated_image_reference(image)               its URL or data URI (return_url=True)
    generated_image_bytes(image)                   its bytes: what is saved
    is_running_in_jupyter()                        whether to display inline

The generation step itself (deadline, retries, pace, history) is ``_step``; a batch drives
``_batch.Job``, a picklable snapshot of the settings, through ``_batch``.
"""

from __future__ import annotations

from llamabot_imagebot import _batch, _notebook, _operations, _routing, _step
from llamabot_imagebot._clock import SYSTEM
from llamabot_imagebot._response import GeneratedImage, GeneratedImages
from llamabot_imagebot._settings import DEFAULT_MAX_IMAGE_BYTES, REFERENCE_DEFAULT_MODEL, Settings, default_model
from llamabot_imagebot._throttle import Throttle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
    from pathlib import Path
    from typing import Any, Literal, Optional, Union, overload

    from typing_extensions import Unpack

    from llamabot_imagebot._clock import Clock
    from llamabot_imagebot._options import BatchOptions
    from llamabot_imagebot._response import BatchResult

    PathLike = Union[str, os.PathLike[str]]


class ImageBot:
    """ImageBot class for generating images.

    :param model: The model to use. Defaults to "dall-e-3" (the reference's default, which OpenAI
        shut down), or to ``IMAGEBOT_MODEL`` from the environment when that is set, such as
        ``IMAGEBOT_MODEL=gpt-image-2``.
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

    Four keyword arguments are ImageBot's own and never reach the provider:
    ``num_retries`` (litellm's name, which its image generation ignores: retries of
    429, 5xx, dropped connections and timeouts, default 2), ``requests_per_minute``
    (a limit shared by every thread and task using this bot, kept in any 60-second
    window), ``imagebot_metadata`` (embed provenance in saved files;
    ``IMAGEBOT_METADATA=1`` turns it on for every bot) and ``imagebot_history``
    (record each generation: ``True`` or a database path; ``IMAGEBOT_HISTORY=1``).
    """

    #: Largest image, in bytes, accepted from a provider (a download, or base64).
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES

    def __init__(
        self,
        model: str = REFERENCE_DEFAULT_MODEL,
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
        self.model = default_model(model)
        self.size = size
        self.quality = quality
        self.n = n
        self.response_format = response_format
        self.api_key = api_key
        self.api_base = api_base
        self.api_version = api_version
        self.timeout = timeout
        # ImageBot's own options: prefixed so that they can never shadow a litellm kwarg.
        self.imagebot_metadata: Optional[bool] = image_generation_kwargs.pop("imagebot_metadata", None)
        self.imagebot_history: Union[bool, str, Path, None] = image_generation_kwargs.pop("imagebot_history", None)
        self.requests_per_minute: Optional[float] = image_generation_kwargs.pop("requests_per_minute", None)
        self.image_generation_kwargs = image_generation_kwargs
        # Checked now; no lifecycle warning here (suites run with -W error must be able to build
        # ImageBot()): it comes before a model's first request, and a 404 carries a note.
        Settings.of(self)
        #: The bot's pace (requests_per_minute, and the pause after a 429), shared by every call on it.
        self._throttle = Throttle(self.requests_per_minute)
        self._clock: Clock = SYSTEM

    def __repr__(self) -> str:
        """Show the settings, with every credential masked at any depth and the endpoint without secrets."""
        return f"ImageBot({', '.join(f'{k}={v!r}' for k, v in Settings.of(self).shown().items())})"

    if TYPE_CHECKING:  # typing.overload at run time would cost import time

        @overload
        def __call__(self, prompt: str, return_url: Literal[True], save_path: Optional[PathLike] = None) -> str: ...

        @overload
        def __call__(
            self, prompt: str, return_url: Literal[False] = False, save_path: Optional[PathLike] = None
        ) -> Path: ...

        @overload
        def __call__(
            self, prompt: str, return_url: bool = False, save_path: Optional[PathLike] = None
        ) -> Union[str, Path]: ...

    def __call__(self, prompt: str, return_url: bool = False, save_path: Optional[PathLike] = None) -> Union[str, Path]:
        """Generate an image from a text prompt.

        With ``n > 1`` every image is saved (``name``, ``name_2``, …) and the first
        is returned. In a Jupyter kernel the images are also displayed inline.

        :param prompt: The text prompt describing the image to generate.
        :param return_url: Whether to return a displayable image reference instead
            of saving the file. If True, overrides save_path. URL responses return
            the image URL; base64 responses return a data URI.
        :param save_path: The path to save the generated image to. If None, a
            filename will be generated from the prompt. A path without an extension
            gets the image's real one (``dog`` becomes ``dog.png``).
        :return: The image URL or data URI if ``return_url`` is True, otherwise the
            Path of the saved image, as you named it (relative stays relative; a name
            derived from the prompt is relative to the working folder).
        :raises ValueError: If no generated image data is found in the response.
        """
        generation = self._generation(_operations.Generate(prompt))
        return _shown(*_produce(self, generation, _mode(return_url), _step.Destination(prompt, save_path)))

    async def acall(
        self, prompt: str, return_url: bool = False, save_path: Optional[PathLike] = None
    ) -> Union[str, Path]:
        """Like calling the bot, without blocking the event loop: files are written in a thread."""
        generation = self._generation(_operations.Generate(prompt))
        where = _step.Destination(prompt, save_path)
        return _shown(*await _aproduce(self, generation, _mode(return_url), where))

    def generate(self, prompt: str, **overrides: Any) -> GeneratedImages:
        """Generate every image the settings ask for, without saving any.

        :param prompt: The text prompt describing the image to generate.
        :param overrides: Settings for this call only, such as ``n=2`` or ``size="1536x1024"``
            (any constructor argument or extra litellm keyword argument).
        :return: The images (bytes or URL, MIME type, ``revised_prompt``, ``save(path)``),
            with ``cost`` where litellm reports it.
        :raises ValueError: If no generated image data is found in the response.
        """
        generation = self._generation(_operations.Generate(prompt), overrides)
        return _produce(self._bot_for(generation), generation, "none", None)[0]

    async def agenerate(self, prompt: str, **overrides: Any) -> GeneratedImages:
        """Like ``generate``, on ``litellm.aimage_generation``."""
        generation = self._generation(_operations.Generate(prompt), overrides)
        return (await _aproduce(self._bot_for(generation), generation, "none", None))[0]

    def edit(self, prompt: str, image: Any, *, mask: Any = None, **overrides: Any) -> GeneratedImages:
        """Change ``image`` as ``prompt`` says: the same contract as ``generate`` (nothing is saved yet).

        :param prompt: What to change.
        :param image: A path, bytes, a binary file, a ``GeneratedImage``, or a list of these (reference images).
        :param mask: One image of the same kinds: where the image may change (its transparent pixels).
        :param overrides: Settings for this call only (``size``, ``quality``, ``n``, ``input_fidelity``, …).
        :return: The images, with ``cost``; their record names each input's (and the mask's) SHA-256.
        :raises ValueError: Before anything is sent, for an input that is missing, not an image, or too
            large for the provider, or a provider litellm cannot edit with.
        """
        generation = self._generation(_operations.Edit(prompt, image, mask), overrides)
        return _produce(self._bot_for(generation), generation, "none", None)[0]

    async def aedit(self, prompt: str, image: Any, *, mask: Any = None, **overrides: Any) -> GeneratedImages:
        """Like ``edit``, on ``litellm.aimage_edit``."""
        generation = self._generation(_operations.Edit(prompt, image, mask), overrides)
        return (await _aproduce(self._bot_for(generation), generation, "none", None))[0]

    def iter_batch(
        self, prompts: Iterable[str], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> Iterator[BatchResult]:
        """Run many prompts, ``concurrency`` at a time, and yield each outcome as soon as it is done.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param options: ``BatchOptions`` (where to save, resuming, a spending cap, an executor, a progress
            bar); any other keyword is a setting for these calls only, such as ``n=2``.
        :return: A ``BatchResult`` per prompt: resumed ones first, then the others in the order they finish,
            then any the spending cap kept back. Stopping early (``break``, Ctrl-C) cancels what has not started.
        """
        return _batch.run(self._batch(prompts, concurrency, options))

    def aiter_batch(
        self, prompts: Iterable[str], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> AsyncIterator[BatchResult]:
        """Like ``iter_batch``, on the event loop (the same options, the same journal)."""
        return _batch.arun(self._batch(prompts, concurrency, options))

    def iter_edits(
        self, items: Iterable[tuple[Any, ...]], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> Iterator[BatchResult]:
        """``iter_batch`` for edits: each item is ``(prompt, image)`` or ``(prompt, image, mask)``, as ``edit`` takes.

        Saved, journaled (an item is known by its prompt and its inputs' SHA-256), capped and resumable
        like any batch; the inputs are read before the first is sent.
        """
        return _batch.run(self._batch([_operations.Edit(*item) for item in items], concurrency, options))

    def generate_batch(
        self, prompts: Iterable[str], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> list[Union[GeneratedImages, Exception]]:
        """Like ``iter_batch``, in the prompts' order: each prompt's images, or the exception raised for it."""
        return [result.outcome for result in _in_order(self.iter_batch(prompts, concurrency, **options))]

    def batch(
        self, prompts: Iterable[str], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> list[Union[str, Path, Exception]]:
        """Run ``bot(prompt)`` for many prompts, ``concurrency`` at a time; one failure never stops the others.

        :return: For each prompt, in order, what ``bot(prompt)`` would have returned, or the exception
            raised for it (``NotSentError`` when ``max_cost`` kept it back).
        """
        results = _in_order(self.iter_batch(prompts, concurrency, **options))
        return [_first(result.outcome, bool(options.get("return_url"))) for result in results]

    async def abatch(
        self, prompts: Iterable[str], concurrency: int = 4, **options: Unpack[BatchOptions]
    ) -> list[Union[str, Path, Exception]]:
        """Like ``batch``, on the event loop: at most ``concurrency`` requests in flight."""
        results = _in_order([result async for result in self.aiter_batch(prompts, concurrency, **options)])
        return [_first(result.outcome, bool(options.get("return_url"))) for result in results]

    def _generation(self, operation: Any, overrides: Optional[dict[str, Any]] = None, **state: Any) -> _step.Generation:
        """One call on this bot: its settings (with the overrides) checked, its operation, the bot's pace."""
        base = Settings.of(self)
        settings = base.replace(overrides or {})
        generation = _step.Generation(settings, operation, throttle=self._pace(settings), clock=self._clock, **state)
        generation.overridden = settings is not base
        return generation

    def _pace(self, settings: Settings) -> Throttle:
        same = settings.requests_per_minute == self.requests_per_minute
        return self._throttle if same else Throttle(settings.requests_per_minute, self._clock)

    def _bot_for(self, generation: _step.Generation) -> ImageBot:
        """The bot llamabot's steps get: this one, or a copy with the call's overrides."""
        if not generation.overridden:
            return self
        return _restore(generation.settings, generation.throttle)

    def _batch(self, prompts: Iterable[Any], concurrency: int, options: Mapping[str, Any]) -> _batch.Batch:
        known = {**options}
        batch_options = {key: known.pop(key) for key in _batch.OPTIONS if key in known}
        overrides = {**known.pop("overrides", {}), **known}
        settings = Settings.of(self).replace(overrides)
        mode = _mode(bool(batch_options.get("return_url")))
        job = _batch.Job(settings, self._pace(settings), mode, _run_job, _arun_job, self._clock)
        return _batch.Batch(job, prompts, concurrency, batch_options)


def _restore(settings: Settings, throttle: Throttle) -> ImageBot:
    """An ``ImageBot`` with these settings and this pace (no checks: the settings were checked)."""
    bot = ImageBot.__new__(ImageBot)
    for name, value in settings.values().items():
        setattr(bot, name, dict(value) if name == "image_generation_kwargs" else value)
    bot._throttle = throttle
    bot._clock = SYSTEM
    return bot


# The composition: llamabot's steps around the generation step ------------------------------


def _produce(bot: Any, generation: _step.Generation, mode: str, where: Any) -> tuple[GeneratedImages, Any]:
    """A sync call: its turn in the pace, the request, then the images delivered (llamabot's steps)."""
    with _step.current(generation):
        with _step.turn(generation):
            if generation.operation.kind == "generate":
                response = generate_image_response(bot, generation.prompt)
            else:
                response = _step.send(generation, generation.edit_kwargs())
        return _step.deliver(generation, response, mode, where, _delivery_steps())


async def _aproduce(bot: Any, generation: _step.Generation, mode: str, where: Any) -> tuple[GeneratedImages, Any]:
    """An async call: the request on the event loop, the rest (files, history) in a thread."""
    import asyncio

    with _step.current(generation):
        async with _step.turn(generation):
            if generation.operation.kind == "generate":
                response = await agenerate_image_response(bot, generation.prompt)
            else:
                response = await _step.asend(generation, generation.edit_kwargs())
        if mode != "save" and generation.history is None:  # nothing to write or fetch: no thread needed
            return _step.deliver(generation, response, mode, where, _delivery_steps())
        return await asyncio.to_thread(_step.deliver, generation, response, mode, where, _delivery_steps())


def _delivery_steps() -> _step.Steps:
    """llamabot's steps after the answer, as this module has them now (patched ones included)."""
    return _step.Steps(
        lambda response: _step.as_generated(first_generated_image(response)),
        generated_image_reference,
        generated_image_bytes,
    )


def _run_job(settings: Settings, throttle: Throttle, generation: _step.Generation, mode: str, where: Any) -> Any:
    """One item of a batch (``_batch.Job`` calls it, in a thread or a worker process)."""
    return _produce(_restore(settings, throttle), generation, mode, where)[0]


async def _arun_job(settings: Settings, throttle: Throttle, generation: _step.Generation, mode: str, where: Any) -> Any:
    return (await _aproduce(_restore(settings, throttle), generation, mode, where))[0]


def _mode(return_url: bool) -> str:
    return "reference" if return_url else "save"


def _shown(images: GeneratedImages, result: Union[str, Path]) -> Union[str, Path]:
    """Display the images once in a notebook; there a reference prints shortened."""
    if not is_running_in_jupyter():
        return result
    _notebook.show(images)
    return _notebook.ImageReference(result) if isinstance(result, str) else result


def _in_order(results: Iterable[BatchResult]) -> list[BatchResult]:
    return sorted(results, key=lambda result: result.index)


def _first(outcome: Union[GeneratedImages, Exception], return_url: bool) -> Union[str, Path, Exception]:
    if isinstance(outcome, Exception):
        return outcome
    return outcome[0].reference if return_url else outcome[0].path or outcome[0].reference


# llamabot's pipeline steps ------------------------------------------------------------


def image_generation_kwargs_for_bot(bot: ImageBot, prompt: str) -> dict[str, Any]:
    """Build the keyword arguments for ``litellm.image_generation``: exactly what will be sent.

    Defaults the model does not accept are left out; an explicit setting it does not
    accept is dropped with an ``UnsupportedSettingWarning``.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :return: Keyword arguments suitable for ``litellm.image_generation``.
    :raises ValueError: For an empty prompt or settings the model is documented to refuse.
    """
    generation = _step.in_progress(prompt) or _step.Generation(Settings.of(bot), _operations.Generate(prompt))
    kwargs = generation.kwargs()
    _routing.warn_dropped(generation.settings.model, generation.dropped)
    return dict(kwargs)


def generate_image_response(bot: ImageBot, prompt: str) -> Any:
    """Generate an image response through litellm, retried and bounded by ``bot.timeout``.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :return: litellm's image generation response.
    """
    generation = _step.in_progress(prompt)
    if generation is None:  # called on its own: a call of its own, in the bot's pace
        generation = _step.standalone(bot, prompt)
        with _step.current(generation), _step.turn(generation):
            return generate_image_response(bot, prompt)
    kwargs = image_generation_kwargs_for_bot(bot, prompt)
    generation.sent = kwargs
    return _step.send(generation, kwargs)


async def agenerate_image_response(bot: ImageBot, prompt: str) -> Any:
    """``generate_image_response`` on ``litellm.aimage_generation``, without blocking the event loop.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :return: litellm's image generation response.
    """
    generation = _step.in_progress(prompt)
    if generation is None:
        generation = _step.standalone(bot, prompt)
        with _step.current(generation):
            async with _step.turn(generation):
                return await agenerate_image_response(bot, prompt)
    kwargs = image_generation_kwargs_for_bot(bot, prompt)
    generation.sent = kwargs
    return await _step.asend(generation, kwargs)


def first_generated_image(response: Any) -> GeneratedImage:
    """Return the first image of a litellm image response: the one a call returns and saves first.

    :param response: What ``litellm.image_generation`` returned (or the images parsed from it).
    :return: The first generated image.
    :raises ValueError: If the response does not contain generated images
        (``NoImageError``, whose message says "No images found in response").
    """
    return _step.first_image(response)


def generated_image_reference(image: Any) -> str:
    """Return a displayable reference for a generated image: its URL, else a data URI.

    :param image: A ``GeneratedImage``, or a litellm image object.
    :return: The image URL, or a ``data:`` URI carrying the image's real MIME type.
    :raises ValueError: If neither a URL nor base64 image data is present.
    """
    return _step.as_generated(image).reference


def generated_image_bytes(image: Any) -> bytes:
    """Return a generated image's bytes: base64 decoded, or downloaded from its URL: what a call saves.

    :param image: A ``GeneratedImage``, or a litellm image object.
    :return: The image bytes.
    :raises ValueError: If neither a URL nor base64 image data is present, or the data is not a whole image.
    :raises ImageDownloadError: If the URL cannot be downloaded.
    """
    return _step.image_bytes(_step.as_generated(image))


def is_running_in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (an IPython terminal is not one).

    :return: True inside a Jupyter kernel (Colab and VS Code included), otherwise False.
    """
    return _notebook.in_notebook()
