"""ImageBot: a text prompt in, an image out, through any provider litellm supports.

The pipeline is llamabot's own module-level steps, which the class calls through this
module at call time (so ``mocker.patch("llamabot.bot.imagebot.<step>")`` takes effect)::

    image_generation_kwargs_for_bot(bot, prompt)   what will be sent (validated)
    generate_image_response(bot, prompt)           the litellm call, bounded in time, retried
    first_generated_image(response)                the first image (ValueError if none)
    generated_image_reference(image)               its URL or data URI
    generated_image_bytes(image)                   its bytes
    is_running_in_jupyter()                        whether to display inline

Importing this module must stay cheap (it is what ``import llamabot`` costs), so
every module beyond the class definition is imported inside the function that needs it.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    import threading
    from collections.abc import AsyncIterator, Iterable, Iterator
    from concurrent.futures import Executor
    from pathlib import Path
    from typing import Any, Literal, Optional, Union, overload

    PathLike = Union[str, os.PathLike[str]]

    from llamabot._response import BatchResult, GeneratedImage, GeneratedImages


#: What a per-call override sets on the bot itself; anything else is an extra litellm argument.
_OWN_SETTINGS = frozenset(
    {
        "model",
        "size",
        "quality",
        "n",
        "response_format",
        "api_key",
        "api_base",
        "api_version",
        "timeout",
        "imagebot_metadata",
        "imagebot_history",
        "requests_per_minute",
    }
)


class _ReferenceDefault(str):
    """The reference's default model name, told apart from the same name passed on purpose.

    ``IMAGEBOT_MODEL`` replaces only this default, and only the default is never warned about
    (suites that build ``ImageBot()`` and run with ``-W error`` must keep passing).
    """

    __slots__ = ()


#: The API reference's default, ``dall-e-3`` (shut down by OpenAI; ``IMAGEBOT_MODEL`` picks another).
REFERENCE_DEFAULT_MODEL = _ReferenceDefault("dall-e-3")


class _Call:
    """One call's clock and where it is recorded (a plain class: ``typing`` would slow ``import llamabot``)."""

    __slots__ = ("deadline", "history", "started")

    def __init__(self, started: float, deadline: float, history: Optional[Path]) -> None:
        self.started = started
        self.deadline = deadline
        self.history = history


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

    #: Largest image, in bytes, downloaded from a provider's URL
    #: (``_formats.DEFAULT_MAX_BYTES``, written out: importing it would slow ``import llamabot``).
    max_image_bytes: int = 100 * 1024 * 1024

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
        if isinstance(model, _ReferenceDefault):
            import os

            model = os.environ.get("IMAGEBOT_MODEL", "").strip() or model
        self.model = model
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
        # No lifecycle warning here: suites run with -W error must be able to build ImageBot().
        # It comes before a model's first request (_lifecycle_check), and the 404 carries a note.
        self._validate()
        #: The bot's pace (requests_per_minute, and the pause after a 429), shared by its copies.
        self._throttle = _new_throttle(self.requests_per_minute)

    def __repr__(self) -> str:
        """Show the settings, with every credential masked at any depth and the endpoint without secrets."""
        from llamabot import _providers, _redact

        shown: dict[str, Any] = {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "response_format": self.response_format,
            "api_key": None if self.api_key is None else _redact.MASK,
            "api_base": None if self.api_base is None else _redact.redact_url(self.api_base),
            "api_version": self.api_version,
            "timeout": self.timeout,
        }
        if self.requests_per_minute is not None:
            shown["requests_per_minute"] = self.requests_per_minute
        shown.update(_redact.redact(self.image_generation_kwargs))
        documented = _providers.openai_params(
            self.model,
            self.image_generation_kwargs.get("custom_llm_provider"),
            self.image_generation_kwargs.get("base_model"),
        )
        if documented is not None and "response_format" not in documented:
            del shown["response_format"]  # never sent to this model (GPT image models always answer base64)
        return f"ImageBot({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

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

    def __call__(
        self,
        prompt: str,
        return_url: bool = False,
        save_path: Optional[PathLike] = None,
    ) -> Union[str, Path]:
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
        images, result = self._run(prompt, deliver=True, return_url=return_url, save_path=save_path)
        return _shown(images, result)

    def generate(self, prompt: str, **overrides: Any) -> GeneratedImages:
        """Generate every image the settings ask for, without saving any.

        :param prompt: The text prompt describing the image to generate.
        :param overrides: Settings for this call only, such as ``n=2`` or ``size="1536x1024"``
            (any constructor argument or extra litellm keyword argument).
        :return: The images (bytes or URL, MIME type, ``revised_prompt``, ``save(path)``),
            with ``cost`` where litellm reports it.
        :raises ValueError: If no generated image data is found in the response.
        """
        return self._with(overrides)._run(prompt, deliver=False)[0]

    async def agenerate(self, prompt: str, **overrides: Any) -> GeneratedImages:
        """Like ``generate``, on ``litellm.aimage_generation``.

        :param prompt: The text prompt describing the image to generate.
        :param overrides: Settings for this call only, such as ``n=2``.
        :return: The images, with ``cost`` where litellm reports it.
        :raises ValueError: If no generated image data is found in the response.
        """
        return (await self._with(overrides)._arun(prompt, deliver=False))[0]

    def _with(self, overrides: dict[str, Any]) -> ImageBot:
        """This bot, or a copy with some settings changed for one call (validated)."""
        if not overrides:
            return self
        import copy

        bot = copy.copy(self)
        bot.image_generation_kwargs = dict(self.image_generation_kwargs)
        for key, value in overrides.items():
            if key in _OWN_SETTINGS:
                setattr(bot, key, value)
            else:
                bot.image_generation_kwargs[key] = value
        bot._validate()
        if "requests_per_minute" in overrides:  # otherwise the copy shares this bot's pace
            bot._throttle = _new_throttle(bot.requests_per_minute)
        return bot

    async def acall(
        self,
        prompt: str,
        return_url: bool = False,
        save_path: Optional[PathLike] = None,
    ) -> Union[str, Path]:
        """Like calling the bot, without blocking the event loop: files are written in a thread.

        :param prompt: The text prompt describing the image to generate.
        :param return_url: Whether to return the URL or data URI instead of saving.
        :param save_path: The path to save the generated image to.
        :return: The image reference if ``return_url`` is True, otherwise the saved Path.
        :raises ValueError: If no generated image data is found in the response.
        """
        images, result = await self._arun(prompt, deliver=True, return_url=return_url, save_path=save_path)
        return _shown(images, result)

    def generate_batch(
        self,
        prompts: Iterable[str],
        concurrency: int = 4,
        *,
        return_url: bool = False,
        save_dir: Optional[PathLike] = None,
        save_path: Optional[PathLike] = None,
        progress: Optional[bool] = None,
        resume: Optional[bool] = None,
        max_cost: Optional[float] = None,
        executor: Optional[Executor] = None,
        **overrides: Any,
    ) -> list[Union[GeneratedImages, Exception]]:
        """Generate (and unless ``return_url``, save) the images of many prompts at once.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param return_url: Save nothing; the images keep their references only.
        :param save_dir: The folder for names derived from the prompts (default: the working
            folder). A batch with a ``save_dir`` keeps a journal there and can be resumed.
        :param save_path: Where to save, for a single prompt only.
        :param progress: Show a progress bar; by default only when stderr is a terminal.
        :param resume: Skip prompts whose images the journal in ``save_dir`` lists, still
            intact (the default when it exists); ``False`` starts the journal afresh.
        :param max_cost: Send no prompt that could take the batch's cost over this many USD.
        :param executor: Run the prompts on this ``concurrent.futures.Executor`` (a Dask
            client's ``get_executor()``, say) instead of threads here.
        :param overrides: Settings for these calls only, such as ``n=2``.
        :return: For each prompt, in order, its images (each saved one has ``path``) or
            the exception raised for it (``NotSentError`` when ``max_cost`` kept it back).
        """
        done = sorted(
            self.iter_batch(
                prompts,
                concurrency,
                return_url=return_url,
                save_dir=save_dir,
                save_path=save_path,
                progress=progress,
                resume=resume,
                max_cost=max_cost,
                executor=executor,
                **overrides,
            ),
            key=lambda result: result.index,
        )
        return [result.outcome for result in done]

    def iter_batch(
        self,
        prompts: Iterable[str],
        concurrency: int = 4,
        *,
        return_url: bool = False,
        save_dir: Optional[PathLike] = None,
        save_path: Optional[PathLike] = None,
        progress: Optional[bool] = None,
        resume: Optional[bool] = None,
        max_cost: Optional[float] = None,
        executor: Optional[Executor] = None,
        **overrides: Any,
    ) -> Iterator[BatchResult]:
        """Run many prompts, ``concurrency`` at a time, and yield each outcome as soon as it is done.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param return_url: Save nothing; the images keep their references only.
        :param save_dir: The folder for names derived from the prompts (default: the working
            folder). A batch with a ``save_dir`` keeps a journal there
            (``.imagebot-journal.jsonl``, a line per saved prompt) and can be resumed.
        :param save_path: Where to save, for a single prompt only.
        :param progress: Show a progress bar; by default only when stderr is a terminal.
        :param resume: Skip prompts whose images the journal in ``save_dir`` lists, still
            intact (the default when it exists); ``False`` starts the journal afresh.
        :param max_cost: Send no prompt that could take the batch's cost over this many USD
            (litellm's price for the model, size and quality, and the costs reported so far;
            a resumed batch counts what the journal says it already spent).
        :param executor: Run the prompts on this ``concurrent.futures.Executor`` (a Dask
            client's ``get_executor()``, say) instead of threads here; the bot is pickled
            to it when it runs elsewhere.
        :param overrides: Settings for these calls only, such as ``n=2``.
        :return: An iterator of ``BatchResult`` (the prompt's ``index``, the ``prompt``, its
            ``images`` with their ``paths`` and ``cost``, or the ``error``): resumed prompts
            first, then the others in the order they finish, then any the spending cap kept
            back (``error`` is a ``NotSentError``). Stopping early (``break``, Ctrl-C) cancels
            what has not started and removes partial files.
        """
        from llamabot import _batch

        bot = self._with(overrides)
        prompts = bot._batch_prompts(prompts, concurrency, save_path, max_cost)
        return _batch.run(
            bot,
            prompts,
            concurrency=concurrency,
            return_url=return_url,
            save_dir=save_dir,
            save_path=save_path,
            progress=_progress_bar(len(prompts), progress),
            resume=resume,
            max_cost=max_cost,
            executor=executor,
        )

    def batch(
        self,
        prompts: Iterable[str],
        concurrency: int = 4,
        return_url: bool = False,
        save_dir: Optional[PathLike] = None,
        progress: Optional[bool] = None,
        *,
        resume: Optional[bool] = None,
        max_cost: Optional[float] = None,
        executor: Optional[Executor] = None,
        **overrides: Any,
    ) -> list[Union[str, Path, Exception]]:
        """Run ``bot(prompt)`` for many prompts, ``concurrency`` at a time.

        One failure never stops or loses the others.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param return_url: Return references instead of saving.
        :param save_dir: The folder for the saved images (default: the working folder).
            A batch with a ``save_dir`` keeps a journal there and can be resumed.
        :param progress: Show a progress bar; by default only when stderr is a terminal.
        :param resume: Skip prompts already saved by an earlier run (the default when
            ``save_dir`` has a journal); ``False`` starts afresh.
        :param max_cost: Send no prompt that could take the batch's cost over this many USD.
        :param executor: Run the prompts on this ``concurrent.futures.Executor`` (a Dask
            client's ``get_executor()``, say) instead of threads here.
        :param overrides: Settings for these calls only, such as ``quality="low"``.
        :return: For each prompt, in order, what ``bot(prompt)`` would have returned,
            or the exception raised for that prompt (``NotSentError`` when ``max_cost``
            kept it back).
        """
        results = self.generate_batch(
            prompts,
            concurrency,
            return_url=return_url,
            save_dir=save_dir,
            progress=progress,
            resume=resume,
            max_cost=max_cost,
            executor=executor,
            **overrides,
        )
        return [_first(result, return_url) for result in results]

    async def abatch(
        self,
        prompts: Iterable[str],
        concurrency: int = 4,
        return_url: bool = False,
        save_dir: Optional[PathLike] = None,
        progress: Optional[bool] = None,
        *,
        resume: Optional[bool] = None,
        max_cost: Optional[float] = None,
        **overrides: Any,
    ) -> list[Union[str, Path, Exception]]:
        """Like ``batch``, on the event loop: at most ``concurrency`` requests in flight.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param return_url: Return references instead of saving.
        :param save_dir: The folder for the saved images (default: the working folder).
        :param progress: Show a progress bar; by default only when stderr is a terminal.
        :param resume: Skip prompts already saved by an earlier run (see ``batch``).
        :param max_cost: Send no prompt that could take the batch's cost over this many USD.
        :param overrides: Settings for these calls only, such as ``quality="low"``.
        :return: For each prompt, in order, what ``await bot.acall(prompt)`` would have
            returned, or the exception raised for that prompt.
        """
        done = [
            result
            async for result in self.aiter_batch(
                prompts,
                concurrency,
                return_url=return_url,
                save_dir=save_dir,
                progress=progress,
                resume=resume,
                max_cost=max_cost,
                **overrides,
            )
        ]
        done.sort(key=lambda result: result.index)
        return [_first(result.outcome, return_url) for result in done]

    async def aiter_batch(
        self,
        prompts: Iterable[str],
        concurrency: int = 4,
        *,
        return_url: bool = False,
        save_dir: Optional[PathLike] = None,
        progress: Optional[bool] = None,
        resume: Optional[bool] = None,
        max_cost: Optional[float] = None,
        **overrides: Any,
    ) -> AsyncIterator[BatchResult]:
        """Like ``iter_batch``, on the event loop: each prompt's outcome as soon as it is done.

        :param prompts: The prompts.
        :param concurrency: How many requests to keep in flight.
        :param return_url: Save nothing; the images keep their references only.
        :param save_dir: The folder for names derived from the prompts (default: the working
            folder); a batch with one keeps a journal there and can be resumed.
        :param progress: Show a progress bar; by default only when stderr is a terminal.
        :param resume: Skip prompts already saved by an earlier run (see ``iter_batch``).
        :param max_cost: Send no prompt that could take the batch's cost over this many USD.
        :param overrides: Settings for these calls only, such as ``n=2``.
        :return: An async iterator of ``BatchResult``: resumed prompts first, then the others
            in the order they finish. Leaving the loop early cancels the prompts still running.
        """
        from llamabot import _batch

        bot = self._with(overrides)
        prompts = bot._batch_prompts(prompts, concurrency, None, max_cost)
        async for result in _batch.arun(
            bot,
            prompts,
            concurrency=concurrency,
            return_url=return_url,
            save_dir=save_dir,
            progress=_progress_bar(len(prompts), progress),
            resume=resume,
            max_cost=max_cost,
        ):
            yield result

    def _batch_prompts(
        self, prompts: Iterable[str], concurrency: int, save_path: Optional[PathLike], max_cost: Optional[float]
    ) -> list[str]:
        if isinstance(prompts, str):
            msg = "batch takes a list of prompts; wrap a single prompt in a list, or call the bot."
            raise TypeError(msg)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            msg = f"concurrency must be a whole number of at least 1, not {concurrency!r}."
            raise ValueError(msg)
        if max_cost is not None and (
            isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or not max_cost >= 0
        ):
            msg = f"max_cost must be an amount in USD of at least 0 (or None for no cap), not {max_cost!r}."
            raise ValueError(msg)
        prompts = list(prompts)
        if save_path is not None and len(prompts) != 1:
            msg = "save_path names one file: give a single prompt, or use save_dir for several."
            raise ValueError(msg)
        return prompts

    def _run(
        self,
        prompt: str,
        *,
        deliver: bool,
        return_url: bool = False,
        save_path: Optional[PathLike] = None,
        directory: Optional[PathLike] = None,
        cancel: Optional[threading.Event] = None,
    ) -> tuple[GeneratedImages, Union[str, Path, None]]:
        """The sync shell: the request here (in its turn in the bot's pace), then ``_complete``."""
        from llamabot import _providers

        _providers.load_litellm()  # first: a turn taken during a slow import would be lost
        turn = self._throttle.acquire(cancel)  # waiting for a turn is not provider time: the clock starts after
        ok = False
        try:
            call = self._begin()
            try:
                response = generate_image_response(self, prompt, deadline=call.deadline, cancel=cancel)
            except Exception as exc:
                self._remember(call, prompt, None, exc)
                raise
            ok = True
        finally:
            self._throttle.release(ok=ok, token=turn)
        return self._complete(call, prompt, response, deliver, return_url, save_path, directory, cancel)

    async def _arun(
        self,
        prompt: str,
        *,
        deliver: bool,
        return_url: bool = False,
        save_path: Optional[PathLike] = None,
        directory: Optional[PathLike] = None,
    ) -> tuple[GeneratedImages, Union[str, Path, None]]:
        """The async shell: the request on the event loop, the rest (files, history) in a thread."""
        import asyncio

        from llamabot import _providers

        _providers.load_litellm()
        turn = await self._throttle.aacquire()
        ok = False
        try:
            call = self._begin()
            try:
                response = await agenerate_image_response(self, prompt, deadline=call.deadline)
            except Exception as exc:
                await asyncio.to_thread(self._remember, call, prompt, None, exc)
                raise
            ok = True
        finally:
            self._throttle.release(ok=ok, token=turn)
        return await asyncio.to_thread(
            self._complete, call, prompt, response, deliver, return_url, save_path, directory, None
        )

    def _begin(self) -> _Call:
        """Start a call's clock (the shells load litellm first: a slow import is not provider time)."""
        started = time.monotonic()
        return _Call(started, started + self.timeout, self._history_path())

    def _complete(
        self,
        call: _Call,
        prompt: str,
        response: Any,
        deliver: bool,
        return_url: bool,
        save_path: Optional[PathLike],
        directory: Optional[PathLike],
        cancel: Optional[threading.Event],
    ) -> tuple[GeneratedImages, Union[str, Path, None]]:
        """What sync and async calls share after the request: the images, then the reference or the files."""
        from llamabot import _providers
        from llamabot._response import parse_response

        images = None
        try:
            images = parse_response(
                response,
                prompt=prompt,
                model=self.model,
                cost=_providers.response_cost(response, self.model),
                max_bytes=self.max_image_bytes,
            )
            images.settings = self._public_settings(_request_kwargs(self, prompt)[0])
            first = first_generated_image(images)
            result: Union[str, Path, None] = None
            if deliver and return_url:
                result = generated_image_reference(first)
            elif deliver:
                try:
                    images = self._save(images, prompt, save_path, call.deadline, directory, cancel)
                except (OSError, ValueError) as exc:
                    unsaved = _unsaved(exc, images)
                    if unsaved is exc:
                        raise
                    raise unsaved from exc
                result = images[0].path
        except Exception as exc:
            self._remember(call, prompt, images, exc)
            raise
        self._remember(call, prompt, images)
        return images, result

    def _metadata_on(self) -> bool:
        if self.imagebot_metadata is not None:
            return bool(self.imagebot_metadata)
        return _env_flag("IMAGEBOT_METADATA")

    def _history_path(self) -> Optional[Path]:
        """The history database to record into, or None when recording is off."""
        from pathlib import Path

        from llamabot import _history

        option = self.imagebot_history
        if option is None:
            option = _env_flag("IMAGEBOT_HISTORY")
        if option is False:
            return None
        if option is True:
            return _history.default_path()
        return Path(option)

    def _remember(
        self,
        call: _Call,
        prompt: str,
        images: Optional[GeneratedImages],
        error: Optional[BaseException] = None,
    ) -> None:
        """Record one generation in the history, if on; a failure to record is a warning, never the call's failure."""
        import warnings

        from llamabot import _history, _redact
        from llamabot._exceptions import HistoryWarning

        if call.history is None:
            return
        error_text = None
        if error is not None:
            secrets = _redact.secrets_to_hide(
                {"api_key": self.api_key, "api_base": self.api_base}, self.image_generation_kwargs
            )
            error_text = _redact.scrub(f"{type(error).__name__}: {error}", secrets)
        entry = _history.entry(
            prompt,
            images,
            model=self.model,
            provider=self._provider(),
            settings=images.settings if images is not None else self._public_settings(),
            duration=time.monotonic() - call.started,
            error=error_text,
        )
        try:
            _history.record(entry, call.history)
        except Exception as exc:
            warnings.warn(
                f"Could not record this generation in the history at {call.history}: {exc}",
                HistoryWarning,
                stacklevel=4,
            )

    def _provider(self) -> Optional[str]:
        from llamabot import _providers

        routed = _providers.provider_of(self.model, self.image_generation_kwargs.get("custom_llm_provider"))
        return routed[1] if routed else None

    def _public_settings(self, sent: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """The settings sent (or configured), without prompt, model or any credential."""
        from llamabot import _providers

        if sent is None:
            sent = {
                "size": self.size,
                "n": self.n,
                "quality": self.quality,
                "response_format": self.response_format,
                "timeout": self.timeout,
                "api_base": self.api_base,
                "api_version": self.api_version,
                **self.image_generation_kwargs,
            }
        return _providers.public_settings(sent)

    def _provenance(self, images: GeneratedImages, image: GeneratedImage) -> Optional[dict[str, Any]]:
        from llamabot import _provenance

        return _provenance.describe(image, images.settings, self._provider()) if self._metadata_on() else None

    def _attempts(self) -> int:
        """How many requests a call may make in all: ``num_retries + 1``."""
        from llamabot import _calls, _providers

        retries = self.image_generation_kwargs.get("num_retries")
        if retries is None:
            retries = _calls.DEFAULT_NUM_RETRIES
        elif not isinstance(retries, bool) and isinstance(retries, int):
            _providers.warn_fixed_sdk_retries(self._provider(), retries, stacklevel=6)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            msg = f"num_retries must be a whole number of at least 0, not {retries!r}."
            raise ValueError(msg)
        return retries + 1

    def _save(
        self,
        images: GeneratedImages,
        prompt: str,
        save_path: Optional[PathLike],
        deadline: float,
        directory: Optional[PathLike] = None,
        cancel: Optional[threading.Event] = None,
    ) -> GeneratedImages:
        """Save every image (the first at ``save_path`` or under a name from the prompt); return them with paths."""
        from llamabot import _io

        paths = _io.save_all(
            images,
            prompt,
            save_path,
            directory,
            provenance=[self._provenance(images, image) for image in images],
            timeout=self.timeout,
            max_bytes=self.max_image_bytes,
            deadline=deadline,
            cancel=cancel,
        )
        return images.replaced(image.replace(path=path) for image, path in zip(images, paths, strict=True))

    def _validate(self) -> None:
        """Reject settings no provider accepts, before any network call."""
        from llamabot import _providers

        rpm = self.requests_per_minute
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, (int, float)) or not rpm > 0):
            msg = f"requests_per_minute must be a number above 0 (or None for no limit), not {rpm!r}."
            raise ValueError(msg)
        _providers.check_bot_settings(
            self.model,
            self.size,
            self.quality,
            self.n,
            self.response_format,
            self.timeout,
            self.image_generation_kwargs,
        )


