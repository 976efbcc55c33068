"""Writing files so that a crash, a full disk or a power cut never leaves half a file.

Every file ablate writes (results, saved outputs, the resolved study) is written to a
temporary name, synced, and renamed over the old one, which stays intact until the new one is
complete; the folder is synced so that the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from ablate.errors import AblateError


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` all at once: the old file stays intact on any failure.

    ``sync=False``: not synced to disk (a copy that can be made again, written by the
    thousand: ``outputs/`` exported from the storage's copy), still replaced all at once.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if sync:
            sync_folder(path.parent)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        cure = ("the disk is full: free some space" if err.errno == errno.ENOSPC
                else "fix the folder or its permissions")  # fmt: skip
        raise AblateError(
            f"could not write {path} ({err.strerror or err}); the previous version of the file, "
            "if any, is intact, and every finished trial is kept in the study's storage: "
            f"{cure}, then run the same command again."
        ) from None


def sync_folder(folder: Path) -> None:
    """Make the renames in a folder durable (where the system allows it)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
