"""Notebook display, proven in a real Jupyter kernel (nbclient + ipykernel) against the fake provider."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

import llamabot as lmb
from llamabot_imagebot import _notebook
from tests.fakes import PNG, b64

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "imagebot-in-jupyter.ipynb"
#: A small picture drawn for this project (tests/data/README.md): the docs' notebook shows it.
SUNSET = (Path(__file__).parent / "data" / "sunset-over-mountains.png").read_bytes()


def execute(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return notebook


def outputs(cell: nbformat.NotebookNode, kind: str) -> list:
    return [o for o in cell.outputs if o.output_type == kind]


@pytest.fixture
def kernel_env(provider, monkeypatch):
    """The kernel inherits a key and an OpenAI base URL pointing at the fake provider."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", provider.base)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return provider


def test_example_notebook_runs_in_a_real_kernel(kernel_env, tmp_path):
    """The docs' example notebook: each image displayed once, a short reference, a saved path, no errors."""
    kernel_env.gpt_image([SUNSET])
    notebook = execute(nbformat.read(EXAMPLE, as_version=4), tmp_path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]

    assignment = code[1]  # url = bot(..., return_url=True)
    assert [o.output_type for o in assignment.outputs] == ["display_data"]
    assert base64.b64decode(assignment.outputs[0].data["image/png"]) == SUNSET

    last_expression = code[2]  # bot(..., return_url=True) as the cell's value
    images = [o for o in last_expression.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # shown once, not twice
    (result,) = outputs(last_expression, "execute_result")
    assert set(result.data) == {"text/plain"} and "data:image/png;base64," in result.data["text/plain"]

    result_object = code[3]  # images[0]
    (value,) = outputs(result_object, "execute_result")
    assert base64.b64decode(value.data["image/png"]) == SUNSET

    default_call = code[4]  # image_path = bot(...); print(image_path.name)
    assert len(outputs(default_call, "display_data")) == 1
    (stream,) = outputs(default_call, "stream")
    assert stream.text.strip() == "a_painting_of_a_sunset_over_mountains.png"
    assert (tmp_path / "a_painting_of_a_sunset_over_mountains.png").read_bytes() == SUNSET


def test_url_results_display_by_reference_without_download(kernel_env, tmp_path):
    """A URL answer is displayed as an <img> pointing at the URL; nothing is downloaded."""
    kernel_env.openai_images([PNG])
    source = 'import llamabot as lmb, warnings\nwarnings.simplefilter("ignore")\nurl = lmb.ImageBot(model="dall-e-3")("A cat", return_url=True)'
    notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), tmp_path)
    (display,) = outputs(notebook.cells[0], "display_data")
    assert f'src="{kernel_env.base}/files/' in display.data["text/html"]
    assert kernel_env.calls("/files/") == []


def test_an_ipython_terminal_is_not_a_notebook():
    """Detection is exact: a plain IPython shell does not count."""
    from IPython.core.interactiveshell import InteractiveShell

    assert not _notebook.in_notebook()
    InteractiveShell.instance()
    try:
        assert not _notebook.in_notebook()
    finally:
        InteractiveShell.clear_instance()


def test_large_images_display_as_a_bounded_thumbnail():
    """A multi-megabyte image is shown as a small JPEG thumbnail, not embedded whole."""
    buffer = io.BytesIO()
    Image.effect_noise((1400, 1400), 90).convert("RGB").save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 1_000_000
    bundle = lmb.GeneratedImage(b64_json=b64(big))._repr_mimebundle_()
    assert "image/png" not in bundle and len(bundle["image/jpeg"]) < _notebook.MAX_INLINE_BYTES


def test_result_reprs_match_the_format():
    """A PNG result offers PNG, a JPEG result JPEG, a URL result HTML only (no download)."""
    from tests.fakes import JPEG

    png = lmb.GeneratedImage(b64_json=b64(PNG))
    assert png._repr_png_() == PNG and png._repr_jpeg_() is None and png._repr_html_() is None
    assert lmb.GeneratedImage(b64_json=b64(JPEG))._repr_jpeg_() == JPEG
    remote = lmb.GeneratedImage(url="https://images.example/cat.png")
    assert 'src="https://images.example/cat.png"' in remote._repr_html_()
    assert remote._repr_png_() is None and remote.data is None