def _new_throttle(requests_per_minute: Optional[float]) -> Any:
    from llamabot._throttle import Throttle

    return Throttle(requests_per_minute)


def _progress_bar(total: int, progress: Optional[bool]) -> Any:
    """A tqdm bar on stderr: shown on a terminal by default, never in pipes or logs."""
    import sys

    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, disable=not show, unit="prompt", file=sys.stderr, leave=True)


def _first(result: Union[GeneratedImages, Exception], return_url: bool) -> Union[str, Path, Exception]:
    if isinstance(result, Exception):
        return result
    if return_url:
        return result[0].reference
    path = result[0].path
    assert path is not None
    return path


def _shown(images: GeneratedImages, result: Union[str, Path, None]) -> Union[str, Path]:
    """Display the images once in a notebook; there a reference prints shortened."""
    from llamabot import _notebook

    assert result is not None
    if not is_running_in_jupyter():
        return result
    _notebook.show(images)
    return _notebook.ImageReference(result) if isinstance(result, str) else result


def _unsaved(exc: Exception, images: GeneratedImages) -> Exception:
    """The error for images that were generated (and paid for) but not saved: it carries them.

    ImageBot's own errors (a failed or cut-short download, bytes that are not an image) keep
    their type and gain ``images`` and a note; a failure to write (a read-only folder, a full
    disk) becomes ``ImageSaveError``, whose message says where the images are.
    """
    from llamabot import _providers
    from llamabot._exceptions import ImageDownloadError, ImageSaveError

    where = (
        f"The {len(images)} generated image{'s' * (len(images) != 1)} "
        "are on this exception as exc.images; exc.images[0].save(path) writes one elsewhere."
    )
    if isinstance(exc, ImageDownloadError) or not isinstance(exc, OSError):
        exc.images = images  # type: ignore[attr-defined]
        _providers.add_note(exc, where)
        return exc
    error = ImageSaveError(exc.errno, f"{exc.strerror or exc}. {where}", exc.filename)
    error.images = images
    return error


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# llamabot's pipeline steps ------------------------------------------------------------


