"""Many items through one job: at most ``concurrency`` in flight, each outcome as soon as it is done.

One ``Plan`` makes every decision (what is resumed, what the cap lets through, each file's
name, each record) and one ``_Crew`` keeps the count of what is in flight and unread. Two
drivers run them alike: ``run`` with ``concurrency`` daemon worker threads, ``arun`` with
``concurrency`` tasks on the caller's loop. Each worker takes the next item as soon as it has
finished one and records it; the caller's side only hands results on. So both keep the same
plan, journal and cap; at most ``concurrency`` items are in flight, and none is sent while
``concurrency`` results wait to be read: memory, and the work a crash can lose, stay
O(concurrency) whatever the batch's length.
"""

from __future__ import annotations

import concurrent.futures
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
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
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

    def acall(self, operation: Any, where: Destination) -> Awaitable[GeneratedImages]:
        awaitable: Awaitable[GeneratedImages] = self.arun(
            self.settings, self.throttle, self.generation(operation), self.mode, where
        )
        return awaitable


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

    def submit(self, plan: Plan, index: int) -> concurrent.futures.Future[GeneratedImages]:
        """Hand an item to the caller's executor, the pace already taken (a worker elsewhere keeps no pace of ours)."""
        assert self.executor is not None
        return self.executor.submit(self.job.unpaced(), plan.items[index], plan.destination(index), None, True)

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


