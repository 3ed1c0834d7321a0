"""The options every batch entry point takes, documented once (``Unpack[BatchOptions]``)."""

from __future__ import annotations

import os
from concurrent.futures import Executor
from typing import Any, TypedDict, Union


class BatchOptions(TypedDict, total=False):
    """What ``iter_batch``, ``aiter_batch``, ``generate_batch``, ``batch`` and ``abatch`` take besides the prompts.

    Sync and async batches take the same options and keep the same journal. Any other keyword
    is a setting for these calls only (``quality="low"``), as with ``generate``; typed code
    passes those as ``overrides``.
    """

    #: Save nothing; return each image's URL or data URI (``batch``) or keep the references only.
    return_url: bool
    #: The folder for names derived from the prompts (default: the working folder). A batch with a
    #: ``save_dir`` keeps a journal there (``.imagebot-journal.jsonl``) and can be resumed.
    save_dir: Union[str, os.PathLike[str], None]
    #: Where to save, for a single prompt only.
    save_path: Union[str, os.PathLike[str], None]
    #: Show a progress bar on stderr; by default only when stderr is a terminal.
    progress: Union[bool, None]
    #: Skip prompts whose images the journal in ``save_dir`` lists, still intact (the default when it
    #: exists); ``False`` starts the journal afresh.
    resume: Union[bool, None]
    #: Send no prompt that could take the batch's cost over this many USD (litellm's price for the
    #: model, size and quality, and the costs reported so far; a resumed batch counts what the
    #: journal says it already spent).
    max_cost: Union[float, None]
    #: Run the prompts on this ``concurrent.futures.Executor`` (a Dask client's ``get_executor()``,
    #: say) instead of threads here; the settings are pickled to it when it runs elsewhere.
    executor: Union[Executor, None]
    #: Ask again for prompts the provider refused in an earlier run (by default a resumed batch does not).
    retry_refused: bool
    #: Settings for these calls only, such as ``{"n": 2}`` (the same as passing them as keywords).
    overrides: dict[str, Any]