def _request_kwargs(bot: ImageBot, prompt: str) -> tuple[dict[str, Any], list[str]]:
    """The kwargs for litellm, and the explicit settings dropped because the model refuses them."""
    from llamabot import _providers

    if not isinstance(prompt, str):
        msg = f"prompt must be a string, not {type(prompt).__name__}."
        raise TypeError(msg)
    if not prompt.strip():
        msg = "prompt is empty; describe the image to generate."
        raise ValueError(msg)
    bot._validate()
    _providers.check_prompt(bot.model, prompt, bot.image_generation_kwargs)
    settings = {
        "model": bot.model,
        "prompt": prompt,
        "size": bot.size,
        "n": bot.n,
        "quality": bot.quality,
        "response_format": bot.response_format,
        "timeout": bot.timeout,
        "api_key": bot.api_key,
        "api_base": bot.api_base,
        "api_version": bot.api_version,
    }
    return _providers.request_kwargs(settings, bot.image_generation_kwargs)


def image_generation_kwargs_for_bot(bot: ImageBot, prompt: str) -> dict[str, Any]:
    """Build the keyword arguments for ``litellm.image_generation``: exactly what will be sent.

    Defaults the model does not accept are left out; an explicit setting it does not
    accept is dropped with an ``UnsupportedSettingWarning``.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :return: Keyword arguments suitable for ``litellm.image_generation``.
    :raises ValueError: For an empty prompt or settings the model is documented to refuse.
    """
    from llamabot import _providers

    kwargs, dropped = _request_kwargs(bot, prompt)
    _providers.warn_dropped(bot.model, dropped, stacklevel=3)
    return kwargs


