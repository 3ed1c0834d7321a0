"""llamabot's bot modules; ``llamabot.bot.imagebot`` is llamabot's own module path."""

from llamabot.bot.imagebot import ImageBot

__all__ = ["ImageBot"]
