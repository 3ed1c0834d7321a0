"""The imagebot command, end to end as a subprocess against the fake provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llamabot as lmb
from tests.fakes import JPEG, PNG, b64, same_pixels, tagged
from tests.test_pipelines import echo_images

CANARY = "sk-canary-cli-0123456789abcdef"


def imagebot(provider, *args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m llamabot` with the fake provider's base URL and a canary key (``env`` None values unset)."""
    environment = {
        **os.environ,
        "OPENAI_API_KEY": CANARY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **(env or {}),
    }
    environment = {name: value for name, value in environment.items() if value is not None}
    command = [sys.executable, "-m", "llamabot", *args]
    if provider is not None:
        command += ["--api-base", provider.base]
    return subprocess.run(command, input=stdin or "", capture_output=True, text=True, env=environment, timeout=120)


def test_one_prompt_prints_the_saved_path(provider):
    """The default run saves one image and prints its path; exit 0."""
    provider.gpt_image([PNG])
    run = imagebot(provider, "A red fox")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "a_red_fox.png"  # as the library returns it: relative to the working folder
    info = lmb.image_info("a_red_fox.png")  # the command writes provenance by default
    assert info["prompt"] == "A red fox" and info["model"] == "gpt-image-2"
    assert same_pixels(Path("a_red_fox.png").read_bytes(), PNG)
    assert provider.calls("/images/generations")[0].json["model"] == "gpt-image-2"
    assert CANARY not in run.stdout + run.stderr + json.dumps(info)


def test_json_output_stdin_prompts_and_options(provider):
    """Prompts from stdin, --dir, --set and --json: one JSON object per image with path, model, cost."""
    echo_images(provider)
    run = imagebot(
        provider,
        "-",
        "--dir",
        "out",
        "--json",
        "--no-metadata",
        "--set",
        "background=transparent",
        "--set",
        "output_compression=80",
        "--quality",
        "low",
        stdin="A cat\n\nA dog\n",
    )
    assert run.returncode == 0, run.stderr
    # One line per image as each prompt finishes; "index" gives the input order back.
    records = sorted((json.loads(line) for line in run.stdout.splitlines()), key=lambda r: r["index"])
    assert [(r["index"], r["prompt"]) for r in records] == [(0, "A cat"), (1, "A dog")]
    assert [Path(r["path"]).read_bytes() for r in records] == [tagged(b"A cat"), tagged(b"A dog")]
    assert all(r["model"] == "gpt-image-2" and "revised_prompt" in r and "cost" in r for r in records)
    bodies = [c.json for c in provider.calls("/images/generations")]
    assert all(
        b["background"] == "transparent" and b["output_compression"] == 80 and b["quality"] == "low" for b in bodies
    )


def test_failing_provider_exits_1_with_one_clear_line(provider):
    """A provider failure: exit 1, one line on stderr, no traceback, no key; the other prompt still lands."""
    echo_images(provider)
    run = imagebot(provider, "fine", "this will FAIL")
    assert run.returncode == 1
    assert run.stdout.strip() == "fine.png"
    assert "Traceback" not in run.stderr and CANARY not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("imagebot: error:")]
    assert len(errors) == 1 and "FAIL" in errors[0] and "rejected" in errors[0]


def test_missing_key_names_the_environment_variable(provider):
    """Without a key the error says which variable to set."""
    provider.gpt_image([PNG])
    run = imagebot(provider, "A fox", env={"OPENAI_API_KEY": None})
    assert run.returncode == 1
    assert "OPENAI_API_KEY" in run.stderr and "Traceback" not in run.stderr
    assert provider.received == []  # refused locally, never retried against the server


@pytest.mark.parametrize(
    "args",
    [["   "], [], ["A fox", "--bogus"], ["a", "b", "-o", "x.png"], ["A fox", "--set", "nokey"], ["A fox", "-n", "0"]],
)
def test_bad_usage_exits_2(args):
    """Empty prompts, unknown options, -o with several prompts, bad --set and bad settings exit 2."""
    from llamabot_imagebot.cli import main

    with pytest.raises(SystemExit) as caught:
        raise SystemExit(main(args, stdin=__import__("io").StringIO("")))
    assert caught.value.code == 2


