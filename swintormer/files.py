"""Writing outputs without ever losing data: atomic writes, and outputs that never land on an input.

Every file is written to a temporary name in its own folder and renamed into place, so a kill
or a full disk never leaves a partial file under the final name, and a symbolic link at the
output path is replaced, never followed. :func:`check_output` decides, before any work, whether
an output may be written: never over one of the inputs (the same file through a hard link or a
symlink counts), never over something that is not a regular file, and over an existing file
only when asked to.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable

from swintormer.errors import SwintormerError

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_output", "same_file"]

log = logging.getLogger(__name__)

_WHY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
}


def _why(exc: OSError) -> str:
    return _WHY.get(exc.errno, exc.strerror or str(exc))


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (macOS): read it by setting it back at once
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The folder is created if needed. The file gets the mode a plain ``open(path, "w")`` would
    give it (0666 less the umask), not the temporary file's private 0600: a web server or a
    Triton server running as another user can read what was written. Errors (a full disk, no
    permission) are one clear :class:`SwintormerError`, and the temporary file is removed.
    """
    path = Path(path)
    if path.exists() and not path.is_symlink() and not path.is_file():
        raise SwintormerError(f"cannot write {path}: it exists and is not a regular file")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a symlink itself, never the file it points to
        return path
    except OSError as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise SwintormerError(f"cannot write {path}: {_why(exc)}") from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (hard links and symlinks included)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: Path, inputs: Iterable[Path], overwrite: bool = False) -> bool:
    """Whether ``path`` may be written now: raises if it would destroy an input or is not a file,
    returns False (with a note) if it exists and ``overwrite`` is off."""
    for source in inputs:
        if path.absolute() == Path(source).absolute():
            raise SwintormerError(f"refusing to overwrite the input {source}; choose another output")
        if same_file(path, source):
            raise SwintormerError(f"refusing to overwrite the input {source}: {path} is the same file (a hard or "
                                  "symbolic link); choose another output")
    if not (path.exists() or path.is_symlink()):
        return True
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise SwintormerError(f"cannot write {path}: it exists and is not a regular file")
    if not overwrite:
        log.info("skipping %s: it exists (--overwrite replaces it)", path)
        return False
    return True
