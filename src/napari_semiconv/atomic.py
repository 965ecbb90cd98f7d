"""Crash-safe file writes: every file the package writes goes through :func:`atomic_write`."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def check_writable(path: str | os.PathLike, folder: bool = False) -> Path:
    """Make sure ``path`` (a file, or a folder if ``folder``) can be written before any long work starts:
    creates the folder it needs; SemiconvError naming the problem otherwise."""
    from .errors import SemiconvError

    path = Path(path)
    target = path if folder else path.parent
    blocking = next((p for p in [target, *target.parents] if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise SemiconvError(f"cannot write {path}: {blocking} is a file, not a folder; choose another place")
    try:
        target.mkdir(parents=True, exist_ok=True)
        if not os.access(target, os.W_OK):
            raise PermissionError("no write permission")
    except OSError as exc:  # PermissionError included
        reason = exc.strerror if getattr(exc, "strerror", None) else str(exc)
        raise SemiconvError(f"cannot write {path} ({reason}): choose a folder you can write to") from None
    if not folder and path.is_dir():
        raise SemiconvError(f"{path} is a folder: give a file name to write the model to")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a uniquely named temporary file beside ``path``, then rename it onto ``path``.

    A crash or error during the write leaves any previous file at ``path`` intact (the temporary file
    is removed on errors); two processes writing at once never share a temporary file. The file gets
    the permissions a plain ``open`` would give (0666 less the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:  # the data is on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
