"""Saving and downloading: real files on disk, real HTTP from a local server."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from werkzeug import Response

import llamabot as lmb
from llamabot import GeneratedImage, ImageDownloadError, InvalidImageError
from tests.fakes import JPEG, PNG, WEBP, b64, tagged


def bot_for(provider, **kwargs) -> lmb.ImageBot:
    return lmb.ImageBot(**{"model": "dall-e-3", "api_base": provider.base, "api_key": "sk-test", **kwargs})


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_default_call_saves_under_a_name_from_the_prompt(provider):
    """Without save_path the image lands in the working folder as <slug>.<real extension>."""
    provider.openai_images([JPEG])
    path = bot_for(provider)("A painting of a sunset over mountains")
    assert path == Path("a_painting_of_a_sunset_over_mountains.jpg")  # relative, as the reference prints it
    assert isinstance(path, Path) and path.read_bytes() == JPEG


def test_derived_names_never_overwrite(provider):
    """An existing file keeps its bytes; the new image takes the next free name."""
    provider.openai_images([PNG])
    Path("a_cat.png").write_bytes(b"precious")
    first = bot_for(provider)("A cat")
    second = bot_for(provider)("A cat")
    assert (first.name, second.name) == ("a_cat_2.png", "a_cat_3.png")
    assert Path("a_cat.png").read_bytes() == b"precious"


def test_save_path_is_used_as_given_with_parents_created(provider):
    """save_path may name folders that do not exist yet; an existing file there is replaced whole."""
    provider.openai_images([PNG])
    target = Path("output/deeper/dog_painting.png")
    assert bot_for(provider)("A painting of a dog", save_path=target) == target
    assert target.read_bytes() == PNG
    provider.server.clear()
    provider.openai_images([make_png := tagged(b"second")])
    assert bot_for(provider)("A painting of a dog", save_path=str(target)) == target
    assert target.read_bytes() == make_png and leftovers(Path.cwd()) == []


def test_return_url_returns_the_url_and_downloads_nothing(provider):
    """return_url=True hands back the provider's URL and fetches nothing, even with save_path."""
    provider.openai_images([PNG])
    url = bot_for(provider)("A cat", return_url=True, save_path=Path("ignored.png"))
    assert url.startswith(provider.base + "/files/")
    assert provider.calls("/files/") == [] and not Path("ignored.png").exists()


def test_return_url_with_base64_returns_a_data_uri_with_the_real_mime_type(provider):
    """A base64 answer comes back as a data URI whose MIME type is the image's real one."""
    provider.openai_images([WEBP], as_url=False)
    uri = bot_for(provider, response_format="b64_json")("A cat", return_url=True)
    assert uri == f"data:image/webp;base64,{b64(WEBP)}"


def test_several_images_are_all_saved(provider):
    """n > 1 keeps every image paid for: name, name_2, name_3; the first is returned."""
    provider.openai_images([PNG, JPEG, WEBP], as_url=False)
    path = bot_for(provider, model="dall-e-2", n=3, size="512x512")("A cat wearing sunglasses")
    assert path.name == "a_cat_wearing_sunglasses.png"
    assert sorted(p.name for p in Path.cwd().iterdir()) == [
        "a_cat_wearing_sunglasses.png",
        "a_cat_wearing_sunglasses_2.jpg",
        "a_cat_wearing_sunglasses_3.webp",
    ]


def test_several_images_with_save_path_go_beside_it(provider):
    """With save_path and n > 1 the others are saved next to it, never over anything."""
    provider.openai_images([PNG, PNG], as_url=False)
    first = bot_for(provider, model="gpt-image-2", n=2)("A cat", save_path=Path("out/cat.png"))
    assert first == Path("out/cat.png")
    assert sorted(p.name for p in Path("out").iterdir()) == ["cat.png", "cat_2.png"]


