"""``llamabot.bot.imagebot``: llamabot's module path for ImageBot and its pipeline steps.

It is the very module ``llamabot_imagebot.imagebot`` (one object, two names), so that
``mocker.patch("llamabot.bot.imagebot.<step>")`` changes what ImageBot calls.
"""

import sys

from llamabot_imagebot import imagebot as _imagebot
from llamabot_imagebot.imagebot import (
    ImageBot as ImageBot,
)
from llamabot_imagebot.imagebot import (
    agenerate_image_response as agenerate_image_response,
)
from llamabot_imagebot.imagebot import (
    first_generated_image as first_generated_image,
)
from llamabot_imagebot.imagebot import (
    generate_image_response as generate_image_response,
)
from llamabot_imagebot.imagebot import (
    generated_image_bytes as generated_image_bytes,
)
from llamabot_imagebot.imagebot import (
    generated_image_reference as generated_image_reference,
)
from llamabot_imagebot.imagebot import (
    image_generation_kwargs_for_bot as image_generation_kwargs_for_bot,
)
from llamabot_imagebot.imagebot import (
    is_running_in_jupyter as is_running_in_jupyter,
)

sys.modules[__name__] = _imagebot
