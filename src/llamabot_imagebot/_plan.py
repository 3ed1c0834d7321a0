"""A batch's decisions: what an earlier run already made, what may be sent under the cap, where each goes.

``Plan`` reads the folder's journal, chooses and reserves each item's file name before it is
sent, admits items under the spending cap, and records each outcome. It sends nothing and
writes no image: the driver (``_batch``) runs the items, the job writes their files.
"""

from __future__ import annotations

import collections
import contextlib
import os
from pathlib import Path

from llamabot_imagebot import _errors, _journal, _prices
from llamabot_imagebot._exceptions import JournalWarning, NotSentError, ResumedWarning, warn
from llamabot_imagebot._formats import EXTENSIONS, numbered, slugify
from llamabot_imagebot._response import BatchResult, GeneratedImage, GeneratedImages
from llamabot_imagebot._step import Destination

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from llamabot_imagebot._settings import Settings


class Spending:
    """A batch's spending cap: whether the next item may be sent without crossing it.

    The estimate per item is the higher of litellm's list price and the dearest item seen so
    far. Without either, one item is sent alone to learn the price; if its cost is still
    unknown, nothing more is sent. Only finite, positive reported costs are believed.

    :param max_cost: The cap in USD, or ``None`` for none.
    :param price: litellm's list price per item (all its images), if it has one.
    :param spent: What earlier runs of this batch already spent (from the journal).
    """

    def __init__(self, max_cost: float | None, price: float | None, spent: float = 0.0) -> None:
        self.max_cost = max_cost
        self.price = _prices.finite_cost(price)
        self.spent = spent
        self.highest: float | None = None
        self.unknown = False
        self._committed: dict[int, float] = {}

    def estimate(self) -> float | None:
        known = [value for value in (self.price, self.highest) if value is not None]
        return max(known) if known else None

    def admit(self, index: int, in_flight: int) -> bool | None:
        """True: send it; None: wait for items in flight to settle; False: it cannot be sent."""
        if self.max_cost is None:
            return True
        if self.unknown:
            return False
        estimate = self.estimate()
        if estimate is None:
            if in_flight:
                return None  # the item in flight will tell what one costs
            estimate = 0.0
        if self.spent + sum(self._committed.values()) + estimate > self.max_cost + 1e-12:
            return None if in_flight else False
        self._committed[index] = estimate
        return True

    def settle(self, index: int, cost: Any, failed: bool) -> None:
        """An item sent is done: what it cost replaces what it was expected to (an untrustworthy figure does not)."""
        estimate = self._committed.pop(index, 0.0)
        cost = _prices.finite_cost(cost)
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
    """One batch run's decisions and records (the same for the sync and async drivers).

    :param settings: The settings every item is made with.
    :param items: The operations (``Generate`` or ``Edit``), in order.
    :param save_dir: The output folder; with ``journaled``, it keeps the journal.
    :param save_path: Where the only item's first image goes.
    """

    def __init__(
        self,
        settings: Settings,
        items: Sequence[Any],
        *,
        save_dir: str | os.PathLike[str] | None,
        save_path: str | os.PathLike[str] | None,
        journaled: bool,
        resume: bool | None,
        max_cost: float | None,
        retry_refused: bool,
        progress: Any,
    ) -> None:
        self.settings = settings
        self.items = items
        self.save_dir = save_dir
        self.save_path = save_path
        self._bar = progress  # counts each item once, however it ended
        self.resumed: list[BatchResult] = []
        self.journal: _journal.Journal | None = None
        self._keys: list[str] = []
        #: Each item's file name (without extension), chosen before it is sent.
        self.stems: dict[int, str] = {}
        self._known: set[int] = set()  # those whose name an earlier run chose: their files are this batch's own
        self.folder = Path(save_dir) if save_dir is not None else Path()
        spent = 0.0
        if journaled and save_dir is not None:
            fingerprint = _journal.fingerprint(settings.model, settings.public())
            self._keys = _journal.item_keys(((item.prompt, item.record()) for item in items), fingerprint)
            self.journal = _journal.Journal(self.folder, fresh=resume is False)
            records = {} if resume is False else _journal.read(self.journal.path)
            spent = self._resume_from(records, retry_refused)
            self._choose_stems()
        elif resume:
            msg = "resume needs save_dir: the journal that makes a batch resumable lives in its output folder."
            raise ValueError(msg)
        done = {result.index for result in self.resumed}
        self.todo = collections.deque(index for index in range(len(items)) if index not in done)
        price = None
        if max_cost is not None:
            per_image = _prices.price_per_image(settings, prompt_chars=max((len(i.prompt) for i in items), default=0))
            price = per_image * settings.n if per_image is not None else None
        self.spending = Spending(max_cost, price, spent)

    def _resume_from(self, records: dict[str, dict[str, Any]], retry_refused: bool) -> float:
        """Take what the journal knows: items already saved or refused, and the names earlier runs chose.

        :return: What the resumed items cost when they were made.
        """
        assert self.journal is not None
        spent = 0.0
        # A file that another item's record names is that item's (the same text twice, say).
        owner = {name: key for key, record in records.items() for name in record.get("paths") or []}
        for index, key in enumerate(self._keys):
            record = records.get(key, {})
            stem = record.get("stem")
            if isinstance(stem, str) and not _claimed(owner, stem, key):
                self.stems[index] = stem
                self._known.add(index)
            if "refused" in record and "paths" not in record and not retry_refused:
                self.resumed.append(self._refused(index, str(record["refused"])))
                continue
            paths = _journal.intact(record, self.folder) if "paths" in record else None
            if paths is None and "paths" not in record and index in self._known:
                # Saved, then killed before the journal could say so: the files are under their planned names.
                stems = [numbered(self.stems[index], number) for number in range(1, self.settings.n + 1)]
                paths = _journal.find_saved(self.folder, stems)
                if paths is not None and any(owner.get(path.name, key) != key for path in paths):
                    paths = None
                if paths is not None:
                    owner.update({path.name: key for path in paths})
                    self.journal.saved(key, index, self.items[index].prompt, paths, None)
            if paths is not None:
                cost = _prices.finite_cost(record.get("cost"))
                spent += cost or 0.0
                self.resumed.append(self._resumed(index, paths, cost))
        return spent

    def _choose_stems(self) -> None:
        """Name each item still to make: from its prompt, never a name a file or another item has."""
        done = {result.index for result in self.resumed}
        taken = set(self.stems.values())
        with contextlib.suppress(OSError):  # no folder yet
            taken |= {entry.name.rsplit(".", 1)[0] for entry in os.scandir(self.folder)}
        for index, item in enumerate(self.items):
            if index in done or index in self.stems:
                continue
            base, number = slugify(item.prompt), 1
            while (stem := numbered(base, number)) in taken:
                number += 1
            taken.add(stem)
            self.stems[index] = stem

    def destination(self, index: int) -> Destination:
        """Where an item's images go: the name its plan chose (an earlier run's is replaced: it is this batch's)."""
        prompt = self.items[index].prompt
        if self.save_path is not None:
            return Destination(prompt, self.save_path)
        return Destination(prompt, folder=self.save_dir, stem=self.stems.get(index), replace=index in self._known)

    def _resumed(self, index: int, paths: list[Path], cost: float | None) -> BatchResult:
        prompt, model = self.items[index].prompt, self.settings.model
        images = GeneratedImages(
            (GeneratedImage(prompt=prompt, model=model, path=path) for path in paths),
            cost=cost,
            model=model,
            prompt=prompt,
        )
        return BatchResult(index, prompt, images, None, resumed=True)

    def _refused(self, index: int, reason: str) -> BatchResult:
        error = _errors.refused_before(self.settings, reason)
        return BatchResult(index, self.items[index].prompt, None, error, resumed=True)

    def next(self, in_flight: int) -> int | None:
        """The next item to send, or None for "not now" (nothing left, or the cap says wait)."""
        if not self.todo:
            return None
        index = self.todo[0]
        if self.spending.admit(index, in_flight) is not True:
            return None
        return self.todo.popleft()

    def opening(self) -> list[BatchResult]:
        """The items an earlier run already saved (or saw refused): what a batch yields first."""
        self._bar.update(len(self.resumed))
        return self.resumed

    def finished(self, index: int, images: GeneratedImages | None, error: BaseException | None) -> BatchResult:
        """What became of an item sent: its cost settled, counted on the progress bar (``write_down`` journals it)."""
        self._bar.update(1)
        paid = images if images is not None else getattr(error, "images", None)
        self.spending.settle(index, getattr(paid, "cost", None), failed=error is not None)
        if error is not None and not isinstance(error, Exception):
            raise error
        return BatchResult(index, self.items[index].prompt, images if error is None else None, error)

    def write_down(self, result: BatchResult | None, index: int | None = None) -> bool:
        """Journal what became of an item (``result``) and the name of the next one to send (``index``), in one write.

        An outcome that cannot be written (a full disk) never loses the images: it is a warning
        that a resumed run may ask for them again. A name that cannot be written is an error:
        the item is not sent, so that no run pays for images it cannot find again.

        :return: False once the batch is over (its journal closed): the next item is not to be sent.
        """
        if self.journal is None:
            return True
        outcome = self._outcome_line(result) if result is not None else b""
        name = b""
        if index is not None:
            name = _journal.planned_line(self._keys[index], index, self.items[index].prompt, self.stems[index])
        if not outcome and not name:
            return True
        try:
            return self.journal.append(outcome + name)
        except OSError as exc:
            if outcome:
                warn(
                    f"Could not write the batch journal ({exc}): the images are saved, but a resumed run may ask "
                    "for them again.",
                    JournalWarning,
                )
            if name:
                raise
            return True

    def _outcome_line(self, result: BatchResult) -> bytes:
        """The journal line of an outcome: the files saved, or the provider's refusal (nothing else is kept)."""
        index, prompt, error = result.index, result.prompt, result.error
        if error is not None:
            if not _errors.is_refusal(error):
                return b""
            reason = getattr(error, "reason", None) or str(error)
            return _journal.refused_line(self._keys[index], index, prompt, reason)
        paths = [image.path for image in result.images or () if image.path is not None]
        if not paths:
            return b""
        return _journal.saved_line(self._keys[index], index, prompt, paths, getattr(result.images, "cost", None))

    def unsent(self) -> list[BatchResult]:
        """The items the cap kept back, each with a ``NotSentError`` saying why."""
        results = []
        while self.todo:
            index = self.todo.popleft()
            error = NotSentError(self.spending.reason(self.settings.model))
            results.append(BatchResult(index, self.items[index].prompt, None, error))
        self._bar.update(len(results))
        return results

    def say_resumed(self) -> None:
        """A finished batch that resumed says so (a repeated call would otherwise return old files silently)."""
        saved = sum(result.ok for result in self.resumed)
        if saved:
            made = len(self.items) - len(self.resumed) - len(self.todo)
            warn(
                f"Resumed {saved} of {len(self.items)} prompts already saved in {self.folder} by an earlier run (its "
                f"journal says so and the files are whole): nothing was asked for them; made {made}. "
                "Pass resume=False to make them all again.",
                ResumedWarning,
            )

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _claimed(owner: dict[str, str], stem: str, key: str) -> bool:
    """Whether a file under ``stem`` belongs to another item's record."""
    return any(owner.get(f"{stem}{suffix}", key) != key for suffix in EXTENSIONS.values())
