"""Many prompts through one bot: what is sent when, what stops it, and what became of each prompt.

``Plan`` holds the decisions (which prompts an earlier run already saved, whether the
spending cap lets the next one go) and records each outcome in the folder's journal;
``run`` and ``arun`` are the sync and async drivers around it. At most ``concurrency``
prompts are submitted at a time, so memory and the work a crash can lose stay
O(concurrency) whatever the batch's length.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamabot import _journal
from llamabot._exceptions import NotSentError, RemoteError
from llamabot._response import BatchResult, GeneratedImage, GeneratedImages

if TYPE_CHECKING:
    import os

    from llamabot.bot.imagebot import ImageBot

    PathLike = str | os.PathLike[str]


class Spending:
    """A batch's spending cap: whether the next prompt may be sent without crossing it.

    The estimate per prompt is the higher of litellm's list price and the dearest prompt
    seen so far. Without either, one prompt is sent alone to learn the price; if its cost
    is still unknown, nothing more is sent.

    :param max_cost: The cap in USD, or ``None`` for none.
    :param price: litellm's list price per prompt (all its images), if it has one.
    :param spent: What earlier runs of this batch already spent (from the journal).
    """

    def __init__(self, max_cost: float | None, price: float | None, spent: float = 0.0) -> None:
        self.max_cost = max_cost
        self.price = price
        self.spent = spent
        self.highest: float | None = None
        self.unknown = False
        self._committed: dict[int, float] = {}

    def estimate(self) -> float | None:
        known = [value for value in (self.price, self.highest) if value is not None]
        return max(known) if known else None

    def admit(self, index: int, in_flight: int) -> bool | None:
        """True: send it; None: wait for prompts in flight to settle; False: it cannot be sent."""
        if self.max_cost is None:
            return True
        if self.unknown:
            return False
        estimate = self.estimate()
        if estimate is None:
            if in_flight:
                return None  # the prompt in flight will tell what one costs
            estimate = 0.0
        if self.spent + sum(self._committed.values()) + estimate > self.max_cost + 1e-12:
            return None if in_flight else False
        self._committed[index] = estimate
        return True

    def settle(self, index: int, cost: float | None, failed: bool) -> None:
        """A prompt sent is done: what it cost replaces what it was expected to."""
        estimate = self._committed.pop(index, 0.0)
        if cost is not None:
            self.spent += cost
            if not failed:
                self.highest = cost if self.highest is None else max(self.highest, cost)
        elif not failed:
            if self.estimate() is None:
                self.unknown = True
            self.spent += estimate

    def reason(self, model: str) -> str:
        assert self.max_cost is not None
        if self.unknown:
            return (
                f"Not sent: what a prompt costs is unknown (litellm has no price for {model} at these "
                f"settings and the provider reported none), so max_cost=${self.max_cost:g} could not be kept. "
                "Remove max_cost to send it anyway."
            )
        estimate = self.estimate() or 0.0
        return (
            f"Not sent: it could have crossed max_cost=${self.max_cost:g} (${self.spent:.4f} spent, about "
            f"${estimate:.4f} per prompt). Re-run the batch with a higher max_cost to make it; "
            "prompts already saved are skipped."
        )


class Plan:
    """One batch run's decisions and records (shared by the sync and async drivers)."""

    def __init__(
        self,
        bot: ImageBot,
        prompts: Sequence[str],
        *,
        save_dir: PathLike | None,
        journaled: bool,
        resume: bool | None,
        max_cost: float | None,
        progress: Any,
    ) -> None:
        self.bot = bot
        self.prompts = prompts
        self._bar = progress  # counts each prompt once, however it ended
        self.resumed: list[BatchResult] = []
        self.journal: _journal.Journal | None = None
        self._keys: list[str] = []
        #: Each prompt's file name (without extension) in a journaled batch, chosen before it is sent.
        self.stems: dict[int, str] = {}
        self._known: set[int] = set()  # those whose name an earlier run chose
        self.folder = Path(save_dir) if save_dir is not None else Path()
        spent = 0.0
        if journaled and save_dir is not None:
            folder = Path(save_dir)
            self._keys = _journal.prompt_keys(prompts, _journal.fingerprint(bot.model, bot._public_settings()))
            if resume is False:
                (folder / _journal.NAME).unlink(missing_ok=True)
            self.journal = _journal.Journal(folder)
            spent = self._resume_from(_journal.read(folder / _journal.NAME), folder)
            self._choose_stems(folder)
        elif resume:
            msg = "resume needs save_dir: the journal that makes a batch resumable lives in its output folder."
            raise ValueError(msg)
        done = {result.index for result in self.resumed}
        self.todo = collections.deque(index for index in range(len(prompts)) if index not in done)
        price = None
        if max_cost is not None:
            from llamabot import _providers

            per_image = _providers.price_per_image(
                bot.model,
                bot.size,
                bot.quality,
                bot.image_generation_kwargs.get("custom_llm_provider"),
                prompt_chars=max(map(len, prompts), default=0),
            )
            price = per_image * bot.n if per_image is not None else None
        self.spending = Spending(max_cost, price, spent)

    def _resume_from(self, records: dict[str, dict[str, Any]], folder: Path) -> float:
        """Take what the journal knows: prompts already saved, and the names earlier runs chose.

        :return: What the resumed prompts cost when they were made.
        """
        assert self.journal is not None
        spent = 0.0
        # A file that another prompt's record names is that prompt's (the same text twice, say).
        claimed = {name for record in records.values() for name in record.get("paths") or []}
        for index, key in enumerate(self._keys):
            record = records.get(key, {})
            others = {name.rsplit(".", 1)[0] for name in claimed - set(record.get("paths") or [])}
            stem = record.get("stem")
            if isinstance(stem, str) and _safe_stem(stem) and stem not in others:
                self.stems[index] = stem
                self._known.add(index)
            paths = _journal.intact(record, folder) if "paths" in record else None
            if paths is None and "paths" not in record and index in self._known and self.bot.n == 1:
                # Saved, then killed before the journal could say so: the file is under its planned name.
                paths = _journal.find_saved(folder, self.stems[index])
                if paths is not None and paths[0].name in claimed:
                    paths = None
                if paths is not None:
                    claimed.add(paths[0].name)
                    self.journal.append(key, index, self.prompts[index], paths, None)
            if paths is not None:
                cost = record.get("cost") if isinstance(record.get("cost"), (int, float)) else None
                spent += cost or 0.0
                self.resumed.append(self._resumed(index, self.prompts[index], paths, cost))
        return spent

    def _choose_stems(self, folder: Path) -> None:
        """Name each prompt still to make: from its text, never a name a file or another prompt has."""
        from llamabot._formats import numbered, slugify

        done = {result.index for result in self.resumed}
        taken = set(self.stems.values())
        with contextlib.suppress(OSError):  # no folder yet
            taken |= {entry.name.rsplit(".", 1)[0] for entry in os.scandir(folder)}
        for index, prompt in enumerate(self.prompts):
            if index in done or index in self.stems:
                continue
            base, number = slugify(prompt), 1
            while (stem := numbered(base, number)) in taken:
                number += 1
            taken.add(stem)
            self.stems[index] = stem

    def save_path(self, index: int) -> Path | None:
        """Where the journal says a prompt's image goes, when an earlier run chose the name.

        That file is this batch's own (missing or damaged, or it would have been resumed), so it
        is replaced. A name chosen in this run is not given: the prompt is saved under the first
        free name from its text, which is that name unless another process took it meanwhile.
        """
        return self.folder / self.stems[index] if index in self._known else None

    def sending(self, index: int) -> None:
        """A prompt is about to be sent: its file name goes in the journal first."""
        if self.journal is not None:
            self.journal.planned(self._keys[index], index, self.prompts[index], self.stems[index])

    def _resumed(self, index: int, prompt: str, paths: list[Path], cost: float | None) -> BatchResult:
        images = GeneratedImages(
            (GeneratedImage(prompt=prompt, model=self.bot.model, path=path) for path in paths),
            cost=cost,
            model=self.bot.model,
            prompt=prompt,
        )
        return BatchResult(index, prompt, images, None, resumed=True)

    def next(self, in_flight: int) -> int | None:
        """The next prompt to send, or None for "not now" (nothing left, or the cap says wait)."""
        if not self.todo:
            return None
        index = self.todo[0]
        if self.spending.admit(index, in_flight) is not True:
            return None
        return self.todo.popleft()

    def opening(self) -> list[BatchResult]:
        """The prompts an earlier run already saved: what a batch yields first."""
        self._bar.update(len(self.resumed))
        return self.resumed

    def finished(self, index: int, images: GeneratedImages | None, error: BaseException | None) -> BatchResult:
        """What became of a prompt sent, recorded (``record``) and counted on the progress bar."""
        result = self.record(index, images, error)
        self._bar.update(1)
        return result

    def record(self, index: int, images: GeneratedImages | None, error: BaseException | None) -> BatchResult:
        """Record what became of a prompt sent: its cost, and its line in the journal once its files are saved."""
        paid = images if images is not None else getattr(error, "images", None)
        self.spending.settle(index, getattr(paid, "cost", None), failed=error is not None)
        if error is not None:
            if not isinstance(error, Exception):
                raise error
            return BatchResult(index, self.prompts[index], None, error)
        assert images is not None
        paths = [image.path for image in images if image.path is not None]
        if self.journal is not None and paths:
            self.journal.append(self._keys[index], index, self.prompts[index], paths, images.cost)
        return BatchResult(index, self.prompts[index], images, None)

    def unsent(self) -> list[BatchResult]:
        """The prompts the cap kept back, each with a ``NotSentError`` saying why."""
        results = []
        while self.todo:
            index = self.todo.popleft()
            error = NotSentError(self.spending.reason(self.bot.model))
            results.append(BatchResult(index, self.prompts[index], None, error))
        self._bar.update(len(results))
        return results

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _safe_stem(stem: str) -> bool:
    """A journal's file name is used only if it stays inside the folder and is not hidden."""
    return bool(stem) and "/" not in stem and "\\" not in stem and not stem.startswith(".")


