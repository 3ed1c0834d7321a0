"""The ``imagebot`` command: parse the arguments, call the library, print the results.

Exit status: 0 when every prompt made its images, 1 when any provider or I/O failure
happened (a refusal included), 2 for bad usage, 130 when interrupted, 141 when the
reader of its output went away.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import io
import json
import os
import signal
import sys
import warnings
from pathlib import Path

import llamabot_imagebot
from llamabot_imagebot import _history, _info, _models, _routing
from llamabot_imagebot._cli_output import Printer, describe, one_line, result_lines, safe, table
from llamabot_imagebot._version import version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO

#: The model used when neither -m nor IMAGEBOT_MODEL names one: OpenAI's current GPT image model.
DEFAULT_MODEL = "gpt-image-2"
COMMANDS = ("generate", "edit", "history", "cost", "info", "models")
EPILOG = """\
examples:
  imagebot "A red fox in the snow"           (generate is the default command)
  imagebot generate history                  a one-word prompt that is also a command's name
  imagebot "A logo" "A banner" --dir out --concurrency 2
  imagebot --from-file prompts.txt --json > results.jsonl
  echo "A lighthouse at dusk" | imagebot -
  imagebot edit fox.png -p "Make it winter" --mask sky.png -o winter_fox.png
  imagebot history --search fox              recent generations
  imagebot history --path a_red_fox.png      which prompt made this file
  imagebot history --chain winter_fox.png    an edited file back to its first prompt
  imagebot history --refused                 what providers refused
  imagebot cost --by model                   what it cost
  imagebot info a_red_fox.png                what made this file: our record and its Content Credentials
  imagebot models openai                     image models litellm knows: status, pricing, edits

Saved images carry their prompt and settings (--no-metadata to skip); each run is
recorded in a local history (--no-history to skip; IMAGEBOT_HISTORY_DB moves it).

