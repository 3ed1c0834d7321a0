"""Benchmarks: llamabot-imagebot side by side with a raw litellm call and with llamabot 0.19.16.

Everything runs here, against a local fake provider (``fake_provider.py``, its own
process) with a configurable latency: no network, no keys. Every figure is a ratio or
a difference measured in one run, because this machine is shared and noisy.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # fewer repetitions, about 2 minutes once set up

llamabot 0.19.16 (plus Pillow, which it imports without declaring) is installed on
first use into ``benchmarks/.venv-llamabot``; ``LLAMABOT_PYTHON`` may name an existing
interpreter that has it. Results are printed as a table and written to
``docs/benchmarks/results.json`` and ``docs/benchmarks/chart.png``. The exit status is
1 when a goal is missed, so a regression is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "docs" / "benchmarks"
ENV = {
    **os.environ,
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "OPENAI_API_KEY": "sk-bench",
    "PYTHONDONTWRITEBYTECODE": "0",
}
PROMPT = "A red fox in the snow"


class FakeProvider:
    """The fake provider in a subprocess, so that it never competes for our GIL."""

    def __enter__(self) -> FakeProvider:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "fake_provider.py")], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()

    def api_base(self, kind: str = "b64small", latency_ms: int = 0) -> str:
        return f"{self.base}/lat{latency_ms}/{kind}"


def llamabot_python() -> str:
    """An interpreter with llamabot 0.19.16 and Pillow, installed on first use."""
    if os.environ.get("LLAMABOT_PYTHON"):
        return os.environ["LLAMABOT_PYTHON"]
    venv = HERE / ".venv-llamabot"
    python = venv / "bin" / "python"
    if not python.exists():
        print("installing llamabot==0.19.16 into benchmarks/.venv-llamabot (once)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "llamabot==0.19.16", "pillow", "litellm!=1.82.7,!=1.82.8"],
            check=True,
        )
    return str(python)


def wall(command: list[str], cwd: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_json(python: str, code: str, cwd: str | None = None) -> dict:
    """Run code in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([python, "-c", textwrap.dedent(code)], env=ENV, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
    # The last line that is a JSON object (llamabot streams its chat answer to stdout first).
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    return json.loads(last)


# --- figures -----------------------------------------------------------------------


def import_cost(theirs: str, rounds: int) -> dict:
    """`import llamabot as lmb; lmb.ImageBot` minus a bare interpreter, interleaved, medians."""
    code = "import llamabot as lmb; lmb.ImageBot"
    samples: dict[str, list[float]] = {"bare": [], "ours": [], "bare_theirs": [], "theirs": []}
    for _ in range(rounds):
        samples["bare"].append(wall([sys.executable, "-c", "pass"]))
        samples["ours"].append(wall([sys.executable, "-c", code]))
        samples["bare_theirs"].append(wall([theirs, "-c", "pass"]))
        samples["theirs"].append(wall([theirs, "-c", code]))
    ours = max(statistics.median(samples["ours"]) - statistics.median(samples["bare"]), 0.0)
    theirs_cost = statistics.median(samples["theirs"]) - statistics.median(samples["bare_theirs"])
    return {
        "ours_s": ours,
        "theirs_s": theirs_cost,
        "ratio": ours / theirs_cost,
        "goal": "<= 0.10",
        "met": ours <= 0.10 * theirs_cost,
    }


def per_call_overhead(fake: FakeProvider, rounds: int) -> dict:
    """bot.generate(prompt) vs raw litellm.image_generation(same kwargs), alternating, medians.

    Against a provider that answers in 40 ms (real image APIs take seconds): the ratio is what
    ImageBot adds to a fast call, and ``overhead_ms`` what it adds in absolute terms.
    """
    import litellm

    import llamabot as lmb

    base = fake.api_base("b64small", 40)
    bot = lmb.ImageBot(model="gpt-image-2", api_base=base, api_key="sk-bench")
    kwargs = {
        "model": "gpt-image-2",
        "prompt": PROMPT,
        "size": "1024x1024",
        "n": 1,
        "timeout": 600,
        "api_key": "sk-bench",
        "api_base": base,
    }
    for _ in range(5):  # warm both paths: clients, caches
        bot.generate(PROMPT)
        litellm.image_generation(**kwargs)
    samples: dict[str, list[float]] = {"ours": [], "raw": []}
    calls = {"ours": lambda: bot.generate(PROMPT), "raw": lambda: litellm.image_generation(**kwargs)}
    for index in range(rounds):
        # Alternate which goes first too: a call right after the other pays for its leftovers.
        for name in ("raw", "ours") if index % 2 == 0 else ("ours", "raw"):
            start = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - start)
    ours, raw = samples["ours"], samples["raw"]
    ratio = statistics.median(ours) / statistics.median(raw)
    return {
        "ours_ms": statistics.median(ours) * 1000,
        "raw_ms": statistics.median(raw) * 1000,
        "overhead_ms": (statistics.median(ours) - statistics.median(raw)) * 1000,
        "ratio": ratio,
        "goal": "<= 1.05",
        "met": ratio <= 1.05,
    }