def generate_image_response(
    bot: ImageBot,
    prompt: str,
    *,
    deadline: Optional[float] = None,
    cancel: Optional[threading.Event] = None,
) -> Any:
    """Generate an image response through litellm, retried and bounded by ``bot.timeout``.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :param deadline: A ``time.monotonic()`` instant the call must end by (default: ``bot.timeout`` from now).
    :param cancel: When set (a batch's Ctrl-C), the call stops waiting.
    :return: litellm's image generation response.
    """
    from llamabot import _calls, _providers

    kwargs = image_generation_kwargs_for_bot(bot, prompt)
    litellm = _providers.load_litellm()
    _lifecycle_check(bot)
    with _providers.refined_errors(bot.model, bot.api_key, {**bot.image_generation_kwargs, "api_base": bot.api_base}):
        # Looked up at call time so that mocker.patch("litellm.image_generation") works.
        return _calls.call(
            _providers.tolerant(_providers.bounded(litellm.image_generation, bot._provider())),
            kwargs,
            timeout=bot.timeout,
            attempts=bot._attempts(),
            per_call=_providers.attempts_per_call(bot._provider(), kwargs),
            deadline=deadline if deadline is not None else time.monotonic() + bot.timeout,
            cancel=cancel,
            throttle=bot._throttle,
        )


