"""Batches at scale: the shared rate limit, the batch-wide pause after a 429, the journal that
resumes a batch (kill -9 included), the spending cap, other executors and Dask.

Everything runs against the local fake provider; requests are counted and timed on the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug import Response

import llamabot as lmb
from llamabot_imagebot._throttle import MARGIN, WINDOW, Throttle
from tests.fakes import FakeClock, b64, tagged

JOURNAL = ".imagebot-journal.jsonl"


class Timed:
    """A provider endpoint that records when each request arrived and left, and its prompt."""

    def __init__(self, provider, path: str = "/images/generations", latency: float = 0.0, script=None) -> None:
        self.visits: list[tuple[float, float, str]] = []
        self.lock = threading.Lock()
        self.script = script  # (request number) -> (status, headers) or None for a success

        def answer(request):
            arrived = time.monotonic()
            prompt = json.loads(request.get_data())["prompt"]
            with self.lock:
                number = len(self.visits)
                self.visits.append((arrived, arrived, prompt))
            scripted = self.script(number) if self.script else None
            if scripted is not None:
                status, headers = scripted
                body = {"error": {"message": f"status {status}", "type": "rate_limit_error"}}
                response = Response(json.dumps(body), status, headers=headers, content_type="application/json")
            else:
                time.sleep(latency)
                body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
                response = Response(json.dumps(body), 200, content_type="application/json")
            with self.lock:
                self.visits[number] = (arrived, time.monotonic(), prompt)
            return response

        provider.route(path, answer)

    @property
    def arrivals(self) -> list[float]:
        return sorted(arrived for arrived, _, _ in self.visits)

    def prompts(self) -> list[str]:
        return [prompt for _, _, prompt in self.visits]

    def in_flight_at(self, moment: float) -> int:
        return sum(arrived <= moment < left for arrived, left, _ in self.visits)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


# The limit ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=40),
    steps=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=300),
    pauses=st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=3)), max_size=5),
)
def test_no_60_second_window_ever_holds_more_than_the_limit(limit, steps, pauses):
    """Whatever the pattern of requests and 429s, the sends in any 60 s window never exceed the limit."""
    clock = FakeClock()
    throttle = Throttle(limit, clock=clock)
    sent = []
    for number, step in enumerate(steps):
        clock.advance(step)
        while (wait := throttle.delay()) > 0:
            clock.advance(wait)
        sent.append(clock.now())
        if pauses and number % 7 == 3:
            throttle.rate_limited(pauses[number % len(pauses)])
        throttle.release(ok=True)
    assert most_in_any_window(sent, WINDOW) <= limit
    assert most_in_any_window(sent, WINDOW + MARGIN - 1e-6) <= limit  # with the margin for network jitter


def test_a_throttle_paces_evenly_from_the_start():
    """At 120 a minute the sends are half a second apart, not a burst of 120 then a wait."""
    clock = FakeClock()
    throttle = Throttle(120, clock=clock)
    sent = []
    for _ in range(10):
        while (wait := throttle.delay()) > 0:
            clock.advance(wait)
        sent.append(clock.now())
    assert [round(b - a, 6) for a, b in itertools.pairwise(sent)] == [0.5] * 9


def test_requests_per_minute_is_shared_by_threads_and_tasks(provider, bot):
    """Two batches in threads and an async batch on one bot: together they keep the bot's pace."""
    timed = Timed(provider)
    bot = bot(requests_per_minute=240)  # one every 0.25 s
    # A process's first request spends ~0.2 s inside litellm and the SDK before it is sent (lazy
    # imports, the client); made first, it does not blur the gaps measured below.
    bot.generate("warm up")
    timed.visits.clear()

    async def more() -> list:
        return await bot.abatch(["c1", "c2", "c3"], concurrency=3, return_url=True)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(lambda: bot.batch(["a1", "a2", "a3"], 3, return_url=True))
        second = pool.submit(lambda: bot.batch(["b1", "b2", "b3"], 3, return_url=True))
        third = asyncio.run(more())
        results = first.result() + second.result() + third
    assert all(isinstance(result, str) for result in results)
    gaps = [b - a for a, b in itertools.pairwise(timed.arrivals)]
    # 0.25 s apart (less the jitter of threads and the server), so 2 s from the first to the last.
    assert len(timed.arrivals) == 9 and min(gaps) > 0.15 and sum(gaps) > 1.9, gaps