The model is -m, else IMAGEBOT_MODEL from the environment, else gpt-image-2.
Keys come from the provider's usual environment variable: OPENAI_API_KEY,
AZURE_API_KEY, OPENROUTER_API_KEY, RECRAFT_API_KEY, GEMINI_API_KEY, AWS credentials…
"""


class UsageError(Exception):
    """Bad usage: exit status 2."""


def version_text() -> str:
    """The version, and a note when ``import llamabot`` does not give this package here (the real llamabot)."""
    text = f"imagebot (llamabot-imagebot) {version()}"
    try:
        spec = importlib.util.find_spec("llamabot")
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    ours = bool(origin) and "_FACE_OF" in Path(str(origin)).read_text(encoding="utf-8", errors="replace")
    if ours:
        return text
    repair = "pip install --force-reinstall --no-deps llamabot-imagebot"
    if origin:
        return (
            f"{text}\nnote: `import llamabot` gives the real llamabot here ({Path(str(origin)).parent}), installed "
            f"after llamabot-imagebot. ImageBot is `import llamabot_imagebot`; `{repair}` makes `import llamabot` "
            "give it again (and hides the real llamabot's modules)."
        )
    return (
        f"{text}\nnote: `import llamabot` fails here: uninstalling the real llamabot removed the files both packages "
        f"share. `{repair}` restores it; `import llamabot_imagebot` works meanwhile."
    )


def build_parser() -> argparse.ArgumentParser:
    """The command and its subcommands: ``generate`` (the default), ``edit``, ``history``, ``cost``, ``info``..."""
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Make images from text prompts with any provider litellm supports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    generate = commands.add_parser("generate", help="make images from prompts (the default command)")
    generate.add_argument("prompts", nargs="*", metavar="PROMPT", help="a prompt; '-' reads prompts from stdin")
    generate.add_argument("--from-file", metavar="FILE", help="read prompts from FILE ('-' for stdin), one per line")
    generate.add_argument("--url", action="store_true", help="print image URLs or data URIs instead of saving")
    _making_arguments(generate)
    edit = commands.add_parser(
        "edit", help="change images as a prompt says", description="Change images with a prompt."
    )
    edit.add_argument("images", nargs="+", metavar="IMAGE", help="the image to edit (several: reference images)")
    edit.add_argument("-p", "--prompt", required=True, help="what to change")
    edit.add_argument("--mask", metavar="MASK", help="where the image may change (its transparent pixels)")
    _making_arguments(edit)
    history = commands.add_parser("history", help="show recent generations", description="Show recent generations.")
    history.add_argument("--search", metavar="TEXT", help="only generations whose prompt or model contains TEXT")
    history.add_argument("--path", metavar="FILE", help="which generation made FILE")
    history.add_argument("--chain", metavar="FILE", help="FILE's generation, then its input's, back to a prompt")
    history.add_argument("--refused", action="store_true", help="only generations a provider refused")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default: 20)")
    history.add_argument("--where", action="store_true", help="print where the history database is, and stop")
    history.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    cost = commands.add_parser("cost", help="show what generations cost", description="Show what generations cost.")
    cost.add_argument("--by", choices=["day", "model"], default="day", help="group by (default: day)")
    cost.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    info = commands.add_parser("info", help="what made an image: our record and the provider's Content Credentials")
    info.add_argument("file", metavar="FILE", help="a saved image")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    models = commands.add_parser("models", help="the image models litellm knows: status, pricing, whether they edit")
    models.add_argument("provider", nargs="?", metavar="PROVIDER", help="only this provider's models (e.g. openai)")
    models.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    return parser


def _making_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``generate`` and ``edit`` share: where to save, the settings, the batch's options, the output."""
    parser.add_argument("-o", "--output", type=Path, metavar="PATH", help="save the image here (one prompt only)")
    parser.add_argument("--dir", type=Path, metavar="DIR", help="save images here under names from the prompts")
    parser.add_argument("-m", "--model", help=f"litellm model (default: IMAGEBOT_MODEL, else {DEFAULT_MODEL})")
    parser.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT (default: 1024x1024)")
    parser.add_argument("--quality", help="provider quality, e.g. low, medium, high, hd")
    parser.add_argument("-n", type=int, default=1, metavar="N", help="images per prompt (default: 1)")
    parser.add_argument("--response-format", choices=["url", "b64_json"], help="ask for URLs or base64")
    parser.add_argument("--api-base", metavar="URL", help="provider base URL (Azure, proxies, compatible servers)")
    parser.add_argument("--api-version", metavar="V", help="provider API version (Azure)")
    parser.add_argument("--timeout", type=float, default=600, metavar="SEC", help="seconds per prompt (default: 600)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra litellm argument")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight (default: 4)")
    parser.add_argument("--requests-per-minute", type=float, metavar="N", help="at most N requests in any minute")
    parser.add_argument("--max-cost", type=float, metavar="USD", help="send nothing that could take the run over USD")
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --dir: skip what the folder's journal lists as saved (the default); --no-resume starts afresh",
    )
    parser.add_argument("--retry-refused", action="store_true", help="with --dir: ask again for what was refused")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument("--no-metadata", action="store_true", help="write the provider's bytes without provenance")
    parser.add_argument("--no-history", action="store_true", help="do not record this run in the history")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the results: no progress, no notes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def models_main(args: argparse.Namespace) -> int:
    """Print litellm's image models; exit 1 when no model matches the provider asked for."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    every = _models.catalog(_routing.load_litellm().model_cost, today)
    rows = every
    if args.provider:
        wanted = args.provider.lower()
        rows = [row for row in rows if row.provider.lower() == wanted or row.provider.lower().startswith(wanted + "-")]
        if not rows:
            known = ", ".join(sorted({row.provider for row in every}))
            print(
                f"imagebot: no image model of provider {safe(args.provider)!r} in litellm's table; providers: {known}",
                file=sys.stderr,
            )
            return 1
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json()))
        return 0
    cells = [[row.model, row.status_text(), row.pricing, "yes" if row.edits else "no"] for row in rows]
    header, *aligned = table(["model", "status", "pricing", "edits"], cells)
    lines, provider = [f"  {header}"], None
    for row, line in zip(rows, aligned, strict=True):
        if row.provider != provider:
            provider = row.provider
            lines.append(f"{provider}:")
        lines.append(f"  {line}")
    print("\n".join(lines))
    return 0


def info_main(args: argparse.Namespace) -> int:
    """Print what made a file; exit 1 when it does not exist or carries neither record."""
    if not Path(args.file).exists():
        print(f"imagebot: {safe(args.file)} does not exist", file=sys.stderr)
        return 1
    found = _info.image_info(args.file)
    if found is None:
        print(f"imagebot: {safe(args.file)} carries no ImageBot record and no Content Credentials", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found, default=str))
        return 0
    credentials = found.pop("content_credentials", None)
    if found:
        print("ImageBot record (unsigned):")
        for key, value in found.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
            print(f"  {safe(key)}: {one_line(shown)}")
    if credentials:
        print("Content Credentials (signed by the provider):")
        for key, value in credentials.items():
            print(f"  {safe(key)}: {one_line(', '.join(map(str, value)) if isinstance(value, list) else value)}")
    return 0


def history_main(args: argparse.Namespace) -> int:
    """Print the history or the costs; exit 1 when ``--path`` or ``--chain`` names a file no generation made."""
    where = _history.default_path()
    if args.command == "history" and args.where:
        print(where)
        return 0
    try:
        if args.command == "cost":
            rows = _history.costs(by=args.by)
        elif args.chain:
            rows = _history.chain(args.chain)
        else:
            rows = _history.recent(limit=args.limit, search=args.search, file=args.path, refused=args.refused)
    except Exception as exc:
        print(f"imagebot: error: cannot read the history at {where}: {describe(exc)}", file=sys.stderr)
        return 1
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    elif args.command == "cost" and rows:
        cells = [
            [
                one_line(row[args.by] or "?"),
                str(row["generations"]),
                str(row["images"] or 0),
                f"${row['cost']:.4f}" + (f" ({row['unpriced']} not priced)" if row["unpriced"] else ""),
            ]
            for row in rows
        ]
        print("\n".join(table([args.by, "generations", "images", "cost"], cells)))
    elif rows:
        cells = [
            [
                one_line(row["time"]),
                one_line(row["model"]),
                f"${row['cost']:.4f}" if row["cost"] is not None else "-",
                one_line(repr(row["prompt"])),
                one_line(_outcome(row)),
            ]
            for row in rows
        ]
        print("\n".join(table(["time", "model", "cost", "prompt", "outcome"], cells)))
    asked = args.command == "history" and (args.path or args.chain)
    if asked and not rows:
        print(f"imagebot: no generation in the history made {safe(args.path or args.chain)}", file=sys.stderr)
        return 1
    if not rows and not args.json:
        held = _history.count()
        said = "The history is empty" if not held else f"Nothing matched ({held} generations in the history)"
        print(f"{said} ({where}).", file=sys.stderr)
    return 0


def _outcome(row: dict[str, Any]) -> str:
    if row.get("refused"):
        return f"refused: {row['refused']}"
    return row["error"] or ", ".join(row["outputs"]) or "-"


def _read_lines(source: str, stdin: TextIO) -> list[str]:
    if source == "-":
        text = stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise UsageError(f"cannot read prompts from {source}: {exc.strerror or exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def collect_prompts(args: argparse.Namespace, stdin: TextIO) -> list[str]:
    """Prompts from the arguments, ``-`` (stdin) and ``--from-file``, in that order."""
    prompts: list[str] = []
    for prompt in args.prompts:
        if prompt == "-":
            prompts += _read_lines("-", stdin)
        elif not prompt.strip():
            raise UsageError("a prompt is empty; describe the image to generate")
        else:
            prompts.append(prompt)
    if args.from_file:
        prompts += _read_lines(args.from_file, stdin)
    if not prompts:
        raise UsageError("no prompt given; pass one as an argument, '-' for stdin, or --from-file FILE")
    return prompts


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """``--set key=value`` pairs; values are JSON when they parse as JSON, else strings."""
    settings: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE, not {pair!r}")
        if key.strip() in {"api_key", "api-key"}:
            raise UsageError("keys are read from the provider's environment variable, never from the command line")
        try:
            settings[key.strip()] = json.loads(value)
        except ValueError:
            settings[key.strip()] = value
    return settings


def _print_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None) -> None:
    print(f"imagebot: warning: {one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """Run the command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # generate is the default command: `imagebot "A fox"` means `imagebot generate "A fox"`.
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        typo = mistyped_command(argv[0]) if argv else None
        if typo is not None:
            print(
                f"imagebot: error: {argv[0]!r} looks like a mistyped command; did you mean `imagebot {typo}`? "
                f"Nothing was sent. To make an image of the word, run: imagebot generate {argv[0]}",
                file=sys.stderr,
            )
            return 2
        argv = ["generate", *argv]
    args = build_parser().parse_args(argv)  # exits 2 on unknown options, as argparse does
    if args.command == "info":
        return info_main(args)
    if args.command == "models":
        return models_main(args)
    if args.command in ("history", "cost"):
        return history_main(args)
    shown = warnings.showwarning
    warnings.showwarning = _print_warning  # one line on stderr, not a source excerpt
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", llamabot_imagebot.ResumedWarning)  # the command says it its own way
            return _make(args, stdin if stdin is not None else sys.stdin)
    finally:
        warnings.showwarning = shown


