"""Where the study database is: URL resolution (precedence: docs/storage.md) and password masking.

Called by the CLI (every command with ``--storage``), by the runner when a study starts and by
:func:`nas.storage.open_study`.  Pure string work: no database is touched here.
"""

from __future__ import annotations

import os
import re

from nas.errors import StorageError

__all__ = ["DEFAULT_URL", "ENV_VAR", "mask_url", "require_existing", "resolve_url", "validate_url"]

DEFAULT_URL = "sqlite:///nas.db"
ENV_VAR = "NAS_STORAGE"

# scheme://user:password@host -> scheme://user:***@host  (the password may contain ':' or '@'
# only percent-encoded, as SQLAlchemy requires; we still mask up to the *last* '@').
_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@]*):(?P<pw>.*)@(?P<tail>[^@]*)$")

# ...?password=secret&sslmode=... (libpq's keyword form) -> ...?password=***&sslmode=...
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&](?:password|passwd|pwd|pass)=)[^&#]*", re.IGNORECASE)


def resolve_url(cli_url: str | None = None, file_url: str | None = None) -> str:
    """The storage URL to use: ``--storage``, else ``$NAS_STORAGE``, else the study file's
    ``storage``, else ``sqlite:///nas.db`` in the working directory.  Empty strings count as
    unset.  The result is validated (:func:`validate_url`)."""
    for candidate in (cli_url, os.environ.get(ENV_VAR), file_url):
        if candidate is not None and candidate.strip():
            return validate_url(candidate.strip())
    return DEFAULT_URL


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and listings): the one
    after ``user:`` and any ``password=`` query parameter."""
    m = _PASSWORD.match(url)
    if m is not None:
        url = f"{m.group('head')}:***@{m.group('tail')}"
    return _QUERY_PASSWORD.sub(r"\g<key>***", url)


def _authority(url: str) -> str:
    """The ``user:password@host:port`` part of ``url`` ('' when there is none)."""
    _, sep, rest = url.partition("://")
    return re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""


def validate_url(url: str) -> str:
    """Return ``url`` if SQLAlchemy can parse it, else raise :class:`StorageError`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if _authority(url).count("@") > 1:  # the driver would take the password's tail for the host
        raise StorageError(
            f"malformed storage URL {mask_url(url)!r}: the password contains an unescaped '@'; "
            "percent-encode it as %40 (and ':' as %3A, '/' as %2F)"
        )
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StorageError(
            f"malformed storage URL {mask_url(url)!r}: expected a SQLAlchemy URL such as "
            f"sqlite:///nas.db or postgresql+psycopg://user:password@host/db ({exc})"
        ) from None
    return url


def require_existing(url: str) -> str:
    """``url``, if it names a database that exists: read-only commands must not create an
    empty SQLite file.  A SQLite file that is not there raises :class:`StorageError`; other
    back ends (and in-memory SQLite) pass unchecked."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return url
    db = u.database or ""
    if db in ("", ":memory:") or db.startswith("file:") or u.query.get("mode") == "memory":
        return url
    if not os.path.exists(db):
        raise StorageError(
            f"{mask_url(url)}: no database here ({db} does not exist; it is created by "
            "`nas run` or `nas import`); pass --storage URL or set NAS_STORAGE"
        )
    return url