def test_requests_per_minute_is_checked():
    """A limit that is not a positive number is refused when the bot is made, and per call."""
    for bad in (0, -5, "fast", True):
        with pytest.raises(ValueError, match="requests_per_minute"):
            lmb.ImageBot(model="gpt-image-2", requests_per_minute=bad)
    bot = lmb.ImageBot(model="gpt-image-2", requests_per_minute=60)
    assert "requests_per_minute=60" in repr(bot)
    assert "requests_per_minute" not in lmb.ImageBot(model="gpt-image-2").image_generation_kwargs


def test_a_429_pauses_the_whole_batch_lowers_concurrency_then_recovers(provider):
    """One 429 with Retry-After: 1 stops every thread for a second, halves what is in flight, then it recovers.

    Recraft makes one attempt per litellm call, so each 429 reaches ImageBot (the OpenAI
    SDK would first retry it on its own).
    """
    timed = Timed(
        provider,
        "/v1/images/generations",
        latency=0.3,
        script=lambda n: (429, {"Retry-After": "1"}) if n == 4 else None,
    )
    bot = lmb.ImageBot(model="recraft/recraftv3", api_base=provider.base, api_key="k-test", response_format="b64_json")
    results = bot.batch([f"p{i}" for i in range(24)], concurrency=4, return_url=True)
    assert all(isinstance(result, str) for result in results), results
    limited_at, answered, _ = sorted(timed.visits)[4]
    # The pause starts when ImageBot has read the 429, not when the server sent it: requests sent
    # before that (at most one from each of the 3 other slots) may reach a loaded server a little
    # later. Idle, they arrive within milliseconds; 0.5 s is far more. After them, nobody sends.
    racing = [arrived for arrived, _, _ in timed.visits if answered < arrived <= answered + 0.5]
    assert len(racing) <= 3, racing
    later = [arrived for arrived, _, _ in timed.visits if arrived > answered + 0.5]
    assert min(later) >= limited_at + 0.95
    assert len(timed.visits) == 25  # 24 prompts, one of them twice
    # Just after the pause, at most half of the 4 are in flight; by the end, 4 again.
    resumed = min(later)
    assert max(timed.in_flight_at(resumed + t / 100) for t in range(25)) <= 2
    assert max(timed.in_flight_at(moment) for moment in later[-8:]) == 4


# The journal and resuming -------------------------------------------------------------


def journal_lines(folder: Path) -> list[dict]:
    """The journal's records of saved prompts (each prompt also has a line naming its file before it is sent)."""
    lines = [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()]
    return [line for line in lines if "paths" in line]


def test_a_rerun_sends_nothing_for_prompts_already_saved(provider, bot):
    """A batch with save_dir journals each saved prompt; the same batch again makes no request."""
    timed = Timed(provider)
    prompts = ["a fox", "a cat", "a fox", "an owl"]  # the second "a fox" is its own prompt
    first = bot().batch(prompts, concurrency=2, save_dir="out")
    assert len(timed.visits) == 4 and len({str(path) for path in first}) == 4
    assert [line["prompt"] for line in sorted(journal_lines(Path("out")), key=lambda x: x["index"])] == prompts

    results = list(bot().iter_batch(prompts, concurrency=2, save_dir="out"))
    assert len(timed.visits) == 4  # no request at all
    assert all(result.resumed and not result.sent for result in results)
    assert sorted((r.index, r.paths[0]) for r in results) == list(enumerate(first))
    assert bot().batch(prompts, save_dir="out") == first


def test_stopping_a_batch_does_not_wait_for_a_request_in_flight_and_saves_nothing_after(provider, bot):
    """Stopping after the first result while another prompt's request still waits on the provider (3 s): the loop
    ends at once (idle, in milliseconds), and that answer, when it comes, is not saved."""
    slow_arrived = threading.Event()

    def answer(request):
        prompt = json.loads(request.get_data())["prompt"]
        if prompt == "slow":
            slow_arrived.set()
            time.sleep(3)
        body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)
    results = bot().iter_batch(["slow", "fast"], concurrency=2, save_dir="out")
    first = next(results)
    assert first.prompt == "fast" and first.ok and slow_arrived.wait(10)
    start = time.monotonic()
    results.close()
    assert time.monotonic() - start < 1.5
    time.sleep(3.5)  # the slow answer has come back by now
    assert sorted(path.name for path in Path("out").iterdir()) == [JOURNAL, first.paths[0].name]


