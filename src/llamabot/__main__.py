"""``python -m llamabot``: the ``imagebot`` command."""

from llamabot_imagebot.cli import run

run()
