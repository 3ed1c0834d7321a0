"""The ``imagebot`` command: parse the arguments, call the library, print the results.

Exit status: 0 when every prompt made its images, 1 when any provider or I/O
failure happened, 2 for bad usage, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import signal
import sys
import warnings
from pathlib import Path

import llamabot_imagebot
from llamabot_imagebot import _history, _info, _models, _routing
from llamabot_imagebot._version import version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

#: The model used when neither -m nor IMAGEBOT_MODEL names one: OpenAI's current GPT image model.
DEFAULT_MODEL = "gpt-image-2"
COMMANDS = ("generate", "history", "cost", "info", "models")
EPILOG = """\
examples:
  imagebot "A red fox in the snow"           (generate is the default command)
  imagebot generate history                  a one-word prompt that is also a command's name
  imagebot "A logo" "A banner" --dir out --concurrency 2
  imagebot --from-file prompts.txt --json > results.jsonl
  echo "A lighthouse at dusk" | imagebot -
  imagebot "A cat" -m openrouter/google/gemini-2.5-flash-image --set image_config='{"aspect_ratio": "16:9"}'
  imagebot history --search fox              recent generations
  imagebot history --path a_red_fox.png      which prompt made this file
  imagebot history --where                   where the history database is
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


def _version() -> str:
    return f"imagebot (llamabot-imagebot) {version()}"


def build_parser() -> argparse.ArgumentParser:
    """The command and its subcommands: ``generate`` (the default), ``history``, ``cost``, ``info``, ``models``."""
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Make images from text prompts with any provider litellm supports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    generate = commands.add_parser(
        "generate", help="make images from prompts (the default command)", description="Make images from prompts."
    )
    _generate_arguments(generate)
    history = commands.add_parser("history", help="show recent generations", description="Show recent generations.")
    history.add_argument("--search", metavar="TEXT", help="only generations whose prompt or model contains TEXT")
    history.add_argument("--path", metavar="FILE", help="which generation made FILE")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default: 20)")
    history.add_argument("--where", action="store_true", help="print where the history database is, and stop")
    history.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    cost = commands.add_parser("cost", help="show what generations cost", description="Show what generations cost.")
    cost.add_argument("--by", choices=["day", "model"], default="day", help="group by (default: day)")
    cost.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    info = commands.add_parser(
        "info",
        help="what made an image: our record and the provider's Content Credentials",
        description="Show what made an image: ImageBot's record and the provider's signed Content Credentials.",
    )
    info.add_argument("file", metavar="FILE", help="a saved image")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    models = commands.add_parser(
        "models",
        help="the image models litellm knows: status, pricing, whether they edit",
        description="List the image models in litellm's model table, grouped by provider: whether each is "
        "current or shut down (and its successor), how it is priced, and whether it can edit images.",
    )
    models.add_argument("provider", nargs="?", metavar="PROVIDER", help="only this provider's models (e.g. openai)")
    models.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    return parser


