"""A local history of generations in SQLite: no server, safe under concurrent processes.

Each write opens the database, writes one generation in a short immediate
transaction (WAL journal, busy timeout) and closes it again, so several processes
and threads can record at once without losing a row.
"""

from __future__ import annotations

import json
import os
from contextlib import closing
from pathlib import Path

from llamabot_imagebot._info import file_sha256
from llamabot_imagebot._provenance import now
from llamabot_imagebot._redact import redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable
    from typing import Any

ENV_PATH = "IMAGEBOT_HISTORY_DB"
#: How long a write waits for a database another process holds locked.
BUSY_SECONDS = 1.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    prompt TEXT NOT NULL,
    revised_prompt TEXT,
    model TEXT,
    provider TEXT,
    settings TEXT,
    n_images INTEGER NOT NULL DEFAULT 0,
    outputs TEXT,
    cost REAL,
    duration REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS outputs (
    generation_id INTEGER NOT NULL REFERENCES generations(id),
    position INTEGER NOT NULL,
    location TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_location ON outputs(location);
"""
#: Numbered migrations: the database's ``user_version`` says how many have run (the schema above is 0).
_MIGRATIONS = (
    # 1: what each saved file's bytes hash to (an edit's inputs name them: the chain of edits),
    #    and why a provider refused a prompt.
    (
        "ALTER TABLE outputs ADD COLUMN sha256 TEXT",
        "CREATE INDEX IF NOT EXISTS outputs_sha256 ON outputs(sha256)",
        "ALTER TABLE generations ADD COLUMN refused TEXT",
    ),
)


def entry(
    prompt: str,
    images: Iterable[Any] | None,
    *,
    model: str,
    provider: str | None,
    settings: dict[str, Any],
    duration: float,
    error: str | None = None,
    refused: str | None = None,
    hashes: list[str | None] | None = None,
) -> dict[str, Any]:
    """The history row for one generation: saved paths, else provider URLs (data URIs are not kept).

    :param prompt: The prompt.
    :param images: The generated images, or ``None`` if none came back.
    :param model: The model.
    :param provider: litellm's provider name.
    :param settings: The settings sent, already free of secrets.
    :param duration: Seconds the call took.
    :param error: The failure, already free of secrets.
    :param refused: The provider's reason, when its safety system refused.
    :param hashes: Each saved output's SHA-256, in order.
    """
    cost = getattr(images, "cost", None)  # GeneratedImages carries the response's cost
    images = list(images or [])
    # A result URL is stored without its query: signed URLs (?sig=, X-Amz-Signature) carry tokens.
    outputs = [str(i.path) if i.path is not None else redact_url(i.url) for i in images if i.path or i.url]
    return {
        "time": now(),
        "prompt": prompt,
        "revised_prompt": next((i.revised_prompt for i in images if i.revised_prompt), None),
        "model": model,
        "provider": provider,
        "settings": settings,
        "n_images": len(images),
        "outputs": outputs,
        "cost": cost,
        "duration": round(duration, 3),
        "error": error,
        "refused": refused,
        "hashes": hashes or [],
    }


def default_path() -> Path:
    """``$IMAGEBOT_HISTORY_DB``, else ``history.sqlite3`` in the user's data folder."""
    override = os.environ.get(ENV_PATH)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_path

    return user_data_path("llamabot-imagebot", appauthor=False) / "history.sqlite3"


def _connect(path: Path | None) -> sqlite3.Connection:
    import sqlite3

    path = Path(path) if path is not None else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A locked database (another process writing, or a stuck one) may hold a call up for a
    # second at most; then the call warns and moves on (HistoryWarning).
    connection = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.executescript(_SCHEMA)
    _migrate(connection)
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    """Run the migrations the database has not seen, each in its own transaction."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, statements in enumerate(_MIGRATIONS[version:], version + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            if connection.execute("PRAGMA user_version").fetchone()[0] < number:  # another process may have run it
                for statement in statements:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _exists(path: Path | None) -> bool:
    return (Path(path) if path is not None else default_path()).is_file()


def _location(output: str) -> str:
    """Saved files are stored as absolute paths, so that ``--path`` finds them from anywhere."""
    if "://" in output or output.startswith("data:"):
        return output
    return str(Path(output).resolve())


def record(entry: dict[str, Any], path: Path | None = None) -> int:
    """Store one generation; return its id.

    :param entry: ``time``, ``prompt``, and any of ``revised_prompt``, ``model``,
        ``provider``, ``settings`` (dict), ``outputs`` (paths or URLs), ``cost``,
        ``duration``, ``error``.
    :param path: The database; by default ``default_path``.
    """
    outputs = [_location(str(o)) for o in entry.get("outputs") or []]
    with closing(_connect(path)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            cursor = connection.execute(
                "INSERT INTO generations (time, prompt, revised_prompt, model, provider, settings, n_images,"
                " outputs, cost, duration, error, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry["time"],
                    entry["prompt"],
                    entry.get("revised_prompt"),
                    entry.get("model"),
                    entry.get("provider"),
                    json.dumps(entry.get("settings") or {}, default=str),
                    entry.get("n_images", len(outputs)),
                    json.dumps(outputs),
                    entry.get("cost"),
                    entry.get("duration"),
                    entry.get("error"),
                    entry.get("refused"),
                ),
            )
            generation = int(cursor.lastrowid or 0)
            hashes = list(entry.get("hashes") or []) + [None] * len(outputs)
            connection.executemany(
                "INSERT INTO outputs (generation_id, position, location, sha256) VALUES (?, ?, ?, ?)",
                [(generation, i, o, hashes[i]) for i, o in enumerate(outputs)],
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return generation


def _row(row: Any) -> dict[str, Any]:
    entry = dict(row)
    entry["settings"] = json.loads(entry["settings"] or "{}")
    entry["outputs"] = json.loads(entry["outputs"] or "[]")
    return entry


def recent(
    limit: int = 20,
    search: str | None = None,
    file: str | Path | None = None,
    path: Path | None = None,
    refused: bool = False,
) -> list[dict[str, Any]]:
    """The newest generations first, optionally matching text, having made a file, or refused.

    :param limit: How many at most.
    :param search: Text to find in the prompt, revised prompt or model.
    :param file: A saved image; only the generation that made it is returned.
    :param path: The database.
    :param refused: Only the generations a provider's safety system refused.
    """
    query = "SELECT * FROM generations"
    where: list[str] = []
    args: list[Any] = []
    if file is not None:
        where.append("id IN (SELECT generation_id FROM outputs WHERE location = ?)")
        args.append(str(Path(file).resolve()))
    elif search:
        where.append("(prompt LIKE ? OR revised_prompt LIKE ? OR model LIKE ?)")
        args += [f"%{search}%"] * 3
    if refused:
        where.append("refused IS NOT NULL")
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    if not _exists(path):
        return []  # reading never creates the database
    with closing(_connect(path)) as connection:
        return [_row(row) for row in connection.execute(query, args)]


def count(path: Path | None = None) -> int:
    """How many generations the history holds (0 when there is no database yet)."""
    if not _exists(path):
        return 0
    with closing(_connect(path)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM generations").fetchone()[0])


def chain(file: str | Path, path: Path | None = None, longest: int = 100) -> list[dict[str, Any]]:
    """The generation that made ``file``, then the one that made its input, and so on back to a prompt.

    An edit's settings name its inputs' SHA-256 (``inputs``); each step finds the generation that
    saved a file with that hash (the first input's, where there were several).
    """
    if not _exists(path):
        return []
    found: list[dict[str, Any]] = []
    with closing(_connect(path)) as connection:
        location = str(Path(file).resolve())
        row = connection.execute(
            "SELECT g.* FROM generations g JOIN outputs o ON o.generation_id = g.id WHERE o.location = ? "
            "ORDER BY g.id DESC LIMIT 1",
            (location,),
        ).fetchone()
        digest = file_sha256(file) if row is None else None
        if digest is not None:
            row = _made(connection, digest)
        while row is not None and len(found) < longest:
            found.append(_row(row))
            inputs = found[-1]["settings"].get("inputs") or []
            row = _made(connection, inputs[0]) if inputs else None
    return found


def _made(connection: sqlite3.Connection, digest: str) -> Any:
    return connection.execute(
        "SELECT g.* FROM generations g JOIN outputs o ON o.generation_id = g.id WHERE o.sha256 = ? "
        "ORDER BY g.id DESC LIMIT 1",
        (digest,),
    ).fetchone()


def costs(by: str = "day", path: Path | None = None) -> list[dict[str, Any]]:
    """Totals per day or per model: generations, images, cost (where reported), failures.

    :param by: ``"day"`` or ``"model"``.
    :param path: The database.
    """
    key = {"day": "substr(time, 1, 10)", "model": "model"}[by]
    query = (
        f"SELECT {key} AS {by}, COUNT(*) AS generations, SUM(n_images) AS images,"
        " ROUND(SUM(COALESCE(cost, 0)), 6) AS cost, SUM(cost IS NULL AND error IS NULL) AS unpriced,"
        " SUM(error IS NOT NULL) AS failures"
        f" FROM generations GROUP BY {key} ORDER BY {key}"
    )
    if not _exists(path):
        return []
    with closing(_connect(path)) as connection:
        return [dict(row) for row in connection.execute(query)]
