"""The one generation step: one call's request, sent and retried, its images named, saved and recorded.

A ``Generation`` is one call: a snapshot of the bot's settings, the operation (generate
from a prompt, or edit images), its clock and deadline (set once, when its turn in the
bot's pace comes), the kwargs it sends (built and checked once) and where it is recorded.
What a sync and an async call share is here as plain functions; the two shells that wait
(``send`` in a thread, ``asend`` on an event loop) only carry out the retry plan.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from pathlib import Path

from llamabot_imagebot import _download, _errors, _files, _history, _prices, _provenance, _retry, _routing, _transport
from llamabot_imagebot._clock import SYSTEM, Clock
from llamabot_imagebot._exceptions import HistoryWarning, NoImageError, warn
from llamabot_imagebot._formats import numbered, slugify
from llamabot_imagebot._info import file_sha256
from llamabot_imagebot._operations import Edit, Generate, with_inputs
from llamabot_imagebot._response import GeneratedImage, GeneratedImages, parse_response
from llamabot_imagebot._settings import Settings, check_prompt, history_path, warn_misspelled
from llamabot_imagebot._throttle import PausedTooLong, Throttle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    import threading
    from collections.abc import Iterator, Sequence
    from typing import Any


class Generation:
    """One call: what it asks for, with what settings, by when, and what it sent.

    :param settings: The bot's settings for this call (a snapshot).
    :param operation: What to make.
    :param throttle: The bot's pace, shared with every call on the bot.
    :param cancel: When set (a batch's Ctrl-C), the call stops waiting.
    :param clock: The time (a fake one in tests).
    """

    def __init__(
        self,
        settings: Settings,
        operation: Generate | Edit,
        *,
        throttle: Throttle | None = None,
        cancel: threading.Event | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        check_prompt(settings, operation.prompt)  # before anything loads: a blank prompt fails in microseconds
        self.settings = settings
        self.operation = operation
        self.throttle = throttle if throttle is not None else Throttle(settings.requests_per_minute, clock)
        self.cancel = cancel
        self.clock = clock
        self.started = time.monotonic()
        self.deadline = self.started + settings.timeout
        self.provider: str | None = None
        self.sent: dict[str, Any] | None = None
        self.dropped: list[str] = []
        self.answer: bytes | None = None
        #: Whether the call's settings differ from its bot's (per-call overrides).
        self.overridden = False
        self.history = (
            history_path(settings.history_option, _history.default_path()) if settings.history_option else None
        )

    @property
    def prompt(self) -> str:
        return self.operation.prompt

    def prepare(self) -> None:
        """Load litellm and check what needs it (the model is known, a key is there), once, before the turn.

        litellm loads first: a turn in the pace taken during a slow import would be lost.
        """
        if self.provider is not None:
            return
        _routing.load_litellm()
        provider = _routing.require_known(self.settings)
        if isinstance(self.operation, Edit):
            _routing.check_edit(self.settings, provider, self.operation)
        self.provider = provider

    def begin(self) -> None:
        """The turn came: the call's clock starts now (waiting in the pace is not provider time)."""
        self.started = self.clock.now()
        self.deadline = self.started + self.settings.timeout

    def kwargs(self) -> dict[str, Any]:
        """What goes to litellm, built and checked once per call (``dropped``: what the model refuses)."""
        if self.sent is None:
            self.prepare()
            if isinstance(self.operation, Edit):
                kwargs, self.dropped = _routing.edit_kwargs(self.settings, self.prompt)
            else:
                kwargs, self.dropped = _routing.generation_kwargs(self.settings, self.prompt)
                kwargs = _transport.with_retries_off(kwargs, self.provider)
            self.sent = kwargs
        return self.sent

    def warn(self) -> None:
        """Before the first request: whether litellm's table says the model is shut down, or retries cannot be kept."""
        _transport.warn_fixed_sdk_retries(self.settings, self.provider)
        warn_misspelled(self.settings, self._accepted())
        if not getattr(self.settings.model, "reference_default", False):  # the reference's default stays silent
            _routing.warn_lifecycle(self.settings.model, self.settings.custom_llm_provider)

    def edit_kwargs(self) -> dict[str, Any]:
        """An edit's kwargs, with a warning for what the model refuses (a generation's go through llamabot's step)."""
        kwargs = self.kwargs()
        _routing.warn_dropped(self.settings.model, self.dropped)
        return kwargs

    def _accepted(self) -> frozenset[str]:
        settings = self.settings
        return (
            _routing.supported_params(settings.model, settings.custom_llm_provider, settings.extra.get("base_model"))
            or frozenset()
        )

    def client(self, timeout: Any, *, on_loop: bool) -> Any:
        """A client of litellm's kind for one attempt, where a guarantee needs one (``_transport.attempt_client``)."""
        return _transport.attempt_client(self.provider, timeout, self.keep, self.operation.kind, on_loop)

    def keep(self, body: bytes) -> None:
        """The provider's answer as it came (Gemini and Vertex: where a refusal's reason is)."""
        self.answer = body

    def plan(self, kwargs: dict[str, Any]) -> Any:
        return _retry.plan(
            kwargs,
            allowed=self.settings.attempts,
            # litellm sends edits over httpx, never through the OpenAI SDK: one request per call.
            provider=self.provider if self.operation.kind == "generate" else None,
            timeout=self.settings.timeout,
            deadline=self.deadline,
            clock=self.clock,
            throttle=self.throttle,
        )

    def public(self) -> dict[str, Any]:
        """The settings sent, fit to store: no prompt, model, endpoint or secret; what an edit was made from."""
        sent = self.settings.public({k: v for k, v in (self.sent or {}).items() if k not in ("image", "mask")})
        return {**sent, **self.operation.record()}


#: The call in progress in this thread or task: llamabot's steps take only ``(bot, prompt)``,
#: so this is how they find the call's deadline and kwargs.
_current: contextvars.ContextVar[Generation | None] = contextvars.ContextVar("imagebot_generation", default=None)


class current:  # used as a function: ``with current(generation):``
    """The call in progress while the block runs (a class, not a generator: it is entered on every call)."""

    __slots__ = ("_token", "generation")

    def __init__(self, generation: Generation) -> None:
        self.generation = generation

    def __enter__(self) -> Generation:
        self._token = _current.set(self.generation)
        return self.generation

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def standalone(bot: Any, prompt: str) -> Generation:
    """A call of its own, for a step called outside a bot's call (in the bot's pace)."""
    return Generation(Settings.of(bot), Generate(prompt), throttle=getattr(bot, "_throttle", None))


def in_progress(prompt: str | None = None) -> Generation | None:
    """The call in progress here (for ``prompt``, if given), if any."""
    found = _current.get()
    return found if found is not None and (prompt is None or found.prompt == prompt) else None


def _patience(generation: Generation) -> float:
    return float(generation.settings.timeout)


def told_to_wait(generation: Generation, error: PausedTooLong) -> Exception:
    return _errors.told_to_wait(generation.settings.model, error.seconds, generation.settings.timeout)


# The two shells -------------------------------------------------------------------------


class turn:  # used as a function: ``with turn(generation):``, ``async with turn(generation):``
    """A call's turn in the bot's pace, sync or async; a failure is recorded in the history.

    Before the turn, litellm is loaded and the model checked (``prepare``); a 429's pause longer
    than the call may wait fails it, unsent. Once the turn is taken, the call's clock starts, and
    the turn is given back however the call ends. A class, not a generator: it is entered on
    every call, and a batch of thousands keeps one per item in flight.
    """

    __slots__ = ("_token", "generation")

    def __init__(self, generation: Generation) -> None:
        self.generation = generation

    def __enter__(self) -> None:
        generation = self.generation
        generation.prepare()
        try:
            self._token = generation.throttle.acquire(generation.cancel, patience=_patience(generation))
        except PausedTooLong as error:
            raise told_to_wait(generation, error) from None
        generation.begin()

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, Exception):
            record(self.generation, None, error)
        self.generation.throttle.release(ok=error is None, token=self._token)

    async def __aenter__(self) -> None:
        generation = self.generation
        generation.prepare()
        try:
            self._token = await generation.throttle.aacquire(patience=_patience(generation))
        except PausedTooLong as error:
            raise told_to_wait(generation, error) from None
        generation.begin()

    async def __aexit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, Exception):  # the history is written in a thread: the loop does not wait for it
            import asyncio

            asyncio.get_running_loop().run_in_executor(None, record, self.generation, None, error)
        self.generation.throttle.release(ok=error is None, token=self._token)


