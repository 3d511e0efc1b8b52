"""Durable, atomic replacement of files that belong together.

A model file and its sidecar are written to temporary names, flushed to
disk and renamed into place. Four things make that safe beyond a single
``os.replace``:

- :func:`sync_file` and :func:`sync_folder` push the data and the renames
  to the disk, so that a power cut after ``save`` returned cannot leave an
  empty or partial file under the final name (a rename can reach the disk
  before the data it names);
- :func:`folder_lock` serializes the renames of concurrent writers (and the
  reads of readers) in one folder, so that two saves to the same path at
  the same moment leave one model with its own sidecar, never model B with
  sidecar A;
- :func:`replace_together` renames the files of a pair in turn and, should
  a later rename fail, puts back what the earlier ones replaced, so that a
  failed save leaves the previous model and its sidecar as they were;
- :func:`temporary_name` embeds the host and process id, so that
  :func:`remove_stale_temporaries` removes the temporary files of writers on
  this machine that were killed mid-write, and nothing else.

Where the platform or file system cannot lock a folder (Windows, some
network file systems) the lock is skipped: the sidecar's hash still makes
``load`` refuse a mismatched pair.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import uuid
from pathlib import Path

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "cut_name",
    "folder_lock",
    "process_alive",
    "remove_stale_temporaries",
    "replace_together",
    "sync_file",
    "sync_folder",
    "temporary_name",
]

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


#: Longest part of a file's name kept in its temporary names, in bytes: with
#: the host (32 bytes at most), the process id and a random part, a temporary
#: name stays under the 255 bytes a file name may have wherever the file's own
#: name is legal.
_NAME_BUDGET = 150


def cut_name(name: str, n_bytes: int) -> str:
    """``name`` cut to ``n_bytes`` bytes as stored (never inside a character):
    file names are limited in bytes, not characters."""
    return os.fsencode(name)[:n_bytes].decode("utf-8", "ignore")


def _short(name: str) -> str:
    return cut_name(name, _NAME_BUDGET)


def temporary_name(path: Path, suffix: str = "") -> Path:
    """A unique hidden name next to ``path`` (same file system: atomic rename).

    ``.<name>.<host>.<pid>.<random><suffix>``, ``<name>`` cut to
    ``_NAME_BUDGET`` bytes (between characters): the host and process id let
    :func:`remove_stale_temporaries` tell a killed writer's leftovers from a
    live writer's file.
    """
    path = Path(path)
    return path.with_name(
        f".{_short(path.name)}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"
    )


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (this one is).

    Where it cannot be checked safely (not POSIX: ``os.kill(pid, 0)`` ends
    the process on Windows), every process counts as running.
    """
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by killed writers.

    Only files named by :func:`temporary_name` for ``path`` on this host,
    whose process no longer exists, are removed; those of live processes
    and of other hosts (a shared network folder) are left alone. Nothing is
    removed where process ids cannot be checked safely (not POSIX).

    Returns
    -------
    removed : list of pathlib.Path
    """
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) kills on Windows
        return []
    path = Path(path)
    pattern = re.compile(
        rf"^\.{re.escape(_short(path.name))}\.{re.escape(_HOST)}\.(\d+)\.[0-9a-f]{{8}}"
    )
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if match and not process_alive(int(match.group(1))):
            try:
                candidate.unlink()
            except OSError:
                continue
            removed.append(candidate)
    return removed


def sync_file(path: Path) -> None:
    """Flush a written file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames) to the disk, where supported."""
    if os.name != "posix":  # pragma: no cover - folders cannot be opened
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the data is synced
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path, *, shared: bool = False):
    """Hold an advisory lock on ``folder`` for the ``with`` block.

    Exclusive for writers (``shared=False``), shared for readers. The lock
    is on the folder itself, so no lock file is left beside the models; the
    kernel releases it when the process ends, however it ends. It blocks
    until the other holders are done (they hold it for a few renames or
    one read). Skipped where folders cannot be locked.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield  # cannot open the folder (permissions): no lock, hash still checked
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        except OSError:
            pass  # e.g. NFS without flock on folders
        yield
    finally:
        os.close(fd)  # releases the lock


def replace_together(pairs) -> None:
    """Rename each ``(temporary, final)`` pair in turn: all of them, or none.

    Before a final name is replaced, its current file gets a second name (a
    hard link, so the final name never disappears). Should a later rename
    fail, the finals already replaced get their previous files back (or are
    removed where there was none) and the error is raised. Where hard links
    cannot be made (some file systems), a failure cannot be undone and the
    previous file is lost, as with a plain ``os.replace``. Call it under
    :func:`folder_lock`.
    """
    done = []  # (final, second name of its previous file, None or False)
    try:
        for temporary, final in pairs:
            backup = None  # no previous file
            if os.path.lexists(final):
                backup = temporary_name(Path(final))
                try:
                    os.link(final, backup)
                except OSError:
                    backup = False  # no hard links here: cannot be undone
            try:
                os.replace(temporary, final)
            except BaseException:
                if backup:  # final unchanged: its second name goes
                    with contextlib.suppress(OSError):
                        os.unlink(backup)
                raise
            done.append((final, backup))
    except BaseException:
        for final, backup in reversed(done):
            with contextlib.suppress(OSError):  # never hides the error
                if backup:
                    os.replace(backup, final)
                elif backup is None:
                    os.unlink(final)
        raise
    for _, backup in done:
        if backup:
            with contextlib.suppress(OSError):
                os.unlink(backup)
