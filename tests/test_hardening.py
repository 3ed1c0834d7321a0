"""Hostile and broken inputs, against real local servers and real files: each once broke a promise."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import litellm  # noqa: F401 - loaded up front: its import is not provider time, so timings start after it
import pytest
from werkzeug import Response

import llamabot as lmb
from tests.fakes import JPEG, PNG, WEBP, b64, tagged


def url_answer(provider, url: str) -> None:
    """The provider answers with ``url`` as its image."""
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": url}]})


def dribbling(provider, name: str = "drip") -> str:
    """An image URL whose body arrives a byte every half second (for about a minute)."""

    def body():
        yield PNG[:8]
        for _ in range(120):
            time.sleep(0.5)
            yield b"\0"

    provider.route(f"/files/{name}", lambda _r: Response(body(), 200, content_type="image/png"), "GET")
    return f"{provider.base}/files/{name}"


def files_left(folder: Path) -> list[str]:
    """The files in ``folder``, but a batch's journal (which names what was planned, not a file)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != ".imagebot-journal.jsonl")


# 2. A stalled download ends within the timeout -------------------------------------------


def test_slow_drip_download_ends_at_the_timeout(provider):
    """A URL sending a byte every half second cannot hold a call past timeout + 1 s; nothing is left."""
    url_answer(provider, dribbling(provider))
    bot = lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test", timeout=3)
    start = time.monotonic()
    with pytest.raises(lmb.ImageDownloadError, match="Timed out"):
        bot("A fox")
    assert time.monotonic() - start < 4.0  # timeout + 1 s
    assert files_left(Path.cwd()) == []


def test_slow_drip_download_ends_at_the_timeout_async(provider):
    """The same bound holds for acall."""
    url_answer(provider, dribbling(provider, "drip-async"))
    bot = lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test", timeout=3)
    start = time.monotonic()
    with pytest.raises(lmb.ImageDownloadError):
        asyncio.run(bot.acall("A fox"))
    assert time.monotonic() - start < 4.0  # timeout + 1 s


def test_slow_drip_download_ends_at_the_timeout_in_a_batch(provider):
    """And for every prompt of a batch, in parallel."""
    url_answer(provider, dribbling(provider, "drip-batch"))
    bot = lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test", timeout=3)
    start = time.monotonic()
    results = bot.batch(["A fox", "A cat"], concurrency=2)
    assert all(isinstance(r, lmb.ImageDownloadError) for r in results)
    assert time.monotonic() - start < 5


# 3. Images that were paid for travel with the error ---------------------------------------


def test_failed_save_carries_the_images_and_is_recorded(provider, tmp_path, bot):
    """Saving into a place that cannot be written: ImageSaveError (an OSError) holding both images."""
    provider.gpt_image([tagged(b"one"), tagged(b"two")])
    Path("not-a-folder").write_text("a file where a folder should be")
    history = tmp_path / "history.sqlite3"
    bot = bot(n=2, imagebot_history=history)
    with pytest.raises(lmb.ImageSaveError) as caught:
        bot("A cat", save_path=Path("not-a-folder/cat.png"))
    error = caught.value
    assert isinstance(error, OSError) and "exc.images" in str(error)
    assert [image.data for image in error.images] == [tagged(b"one"), tagged(b"two")]
    assert error.images[1].save("rescued.png").read_bytes() == tagged(b"two")
    (row,) = sqlite3.connect(history).execute("SELECT n_images, error FROM generations").fetchall()
    assert row[0] == 2 and "ImageSaveError" in row[1]


# 4. The size cap bounds base64 too --------------------------------------------------------


def test_base64_over_the_cap_is_refused_before_decoding(provider, bot):
    """max_image_bytes bounds a base64 image as it bounds a download; nothing is written."""
    provider.gpt_image([tagged(b"\0" * 20_000)])
    bot = bot()
    bot.max_image_bytes = 5_000
    with pytest.raises(lmb.InvalidImageError, match="5,000-byte limit"):
        bot("A cat")
    assert files_left(Path.cwd()) == []