async def agenerate_image_response(bot: ImageBot, prompt: str, *, deadline: Optional[float] = None) -> Any:
    """``generate_image_response`` on ``litellm.aimage_generation``, without blocking the event loop.

    :param bot: The ImageBot providing generation settings.
    :param prompt: The prompt to generate an image from.
    :param deadline: A ``time.monotonic()`` instant the call must end by (default: ``bot.timeout`` from now).
    :return: litellm's image generation response.
    """
    from llamabot import _calls, _providers

    kwargs = image_generation_kwargs_for_bot(bot, prompt)
    litellm = _providers.load_litellm()
    _lifecycle_check(bot)
    with _providers.refined_errors(bot.model, bot.api_key, {**bot.image_generation_kwargs, "api_base": bot.api_base}):
        return await _calls.acall(
            _providers.atolerant(litellm.aimage_generation),
            kwargs,
            timeout=bot.timeout,
            attempts=bot._attempts(),
            per_call=_providers.attempts_per_call(bot._provider(), kwargs),
            deadline=deadline if deadline is not None else time.monotonic() + bot.timeout,
            throttle=bot._throttle,
        )


def _lifecycle_check(bot: ImageBot) -> None:
    """Warn, once per model, when litellm's table says the bot's model is shut down or about to be."""
    from llamabot import _providers

    if not isinstance(bot.model, _ReferenceDefault):  # the reference's default stays silent (see the class)
        _providers.warn_lifecycle(bot.model, bot.image_generation_kwargs.get("custom_llm_provider"), stacklevel=5)