def models_main(args: argparse.Namespace) -> int:
    """Print litellm's image models; exit 1 when no model matches the provider asked for."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rows = _models.catalog(_routing.load_litellm().model_cost, today)
    if args.provider:
        wanted = args.provider.lower()
        rows = [row for row in rows if row.provider.lower() == wanted or row.provider.lower().startswith(wanted + "-")]
        if not rows:
            known = sorted({row.provider for row in _models.catalog(_routing.load_litellm().model_cost, today)})
            print(
                f"imagebot: no image model of provider {args.provider!r} in litellm's model table; "
                f"providers: {', '.join(known)}",
                file=sys.stderr,
            )
            return 1
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json()))
        return 0
    cells = [[row.model, row.status_text(), row.pricing, "yes" if row.edits else "no"] for row in rows]
    header, *aligned = _table(["model", "status", "pricing", "edits"], cells)
    lines = [f"  {header}"]
    provider = None
    for row, line in zip(rows, aligned, strict=True):
        if row.provider != provider:
            provider = row.provider
            lines.append(f"{provider}:")
        lines.append(f"  {line}")
    print("\n".join(lines))
    return 0


def info_main(args: argparse.Namespace) -> int:
    """Print what made a file; exit 1 when it carries neither record."""
    found = _info.image_info(args.file)
    if found is None:
        print(f"imagebot: {args.file} carries no ImageBot record and no Content Credentials", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found, default=str))
        return 0
    credentials = found.pop("content_credentials", None)
    if found:
        print("ImageBot record (unsigned):")
        for key, value in found.items():
            print(f"  {key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}")
    if credentials:
        print("Content Credentials (signed by the provider):")
        for key, value in credentials.items():
            print(f"  {key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return 0


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "prompts", nargs="*", metavar="PROMPT", help="a prompt; '-' reads prompts from stdin, one per line"
    )
    parser.add_argument("-o", "--output", type=Path, metavar="PATH", help="save the image here (one prompt only)")
    parser.add_argument("--dir", type=Path, metavar="DIR", help="save images here under names from the prompts")
    parser.add_argument(
        "-m",
        "--model",
        default=None,
        help=f"litellm model string (default: IMAGEBOT_MODEL from the environment, else {DEFAULT_MODEL})",
    )
    parser.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT (default: 1024x1024)")
    parser.add_argument("--quality", help="provider quality, e.g. low, medium, high, hd")
    parser.add_argument("-n", type=int, default=1, metavar="N", help="images per prompt (default: 1)")
    parser.add_argument("--response-format", choices=["url", "b64_json"], help="ask for URLs or base64")
    parser.add_argument("--url", action="store_true", help="print image URLs or data URIs instead of saving")
    parser.add_argument("--api-base", metavar="URL", help="provider base URL (Azure, proxies, compatible servers)")
    parser.add_argument("--api-version", metavar="V", help="provider API version (Azure)")
    parser.add_argument("--timeout", type=float, default=600, metavar="SEC", help="seconds per prompt (default: 600)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra litellm argument (JSON values allowed); repeatable",
    )
    parser.add_argument("--from-file", metavar="FILE", help="read prompts from FILE ('-' for stdin), one per line")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight (default: 4)")
    parser.add_argument(
        "--requests-per-minute", type=float, metavar="N", help="never send more than N requests in any minute"
    )
    parser.add_argument(
        "--max-cost", type=float, metavar="USD", help="send no prompt that could take the run's cost over USD"
    )
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --dir: skip prompts the folder's journal lists as saved (the default when it has one); "
        "--no-resume starts afresh",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per image (cost: the image's share of its prompt's)"
    )
    parser.add_argument("--no-metadata", action="store_true", help="write the provider's bytes without provenance")
    parser.add_argument("--no-history", action="store_true", help="do not record this run in the history")


def _one_line(text: object) -> str:
    """A stored value on one line: newlines and tabs would break the table."""
    return " ".join(str(text).split())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns under a header; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in [header, *rows]
    ]


def history_main(args: argparse.Namespace) -> int:
    """Print the history or the costs; exit 1 when ``--path`` names a file no generation made."""
    where = _history.default_path()
    if args.command == "history" and args.where:
        print(where)
        return 0
    try:
        if args.command == "cost":
            rows = _history.costs(by=args.by)
        else:
            rows = _history.recent(limit=args.limit, search=args.search, file=args.path)
    except Exception as exc:
        print(f"imagebot: error: cannot read the history at {where}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    elif args.command == "cost" and rows:
        table = [
            [
                str(row[args.by] or "?"),
                str(row["generations"]),
                str(row["images"] or 0),
                f"${row['cost']:.4f}" + (f" ({row['unpriced']} not priced)" if row["unpriced"] else ""),
            ]
            for row in rows
        ]
        print("\n".join(_table([args.by, "generations", "images", "cost"], table)))
    elif rows:
        table = [
            [
                row["time"],
                _one_line(row["model"]),
                f"${row['cost']:.4f}" if row["cost"] is not None else "-",
                _one_line(repr(row["prompt"])),
                _one_line(row["error"] or ", ".join(row["outputs"]) or "-"),
            ]
            for row in rows
        ]
        print("\n".join(_table(["time", "model", "cost", "prompt", "outcome"], table)))
    if args.command == "history" and args.path and not rows:
        print(f"imagebot: no generation in the history made {args.path}", file=sys.stderr)
        return 1
    if not rows and not args.json:
        print(f"The history is empty ({where}).", file=sys.stderr)
    return 0


def _read_lines(source: str, stdin: TextIO) -> list[str]:
    if source == "-":
        text = stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
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
    if args.output and len(prompts) > 1:
        raise UsageError("-o names one file; use --dir with several prompts")
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


def describe(exc: BaseException) -> str:
    """One line: what went wrong and, from the exception's notes, what to do."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    notes = " ".join(" ".join(note.split()) for note in getattr(exc, "__notes__", []))
    return f"{text} {notes}".strip()


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"imagebot: warning: {message}", file=sys.stderr)


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
    if args.command != "generate":
        return history_main(args)
    shown = warnings.showwarning
    warnings.showwarning = _print_warning  # one line on stderr, not a source excerpt
    try:
        return _generate(args, stdin if stdin is not None else sys.stdin)
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