def run_one(
    bot: ImageBot,
    prompt: str,
    return_url: bool,
    save_path: PathLike | None,
    save_dir: PathLike | None,
    cancel: threading.Event | None = None,
    portable: bool = False,
) -> GeneratedImages:
    """One prompt of a batch, where the executor runs it (a thread here, or a Dask worker).

    :param portable: The result travels to another process: an exception that cannot be
        pickled comes back as ``RemoteError`` instead of breaking the executor.
    """
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt
    try:
        images, _ = bot._run(
            prompt, deliver=True, return_url=return_url, save_path=save_path, directory=save_dir, cancel=cancel
        )
    except Exception as exc:
        if portable:
            raise _portable(exc) from None
        raise
    return images


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a ``RemoteError`` with its type, message and notes."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        notes = " ".join(getattr(exc, "__notes__", []))
        error = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} {notes}".strip())
        error.type_name = type(exc).__qualname__
        return error
    return exc


def _outcome(future: Any) -> tuple[GeneratedImages | None, BaseException | None]:
    try:
        return future.result(), None
    except BaseException as exc:
        return None, exc


def run(
    bot: ImageBot,
    prompts: Sequence[str],
    *,
    concurrency: int,
    return_url: bool,
    save_dir: PathLike | None,
    save_path: PathLike | None,
    progress: Any,
    resume: bool | None,
    max_cost: float | None,
    executor: Executor | None,
) -> Iterator[BatchResult]:
    """The sync driver: yield each prompt's ``BatchResult`` as it is done (resumed ones first)."""
    from concurrent.futures import ThreadPoolExecutor

    plan = Plan(
        bot,
        prompts,
        save_dir=save_dir,
        journaled=not return_url and save_path is None,
        resume=resume,
        max_cost=max_cost,
        progress=progress,
    )
    own = executor is None
    pool = executor if executor is not None else ThreadPoolExecutor(concurrency, thread_name_prefix="imagebot-batch")
    cancel = threading.Event() if own else None
    # Elsewhere (a Dask worker) the bot's copy cannot share this process's pace, so the pace is
    # kept here, at submission; the copy keeps only its own pause after a 429.
    worker_bot = bot if own or bot.requests_per_minute is None else bot._with({"requests_per_minute": None})
    pending: dict[Future[GeneratedImages], int] = {}
    # Each future puts itself here when done: O(1) per result, where concurrent.futures.wait
    # would hook into every pending future for each one that finishes.
    done: queue.SimpleQueue[Future[GeneratedImages]] = queue.SimpleQueue()
    finished = False
    try:
        with progress:
            yield from plan.opening()
            while True:
                while len(pending) < concurrency and (index := plan.next(len(pending))) is not None:
                    if not own:
                        bot._throttle.acquire(hold=False)
                    plan.sending(index)
                    where = plan.save_path(index) or save_path
                    future = pool.submit(
                        run_one, worker_bot, prompts[index], return_url, where, save_dir, cancel, not own
                    )
                    pending[future] = index
                    future.add_done_callback(done.put)
                if not pending:
                    break
                future = _next_done(done)
                yield plan.finished(pending.pop(future), *_outcome(future))
            yield from plan.unsent()
        finished = True
    finally:
        if not finished:  # Ctrl-C or the caller stopped early: stop what has not started
            if cancel is not None:
                cancel.set()
            for future in pending:
                future.cancel()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
        for future, index in pending.items():  # done but not yet yielded: their files are saved
            if future.done() and not future.cancelled() and future.exception() is None:
                plan.record(index, future.result(), None)
        plan.close()