def test_concurrent_calls_each_get_their_own_complete_file(provider):
    """Threads deriving the same name all keep their own, complete image."""
    counter = iter(range(1000))
    lock = threading.Lock()

    def answer(_request):
        with lock:
            data = tagged(bytes([next(counter)]) * 50_000)  # a text chunk makes each image unique
        return Response(
            json.dumps({"created": 1, "data": [{"b64_json": b64(data)}]}), 200, content_type="application/json"
        )

    provider.route("/images/generations", answer)
    bot = bot_for(provider, response_format="b64_json")
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(bot("Same prompt"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in results) == sorted(
        ["same_prompt.png"] + [f"same_prompt_{i}.png" for i in range(2, 9)]
    )
    contents = [p.read_bytes() for p in results]
    assert len(set(contents)) == 8 and all(len(c) == len(tagged(b"x" * 50_000)) for c in contents)
    assert leftovers(Path.cwd()) == []


def test_html_error_page_served_as_200_is_not_saved(provider):
    """An HTML page where an image should be is an error, and leaves no file."""
    url = provider.file("page", b"<!DOCTYPE html><html><body>Access denied</body></html>", "text/html")
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": url}]})
    with pytest.raises(InvalidImageError, match="not an image"):
        bot_for(provider)("A cat")
    assert list(Path.cwd().iterdir()) == []


def test_failed_download_never_damages_an_existing_file(provider):
    """An expired URL (403) raises and leaves the file at save_path as it was."""
    url = provider.file("gone", b"expired", "text/plain", status=403)
    provider.json_route("/images/generations", {"created": 1, "data": [{"url": url}]})
    Path("keep.png").write_bytes(b"old image")
    with pytest.raises(ImageDownloadError, match="403"):
        bot_for(provider)("A cat", save_path=Path("keep.png"))
    assert Path("keep.png").read_bytes() == b"old image" and leftovers(Path.cwd()) == []


def test_truncated_download_leaves_no_partial_file(provider):
    """A body cut short of its Content-Length raises and leaves nothing behind."""

    def truncated(_request):
        response = Response(PNG[:20], 200, content_type="image/png")
        response.headers["Content-Length"] = str(len(PNG) + 5000)
        return response

    provider.route("/files/cut", truncated, "GET")
    with pytest.raises(ImageDownloadError):
        GeneratedImage(url=f"{provider.base}/files/cut").save("cut.png")
    assert list(Path.cwd().iterdir()) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.invalid/x.png", "gopher://x/y"])
def test_only_http_and_https_are_fetched(url):
    """Other schemes are refused before any I/O: such an image cannot even be made, nor fetched."""
    from llamabot import InvalidImageError
    from llamabot_imagebot import _download

    with pytest.raises(InvalidImageError, match="only returns http"):
        GeneratedImage(url=url)
    with pytest.raises(ImageDownloadError, match="only http and https"):
        _download.fetch_image(url)
    assert not Path("x.png").exists()


def test_redirect_to_file_scheme_is_refused(provider):
    """A redirect is followed only to http(s)."""
    provider.route("/files/jump", lambda _r: Response("", 302, headers={"Location": "file:///etc/passwd"}), "GET")
    with pytest.raises(ImageDownloadError, match="only http and https"):
        GeneratedImage(url=f"{provider.base}/files/jump").save("x.png")


def test_redirects_to_http_are_followed(provider):
    """An ordinary redirect to the image works."""
    provider.file("real", PNG)
    provider.route("/files/jump", lambda _r: Response("", 302, headers={"Location": "/files/real"}), "GET")
    assert GeneratedImage(url=f"{provider.base}/files/jump").save("x.png").read_bytes() == PNG


def test_downloads_over_the_size_cap_are_refused(provider):
    """max_image_bytes caps what is downloaded; nothing is written."""
    provider.openai_images([tagged(b"\0" * 5000)])
    bot = bot_for(provider)
    bot.max_image_bytes = 1000
    with pytest.raises(ImageDownloadError, match="larger than"):
        bot("A cat")
    assert list(Path.cwd().iterdir()) == []


def test_extension_mismatch_is_converted_with_pillow(provider):
    """A JPEG saved to .png becomes a real PNG when Pillow is installed."""
    provider.openai_images([JPEG], as_url=False)
    path = bot_for(provider, response_format="b64_json")("A cat", save_path=Path("cat.png"))
    assert path.read_bytes().startswith(b"\x89PNG")


def test_extension_mismatch_without_pillow_keeps_bytes_and_warns(provider, monkeypatch):
    """Without Pillow the bytes are written unchanged and the warning names the real format."""
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` fail, as on a machine without it
    provider.openai_images([JPEG], as_url=False)
    with pytest.warns(lmb.ImageFormatWarning, match="image/jpeg"):
        path = bot_for(provider, response_format="b64_json")("A cat", save_path=Path("cat.png"))
    assert path.read_bytes() == JPEG


def test_result_save_writes_the_image(provider):
    """generate() results save themselves anywhere."""
    provider.openai_images([PNG], as_url=False)
    images = bot_for(provider, response_format="b64_json").generate("A cat")
    assert images[0].save(Path("a/b/c.png")).read_bytes() == PNG


@pytest.mark.parametrize(
    "prompt", ["../../etc/passwd", "/absolute/path.png", "CON", "x" * 10_000, "\x00\x1b[31mred\n", "🦊🦊"]
)
def test_hostile_prompts_save_inside_the_working_folder(provider, prompt):
    """Whatever the prompt, the derived file is a single safe name in the working folder."""
    provider.openai_images([PNG], as_url=False)
    path = bot_for(provider, model="gpt-image-2")(prompt)
    assert path.parent == Path() and path.resolve().parent == Path.cwd() and path.read_bytes() == PNG
    assert len(path.name) <= 70 and not path.name.startswith(".")


def test_save_path_naming_an_existing_folder_saves_inside_it(provider):
    """save_path pointing at a folder puts the image inside it under a name from the prompt."""
    provider.openai_images([PNG], as_url=False)
    Path("album").mkdir()
    path = bot_for(provider, model="gpt-image-2")("A cat", save_path=Path("album"))
    assert path == Path("album/a_cat.png") and path.read_bytes() == PNG


def test_returned_paths_are_as_named(provider):
    """One rule: the path comes back as you named it; derived names are relative to the working folder."""
    provider.gpt_image([PNG])
    bot = bot_for(provider, model="gpt-image-2")
    assert bot("A cat") == Path("a_cat.png")
    assert bot("A cat", save_path="pics/cat.png") == Path("pics/cat.png")  # a str works as well as a Path
    assert bot.batch(["A dog"], save_dir="pics")[0] == Path("pics/a_dog.png")
    absolute = Path.cwd() / "abs" / "cat.png"
    assert bot("A cat", save_path=absolute) == absolute


def test_save_path_without_extension_gets_the_real_one(provider):
    """save_path="noext" writes noext.png, not an extensionless file."""
    provider.gpt_image([PNG])
    path = bot_for(provider, model="gpt-image-2")("A cat", save_path="noext")
    assert path == Path("noext.png") and path.read_bytes() == PNG and not Path("noext").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="file size limits (RLIMIT_FSIZE) are POSIX")
def test_a_write_the_disk_cuts_short_fails_and_leaves_no_file(tmp_path):
    """With room for only part of the image (a file size limit makes the kernel write part and return its count),
    the save fails with an OSError and leaves nothing behind: a short write never passes for a whole image."""
    import subprocess

    image = tagged(b"x" * 20000)
    (tmp_path / "image.png").write_bytes(image)
    script = """
import resource, signal
from pathlib import Path
from llamabot_imagebot import _files
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    _files.write_new(Path("image.png").read_bytes(), Path("out"), ["picture"])
except OSError as exc:
    print("refused", exc.errno)
else:
    print("saved")
"""
    (tmp_path / "out").mkdir()
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["refused", "27"], done.stderr  # EFBIG
    assert list((tmp_path / "out").iterdir()) == []


def test_a_temporary_name_someone_else_holds_is_passed_over_not_used(tmp_path):
    """Temporary names are unique per process without asking the OS for randomness each time; one that exists
    all the same (another machine's process with our host name, PID and random part) is never written into."""
    import copy
    import os

    from llamabot_imagebot import _files

    coming = copy.copy(_files._COUNT)  # the counts the next temporary files will take
    taken = []
    for _ in range(2):
        name = f".imagebot-{_files._HOST}-{os.getpid()}-{_files._SALT:08x}{next(coming) & 0xFFFFFFFF:08x}.part"
        assert _files.PART_NAME.fullmatch(name)
        (tmp_path / name).write_bytes(b"someone else's")
        taken.append(tmp_path / name)
    path = _files.write_new(PNG, tmp_path, ["picture"])
    assert path.read_bytes() == PNG
    assert [part.read_bytes() for part in taken] == [b"someone else's"] * 2