def mistyped_command(word: str) -> str | None:
    """The command a one-word prompt is a close misspelling of (``histroy``), else None.

    A paid request must never come from a typo; ``imagebot generate WORD`` and
    ``imagebot -- WORD`` still send the word as a prompt.
    """
    if word.startswith("-") or len(word.split()) != 1:
        return None
    word = word.lower()
    allowed = 1 if len(word) <= 5 else 2  # edits a typo makes: a swapped, missing, extra or wrong letter
    distance, command = min((_edits(word, command), command) for command in COMMANDS)
    return command if distance <= allowed else None


def _edits(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment)."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def _bot(args: argparse.Namespace) -> Any:
    options: dict[str, Any] = {
        "model": args.model or os.environ.get("IMAGEBOT_MODEL", "").strip() or DEFAULT_MODEL,
        "size": args.size,
        "quality": args.quality,
        "n": args.n,
        "response_format": args.response_format or "url",
        "api_base": args.api_base,
        "api_version": args.api_version,
        "timeout": args.timeout,
        "imagebot_metadata": not args.no_metadata,
        "imagebot_history": not args.no_history,
        "requests_per_minute": args.requests_per_minute,
    }
    return llamabot_imagebot.ImageBot(**{**options, **parse_settings(args.set)})  # --set wins over named options