def _generate(args: argparse.Namespace, stdin: TextIO) -> int:
    try:
        prompts = collect_prompts(args, stdin)
        extra = parse_settings(args.set)
        ImageBot = llamabot_imagebot.ImageBot

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
        bot = ImageBot(**{**options, **extra})  # --set wins over the named options
    except (UsageError, ValueError, TypeError) as exc:
        print(f"imagebot: error: {describe(exc)}", file=sys.stderr)
        return 2
    out = sys.stdout  # results go here, each as soon as its prompt is done
    failures = 0
    try:
        # litellm prints a "Give Feedback / Get Help" banner to stdout on every failure; the
        # command's stdout is its results only, so anything else printed while generating is
        # dropped (litellm itself is left as it is).
        with contextlib.redirect_stdout(io.StringIO()):
            results = bot.iter_batch(
                prompts,
                args.concurrency,
                return_url=args.url,
                save_dir=args.dir,
                save_path=args.output,
                resume=args.resume,
                max_cost=args.max_cost,
            )
            resumed = not_sent = 0
            for result in results:
                failures += not result.ok
                resumed += result.resumed
                not_sent += not result.ok and not result.sent
                _print_result(result, args, out)
    except KeyboardInterrupt:
        print("imagebot: interrupted; nothing partial was left behind", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:
        print(f"imagebot: error: {describe(exc)}", file=sys.stderr)
        return 2
    if resumed:
        print(
            f"imagebot: {resumed} of {len(prompts)} prompts were already saved in {args.dir} (its journal "
            "says so and the files are intact): nothing was requested for them; --no-resume makes them again",
            file=sys.stderr,
        )
    if not_sent:
        print(
            f"imagebot: {not_sent} prompt{'s' * (not_sent != 1)} not sent: --max-cost ${args.max_cost:g} "
            "would have been crossed; run the same command with a higher --max-cost to make them",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _print_result(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    """One prompt's lines: a path (or reference) per image, or one JSON object per image; flushed at once."""
    if result.error is not None:
        what = "error" if result.sent else "not sent"
        print(f"imagebot: {what}: {result.prompt[:60]!r}: {describe(result.error)}", file=sys.stderr)
        if args.json:
            record = {"index": result.index, "prompt": result.prompt, "error": describe(result.error)}
            if not result.sent:
                record["not_sent"] = True
            print(json.dumps(record), file=out)
        out.flush()
        return
    images = result.images
    for image in images:
        where = image.reference if args.url else str(image.path)
        if args.json:
            record = {
                "index": result.index,
                "prompt": result.prompt,
                "url" if args.url else "path": where,
                "model": images.model,
                "revised_prompt": image.revised_prompt,
                # Each image's share of its prompt's cost, so that summing the lines is right.
                "cost": None if images.cost is None else images.cost / len(images),
            }
            if result.resumed:
                record["resumed"] = True  # saved by an earlier run: its cost was paid then
            print(json.dumps(record), file=out)
        else:
            print(where, file=out)
    out.flush()  # a line printed is a file saved: Ctrl-C later leaves it true


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the command as Ctrl-C does: nothing partial is left


def run() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("imagebot: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`imagebot ... | head -1`): stop quietly, as Unix tools do. stdout
        # is pointed at /dev/null so that Python's own flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