@pytest.mark.parametrize("kind", ["threads", "async"])
def test_a_caller_that_stops_reading_stops_the_batch_running_ahead(provider, bot, kind):
    """A caller busy with one result for a second: at most 2 x concurrency more prompts are sent meanwhile
    (those in flight and results waiting to be read), not the whole batch; then the rest all come."""
    timed = Timed(provider)
    prompts = [f"p{i}" for i in range(40)]

    def sent_while_busy() -> tuple[list[str], int]:
        if kind == "threads":
            results = bot().iter_batch(prompts, concurrency=3, return_url=True)
            first = next(results)
            time.sleep(1.0)
            sent = len(timed.visits)
            return [first.prompt, *(result.prompt for result in results)], sent

        async def main():
            results = bot().aiter_batch(prompts, concurrency=3, return_url=True)
            first = await results.__anext__()
            await asyncio.sleep(1.0)
            sent = len(timed.visits)
            return [first.prompt, *[result.prompt async for result in results]], sent

        return asyncio.run(main())

    made, sent = sent_while_busy()
    assert sent <= 1 + 2 * 3
    assert sorted(made) == sorted(prompts) and sorted(timed.prompts()) == sorted(prompts)


def test_resuming_reads_the_journal_without_setting_aside_its_size_limit(provider, bot):
    """Resuming reads a small journal with little memory: reading "up to 512 MiB" once set aside 512 MiB each run."""
    import tracemalloc

    Timed(provider)
    bot().batch(["a fox", "a cat"], save_dir="out")
    tracemalloc.start()
    try:
        results = list(bot().iter_batch(["a fox", "a cat"], save_dir="out"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(result.resumed for result in results)
    assert peak < 16 * 1024 * 1024


def test_a_resumed_batch_says_so_at_the_callers_line(provider, bot):
    """The ResumedWarning points at the line that ran the batch, sync or async (not at asyncio's internals)."""
    Timed(provider)
    bot().batch(["a fox"], save_dir="out")
    with pytest.warns(lmb.ResumedWarning) as caught:
        bot().batch(["a fox"], save_dir="out")
    assert [warning.filename for warning in caught] == [__file__]

    async def main():
        return await bot().abatch(["a fox"], save_dir="out")

    with pytest.warns(lmb.ResumedWarning) as caught:
        asyncio.run(main())
    assert [warning.filename for warning in caught] == [__file__]


def test_a_rerun_makes_what_is_missing_or_damaged_and_nothing_else(provider, bot):
    """A deleted file and a truncated file are made again, under their names; a torn journal line is ignored."""
    timed = Timed(provider)
    prompts = [f"prompt {i}" for i in range(5)]
    paths = bot().batch(prompts, save_dir="out")
    paths[1].unlink()
    paths[3].write_bytes(paths[3].read_bytes()[:-20])
    with (Path("out") / JOURNAL).open("a") as journal:
        journal.write('{"v": 1, "key": "torn')  # a crash mid-write
    again = bot().batch(prompts, save_dir="out")
    assert sorted(timed.prompts()[5:]) == ["prompt 1", "prompt 3"]
    assert again[1].read_bytes() == tagged(b"prompt 1") and again[3].read_bytes() == tagged(b"prompt 3")
    assert again == paths and len(list(Path("out").glob("*.png"))) == 5
    assert bot().batch(prompts, save_dir="out") == again and len(timed.visits) == 7


def test_a_file_saved_just_before_a_kill_is_found_by_its_planned_name(provider, bot):
    """Killed after saving but before the journal said so: the re-run finds the file, sends nothing for it."""
    timed = Timed(provider)
    bot().batch(["a fox", "a cat"], save_dir="out")
    journal = Path("out") / JOURNAL
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(line for line in lines if '"paths"' not in line or '"a cat"' not in line) + "\n")
    results = list(bot().iter_batch(["a fox", "a cat"], save_dir="out"))
    assert len(timed.visits) == 2 and all(result.resumed for result in results)
    assert sorted(str(result.paths[0]) for result in results) == ["out/a_cat.png", "out/a_fox.png"]


def test_a_prompt_listed_twice_never_takes_the_other_ones_file(provider, bot):
    """The second "a fox" saved first under "a_fox.png"; the first, killed unsaved, must not adopt it."""
    timed = Timed(provider)
    folder = Path("out")
    folder.mkdir()
    first, second = bot().batch(["a fox", "a fox"], save_dir="out")
    lines = [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()]
    keys = {line["index"]: line["key"] for line in lines}
    # Rewrite history: the second occurrence saved a_fox.png; the first was killed in flight.
    first.unlink()
    second.rename(folder / "a_fox.png")
    records = [
        {"v": 1, "key": keys[0], "index": 0, "prompt": "a fox", "stem": "a_fox"},
        {"v": 1, "key": keys[1], "index": 1, "prompt": "a fox", "stem": "a_fox_2"},
        {"v": 1, "key": keys[1], "index": 1, "prompt": "a fox", "paths": ["a_fox.png"], "cost": None},
    ]
    (folder / JOURNAL).write_text("".join(json.dumps(record) + "\n" for record in records))
    again = bot().batch(["a fox", "a fox"], save_dir="out")
    assert len(timed.visits) == 3 and again[1] == Path("out/a_fox.png") and again[0] != again[1]
    assert len(list(folder.glob("*.png"))) == 2


def test_a_new_batch_never_replaces_files_already_in_the_folder(provider, bot):
    """Names from prompts skip files that are there (yours, or another batch's)."""
    Timed(provider)
    Path("out").mkdir()
    Path("out/a_fox.png").write_bytes(b"mine")
    assert bot().batch(["a fox"], save_dir="out") == [Path("out/a_fox_2.png")]
    assert Path("out/a_fox.png").read_bytes() == b"mine"


def test_other_settings_or_resume_false_make_the_images_again(provider, bot):
    """The journal knows the settings: another quality makes new images; resume=False starts afresh."""
    timed = Timed(provider)
    bot().batch(["a fox"], save_dir="out")
    bot(quality="high").batch(["a fox"], save_dir="out")
    assert len(timed.visits) == 2
    bot().batch(["a fox"], save_dir="out", resume=False)
    assert len(timed.visits) == 3
    assert len(journal_lines(Path("out"))) == 1  # a fresh journal


def test_the_async_batch_resumes_too(provider, bot):
    timed = Timed(provider)
    asyncio.run(bot().abatch(["one", "two"], save_dir="out"))
    results = asyncio.run(bot().abatch(["one", "two", "three"], save_dir="out"))
    assert timed.prompts()[2:] == ["three"] and [path.name for path in results] == ["one.png", "two.png", "three.png"]


def test_resume_without_a_folder_is_refused(provider, bot):
    with pytest.raises(ValueError, match="resume needs save_dir"):
        bot().batch(["a fox"], resume=True)


def test_kill_9_halfway_then_rerun_leaves_exactly_every_image(provider, capsys):
    """kill -9 the command halfway through 200 prompts, run it again: 200 images, few paid twice."""
    timed = Timed(provider, latency=0.02)
    prompts = Path("prompts.txt")
    prompts.write_text("\n".join(f"picture number {i}" for i in range(200)))
    environment = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "llamabot", "--from-file", "prompts.txt", "--dir", "out", "--concurrency", "8"]
    command += ["--no-history", "--api-base", provider.base]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    deadline = time.monotonic() + 120
    while len(timed.visits) < 100 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and 0 < len(journal_lines(Path("out"))) < 200
    rerun = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "were already saved" in rerun.stderr
    images = sorted(Path("out").glob("*.png"))
    assert len(images) == 200 and not list(Path("out").glob(".imagebot-*.part"))
    counts: dict[str, int] = {}
    for prompt in timed.prompts():
        counts[prompt] = counts.get(prompt, 0) + 1
    paid_twice = sum(count > 1 for count in counts.values())
    assert len(counts) == 200 and paid_twice <= 8
    assert len(rerun.stdout.splitlines()) == 200  # every path, the resumed ones too
    with capsys.disabled():
        print(f"\n[kill -9 at 100 of 200 requests, concurrency 8] prompts paid twice: {paid_twice}")


