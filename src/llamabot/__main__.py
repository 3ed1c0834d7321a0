"""``python -m llamabot``: the ``imagebot`` command."""

from llamabot.cli import run

run()