def _make(args: argparse.Namespace, stdin: TextIO) -> int:
    """``generate`` and ``edit``: every item as a batch, each result printed as soon as it is done."""
    as_url = getattr(args, "url", False)
    try:
        if args.dir is not None and args.dir.exists() and not args.dir.is_dir():
            raise UsageError(f"--dir {args.dir} is a file, not a folder")
        if args.command == "edit":
            items: list[Any] = [(args.prompt, [Path(image) for image in args.images], args.mask)]
        else:
            items = collect_prompts(args, stdin)
        if args.output and len(items) > 1:
            raise UsageError("-o names one file; use --dir with several prompts")
        bot = _bot(args)
        options = {
            "return_url": as_url,
            "save_dir": args.dir,
            "save_path": args.output,
            "resume": args.resume,
            "max_cost": args.max_cost,
            "retry_refused": args.retry_refused,
            "progress": False,  # the command draws its own bar, so results never share its line
        }
        runner = bot.iter_edits if args.command == "edit" else bot.iter_batch
        results = runner(items, args.concurrency, **options)
    except (UsageError, ValueError, TypeError, OSError) as exc:
        print(f"imagebot: error: {describe(exc)}", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() and not args.no_progress
    printer = Printer(len(items), progress=progress, quiet=args.quiet)
    tally = {"failed": 0, "resumed": 0, "not_sent": 0, "made": 0}
    try:
        return _print_results(results, printer, tally, args, as_url, len(items))
    finally:
        results.close()  # a closed pipe or an error: what has not started is cancelled


def _print_results(
    results: Any, printer: Printer, tally: dict[str, int], args: argparse.Namespace, as_url: bool, total: int
) -> int:
    try:
        # litellm may print to stdout; the command's stdout is its results only.
        with contextlib.redirect_stdout(io.StringIO()):
            for result in results:
                _count(tally, result)
                lines, note = result_lines(result, as_url, args.json)
                for line in lines:
                    printer.result(line)
                if note:
                    printer.note(note, error=True)
                printer.advance()
    except KeyboardInterrupt:
        printer.close()
        again = " Run the same command again to resume: what was saved is not asked for again." if args.dir else ""
        print(f"imagebot: interrupted; nothing partial was left behind.{again}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError) as exc:
        printer.close()
        print(f"imagebot: error: {describe(exc)}", file=sys.stderr)
        return 2 if not isinstance(exc, RuntimeError) else 1
    printer.close()
    _summary(printer, tally, args, total)
    return 1 if tally["failed"] else 0


def _count(tally: dict[str, int], result: Any) -> None:
    tally["failed"] += not result.ok
    tally["resumed"] += result.resumed and result.ok
    tally["not_sent"] += not result.ok and not result.sent and not result.resumed
    tally["made"] += result.ok and not result.resumed


def _summary(printer: Printer, tally: dict[str, int], args: argparse.Namespace, total: int) -> None:
    if tally["resumed"]:
        printer.note(
            f"resumed {tally['resumed']}, made {tally['made']} of {total}: {tally['resumed']} were already saved in "
            f"{args.dir} (its journal says so and the files are intact); --no-resume makes them again"
        )
    held = tally["not_sent"]
    if held:
        printer.note(
            f"{held} prompt{'s' * (held != 1)} not sent: --max-cost ${args.max_cost:g} would have been crossed; "
            "run the same command with a higher --max-cost to make them"
        )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the command as Ctrl-C does: nothing partial is left


def run(argv: Iterable[str] | None = None) -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main(None if argv is None else list(argv)))
    except KeyboardInterrupt:
        print("imagebot: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`imagebot ... | head -1`): stop quietly, as Unix tools do. stdout
        # is pointed at /dev/null so that Python's own flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
