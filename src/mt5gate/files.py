"""Files only their owner may read: the data directory (0700), API keys and state files (0600).

They hold order journals, the local API key and a simulated broker's accounts. Each is created
with its mode from the start (``mkdir`` / ``os.open`` with the mode, which the umask can only
narrow), so there is no moment in which another user could open it.

What is found already there is treated by what it is:

* a directory with looser modes is reported, never changed: mt5gate may not have made it (a
  ``data_dir`` of ``/var/lib/...``, a home directory, a shared mount), and taking other users'
  access away from a directory is not a library's decision;
* a secret file mt5gate writes (the API key, a state file) with looser modes is tightened to
  0600 and reported: only mt5gate reads it, so a looser mode can only be a mistake, and
  tightening it breaks nothing.

The reports are returned as sentences, not logged here: the caller says them once, where its
user reads them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "create_private", "private_dir", "tighten_file"]

#: The mode of directories mt5gate creates for its data.
PRIVATE_DIR: Final = 0o700
#: The mode of the secret and state files mt5gate writes.
PRIVATE_FILE: Final = 0o600
_OTHERS: Final = stat.S_IRWXG | stat.S_IRWXO


def _posix() -> bool:
    return os.name == "posix"


def private_dir(path: Path) -> str | None:
    """Make ``path`` (and missing parents) a directory; a new one gets mode 0700. Returns a
    warning when an existing one lets other users in (it is left as it is), else ``None``."""
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True)
        return None
    except FileExistsError:
        if not path.is_dir():
            raise
    mode = stat.S_IMODE(path.stat().st_mode)
    if not _posix() or not mode & _OTHERS:
        return None
    return (
        f"the data directory {path} is open to other users (mode {mode:03o}); it holds order "
        f"journals and may hold an API key: chmod 700 {path}"
    )


def tighten_file(path: Path) -> str | None:
    """Set an existing secret or state file that other users may read to 0600; returns a
    warning saying so (``None`` when it was private already, or is missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if not _posix() or not mode & _OTHERS:
        return None
    path.chmod(PRIVATE_FILE)
    return f"{path} was open to other users (mode {mode:03o}); it is now 600"


def create_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new file of mode 0600, flushed to disk; fails with
    ``FileExistsError`` if it exists (two processes cannot both create it)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