def batch_throughput(fake: FakeProvider) -> dict:
    """24 prompts, 0.5 s provider latency, concurrency 8: wall time against the ideal 1.5 s."""
    import llamabot as lmb

    bot = lmb.ImageBot(model="gpt-image-2", api_base=fake.api_base("b64small", 500), api_key="sk-bench")
    bot.generate(PROMPT)  # warm
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = bot.batch([f"{PROMPT} {i}" for i in range(24)], concurrency=8, save_dir=Path(folder), progress=False)
        elapsed = time.perf_counter() - start
    failures = [r for r in results if isinstance(r, Exception)]
    ratio = elapsed / 1.5
    return {
        "wall_s": elapsed,
        "ideal_s": 1.5,
        "ratio": ratio,
        "failures": len(failures),
        "goal": "<= 1.15",
        "met": ratio <= 1.15 and not failures,
    }


def scale(fake: FakeProvider, figure_name: str, count: int) -> dict:
    """One of ``scale.py``'s figures, in a fresh process (so that its memory peak is its own)."""
    command = [sys.executable, str(HERE / "scale.py"), figure_name, fake.base, str(count)]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale_throughput(fake: FakeProvider) -> dict:
    """1,000 prompts at 0.2 s latency and concurrency 64: wall time against the ideal 16 rounds of 0.2 s."""
    result = scale(fake, "throughput", 1000)
    ideal = -(-1000 // 64) * 0.2
    ratio = result["ours_s"] / ideal
    return {
        **result,
        "ideal_s": ideal,
        "ratio": ratio,
        "vs_alone": result["ours_s"] / result["alone_s"],
        "goal": "<= 1.10",
        "met": ratio <= 1.10 and result["made"] == 1000,
    }


def scale_memory(fake: FakeProvider) -> dict:
    """Peak memory growth streaming 250 and 1,000 results of 256 KB, beside litellm alone doing the same calls.

    O(concurrency) means going from 250 to 1,000 results adds no more than it adds to litellm
    alone (whose own heap grows a little with the number of calls); holding every result
    would add 750 x 256 KB = 188 MB. The goal allows a tenth of that.
    """
    with ThreadPoolExecutor(2) as pool:
        runs = {
            (who, count): pool.submit(scale, fake, who, count)
            for who in ("memory", "memory_alone")
            for count in (250, 1000)
        }
        growth = {key: future.result()["growth_mb"] for key, future in runs.items()}
    ours = growth["memory", 1000] - growth["memory", 250]
    alone = growth["memory_alone", 1000] - growth["memory_alone", 250]
    extra = ours - alone
    return {
        "growth_250_mb": growth["memory", 250],
        "growth_1000_mb": growth["memory", 1000],
        "alone_250_mb": growth["memory_alone", 250],
        "alone_1000_mb": growth["memory_alone", 1000],
        "extra_mb": extra,
        "held_if_o_n_mb": 750 * 0.25,
        "ratio": growth["memory", 1000] / max(growth["memory", 250], 1e-9),
        "goal": "250 -> 1000 adds <= litellm alone + 19 MB",
        "met": extra <= 18.75,
    }


def scale_rate_limited(fake: FakeProvider, count: int) -> dict:
    """``count`` prompts against a server that allows 300 a minute: time against count/300 minutes, and 429s."""
    result = scale(fake, "rate_limited", count)
    ideal = count / 300 * 60
    ratio = result["wall_s"] / ideal
    share = result["limited"] / max(result["requests"], 1)
    return {
        **result,
        "prompts": count,
        "ideal_s": ideal,
        "ratio": ratio,
        "limited_share": share,
        "goal": "<= 1.10, < 1% 429",
        "met": ratio <= 1.10 and share < 0.01 and result["made"] == count,
    }


def scale_resume(fake: FakeProvider) -> dict:
    """A finished batch of 1,000 run again: it must take under 2 s and send nothing."""
    result = scale(fake, "resume", 1000)
    return {
        **result,
        "ratio": result["rerun_s"] / 2.0,
        "goal": "< 2 s, 0 requests",
        "met": result["rerun_s"] < 2.0 and result["requests"] == 0 and result["resumed"] == 1000,
    }


# litellm alone: "openai/" because litellm 1.110 no longer routes a bare "dall-e-3".
LITELLM_MEMORY_CODE = """
import json, litellm
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
litellm.image_generation(model="openai/{model}", prompt="warm up", api_base={warm_base!r}, api_key="sk-bench")
open("/proc/self/clear_refs", "w").write("5")
before = rss("VmRSS:")
litellm.image_generation(model="openai/{model}", prompt="{prompt}", api_base={base!r}, api_key="sk-bench")
print(json.dumps({{"growth": rss("VmHWM:") - before}}))
"""

MEMORY_CODE = """
import json, os, tempfile, time
from pathlib import Path
import litellm, llamabot as lmb

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

folder = Path(tempfile.mkdtemp())
warm = lmb.ImageBot(model={model!r}, api_base={warm_base!r}, api_key="sk-bench")
warm("warm up", save_path=folder / "warm.png")   # load every module and client first
bot = lmb.ImageBot(model={model!r}, api_base={base!r}, api_key="sk-bench")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = rss("VmRSS:")
path = bot("{prompt}", save_path=folder / "big.png")
peak = rss("VmHWM:")
print(json.dumps({{"growth": peak - before, "size": path.stat().st_size}}))
"""


def memory(fake: FakeProvider, kind: str, model: str, limit: float, factor_of_image: bool) -> dict:
    """Peak RSS growth while saving a 48 MB image, in a fresh process.

    With ``factor_of_image``, the goal is what litellm alone holds for the same answer plus
    ``limit`` copies of the image: ImageBot cannot spend less than litellm does.
    """
    fields = {"model": model, "warm_base": fake.api_base("b64small"), "base": fake.api_base(kind), "prompt": PROMPT}
    # Side by side: each process's peak is its own, and this halves the wait.
    with ThreadPoolExecutor(2) as pool:
        ours = pool.submit(run_json, sys.executable, MEMORY_CODE.format(**fields))
        # The same request through litellm alone, nothing saved: the floor ImageBot builds on.
        alone = pool.submit(run_json, sys.executable, LITELLM_MEMORY_CODE.format(**fields))
        result, floor = ours.result(), alone.result()
    growth_mb = result["growth"] / 2**20
    size_mb = result["size"] / 2**20
    floor_mb = floor["growth"] / 2**20
    bound = floor_mb + limit * size_mb if factor_of_image else limit
    return {
        "growth_mb": growth_mb,
        "image_mb": size_mb,
        "limit_mb": bound,
        "litellm_alone_mb": floor_mb,
        "goal": f"<= litellm alone + {limit:g} x image" if factor_of_image else f"<= {limit} MB",
        "met": growth_mb <= bound,
    }


def first_call(fake: FakeProvider, theirs: str, rounds: int) -> dict:
    """Time to the first saved image in a fresh process, ours vs llamabot, medians."""
    ours_code = (
        "import llamabot as lmb, warnings; warnings.simplefilter('ignore')\n"
        f"lmb.ImageBot(model='dall-e-3', api_base={fake.api_base('b64small')!r}, api_key='sk-bench',"
        " response_format='b64_json')('A red fox', save_path='fox.png')"
    )
    theirs_code = (
        "import llamabot as lmb\n"
        f"lmb.ImageBot(model='dall-e-3', api_base={fake.api_base('b64small')!r}, api_key='sk-bench',"
        " response_format='b64_json')('A red fox').save('fox.png')"
    )
    import_only = "import litellm"
    ours, theirs_t, litellm_import = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            ours.append(wall([sys.executable, "-c", ours_code], cwd=folder))
            theirs_t.append(wall([theirs, "-c", theirs_code], cwd=folder))
            litellm_import.append(wall([sys.executable, "-c", import_only], cwd=folder))
    o, t = statistics.median(ours), statistics.median(theirs_t)
    return {
        "ours_s": o,
        "theirs_s": t,
        "ratio": o / t,
        "litellm_import_s": statistics.median(litellm_import),
        "goal": "report",
        "met": True,
    }


def default_name(fake: FakeProvider, theirs: str, rounds: int) -> dict:
    """A call without save_path: ours derives the name locally; llamabot asks a chat model."""
    ours_code = f"""
        import json, time, statistics, warnings
        import llamabot as lmb
        warnings.simplefilter("ignore")
        bot = lmb.ImageBot(model="gpt-image-2", api_base={fake.api_base("b64small")!r}, api_key="sk-bench")
        bot("warm up")
        times = []
        for _ in range({rounds}):
            start = time.perf_counter(); bot({PROMPT!r}); times.append(time.perf_counter() - start)
        print(json.dumps({{"median": statistics.median(times), "chat_calls": 0}}))
    """
    theirs_code = f"""
        import json, os, time, statistics
        os.environ["OPENAI_BASE_URL"] = {fake.api_base("b64small")!r}
        import llamabot as lmb
        from llamabot.bot.imagebot import filename_bot
        bot = lmb.ImageBot(model="dall-e-3", api_base={fake.api_base("b64small")!r}, api_key="sk-bench", response_format="b64_json")
        def call(prompt):
            reference = bot(prompt)
            name = filename_bot(prompt).content.strip()  # llamabot's way to name a file: a chat model
            return reference.save(name + ".png")
        call("warm up")
        times = []
        for _ in range({rounds}):
            start = time.perf_counter(); call({PROMPT!r}); times.append(time.perf_counter() - start)
        print()
        print(json.dumps({{"median": statistics.median(times), "chat_calls": 1}}))
    """
    with tempfile.TemporaryDirectory() as folder:
        ours = run_json(sys.executable, ours_code, cwd=folder)
        theirs_result = run_json(theirs, theirs_code, cwd=folder)
    return {
        "ours_ms": ours["median"] * 1000,
        "theirs_ms": theirs_result["median"] * 1000,
        "ratio": ours["median"] / theirs_result["median"],
        "extra_chat_calls_theirs": 1,
        "goal": "report",
        "met": True,
    }


# --- output ------------------------------------------------------------------------

ROWS = [
    (
        "import cost",
        "import_cost",
        lambda r: f"ours {r['ours_s'] * 1000:.0f} ms vs llamabot {r['theirs_s'] * 1000:.0f} ms",
    ),
    (
        "per-call overhead",
        "per_call",
        lambda r: (
            f"generate {r['ours_ms']:.2f} ms vs raw litellm {r['raw_ms']:.2f} ms at a 40 ms provider "
            f"(+{r.get('overhead_ms', r['ours_ms'] - r['raw_ms']):.2f} ms)"
        ),
    ),
    ("batch throughput", "batch", lambda r: f"{r['wall_s']:.2f} s for 24 x 0.5 s at concurrency 8 (ideal 1.5 s)"),
    (
        "memory, URL",
        "memory_url",
        lambda r: (
            f"+{r['growth_mb']:.1f} MB peak RSS saving a {r['image_mb']:.0f} MB image (litellm alone: +{r['litellm_alone_mb']:.1f} MB)"
        ),
    ),
    (
        "memory, base64",
        "memory_b64",
        lambda r: (
            f"+{r['growth_mb']:.1f} MB peak RSS saving a {r['image_mb']:.0f} MB image (litellm alone: +{r['litellm_alone_mb']:.1f} MB)"
        ),
    ),
    (
        "first call",
        "first_call",
        lambda r: (
            f"ours {r['ours_s']:.2f} s vs llamabot {r['theirs_s']:.2f} s (import litellm: {r['litellm_import_s']:.2f} s)"
        ),
    ),
    (
        "default file name",
        "default_name",
        lambda r: f"ours {r['ours_ms']:.1f} ms vs llamabot {r['theirs_ms']:.1f} ms (+1 chat call)",
    ),
    (
        "1,000 prompts",
        "scale_throughput",
        lambda r: (
            f"{r['ours_s']:.2f} s at 0.2 s latency, concurrency 64 (ideal {r['ideal_s']:.1f} s; "
            f"litellm alone in 64 threads {r['alone_s']:.2f} s)"
        ),
    ),
    (
        "streaming memory",
        "scale_memory",
        lambda r: (
            f"+{r['growth_250_mb']:.0f} MB for 250 results, +{r['growth_1000_mb']:.0f} MB for 1,000 "
            f"(litellm alone: +{r['alone_250_mb']:.0f}, +{r['alone_1000_mb']:.0f}; "
            f"holding them would add {r['held_if_o_n_mb']:.0f} MB)"
        ),
    ),
    (
        "rate-limited",
        "scale_rate",
        lambda r: (
            f"{r['prompts']} prompts at 300/min in {r['wall_s']:.1f} s (ideal {r['ideal_s']:.0f} s); "
            f"{r['limited']} of {r['requests']} requests answered 429"
        ),
    ),
    (
        "resume 1,000",
        "scale_resume",
        lambda r: f"re-run of a finished batch: {r['rerun_s']:.2f} s, {r['requests']} requests",
    ),
]


def figure(key: str, result: dict) -> float:
    if key.startswith("memory"):
        return result["growth_mb"] / result["limit_mb"]
    return result["ratio"]  # scale_resume: its time over the 2 s allowed; scale_memory: 1,000 over 250


def print_table(results: dict) -> str:
    """Print the table; return it as Markdown for the docs page."""
    print(f"{'figure':<20} {'value':>8}  {'goal':<14} {'met':<4} detail")
    markdown = ["| figure | value | goal | met | detail |", "|---|---|---|---|---|"]
    for label, key, detail in ROWS:
        result = results[key]
        value = f"{figure(key, result):.3f}"
        unit = "of limit" if key.startswith("memory") else "ratio"
        met = "yes" if result["met"] else "NO"
        print(f"{label:<20} {value:>8}  {result['goal']:<14} {met:<4} {detail(result)} ({unit})")
        markdown.append(f"| {label} | {value} ({unit}) | {result['goal']} | {met} | {detail(result)} |")
    return "\n".join(markdown) + "\n"


def chart(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no chart written", file=sys.stderr)
        return False
    labels = [label for label, key, _ in ROWS if results[key]["goal"] != "report"]
    keys = [key for _, key, _ in ROWS if results[key]["goal"] != "report"]
    # The share of each goal's allowance used: for the time ratios, the allowed overhead above 1.
    allowance = {
        "import_cost": lambda v: v / 0.10,
        "per_call": lambda v: max(v - 1, 0) / 0.05,
        "batch": lambda v: max(v - 1, 0) / 0.15,
        "memory_url": lambda v: v,
        "memory_b64": lambda v: v,
        "scale_throughput": lambda v: max(v - 1, 0) / 0.10,
        "scale_memory": lambda _v: max(results["scale_memory"]["extra_mb"], 0) / 18.75,
        "scale_rate": lambda v: max(v - 1, 0) / 0.10,
        "scale_resume": lambda v: v,
    }
    values = [allowance[k](figure(k, results[k])) for k in keys]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    colors = ["#2a9d8f" if v <= 1 else "#e76f51" for v in values]
    ax.barh(labels, values, color=colors)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("share of the goal's allowance used (left of the line: goal met)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 2 minutes once set up)")
    parser.add_argument(
        "--only", metavar="KEYS", help="comma-separated figures to measure again; the others are kept from results.json"
    )
    args = parser.parse_args()
    rounds = 5 if args.quick else 15
    theirs = (
        llamabot_python()
        if not args.only or {"import_cost", "first_call", "default_name"} & set(args.only.split(","))
        else ""
    )
    results: dict[str, dict] = {}
    with FakeProvider() as fake:
        steps = {
            "import_cost": lambda: import_cost(theirs, rounds),
            "per_call": lambda: per_call_overhead(fake, 30 if args.quick else 120),
            "batch": lambda: batch_throughput(fake),
            "memory_url": lambda: memory(fake, "url48", "dall-e-3", 8, factor_of_image=False),
            "memory_b64": lambda: memory(fake, "b64big", "gpt-image-2", 1, factor_of_image=True),
            "first_call": lambda: first_call(fake, theirs, 1 if args.quick else 7),
            "default_name": lambda: default_name(fake, theirs, 3 if args.quick else 10),
            "scale_throughput": lambda: scale_throughput(fake),
            "scale_memory": lambda: scale_memory(fake),
            # The figure is 600 prompts (2 minutes); --quick runs 100 (20 s) at the same limit.
            "scale_rate": lambda: scale_rate_limited(fake, 100 if args.quick else 600),
            "scale_resume": lambda: scale_resume(fake),
        }
        if args.only:
            wanted = set(args.only.split(","))
            results = json.loads((OUT / "results.json").read_text())["results"]
            steps = {key: step for key, step in steps.items() if key in wanted}
        for key, step in steps.items():
            start = time.perf_counter()
            results[key] = step()
            print(f"  {key}: measured in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    table = print_table(results)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text(table)
    meta = {"quick": args.quick, "python": sys.version.split()[0], "when": time.strftime("%Y-%m-%d")}
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    chart(results, OUT / "chart.png")
    missed = [key for key, result in results.items() if not result["met"]]
    if missed:
        print(f"goals missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
