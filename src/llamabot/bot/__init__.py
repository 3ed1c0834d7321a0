"""llamabot's bot modules; ``llamabot.bot.imagebot`` is llamabot's own module path."""

from llamabot_imagebot.imagebot import ImageBot

__all__ = ["ImageBot"]