def first_generated_image(response: Any) -> GeneratedImage:
    """Return the first image of a litellm image response (or of ``GeneratedImages``).

    :param response: What ``litellm.image_generation`` returned, or the images parsed from it.
    :return: The first generated image.
    :raises ValueError: If the response does not contain generated images
        (``NoImageError``, whose message says "No images found in response").
    """
    from llamabot._response import GeneratedImages, parse_response

    images = response if isinstance(response, GeneratedImages) else parse_response(response)
    return images[0]


def generated_image_reference(image: Any) -> str:
    """Return a displayable reference for a generated image: its URL, else a data URI.

    :param image: A ``GeneratedImage``, or a litellm image object.
    :return: The image URL, or a ``data:`` URI carrying the image's real MIME type.
    :raises ValueError: If neither a URL nor base64 image data is present.
    """
    return _as_generated(image).reference


def generated_image_bytes(image: Any) -> bytes:
    """Return a generated image's bytes: base64 decoded, or downloaded from its URL (size capped).

    :param image: A ``GeneratedImage``, or a litellm image object.
    :return: The image bytes.
    :raises ValueError: If neither a URL nor base64 image data is present, or the data is not an image.
    :raises ~llamabot.ImageDownloadError: If the URL cannot be downloaded.
    """
    from llamabot import _io

    generated = _as_generated(image)
    return generated.data if generated.data is not None else _io.fetch_image(generated.url or "")


def is_running_in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (an IPython terminal is not one).

    :return: True inside a Jupyter kernel (Colab and VS Code included), otherwise False.
    """
    from llamabot import _notebook

    return _notebook.in_notebook()


def _as_generated(image: Any) -> GeneratedImage:
    """A litellm image object (or look-alike) as a ``GeneratedImage``."""
    from llamabot._response import GeneratedImage, parse_response

    if isinstance(image, GeneratedImage):
        return image
    return parse_response({"data": [image]})[0]