def _progress_bar(total: int, progress: bool | None) -> Any:
    """A tqdm bar on stderr: shown on a terminal by default, never in pipes or logs."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, disable=not show, unit="prompt", file=sys.stderr, leave=True)


class _Crew:
    """What a batch's workers share, threads or tasks: the plan, what is in flight, what the caller has not read.

    It makes no call, writes nothing and never waits (like ``_retry.plan``): the sync driver uses
    it under a lock, the async one on its loop, each waking its workers in its own way when
    ``take`` says ``WAIT``. Every item is recorded (cost, progress, then its journal line) by the
    worker that ran it, as it finishes, whether or not the caller has read it yet; once the
    caller has stopped, nothing is.
    """

    WAIT = object()

    def __init__(self, plan: Plan, concurrency: int) -> None:
        self.plan, self.concurrency = plan, concurrency
        self.in_flight = 0
        self.unread = 0  # results the caller has not taken: at most ``concurrency``, so it is never outrun
        self.working = 0
        self.halted = False  # take nothing more: the caller stopped, or a worker failed
        self.closed = False  # the caller stopped: record nothing more
        self.failed = False  # a worker failed: the caller raises the first failure only

    def start(self) -> int:
        """How many workers to start."""
        self.working = min(self.concurrency, len(self.plan.todo))
        return self.working

    def take(self) -> Any:
        """The next item to send; ``WAIT`` to wait for a change; None to stop."""
        if self.halted:
            return None
        if self.unread >= self.concurrency:  # the caller is not reading: do not run ahead
            return self.WAIT
        index = self.plan.next(self.in_flight)
        if index is not None:
            self.in_flight += 1
            return index
        # Nothing now: the cap may let more through once the items in flight say what they cost.
        return self.WAIT if self.in_flight and self.plan.todo else None

    def finish(self, index: int, outcome: tuple[GeneratedImages | None, BaseException | None]) -> tuple[Any, Any]:
        """An item ran: its result for the caller and the next item to send (as ``take``); two Nones once it stopped."""
        self.in_flight -= 1
        if self.closed:
            return None, None
        result = self.plan.finished(index, *outcome)
        self.unread += 1
        return result, self.take()

    def read(self) -> bool:
        """The caller took a result: whether a worker waiting for room may go on."""
        self.unread -= 1
        return self.unread == self.concurrency - 1

    def leave(self) -> bool:
        """A worker found nothing more to take: whether it was the last (the batch's sent items are all in)."""
        self.working -= 1
        return self.working == 0 and not self.closed

    def fail(self) -> bool:
        """A worker could not go on (a journal it cannot write, say): whether the caller is to raise its error."""
        first = not self.failed and not self.closed  # the cause, not the stops it caused
        self.failed = self.halted = True
        return first

    def close(self) -> None:
        """The caller stopped (or the batch is over): nothing more is sent or recorded."""
        self.halted = self.closed = True
        self.plan.close()


_DONE = object()


class _Failed:
    """A worker failed: the caller raises its error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _hand_on(plan: Plan, result: BatchResult | None, index: int | None, put: Callable[[Any], None]) -> bool:
    """Journal what ``result`` became and the name of ``index``, the next item, in one write; then ``put`` the result.

    The result is handed on even if the name could not be written (that error then stops the batch).

    :return: False once the batch is over: ``index`` is not to be sent.
    """
    try:
        return plan.write_down(result, index)
    finally:
        if result is not None:
            put(result)


def run(batch: Batch) -> Iterator[BatchResult]:
    """A batch from sync code: ``concurrency`` daemon workers, each taking the next item as it finishes one.

    An item makes its request in the worker that runs it (where the provider's timeout holds:
    ``_retry.in_caller``) or on the caller's executor; the caller's thread only hands results
    on. So an item wakes one thread, and no thread stands between an item that ends and the
    next one sent: with 64 threads busy, each extra wake-up waits for the GIL.
    """
    plan = batch.plan()
    crew = _Crew(plan, batch.concurrency)
    cancel = threading.Event()  # items in flight stop at their next check (within 0.1 s)
    changed = threading.Condition()
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    run_item = _in_thread(batch, plan, cancel)

    def take() -> Any:
        with changed:
            while (index := crew.take()) is crew.WAIT:
                changed.wait()
        return index

    def work() -> None:
        try:
            result, index = None, take()
            while True:
                if not _hand_on(plan, result, index, results.put):
                    return  # the batch is over
                if index is None:
                    break
                outcome = run_item(index)
                with changed:
                    result, index = crew.finish(index, outcome)
                    changed.notify_all()
                if result is None:
                    return
                if index is crew.WAIT:  # the caller is not reading: hand this result on, then wait for room
                    _hand_on(plan, result, None, results.put)
                    result, index = None, take()
            with changed:
                last = crew.leave()
            if last:
                results.put(_DONE)
        except BaseException as exc:
            cancel.set()
            with changed:
                first = crew.fail()
                changed.notify_all()
            if first:
                results.put(_Failed(exc))

    try:
        with plan._bar:
            yield from plan.opening()
            workers = crew.start()
            for _ in range(workers):
                _retry.WORKERS.run(work)
            while workers and (item := _taken(results)) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                with changed:
                    if crew.read():
                        changed.notify_all()
                yield item
            yield from plan.unsent()
        plan.say_resumed()  # in the caller's thread, so that the warning points at the caller's line
    finally:
        cancel.set()
        with changed:
            crew.close()
            changed.notify_all()


def _in_thread(batch: Batch, plan: Plan, cancel: threading.Event) -> Callable[[int], Any]:
    """Run one item in this thread, or on the caller's executor (the pace kept here, at submission)."""
    job, executor = batch.job, batch.executor

    def run_item(index: int) -> tuple[GeneratedImages | None, BaseException | None]:
        try:
            if executor is None:
                return job(plan.items[index], plan.destination(index), cancel), None
            job.throttle.acquire(cancel, hold=False)
            future = batch.submit(plan, index)
            while not concurrent.futures.wait([future], timeout=_WAKE).done:
                if cancel.is_set():
                    future.cancel()
                    raise KeyboardInterrupt
            return future.result(), None
        except BaseException as exc:  # KeyboardInterrupt from a stopped batch: nothing is recorded
            return None, exc

    return run_item


def _taken(results: Any) -> Any:
    """The next result, waiting in short slices so that Ctrl-C in this thread is seen at once."""
    while True:
        try:
            return results.get(timeout=_WAKE)
        except queue.Empty:
            continue


async def arun(batch: Batch) -> AsyncIterator[BatchResult]:
    """A batch on the caller's event loop: ``concurrency`` tasks, each taking the next item as it finishes one.

    An item that ends is followed by the next one's request in the same step of the loop.
    """
    import asyncio

    plan = batch.plan()
    crew = _Crew(plan, batch.concurrency)
    changed = asyncio.Event()
    results: asyncio.Queue[Any] = asyncio.Queue()
    run_item = _on_loop(batch, plan)

    async def take() -> Any:
        while (index := crew.take()) is crew.WAIT:
            changed.clear()  # no await since take(): a change from now on sets it
            await changed.wait()
        return index

    async def work() -> None:
        try:
            result, index = None, await take()
            while True:
                if not _hand_on(plan, result, index, results.put_nowait):
                    return  # the batch is over
                if index is None:
                    break
                outcome = await run_item(index)
                result, index = crew.finish(index, outcome)
                changed.set()
                if result is None:
                    return
                if index is crew.WAIT:  # the caller is not reading: hand this result on, then wait for room
                    _hand_on(plan, result, None, results.put_nowait)
                    result, index = None, await take()
            if crew.leave():
                results.put_nowait(_DONE)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            first = crew.fail()
            changed.set()
            if first:
                results.put_nowait(_Failed(exc))

    workers: list[asyncio.Task[None]] = []
    try:
        with plan._bar:
            for result in plan.opening():
                yield result
            workers = [asyncio.ensure_future(work()) for _ in range(crew.start())]
            while workers and (item := await results.get()) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                if crew.read():
                    changed.set()
                yield item
            for result in plan.unsent():
                yield result
    finally:  # an error, cancellation or the caller stopped early: nothing keeps running
        crew.close()
        changed.set()
        for worker in workers:
            worker.cancel()
    plan.say_resumed()  # here, not in a worker: the warning points at the caller's line


def _on_loop(batch: Batch, plan: Plan) -> Callable[[int], Awaitable[Any]]:
    """Run one item on this loop, or on the caller's executor (the pace kept here, at submission)."""
    import asyncio

    job, executor = batch.job, batch.executor

    async def run_item(index: int) -> tuple[GeneratedImages | None, BaseException | None]:
        try:
            if executor is None:
                return await job.acall(plan.items[index], plan.destination(index)), None
            await job.throttle.aacquire(hold=False)
            future = batch.submit(plan, index)
            return await asyncio.wrap_future(future), None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return None, exc

    return run_item