def _next_done(done: queue.SimpleQueue[Future[GeneratedImages]]) -> Future[GeneratedImages]:
    """The next future to finish; the wait wakes now and then so that Ctrl-C is seen at once."""
    while True:
        with contextlib.suppress(queue.Empty):
            return done.get(timeout=0.5)


async def arun(
    bot: ImageBot,
    prompts: Sequence[str],
    *,
    concurrency: int,
    return_url: bool,
    save_dir: PathLike | None,
    progress: Any,
    resume: bool | None,
    max_cost: float | None,
) -> AsyncIterator[BatchResult]:
    """The async driver: the same plan, on the event loop."""
    import asyncio

    plan = Plan(
        bot,
        prompts,
        save_dir=save_dir,
        journaled=not return_url,
        resume=resume,
        max_cost=max_cost,
        progress=progress,
    )

    async def one(index: int) -> GeneratedImages:
        where = plan.save_path(index)
        images, _ = await bot._arun(
            prompts[index], deliver=True, return_url=return_url, save_path=where, directory=save_dir
        )
        return images

    pending: dict[asyncio.Task[GeneratedImages], int] = {}
    try:
        with progress:
            for result in plan.opening():
                yield result
            while True:
                while len(pending) < concurrency and (index := plan.next(len(pending))) is not None:
                    plan.sending(index)
                    pending[asyncio.ensure_future(one(index))] = index
                if not pending:
                    break
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield plan.finished(pending.pop(task), *_outcome(task))
            for result in plan.unsent():
                yield result
    finally:  # Ctrl-C, cancellation or the caller stopped early: nothing keeps running
        for task in pending:
            task.cancel()
        plan.close()
