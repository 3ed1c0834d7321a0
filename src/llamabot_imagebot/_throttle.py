"""One bot's pace: a requests-per-minute limit, and the batch-wide pause after a 429.

A ``Throttle`` is shared by every thread and task that uses one bot (and by the copies
per-call overrides make), so a limit holds for the bot as a whole. It never blocks while
holding its lock: ``delay()`` either takes a slot or says how long to wait, and the
caller sleeps (``time.sleep`` in a thread, ``asyncio.sleep`` on an event loop).

Across processes (Dask workers, say) each process has its own: a throttle pickles as
its settings only.
"""

from __future__ import annotations

import collections
import threading

from llamabot_imagebot._clock import SLICE, SYSTEM, Clock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WINDOW = 60.0
#: Added to the window: the provider counts arrivals, which network jitter can bunch up.
MARGIN = 0.5
#: How long everyone waits after a 429 that did not say (no ``Retry-After``).
DEFAULT_PAUSE = 2.0


class PausedTooLong(Exception):
    """The provider asked everyone to wait longer than a call may (its ``Retry-After``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"paused for {seconds:.0f} s")
        self.seconds = seconds


class Throttle:
    """Pace requests to at most ``requests_per_minute`` in any 60-second window; pause all after a 429.

    On a 429 everyone waits until the provider's ``Retry-After`` has passed, and the
    number of requests allowed in flight drops to half of those in flight; each success
    then allows one more, until the limit is gone again (additive increase,
    multiplicative decrease).

    :param requests_per_minute: The limit, or ``None`` for none (the 429 pause still applies).
    :param clock: The time (a fake one in tests).
    """

    def __init__(self, requests_per_minute: float | None = None, clock: Clock = SYSTEM) -> None:
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._interval = WINDOW / requests_per_minute if requests_per_minute else 0.0
        self._sent: collections.deque[float] = collections.deque()
        self._next = 0.0
        self._paused_until = 0.0
        self._in_flight = 0
        self._allowed: int | None = None  # None: no limit on requests in flight
        self._epoch = 0  # one more per 429: a request sent before it proves nothing about after

    # Pickling: a copy in another process starts afresh with the same limit.
    def __getstate__(self) -> dict[str, Any]:
        return {"requests_per_minute": self.requests_per_minute}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["requests_per_minute"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Throttle(requests_per_minute={self.requests_per_minute!r})"

    def delay(self, *, hold: bool = True) -> float:
        """Take a slot now and return 0, or return the seconds to wait before asking again.

        :param hold: Whether the request counts as in flight until ``release`` (a retry
            of a request already in flight takes a slot in the pace only).
        """
        return self._try(hold)[0]

    def _try(self, hold: bool) -> tuple[float, int]:
        """``delay``, and the token of the slot taken (read under the same lock as the slot)."""
        with self._lock:
            now = self._clock.now()
            ready = max(self._next, self._paused_until)
            if self.requests_per_minute and len(self._sent) >= self.requests_per_minute:
                ready = max(ready, self._sent[0] + WINDOW + MARGIN)
            if ready > now:
                return ready - now, self._epoch
            if hold and self._allowed is not None and self._in_flight >= self._allowed:
                return SLICE, self._epoch
            if self.requests_per_minute:
                self._sent.append(now)
                while len(self._sent) > self.requests_per_minute:
                    self._sent.popleft()
                self._next = now + self._interval
            self._in_flight += hold
            return 0.0, self._epoch

    def acquire(
        self, cancel: threading.Event | None = None, *, hold: bool = True, patience: float | None = None
    ) -> int:
        """Wait (in this thread) for a slot; ``KeyboardInterrupt`` if ``cancel`` is set meanwhile.

        :param patience: The longest a 429's pause may keep this request waiting; ``PausedTooLong`` beyond.
        :return: A token for ``release``.
        """
        while (taken := self._try(hold))[0] > 0:
            self._check(patience)
            self._clock.sleep(min(taken[0], SLICE) if cancel is not None else taken[0], cancel)
        return taken[1]

    async def aacquire(self, *, hold: bool = True, patience: float | None = None) -> int:
        """Wait (on the event loop) for a slot; return a token for ``release``."""
        while (taken := self._try(hold))[0] > 0:
            self._check(patience)
            await self._clock.asleep(taken[0])
        return taken[1]

    def _check(self, patience: float | None) -> None:
        with self._lock:
            left = self._paused_until - self._clock.now()
        if patience is not None and left > patience:
            raise PausedTooLong(left)

    def release(self, *, ok: bool, token: int | None = None) -> None:
        """A request taken with ``acquire`` is over; a success sent since the last 429 lets one more be in flight."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if ok and self._allowed is not None and token == self._epoch:
                self._allowed += 1
                if self._allowed > 2 * max(1, self._in_flight) + 64:
                    self._allowed = None  # recovered: far above what anyone keeps in flight

    def rate_limited(self, retry_after: float | None) -> None:
        """The provider answered 429: pause everyone and halve what may be in flight.

        :param retry_after: What the provider asked to wait, in seconds, if it said.
        """
        with self._lock:
            now = self._clock.now()
            self._epoch += 1
            pause = DEFAULT_PAUSE if retry_after is None else retry_after
            self._paused_until = max(self._paused_until, now + pause)
            in_flight = self._in_flight
            self._allowed = max(1, min(self._allowed or in_flight, in_flight) // 2)
