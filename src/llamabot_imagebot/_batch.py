"""Many items through one job: at most ``concurrency`` in flight, each outcome as soon as it is done.

There is one driver, ``drive``, on an event loop. The async entry point (``arun``) runs it on
the caller's loop with each item a task; the sync one (``run``) runs it on a loop thread of
its own with each item on a daemon worker thread (or on the caller's executor), and hands each
result to the caller's thread as it asks for the next. So both keep the same plan, journal
and cap, and at most ``concurrency`` items are submitted at a time: memory, and the work a
crash can lose, stay O(concurrency) whatever the batch's length.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import queue
import sys
import threading

from llamabot_imagebot import _errors, _retry
from llamabot_imagebot._clock import SYSTEM, Clock
from llamabot_imagebot._operations import Generate
from llamabot_imagebot._plan import Plan
from llamabot_imagebot._step import Destination, Generation
from llamabot_imagebot._throttle import Throttle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
    from typing import Any

    from llamabot_imagebot._options import BatchOptions as BatchOptions
    from llamabot_imagebot._response import BatchResult, GeneratedImages
    from llamabot_imagebot._settings import Settings

#: The keys of ``BatchOptions`` that are the batch's own (any other keyword is a setting for the calls).
OPTIONS = ("return_url", "save_dir", "save_path", "progress", "resume", "max_cost", "executor", "retry_refused")
#: How often the caller's thread wakes while it waits for a result, so that Ctrl-C is seen at once.
_WAKE = 0.2


class Job:
    """One item of a batch, where the executor runs it (a thread here, a Dask worker elsewhere).

    Picklable: a snapshot of the settings, the pace (which pickles as its limit only), what to
    deliver, and the module-level functions that run the same steps as a call on the bot.
    """

    def __init__(
        self, settings: Settings, throttle: Throttle, mode: str, run: Any, arun: Any, clock: Clock = SYSTEM
    ) -> None:
        self.settings = settings
        self.throttle = throttle
        self.mode = mode
        self.run, self.arun = run, arun
        self.clock = clock

    def __reduce__(self) -> tuple[Any, ...]:
        return (Job, (self.settings, self.throttle, self.mode, self.run, self.arun))  # a worker keeps its own time

    def unpaced(self) -> Job:
        """This job without the bot's pace: for an executor, where the pace is kept at submission."""
        return Job(self.settings, Throttle(None, self.clock), self.mode, self.run, self.arun, self.clock)

    def generation(self, operation: Any, cancel: threading.Event | None = None) -> Generation:
        return Generation(self.settings, operation, throttle=self.throttle, cancel=cancel, clock=self.clock)

    def __call__(
        self, operation: Any, where: Destination, cancel: threading.Event | None = None, portable: bool = False
    ) -> GeneratedImages:
        try:
            return self.run(self.settings, self.throttle, self.generation(operation, cancel), self.mode, where)
        except Exception as exc:
            raise (_errors.portable(exc) if portable else exc) from None

    async def acall(self, operation: Any, where: Destination) -> GeneratedImages:
        result: GeneratedImages = await self.arun(
            self.settings, self.throttle, self.generation(operation), self.mode, where
        )
        return result


class Batch:
    """A batch to run: the job, its items (checked), how many at a time, and its options.

    :param job: Runs one item: ``job(operation, where, cancel, portable)`` in a thread or a worker
        process, ``await job.acall(operation, where)`` on an event loop.
    :param items: The prompts (or operations, such as edits).
    """

    def __init__(self, job: Any, items: Iterable[Any], concurrency: int, options: dict[str, Any]) -> None:
        if isinstance(items, str):
            msg = "A batch takes a list of prompts; wrap a single prompt in a list, or call the bot."
            raise TypeError(msg)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            msg = f"concurrency must be a whole number of at least 1, not {concurrency!r}."
            raise ValueError(msg)
        max_cost = options.get("max_cost")
        if max_cost is not None and (
            isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or not 0 <= max_cost < math.inf
        ):
            msg = f"max_cost must be an amount in USD of at least 0 (or None for no cap), not {max_cost!r}."
            raise ValueError(msg)
        self.items = [item if hasattr(item, "kind") else Generate(item) for item in items]
        if options.get("save_path") is not None and len(self.items) != 1:
            msg = "save_path names one file: give a single prompt, or use save_dir for several."
            raise ValueError(msg)
        if options.get("resume") and options.get("save_dir") is None:
            msg = "resume needs save_dir: the journal that makes a batch resumable lives in its output folder."
            raise ValueError(msg)
        self.job = job
        self.concurrency = concurrency
        self.options = options
        self.executor: concurrent.futures.Executor | None = options.get("executor")

    def plan(self) -> Plan:
        options = self.options
        return Plan(
            self.job.settings,
            self.items,
            save_dir=options.get("save_dir"),
            save_path=options.get("save_path"),
            journaled=not options.get("return_url") and options.get("save_path") is None,
            resume=options.get("resume"),
            max_cost=options.get("max_cost"),
            retry_refused=bool(options.get("retry_refused")),
            progress=_progress_bar(len(self.items), options.get("progress")),
        )

    def remote(self, plan: Plan) -> tuple[Callable[[int], Awaitable[GeneratedImages]], Callable[[], Awaitable[Any]]]:
        """Items on the caller's executor: the pace is kept here, at submission (a worker keeps its own 429 pause)."""
        import asyncio

        assert self.executor is not None
        executor, job, throttle = self.executor, self.job.unpaced(), self.job.throttle

        def submit(index: int) -> Awaitable[GeneratedImages]:
            future = executor.submit(job, plan.items[index], plan.destination(index), None, True)
            return asyncio.wrap_future(future)

        return submit, lambda: throttle.aacquire(hold=False)


