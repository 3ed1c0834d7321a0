"""Time as ImageBot reads it and waits for it, in one object that tests replace with a fake.

The throttle, the retry waits and the batch drivers take a ``Clock``; nothing else in the
package reads the time for a decision.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading

#: How often a wait looks at a cancel flag (a batch's Ctrl-C).
SLICE = 0.1


class Clock:
    """Monotonic seconds, and waits that a cancel flag cuts short."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> None:
        """Wait ``seconds`` in this thread; ``KeyboardInterrupt`` as soon as ``cancel`` is set."""
        if cancel is None:
            time.sleep(max(0.0, seconds))
        elif cancel.wait(max(0.0, seconds)):
            raise KeyboardInterrupt

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""
        import asyncio

        await asyncio.sleep(max(0.0, seconds))


SYSTEM = Clock()
