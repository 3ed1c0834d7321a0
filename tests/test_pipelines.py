"""Async calls and batches against the local fake provider."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from werkzeug import Response

import llamabot as lmb
from tests.fakes import PNG, b64, tagged


def echo_images(provider) -> None:
    """Each request gets a unique PNG (the prompt appended), and prompts containing FAIL get a 400."""

    def answer(request):
        body = json.loads(request.get_data())
        if "FAIL" in body["prompt"]:
            error = {"error": {"message": "Your request was rejected", "type": "invalid_request_error"}}
            return Response(json.dumps(error), 400, content_type="application/json")
        data = tagged(body["prompt"].encode())
        return Response(
            json.dumps({"created": 1, "data": [{"b64_json": b64(data)}]}), 200, content_type="application/json"
        )

    provider.route("/images/generations", answer)


def test_agenerate_returns_every_image(provider, bot):
    """agenerate goes through litellm.aimage_generation and returns all images."""
    provider.gpt_image([PNG, PNG])
    images = asyncio.run(bot(n=2).agenerate("A fox"))
    assert len(images) == 2 and images[0].data == PNG
    assert provider.calls("/images/generations")[0].json["n"] == 2


def test_acall_saves_like_the_sync_call(provider, bot):
    """acall saves under a name from the prompt, or returns the reference."""
    provider.gpt_image([PNG])
    bot = bot()
    path = asyncio.run(bot.acall("A fox in the snow"))
    assert path == Path("a_fox_in_the_snow.png") and path.read_bytes() == PNG
    assert asyncio.run(bot.acall("A fox", return_url=True)) == f"data:image/png;base64,{b64(PNG)}"
    assert asyncio.run(bot.acall("A fox", save_path=Path("x/y.png"))).read_bytes() == PNG


def test_acall_validates_like_the_sync_call(provider, bot):
    """Bad prompts fail before any request on the async path too."""
    with pytest.raises(ValueError, match="empty"):
        asyncio.run(bot().acall("  "))
    assert provider.received == []


def test_acall_does_not_block_the_event_loop_while_downloading(provider):
    """A slow image download happens off the loop: a ticker task keeps ticking."""
    provider.route("/files/slow", lambda _r: (time.sleep(1.0), Response(PNG, 200, content_type="image/png"))[1], "GET")
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": f"{provider.base}/files/slow"}]})
    bot = lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test")

    async def scenario() -> float:
        gaps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.02)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        path = await bot.acall("A slow image")
        stop.set()
        await task
        assert path.read_bytes() == PNG
        return max(gaps)

    assert asyncio.run(scenario()) < 0.6  # a blocking download would stall the loop for a whole second


def test_batch_returns_results_in_order_with_failures_in_place(provider, bot):
    """One result per prompt, in input order; a failing prompt yields its exception and loses nothing else."""
    echo_images(provider)
    prompts = ["one", "two FAIL", "three", "four"]
    results = bot().batch(prompts, concurrency=2, progress=False)
    assert [type(r).__name__ for r in results] == ["PosixPath", "BadRequestError", "PosixPath", "PosixPath"]
    assert [r.read_bytes() for r in results if isinstance(r, Path)] == [
        tagged(b"one"),
        tagged(b"three"),
        tagged(b"four"),
    ]


def test_batch_save_dir_and_return_url(provider, bot):
    """save_dir collects the files; return_url saves nothing and returns references."""
    echo_images(provider)
    bot = bot()
    paths = bot.batch(["a cat", "a dog"], save_dir=Path("out"), progress=False)
    assert paths == [Path("out/a_cat.png"), Path("out/a_dog.png")]
    assert [p.read_bytes() for p in paths] == [tagged(b"a cat"), tagged(b"a dog")]
    refs = bot.batch(["a bird"], return_url=True, progress=False)
    assert refs == [f"data:image/png;base64,{b64(tagged(b'a bird'))}"]


def test_batch_concurrency_is_bounded_and_used(provider, bot):
    """The server never sees more than `concurrency` requests at once, and does see that many."""
    echo_images(provider)
    provider.latency = 0.4
    results = bot().batch([f"p{i}" for i in range(9)], concurrency=3, progress=False)
    assert all(isinstance(r, Path) for r in results)
    assert provider.max_in_flight == 3


def test_abatch_concurrency_is_bounded_and_results_ordered(provider, bot):
    """abatch keeps at most `concurrency` requests in flight and returns results in order."""
    echo_images(provider)
    provider.latency = 0.4
    prompts = [f"p{i}" for i in range(8)] + ["FAIL"]
    results = asyncio.run(bot().abatch(prompts, concurrency=4, progress=False))
    assert [r.name for r in results[:8]] == [f"p{i}.png" for i in range(8)]
    assert isinstance(results[8], Exception)
    assert provider.max_in_flight == 4


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_batch_rejects_bad_concurrency(provider, concurrency, bot):
    """concurrency must be a whole number >= 1."""
    with pytest.raises(ValueError, match="concurrency"):
        bot().batch(["a"], concurrency=concurrency)


def test_batch_rejects_a_single_string(provider, bot):
    """A bare string is not a list of prompts (it would be split into characters)."""
    with pytest.raises(TypeError, match="list of prompts"):
        bot().batch("a cat")


def test_many_tasks_can_share_one_bot(provider, bot):
    """Concurrent acall tasks on one bot each get their own file."""
    echo_images(provider)
    bot = bot()

    async def scenario() -> list[Path]:
        return await asyncio.gather(*(bot.acall("same prompt") for _ in range(6)))

    paths = asyncio.run(scenario())
    assert len(set(paths)) == 6 and all(p.read_bytes() == tagged(b"same prompt") for p in paths)


def test_batch_progress_bar_goes_to_stderr_when_asked(provider, capsys, bot):
    """progress=True draws a tqdm bar on stderr and nothing on stdout."""
    echo_images(provider)
    bot().batch(["a", "b"], progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err


def test_sync_batch_works_inside_a_running_event_loop(provider, bot):
    """batch uses threads, so it also works where a loop is already running (notebooks)."""
    echo_images(provider)

    async def scenario() -> list:
        return bot().batch(["inside loop"], progress=False)

    assert asyncio.run(scenario())[0].name == "inside_loop.png"
    assert threading.active_count() < 50


def test_aiter_batch_yields_results_as_they_finish(provider):
    """The async iterator: a fast prompt comes out before a slow one started earlier; errors in place."""
    import time

    def answer(request):
        prompt = json.loads(request.get_data())["prompt"]
        if prompt == "slow":
            time.sleep(1.5)
        if "FAIL" in prompt:
            return Response(json.dumps({"error": {"message": "no", "type": "invalid_request_error"}}), 400)
        body = {"created": 1, "data": [{"b64_json": b64(tagged(prompt.encode()))}]}
        return Response(json.dumps(body), 200, content_type="application/json")

    provider.route("/images/generations", answer)
    bot = lmb.ImageBot(model="gpt-image-2", api_base=provider.base, api_key="sk-test")

    async def collect():
        return [r async for r in bot.aiter_batch(["slow", "fast", "this will FAIL"], concurrency=3, save_dir="out")]

    results = asyncio.run(collect())
    assert [r.prompt for r in results][-1] == "slow"
    by_prompt = {r.prompt: r for r in results}
    assert by_prompt["fast"].index == 1 and by_prompt["fast"].paths == [Path("out/fast.png")]
    assert not by_prompt["this will FAIL"].ok and by_prompt["slow"].paths[0].read_bytes() == tagged(b"slow")