def send(generation: Generation, kwargs: dict[str, Any]) -> Any:
    """Send the request through litellm's sync function, retried, each attempt bounded by the time left."""
    litellm = _routing.load_litellm()
    fn = _routing.litellm_function(litellm, generation.operation.kind, asynchronous=False)
    generation.warn()
    cancel = generation.cancel
    here = generation.operation.kind == "generate"  # an edit (litellm's httpx path) always gets a worker

    def attempt(action: _retry.Attempt) -> _retry.Outcome:
        if cancel is not None and cancel.is_set():  # the batch was stopped: no request after that
            raise KeyboardInterrupt
        kwargs = with_inputs(action.kwargs, generation.operation)
        client = None if "client" in kwargs else generation.client(kwargs.get("timeout"), on_loop=False)
        sent = {**kwargs, **({"client": client} if client else {})}
        try:
            if here and _retry.in_caller(generation.provider):
                return _retry.run_here(fn, sent, action.wait, generation.provider)
            return _retry.bounded(fn, sent, action.wait, cancel)
        finally:
            if client is not None:
                client.close()

    def pause(seconds: float) -> None:
        generation.clock.sleep(seconds, cancel)
        generation.throttle.acquire(cancel, hold=False)

    with _errors.refined(generation.settings, generation.operation.kind):
        return _retry.run(generation.plan(kwargs), attempt, pause)