# The spending cap ---------------------------------------------------------------------


def priced(provider) -> None:
    """gpt-image-2 answers with usage: litellm prices each at 10 x $5e-6 + 272 x $3e-5 = $0.00821."""
    provider.gpt_image()


def test_max_cost_stops_before_the_cap_and_reports_the_rest_as_not_sent(provider, bot):
    """Estimated at $0.0082 (low, 1024x1024): a $0.05 cap sends 6 of 10 prompts; 4 come back not sent."""
    priced(provider)
    bot = bot(quality="low")
    results = bot.generate_batch([f"p{i}" for i in range(10)], concurrency=3, return_url=True, max_cost=0.05)
    sent = [result for result in results if not isinstance(result, Exception)]
    not_sent = [result for result in results if isinstance(result, lmb.NotSentError)]
    assert len(provider.calls("/images/generations")) == len(sent) == 6 and len(not_sent) == 4
    assert sum(images.cost for images in sent) <= 0.05
    assert "max_cost=$0.05" in str(not_sent[0]) and "higher max_cost" in str(not_sent[0])


def test_max_cost_below_one_image_sends_nothing(provider, bot):
    priced(provider)
    results = bot(quality="high").batch(["a", "b"], return_url=True, max_cost=0.01)
    assert all(isinstance(result, lmb.NotSentError) for result in results)
    assert provider.calls("/images/generations") == []