# 5. image_info never trusts the file ------------------------------------------------------


def png_with_text(keyword: bytes, text: bytes) -> bytes:
    body = keyword + b"\0\0\0\0\0" + text
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return PNG[:33] + chunk + PNG[33:]


@pytest.mark.parametrize(
    "payload",
    [b"[" * 200_000 + b"]" * 200_000, b'["a", "list"]', b"not json at all", b'{"unrelated": 1}', b"\xff\xfe"],
)
def test_image_info_returns_none_for_hostile_records(payload):
    """Deeply nested, non-dict, foreign or undecodable records give None, never an exception."""
    Path("hostile.png").write_bytes(png_with_text(b"imagebot", payload))
    assert lmb.image_info("hostile.png") is None
    Path("side.gif").write_bytes(b"GIF89a")
    Path("side.gif.json").write_bytes(payload)
    assert lmb.image_info("side.gif") is None


def test_image_info_keeps_only_our_fields():
    """Unknown keys in a record are not returned."""
    record = {"prompt": "A cat", "model": "m", "injected": "x" * 10}
    Path("cat.png").write_bytes(png_with_text(b"imagebot", json.dumps(record).encode()))
    assert lmb.image_info("cat.png") == {"prompt": "A cat", "model": "m"}


BOUNDED_READ = """
import time, tracemalloc
import llamabot as lmb
assert lmb.image_info("small.png") is None  # loads what image_info needs, outside the measure
tracemalloc.start()
start = time.monotonic()
results = [lmb.image_info("big.png"), lmb.image_info("zero.png")]
print(results, tracemalloc.get_traced_memory()[1], time.monotonic() - start)
"""