async def asend(generation: Generation, kwargs: dict[str, Any]) -> Any:
    """Send the request through litellm's async function, without blocking the event loop."""
    import asyncio

    litellm = _routing.load_litellm()
    fn = _routing.litellm_function(litellm, generation.operation.kind, asynchronous=True)
    generation.warn()
    bound = getattr(asyncio, "timeout", None)  # Python 3.11+

    async def attempt(action: _retry.Attempt) -> _retry.Outcome:
        kwargs = with_inputs(action.kwargs, generation.operation)
        client = None if "client" in kwargs else generation.client(kwargs.get("timeout"), on_loop=True)
        try:
            call = fn(**kwargs, **({"client": client} if client else {}))
            if bound is None:  # Python 3.10
                value = await asyncio.wait_for(call, action.wait)
            else:  # bounds the attempt in this task: wait_for's task of its own costs a step of the loop each way
                async with bound(action.wait):
                    value = await call
            return _retry.Outcome(value)
        except asyncio.TimeoutError:
            return _retry.Outcome(timed_out=True)
        except Exception as exc:
            return _retry.Outcome(error=exc)
        finally:
            if client is not None:
                await _transport.aclose(client)

    async def pause(seconds: float) -> None:
        await generation.clock.asleep(seconds)
        await generation.throttle.aacquire(hold=False)

    with _errors.refined(generation.settings, generation.operation.kind):
        return await _retry.arun(generation.plan(kwargs), attempt, pause)


# After the answer: the images, their files, the record -----------------------------------


def as_generated(image: Any) -> GeneratedImage:
    """A litellm image object (or look-alike) as a ``GeneratedImage``."""
    if isinstance(image, GeneratedImage):
        return image
    return parse_response({"data": [image]})[0]


def first_image(response: Any) -> GeneratedImage:
    """The first image of an answer (or of ``GeneratedImages``), decoded alone: the rest are read after."""
    if isinstance(response, GeneratedImages):
        return response[0]
    generation = in_progress()
    settings = generation.settings if generation is not None else None
    return parse_response(
        response,
        prompt=generation.prompt if generation is not None else None,
        model=settings.model if settings is not None else None,
        max_bytes=settings.max_image_bytes if settings is not None else None,
        limit=1,
    )[0]


def image_bytes(image: GeneratedImage) -> bytes:
    """An image's bytes: as decoded, or downloaded from its URL within the call's deadline (size capped)."""
    if image.data is not None:
        return image.data
    generation = in_progress()
    if generation is None:
        return _download.fetch_image(image.url or "")
    return _download.fetch_image(
        image.url or "",
        timeout=generation.settings.timeout,
        max_bytes=generation.settings.max_image_bytes,
        deadline=generation.deadline,
        cancel=generation.cancel,
    )


def images_of(generation: Generation, response: Any, first: GeneratedImage) -> GeneratedImages:
    """Every image of the answer: ``first`` (what llamabot's step chose), then the rest, decoded once."""
    settings = generation.settings
    rest = parse_response(
        response, prompt=generation.prompt, model=settings.model, max_bytes=settings.max_image_bytes, start=1
    )
    images = GeneratedImages(
        [first.replace(prompt=first.prompt or generation.prompt, model=first.model or settings.model), *rest],
        cost=_prices.response_cost(response, settings.model),
        model=settings.model,
        prompt=generation.prompt,
    )
    images.settings = generation.public()
    return images


