# pyright: strict
"""A user's script, type-checked in CI (mypy --strict, pyright strict): 0 errors; never run."""

from pathlib import Path

import llamabot as lmb

bot = lmb.ImageBot(model="gpt-image-2", quality="low")
saved: Path = bot("A red fox")
reference: str = bot("A red fox", return_url=True)
either = bot("A red fox", return_url=bool(saved))
also_saved: Path = bot("A red fox", save_path="out/fox.png")
version: str = lmb.__version__
images = bot.generate("A red fox", n=2)
for image in images:
    data: bytes | None = image.data
    print(image.mime_type, image.revised_prompt, data is None, either)
results = bot.batch(["A cat", "A dog"], save_dir="out")
info = lmb.image_info(saved)
print(reference, also_saved, version, results, info)

# Thousands of prompts: paced, resumable, capped; results as they finish.
paced = lmb.ImageBot(model="gpt-image-2", requests_per_minute=300)
for result in paced.iter_batch(["A cat", "A dog"], 16, save_dir="out", max_cost=5.0, resume=True):
    paths: list[Path] = result.paths
    cost: float | None = result.cost
    if not result.ok and not result.sent:
        print("not sent:", result.error)
    print(result.index, result.prompt, paths, cost, result.resumed)
capped = paced.batch(["A cat"], 4, save_dir="out", max_cost=1.0)
if isinstance(capped[0], lmb.NotSentError):
    print("over the cap")

# Edits: several reference images and a mask; a batch of edits; refusals are litellm's too.
edited = bot.edit("Make it winter", [saved, Path("other.png")], mask=b"mask bytes", input_fidelity="high")
for result in bot.iter_edits([("Make it blue", saved)], save_dir="edits"):
    print(result.paths, edited.cost)
try:
    bot("Something a provider refuses")
except lmb.RefusedError as refusal:
    print(refusal.stage, refusal.code, refusal.reason)
options: lmb.BatchOptions = {"save_dir": "out", "max_cost": 2.0, "overrides": {"quality": "low"}}
print(bot.generate_batch(["A cat"], 2, **options))
