"""What the ``imagebot`` command prints: results beside a progress bar, tables, and text made safe for a terminal.

Every text that comes from outside (a provider's revised prompt or error, a file's record, a
stored prompt) is stripped of terminal control sequences before it is shown, so a received
image cannot retitle the terminal or fake output; ``--json`` stays exact (JSON escapes them).
"""

from __future__ import annotations

import json
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

# C0 controls but tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """``text`` with every terminal control character removed (ESC, BEL, CSI…): safe to print."""
    return _CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """A stored value on one line, safe: newlines and tabs would break a table."""
    return " ".join(safe(text).split())


def describe(exc: BaseException) -> str:
    """One line: what went wrong and, from the exception's notes, what to do."""
    text = one_line(exc) or type(exc).__name__
    notes = " ".join(one_line(note) for note in getattr(exc, "__notes__", []))
    return f"{text} {notes}".strip()


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns under a header; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in [header, *rows]
    ]


class Printer:
    """Prints results to stdout and notes to stderr, never on the progress bar's line.

    :param progress: Show a bar on stderr (a terminal, and not ``--quiet`` or ``--no-progress``).
    :param quiet: Print only the results: no bar, no notes (errors still go to stderr).
    """

    def __init__(self, total: int, *, progress: bool, quiet: bool, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.quiet = quiet
        self.bar = None
        if progress and not quiet and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="prompt", file=sys.stderr, leave=False, dynamic_ncols=True)

    def result(self, line: str) -> None:
        """One result line on stdout, flushed at once (a line printed is a file saved)."""
        self._print(line, self.out)

    def note(self, text: str, *, error: bool = False) -> None:
        """A line for the person at the terminal, on stderr (errors even when quiet)."""
        if not self.quiet or error:
            self._print(f"imagebot: {text}", sys.stderr)

    def _print(self, line: str, stream: TextIO) -> None:
        # The bar is cleared from its line first and drawn again below: tqdm's own write() only
        # does so when the stream is sys.stdout, which the command redirects while it works.
        if self.bar is not None:
            self.bar.clear()
        print(line, file=stream)
        stream.flush()
        if self.bar is not None:
            self.bar.refresh()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def result_lines(result: Any, as_url: bool, as_json: bool) -> tuple[list[str], str | None]:
    """One prompt's lines for stdout, and its line for stderr (an error, a refusal, or not sent)."""
    if result.error is not None:
        refused = bool(getattr(type(result.error), "is_refusal", False))
        what = "refused" if refused else ("error" if result.sent else "not sent")
        detail = one_line(getattr(result.error, "reason", None) or "") if refused else describe(result.error)
        note = f"{what}: {one_line(result.prompt[:60])!r}: {detail or describe(result.error)}"
        if not as_json:
            return [], note
        record: dict[str, Any] = {"index": result.index, "prompt": result.prompt, "error": describe(result.error)}
        if refused:
            record["refused"] = True
        elif not result.sent:
            record["not_sent"] = True
        return [json.dumps(record)], note
    images = result.images
    lines = []
    for image in images:
        where = image.reference if as_url else str(image.path)
        if not as_json:
            lines.append(safe(where))
            continue
        record = {
            "index": result.index,
            "prompt": result.prompt,
            "url" if as_url else "path": where,
            "model": images.model,
            "revised_prompt": image.revised_prompt,
            # Each image's share of its prompt's cost, so that summing the lines is right.
            "cost": None if images.cost is None else images.cost / len(images),
        }
        if result.resumed:
            record["resumed"] = True  # saved by an earlier run: its cost was paid then
        lines.append(json.dumps(record))
    return lines, None