class Destination:
    """Where a call's images go: ``path`` for the first (replaced whole), or new names from ``stem`` in ``folder``.

    :param save_path: The first image's path; a folder means "inside it, under a name from the prompt".
    :param folder: The folder for names from the prompt (default: the working folder, as a relative path).
    :param stem: The name to start from (default: the prompt's words).
    :param replace: The names are this call's own (a resumed batch's planned names): replace what is there.
    """

    def __init__(
        self,
        prompt: str,
        save_path: str | os.PathLike[str] | None = None,
        folder: str | os.PathLike[str] | None = None,
        stem: str | None = None,
        replace: bool = False,
    ) -> None:
        if save_path is not None and Path(save_path).is_dir():
            folder, save_path = save_path, None
        self.path = Path(save_path) if save_path is not None else None
        self.folder = Path(folder) if folder is not None else Path()
        self.prompt, self._stem = prompt, stem
        self.replace = replace

    @property
    def stem(self) -> str:
        """The name to start from: the one given, or the prompt's words (worked out only when a file is written)."""
        return self._stem or slugify(self.prompt)

    def names(self, index: int) -> Iterator[str]:
        """The names image ``index`` may take, in order: ``stem`` (the first image), then ``stem_2``, ``stem_3``…"""
        stem = self.path.stem if self.path is not None else self.stem
        return (numbered(stem, number) for number in itertools.count(index + 1))


def save(
    generation: Generation,
    images: GeneratedImages,
    sources: Sequence[Any],
    where: Destination,
) -> GeneratedImages:
    """Write each image (``sources``: its bytes, as llamabot's step gave them); return them with their paths."""
    metadata = generation.settings.metadata_on
    saved = []
    for index, (image, source) in enumerate(zip(images, sources, strict=True)):
        meta = _provenance.describe(image, images.settings, generation.provider) if metadata else None
        options: dict[str, Any] = {"provenance": meta, "cancel": generation.cancel}
        if where.path is not None and index == 0:
            path = _files.write(source, where.path, **options)
        elif where.replace:
            path = _files.write(source, where.folder / next(where.names(index)), **options)
        elif where.path is not None:
            folder, suffix = where.path.parent, where.path.suffix or None
            path = _files.write_new(source, folder, where.names(index), suffix=suffix, **options)
        else:
            path = _files.write_new(source, where.folder, where.names(index), **options)
        saved.append(image.replace(path=path))
    return images.replaced(saved)


def _refusal_reason(error: BaseException | None) -> str | None:
    if error is None or not _errors.is_refusal(error):
        return None
    return str(getattr(error, "reason", None) or error)


class Steps:
    """llamabot's steps after the answer, as the caller looked them up (a test's patch takes effect).

    :param first: The answer's first image (``first_generated_image``).
    :param reference: An image's URL or data URI (``generated_image_reference``).
    :param data: An image's bytes, what is saved (``generated_image_bytes``).
    """

    __slots__ = ("data", "first", "reference")

    def __init__(self, first: Any, reference: Any, data: Any) -> None:
        self.first, self.reference, self.data = first, reference, data


def deliver(generation: Generation, response: Any, mode: str, where: Any, steps: Steps) -> tuple[GeneratedImages, Any]:
    """What sync and async calls share after the answer: the images, then the reference or the files, then the record.

    :param mode: ``"save"`` (files), ``"reference"`` (``return_url=True``) or ``"none"`` (``generate``).
    """
    images = None
    try:
        try:
            first = steps.first(response)
        except NoImageError as exc:
            refusal = _errors.refusal_in_answer(generation.answer, generation.settings, generation.operation.kind)
            if refusal is None:
                _transport.check_answer_kept(generation.provider, generation.answer)
                raise
            raise refusal from exc
        images = images_of(generation, response, first)
        result: Any = None
        if mode == "reference":
            result = steps.reference(images[0])
        elif mode == "save":
            try:
                images = save(generation, images, [steps.data(image) for image in images], where)
            except (OSError, ValueError) as exc:
                unsaved = _errors.unsaved(exc, images)
                if unsaved is exc:
                    raise
                raise unsaved from exc
            result = images[0].path
    except Exception as exc:
        record(generation, images, exc)
        raise
    record(generation, images)
    return images, result


def record(generation: Generation, images: GeneratedImages | None, error: BaseException | None = None) -> None:
    """Record one generation in the history, if on; a failure to record is a warning, never the call's failure."""
    if generation.history is None:
        return
    entry = _history.entry(
        generation.prompt,
        images,
        model=generation.settings.model,
        provider=generation.provider,
        settings=images.settings if images is not None else generation.public(),
        duration=generation.clock.now() - generation.started,
        error=None if error is None else _errors.safe_text(error, generation.settings),
        refused=_refusal_reason(error),
        hashes=[file_sha256(image.path) for image in images or []],
    )
    try:
        _history.record(entry, generation.history)
    except Exception as exc:
        warn(f"Could not record this generation in the history at {generation.history}: {exc}", HistoryWarning)