def test_image_info_reads_a_bounded_amount():
    """A 256 MiB file and a symlink to /dev/zero are read only in part (measured in a quiet process)."""
    with open("big.png", "wb") as file:
        file.write(PNG[:33])
        file.truncate(256 << 20)  # sparse: no disk is used
    Path("zero.png").symlink_to("/dev/zero")
    Path("small.png").write_bytes(PNG)
    run = subprocess.run([sys.executable, "-c", BOUNDED_READ], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    results, peak, seconds = run.stdout.rsplit(" ", 2)
    assert results == "[None, None]" and int(peak) < 8 << 20 and float(seconds) < 5


# 6. Loading litellm is not provider time --------------------------------------------------

SLOW_IMPORT = """
import importlib.abc, sys, time

class SlowLitellm(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "litellm":
            time.sleep(3)  # a loaded machine: importing litellm took 8-12 s in the report
        return None

sys.meta_path.insert(0, SlowLitellm())
import llamabot as lmb
bot = lmb.ImageBot(model="gpt-image-2", api_base={base!r}, api_key="sk-test", timeout=2)
print(bot.generate("A fox")[0].mime_type)
"""


def test_a_slow_first_import_does_not_eat_the_timeout(provider):
    """In a fresh process whose litellm import takes 3 s, a 2 s timeout still gets its answer."""
    provider.gpt_image([PNG])
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    run = subprocess.run(
        [sys.executable, "-c", SLOW_IMPORT.format(base=provider.base)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "image/png"


# 7. A locked history costs about a second at most ------------------------------------------


def test_locked_history_warns_and_moves_on(provider, tmp_path, bot):
    """With the database locked by another writer, the call saves its image, warns, and is not held up."""
    history = tmp_path / "locked.sqlite3"
    provider.gpt_image([PNG])
    bot(imagebot_history=history)("A warm-up")  # creates the database
    holder = sqlite3.connect(history, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.warns(lmb.HistoryWarning, match="history"):
            path = bot(imagebot_history=history)("A locked history")
        elapsed = time.monotonic() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert path.read_bytes() == PNG
    assert elapsed < 3.0


# 8. Debris of a killed run is cleaned up --------------------------------------------------


def test_only_imagebots_own_abandoned_partial_files_are_removed(provider, bot):
    """A temporary file in ImageBot's exact pattern that no process holds goes (a kill -9 left it) within seconds;
    one that a live writer holds stays, however old, and so does any other program's file."""
    import fcntl

    from llamabot_imagebot._files import _HOST

    provider.gpt_image([PNG])
    out = Path("out")
    out.mkdir()
    abandoned = out / f".imagebot-{_HOST}-4242-0000000000000000.part"
    held = out / ".imagebot-otherhost-1-1111111111111111.part"  # another PID namespace's writer, still at work
    others = [out / ".imagebot-notes.part", out / ".imagebot-x-1-zz.part", out / "draft.part"]
    for part in (abandoned, held, *others):
        part.write_bytes(b"x")
    hours_ago = time.time() - 7200
    for part in (held, *others):
        os.utime(part, (hours_ago, hours_ago))
    os.utime(abandoned, (time.time() - 10, time.time() - 10))  # a killed run's, seconds ago
    with open(held, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # what a live ImageBot holds while it writes
        bot()("A cat", save_path=out / "cat.png")
        assert not abandoned.exists() and held.exists()
    assert all(part.exists() for part in others) and (out / "cat.png").read_bytes() == PNG


# 9. Bytes must match what the server promised ----------------------------------------------


def test_body_longer_than_content_length_is_not_saved(provider):
    """Content-Length: 100 on a longer PNG: the 100 bytes read are an incomplete PNG, an error."""

    def short_length(_request):
        response = Response(PNG + b"\0" * 400, 200, content_type="image/png")
        response.headers["Content-Length"] = "100"
        return response

    provider.route("/files/short", short_length, "GET")
    url_answer(provider, f"{provider.base}/files/short")
    with pytest.raises(lmb.InvalidImageError, match="incomplete"):
        lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test")("A cat")
    assert files_left(Path.cwd()) == []


@pytest.mark.parametrize(
    ("damaged", "kind"),
    [(PNG[:-12], "PNG"), (JPEG[:-2], "JPEG"), (WEBP[:-4], "WEBP")],
)
def test_structurally_incomplete_downloads_are_refused(provider, damaged, kind):
    """A downloaded PNG without IEND, JPEG without its end marker, WEBP shorter than its RIFF size: not saved.

    The error still carries the image (its URL), as every failure to save does.
    """
    url_answer(provider, provider.file(f"damaged-{kind}", damaged, content_type="application/octet-stream"))
    with pytest.raises(lmb.InvalidImageError, match=f"incomplete.*{kind}") as caught:
        lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test")("A cat")
    assert caught.value.images[0].url.endswith(f"/files/damaged-{kind}")
    assert files_left(Path.cwd()) == []


# 10. Only http(s) URLs and image data URIs come back ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.invalid/x.png",
        "data:text/html;base64," + b64(b"<script>alert(1)</script>"),
        "/relative/path.png",
    ],
)
def test_return_url_refuses_untrusted_references(provider, url):
    """A provider answering with anything but an http(s) URL or an image data URI is an error."""
    url_answer(provider, url)
    with pytest.raises(lmb.InvalidImageError):
        lmb.ImageBot(model="dall-e-3", api_base=provider.base, api_key="sk-test")("A cat", return_url=True)


def test_ctrl_c_stops_a_dribbling_batch_promptly(provider, tmp_path, interruptible):
    """The command with two slow-drip downloads in flight (a minute each): SIGINT ends it at once, nothing left.

    Idle, it ends in well under 2 s; the bound allows 3 x that on a loaded machine.
    """
    import signal

    url_answer(provider, dribbling(provider, "drip-cli"))
    out = tmp_path / "out"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "llamabot", "A fox", "A cat", "--model", "dall-e-3", "--dir", str(out)]
    process = subprocess.Popen(
        [*command, "--concurrency", "2", "--api-base", provider.base],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(provider.calls("/files/drip-cli")) < 2:
        time.sleep(0.05)
    assert len(provider.calls("/files/drip-cli")) == 2, "the downloads never started"
    time.sleep(0.5)  # both are dribbling now
    start = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - start < 6.0
    assert process.returncode == 130, stderr
    assert files_left(out) == []
