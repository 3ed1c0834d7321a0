"""The batch-at-scale figures, each measured in a fresh process: ``python scale.py FIGURE BASE [N]``.

``BASE`` is the fake provider's address (``fake_provider.py``); the result is one JSON line.
Run by ``run.py``; see its docstring.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llamabot as lmb


def stats(base: str, reset: bool = False) -> dict:
    with urllib.request.urlopen(f"{base}/stats{'?reset=1' if reset else ''}") as answer:
        return json.load(answer)


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def prompts(count: int) -> list[str]:
    return [f"picture number {i}" for i in range(count)]


def throughput(base: str, count: int) -> dict:
    """``count`` prompts at 0.2 s latency, concurrency 64, saved; and litellm alone, the same calls in 64 threads.

    Each is run twice, alternating, and the faster run counts: on this shared machine a request
    now and then is lost on the loopback (litellm alone too) and waits out its 60 s timeout.
    """
    import litellm

    api_base = f"{base}/lat200/b64small"
    # A request lost by the machine would otherwise hold the run for the default 600 s.
    bot = lmb.ImageBot(model="gpt-image-2", api_base=api_base, api_key="sk-bench", timeout=60)
    bot.generate("warm up")

    def raw(prompt: str) -> object:
        return litellm.image_generation(
            model="openai/gpt-image-2", prompt=prompt, api_base=api_base, api_key="sk", timeout=60
        )

    ours, alone, made = [], [], 0
    for _ in range(2):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            made = sum(result.ok for result in bot.iter_batch(prompts(count), 64, save_dir=folder, progress=False))
            ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(raw, prompts(count)))
        alone.append(time.perf_counter() - start)
    return {"ours_s": min(ours), "alone_s": min(alone), "made": made, "ours_runs": ours, "alone_runs": alone}


def streaming_memory(base: str, count: int) -> dict:
    """Peak RSS growth while ``count`` 256 KB images are made, saved and yielded one by one (nothing kept)."""
    bot = lmb.ImageBot(model="gpt-image-2", api_base=f"{base}/lat0/b64mid", api_key="sk-bench")
    with tempfile.TemporaryDirectory() as folder:
        bot.batch(["warm up"], save_dir=folder, progress=False)
        Path("/proc/self/clear_refs").write_text("5")
        before = rss("VmRSS:")
        made = sum(result.ok for result in bot.iter_batch(prompts(count), 16, save_dir=folder, progress=False))
        peak = rss("VmHWM:")
    return {"growth_mb": (peak - before) / 2**20, "made": made}


def streaming_memory_alone(base: str, count: int) -> dict:
    """The same requests through litellm alone, 16 threads, nothing kept: the floor ImageBot builds on."""
    import litellm

    api_base = f"{base}/lat0/b64mid"

    def raw(prompt: str) -> None:
        litellm.image_generation(model="openai/gpt-image-2", prompt=prompt, api_base=api_base, api_key="sk-bench")

    raw("warm up")
    Path("/proc/self/clear_refs").write_text("5")
    before = rss("VmRSS:")
    with ThreadPoolExecutor(16) as pool:
        for _ in pool.map(raw, prompts(count)):
            pass
    return {"growth_mb": (rss("VmHWM:") - before) / 2**20, "made": count}


def rate_limited(base: str, count: int) -> dict:
    """``count`` prompts to a server allowing 300 a minute, with requests_per_minute=300."""
    api_base = f"{base}/lat200/limited300"
    bot = lmb.ImageBot(model="gpt-image-2", api_base=api_base, api_key="sk-bench", requests_per_minute=300)
    stats(base, reset=True)
    start = time.perf_counter()
    made = sum(result.ok for result in bot.iter_batch(prompts(count), 16, return_url=True, progress=False))
    elapsed = time.perf_counter() - start
    counted = stats(base)["limited300"]
    return {"wall_s": elapsed, "made": made, "requests": counted["requests"], "limited": counted["limited"]}


def resume(base: str, count: int) -> dict:
    """A finished batch of ``count`` run again: its time and the requests it makes."""
    bot = lmb.ImageBot(model="gpt-image-2", api_base=f"{base}/lat0/b64small", api_key="sk-bench")
    with tempfile.TemporaryDirectory() as folder:
        first = sum(result.ok for result in bot.iter_batch(prompts(count), 64, save_dir=folder, progress=False))
        stats(base, reset=True)
        start = time.perf_counter()
        results = list(
            lmb.ImageBot(model="gpt-image-2", api_base=f"{base}/lat0/b64small", api_key="sk-bench").iter_batch(
                prompts(count), 64, save_dir=folder, progress=False
            )
        )
        elapsed = time.perf_counter() - start
    requests = sum(kind["requests"] for kind in stats(base).values())
    return {
        "rerun_s": elapsed,
        "requests": requests,
        "first_made": first,
        "resumed": sum(result.resumed for result in results),
    }


FIGURES = {
    "throughput": throughput,
    "memory": streaming_memory,
    "memory_alone": streaming_memory_alone,
    "rate_limited": rate_limited,
    "resume": resume,
}

if __name__ == "__main__":
    figure, base, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(FIGURES[figure](base, count)))