def test_output_path_flag(provider, monkeypatch):
    """-o saves where asked."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider.openai_images([JPEG], as_url=False)
    from llamabot_imagebot.cli import main

    assert (
        main(
            [
                "A fox",
                "-o",
                "pics/fox.jpg",
                "--no-metadata",
                "--model",
                "dall-e-3",
                "--response-format",
                "b64_json",
                "--api-base",
                provider.base,
            ],
            stdin=None,
        )
        == 0
    )
    assert Path("pics/fox.jpg").read_bytes() == JPEG


def test_url_flag_prints_data_uri(provider, capsys, monkeypatch):
    """--url prints the data URI of a base64 answer, one per line."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider.gpt_image([PNG])
    from llamabot_imagebot.cli import main

    assert main(["A fox", "--url", "--api-base", provider.base]) == 0
    assert capsys.readouterr().out.strip() == f"data:image/png;base64,{b64(PNG)}"
    assert list(Path.cwd().iterdir()) == []


def test_from_file(provider, capsys, monkeypatch):
    """--from-file reads one prompt per line."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    echo_images(provider)
    Path("prompts.txt").write_text("first\nsecond\n")
    from llamabot_imagebot.cli import main

    assert main(["--from-file", "prompts.txt", "--no-history", "--api-base", provider.base, "--concurrency", "2"]) == 0
    # Printed as each prompt finishes, so in completion order.
    assert sorted(Path(line).name for line in capsys.readouterr().out.split()) == ["first.png", "second.png"]


def test_module_and_console_script_are_the_same_command():
    """`imagebot --help` and `python -m llamabot --help` print the same usage."""
    script = Path(sys.executable).with_name("imagebot")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    a = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    b = subprocess.run([sys.executable, "-m", "llamabot", "--help"], capture_output=True, text=True, check=True).stdout
    assert a == b and "--from-file" in a


def test_version_and_real_subcommands_in_help(capsys):
    """--version prints the version; --help lists generate, history and cost as subcommands."""
    from llamabot_imagebot.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert (
        stopped.value.code == 0 and capsys.readouterr().out.strip() == f"imagebot (llamabot-imagebot) {lmb.__version__}"
    )
    with pytest.raises(SystemExit):
        main(["--help"])
    usage = capsys.readouterr().out
    assert "{generate,edit,history,cost,info,models}" in usage and "history" in usage.split("positional arguments")[1]


def test_short_model_option_and_explicit_generate(provider, monkeypatch, capsys):
    """-m picks the model; `imagebot generate PROMPT` is the same as `imagebot PROMPT`."""
    from llamabot_imagebot.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider.gpt_image([PNG])
    assert main(["generate", "A fox", "-m", "gpt-image-2.5-flare", "--api-base", provider.base, "--no-history"]) == 0
    assert provider.calls("/images/generations")[0].json["model"] == "gpt-image-2.5-flare"
    assert capsys.readouterr().out.strip() == "a_fox.png"


def test_history_where_and_an_empty_history_that_is_not_created(tmp_path, monkeypatch, capsys):
    """history --where names the database; reading an empty history says so and creates nothing."""
    from llamabot_imagebot.cli import main

    database = tmp_path / "fresh" / "history.sqlite3"
    monkeypatch.setenv("IMAGEBOT_HISTORY_DB", str(database))
    assert main(["history", "--where"]) == 0
    assert capsys.readouterr().out.strip() == str(database)
    assert main(["history"]) == 0 and main(["cost"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("The history is empty") == 2
    assert not database.exists() and not database.parent.exists()


def test_history_table_keeps_multiline_errors_on_one_row(capsys):
    """history prints a header and one row per generation, even when a stored error spans lines."""
    from llamabot_imagebot import _history
    from llamabot_imagebot.cli import main

    _history.record(
        {"time": "2026-11-20T10:00:00+00:00", "prompt": "A fox", "model": "m", "error": "Bad\nthing\thappened"}
    )
    assert main(["history"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["time", "model", "cost", "prompt", "outcome"]
    assert row.endswith("Bad thing happened") and "'A fox'" in row


def test_json_cost_is_each_images_share(provider, monkeypatch, capsys):
    """--json with -n 2: each line carries half the prompt's cost, so the lines sum to it."""
    from llamabot_imagebot.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider.gpt_image([PNG, JPEG])
    assert main(["A fox", "-n", "2", "--json", "--api-base", provider.base, "--no-history"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[0]["cost"] == lines[1]["cost"] > 0
    images = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, n=2).generate("A fox")
    assert sum(line["cost"] for line in lines) == pytest.approx(images.cost)


def test_results_are_printed_as_they_finish(provider):
    """A fast prompt's line appears while a slow one is still running; --json lines carry the prompt's index."""
    import time

    from werkzeug import Response

    def answer(request):
        prompt = json.loads(request.get_data())["prompt"]
        if prompt == "slow":
            time.sleep(4)
        body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)
    environment = {**os.environ, "OPENAI_API_KEY": CANARY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "llamabot", "slow", "fast", "--json", "--concurrency", "2", "--no-history"]
    process = subprocess.Popen(
        [*command, "--api-base", provider.base],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    first = json.loads(process.stdout.readline())
    assert first["prompt"] == "fast" and first["index"] == 1
    assert process.poll() is None  # the slow prompt is still being made
    second = json.loads(process.stdout.readline())
    assert second["prompt"] == "slow" and second["index"] == 0
    assert process.wait(timeout=60) == 0


def test_iter_batch_yields_each_outcome_as_it_finishes(provider):
    """The library's iterator: each prompt's images or error, with its index, in completion order."""
    echo_images(provider)
    results = list(
        lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test").iter_batch(
            ["one", "this will FAIL", "three"], concurrency=3, save_dir="out"
        )
    )
    by_index = {result.index: result for result in results}
    assert sorted(by_index) == [0, 1, 2] and not by_index[1].ok and by_index[1].paths == []
    assert by_index[0].paths == [Path("out/one.png")] and by_index[0].paths[0].read_bytes() == tagged(b"one")
    assert by_index[2].prompt == "three" and by_index[2].ok


