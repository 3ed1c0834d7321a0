"""``python -m llamabot_imagebot``: the ``imagebot`` command."""

from llamabot_imagebot.cli import run

run()