def test_max_cost_counts_what_the_journal_says_was_spent(provider, bot):
    """A resumed batch keeps the same cap: the first run's spending counts."""
    priced(provider)
    bot = bot(quality="low")
    bot.batch(["a", "b", "c"], save_dir="out")
    results = bot.batch(["a", "b", "c", "d", "e"], save_dir="out", max_cost=0.035)
    assert len(provider.calls("/images/generations")) == 4  # 3 + "d"; "e" would pass $0.035
    assert isinstance(results[4], lmb.NotSentError) and isinstance(results[3], Path)


def test_max_cost_with_no_known_price_learns_it_from_one_prompt(provider):
    """No list price: one prompt goes alone; its reported cost then paces the rest."""
    provider.openrouter()
    bot = lmb.ImageBot(model="openrouter/google/gemini-2.5-flash-image", api_base=provider.base, api_key="k")
    results = bot.generate_batch([f"p{i}" for i in range(6)], concurrency=4, return_url=True, max_cost=0.1)
    made = [result for result in results if not isinstance(result, Exception)]
    assert len(made) == 2 and len(provider.calls("/chat/completions")) == 2  # $0.039 each
    assert all(isinstance(result, lmb.NotSentError) for result in results[2:])


def test_the_command_has_max_cost(provider):
    priced(provider)
    environment = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "llamabot", "a", "b", "c", "--quality", "low", "--max-cost", "0.012", "--json"]
    run = subprocess.run(
        [*command, "--no-history", "--api-base", provider.base], capture_output=True, text=True, env=environment
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1
    assert sum("path" in line for line in lines) == 1 and sum(line.get("not_sent", False) for line in lines) == 2
    assert "2 prompts not sent" in run.stderr and "--max-cost" in run.stderr


# Executors and Dask -------------------------------------------------------------------


def test_an_imagebot_pickles_with_its_settings_and_a_fresh_pace():
    bot = lmb.ImageBot(model="gpt-image-2", quality="low", requests_per_minute=30, api_key="sk-x", user="me")
    copy = pickle.loads(pickle.dumps(bot))
    assert repr(copy) == repr(bot) and copy.image_generation_kwargs == {"user": "me"}
    assert copy._throttle is not bot._throttle and copy._throttle.requests_per_minute == 30


def test_batch_on_any_executor_gives_the_same_results_in_order(provider, bot):
    timed = Timed(provider)
    prompts = ["one", "this will FAIL?", "three", "four"]
    with ThreadPoolExecutor(3) as pool:
        results = bot().batch(prompts, concurrency=3, save_dir="out", executor=pool)
    assert [path.name for path in results] == ["one.png", "this_will_fail.png", "three.png", "four.png"]
    assert len(timed.visits) == 4


def test_a_dask_cluster_runs_the_batch_in_worker_processes(provider, bot):
    """A real LocalCluster with two worker processes: same results and order; files saved; a failure in place."""
    distributed = pytest.importorskip("distributed")

    def answer(request):
        body = json.loads(request.get_data())
        if "FAIL" in body["prompt"]:
            error = {"error": {"message": "Your request was rejected", "type": "invalid_request_error"}}
            return Response(json.dumps(error), 400, content_type="application/json")
        data = tagged(f"{body['prompt']} from {os.getpid()}".encode())
        return Response(json.dumps({"created": 1, "data": [{"b64_json": b64(data)}]}), 200)

    provider.route("/images/generations", answer)
    prompts = [f"image {i}" for i in range(12)] + ["this will FAIL"]
    out = Path("out").absolute()
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        bot = bot()
        results = bot.batch(prompts, concurrency=4, save_dir=out, executor=client.get_executor())
        worker_pids = set(client.run(os.getpid).values())
    assert [path.name for path in results[:12]] == [f"image_{i}.png" for i in range(12)]
    assert isinstance(results[12], Exception) and "rejected" in str(results[12])
    assert len(provider.calls("/images/generations")) == 13
    assert os.getpid() not in worker_pids and len(worker_pids) == 2
    assert len(journal_lines(out)) == 12  # written here, by the driver
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in results[:12])


def test_a_repeated_batch_says_it_resumed(provider, bot, tmp_path):
    """The same batch on the same folder again: its old files come back, and a ResumedWarning says so."""
    import llamabot as lmb

    provider.gpt_image()
    first = bot().batch(["a fox", "a cat"], save_dir=tmp_path / "out")
    with pytest.warns(lmb.ResumedWarning, match="Resumed 2 of 3 .* made 1"):
        again = bot().batch(["a fox", "a cat", "a dog"], save_dir=tmp_path / "out")
    assert again[:2] == first