def test_every_option_of_every_command_is_documented():
    """docs/cli.md names every option the parser has (so the reference cannot fall behind the command)."""
    from llamabot_imagebot.cli import build_parser

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    missing = [
        f"{name} {option}"
        for name, sub in [("imagebot", parser), *commands.items()]
        for action in sub._actions
        for option in action.option_strings
        if option not in ("-h", "--help") and f"`{option}" not in text and f" {option}" not in text
    ]
    missing += [f"command {name}" for name in commands if f"`{name}`" not in text]
    assert missing == []


@pytest.mark.wire
def test_the_edit_command_saves_prints_and_records(provider, capsys, monkeypatch, tmp_path):
    """`imagebot edit IMAGE -p PROMPT --mask MASK -o PATH`: the path printed, the input's SHA-256 in its record."""
    import hashlib

    from llamabot_imagebot.cli import main

    provider.json_route("/images/edits", {"created": 1, "data": [{"b64_json": b64(tagged(b"edited"))}]})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(tagged(b"input"))
    mask.write_bytes(tagged(b"mask"))
    out = tmp_path / "out.png"
    status = main(
        ["edit", str(image), "-p", "Make it blue", "--mask", str(mask), "-o", str(out), "--api-base", provider.base]
    )
    assert status == 0 and capsys.readouterr().out.strip() == str(out)
    info = lmb.image_info(out)
    assert info["settings"]["inputs"] == [hashlib.sha256(image.read_bytes()).hexdigest()]
    assert info["settings"]["mask"] == hashlib.sha256(mask.read_bytes()).hexdigest()