def _progress_bar(total: int, progress: bool | None) -> Any:
    """A tqdm bar on stderr: shown on a terminal by default, never in pipes or logs."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, disable=not show, unit="prompt", file=sys.stderr, leave=True)


def _outcome(future: Any) -> tuple[GeneratedImages | None, BaseException | None]:
    try:
        return future.result(), None
    except BaseException as exc:
        return None, exc


async def drive(
    plan: Plan,
    concurrency: int,
    submit: Callable[[int], Awaitable[GeneratedImages]],
    pace: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncGenerator[BatchResult, None]:
    """The one batch loop: resumed items first, then each as it finishes, then those the cap kept back."""
    import asyncio

    pending: dict[asyncio.Future[GeneratedImages], int] = {}
    # Each future puts itself here when done: O(1) per result.
    finished: asyncio.Queue[asyncio.Future[GeneratedImages]] = asyncio.Queue()
    try:
        with plan._bar:
            for result in plan.opening():
                yield result
            while True:
                while len(pending) < concurrency and (index := plan.next(len(pending))) is not None:
                    if pace is not None:
                        await pace()
                    plan.sending(index)
                    future: asyncio.Future[GeneratedImages] = asyncio.ensure_future(submit(index))
                    pending[future] = index
                    future.add_done_callback(finished.put_nowait)
                if not pending:
                    break
                future = await finished.get()
                yield plan.finished(pending.pop(future), *_outcome(future))
            for result in plan.unsent():
                yield result
    finally:  # Ctrl-C, cancellation or the caller stopped early: nothing keeps running
        for future in pending:
            future.cancel()
        for future, index in pending.items():  # done but not yet yielded: their files are saved
            if future.done() and not future.cancelled() and future.exception() is None:
                plan.record(index, future.result(), None)
        plan.close()


async def arun(batch: Batch) -> AsyncIterator[BatchResult]:
    """A batch on the caller's event loop: each item a task (or a job on the caller's executor)."""
    plan = batch.plan()
    if batch.executor is not None:
        submit, pace = batch.remote(plan)
        steps = drive(plan, batch.concurrency, submit, pace)
    else:
        job = batch.job
        steps = drive(plan, batch.concurrency, lambda index: job.acall(plan.items[index], plan.destination(index)))
    try:
        async for result in steps:
            yield result
    finally:
        await steps.aclose()
    plan.say_resumed()  # here, not in the driver: the warning points at the caller's line


def run(batch: Batch) -> Iterator[BatchResult]:
    """A batch from sync code: the driver on a loop thread, each item on a daemon worker (or the caller's executor).

    An item makes its request in the worker that runs it (where the provider's timeout holds:
    ``_retry.in_caller``), so each item wakes one thread, not two. The driver refills a slot as
    soon as an item finishes, without waiting for the caller's thread (whose every wake-up costs
    a GIL switch when 64 threads are busy); it hands results over through a queue of at most
    ``concurrency``, so a caller that stops reading stops the batch from running ahead: memory
    stays O(concurrency).
    """
    import asyncio

    plan = batch.plan()
    cancel = threading.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="imagebot-batch-loop", daemon=True)
    thread.start()
    if batch.executor is None:
        job = batch.job

        def submit(index: int) -> Awaitable[GeneratedImages]:
            return asyncio.wrap_future(_retry.WORKERS.submit(job, plan.items[index], plan.destination(index), cancel))

        steps = drive(plan, batch.concurrency, submit)
    else:
        steps = drive(plan, batch.concurrency, *batch.remote(plan))
    handoff: queue.Queue[Any] = queue.Queue(maxsize=batch.concurrency)
    pumping = asyncio.run_coroutine_threadsafe(_pump(steps, handoff, cancel), loop)
    try:
        while (item := _taken(handoff)) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item
        plan.say_resumed()  # in the caller's thread, so that the warning points at the caller's line
    finally:
        cancel.set()  # items still running stop at their next check (within 0.1 s)
        while not pumping.done():  # the pump may be waiting for room in the queue
            with contextlib.suppress(queue.Empty):
                handoff.get_nowait()
            pumping.cancel()
            concurrent.futures.wait([pumping], timeout=_WAKE)
        asyncio.run_coroutine_threadsafe(steps.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()  # an item still waiting for its answer is left to its daemon worker: it saves nothing


_DONE = object()


class _Failed:
    """The driver raised: the caller's thread raises it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _pump(steps: AsyncGenerator[BatchResult, None], handoff: Any, cancel: threading.Event) -> None:
    """Move each result into ``handoff`` as the driver makes it (waiting, without blocking the loop, for room)."""
    import asyncio

    async def put(item: Any) -> None:
        while not cancel.is_set():
            try:
                handoff.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)

    try:
        async for result in steps:
            await put(result)
    except Exception as exc:  # a plan that could not start (a busy folder, say): the caller raises it
        await put(_Failed(exc))
        return
    await put(_DONE)


def _taken(handoff: Any) -> Any:
    """The next item, waiting in short slices so that Ctrl-C in this thread is seen at once."""
    while True:
        try:
            return handoff.get(timeout=_WAKE)
        except queue.Empty:
            continue
