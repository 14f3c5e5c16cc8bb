"""The one rule for study names, applied by the study file, ``nas import`` and the storage.

A name becomes part of paths (Tune's run directory, ``nas evaluate``'s weights) and is printed
in tables and messages, so it is short and plain: 1-100 letters, digits, ``_``, ``.`` or ``-``,
starting with a letter or digit.  No spaces, control characters or ANSI escapes; the limit is
the same on every back end (the column holds up to 512).
"""

from __future__ import annotations

import re
from typing import Any

from nas.errors import ConfigError

__all__ = ["STUDY_NAME_MAX", "STUDY_NAME_RE", "STUDY_NAME_RULE", "check_study_name"]

STUDY_NAME_MAX = 100
STUDY_NAME_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{STUDY_NAME_MAX - 1}}}\Z")
STUDY_NAME_RULE = (f"must be 1-{STUDY_NAME_MAX} letters, digits, '_', '.' or '-', starting "
                   "with a letter or digit")


def check_study_name(name: Any, key: str = "study name") -> str:
    """``name`` if it follows the rule, else :class:`ConfigError` ``KEY = 'NAME': RULE`` (the
    name shown with ``repr``, so control characters and escapes are printed, not obeyed)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{key} = {name!r}: must be a non-empty name; {STUDY_NAME_RULE[5:]}")
    if not STUDY_NAME_RE.match(name):
        shown = repr(name) if len(repr(name)) <= 120 else repr(name)[:117] + "..."
        raise ConfigError(f"{key} = {shown}: {STUDY_NAME_RULE}")
    return name
