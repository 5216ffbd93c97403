"""One grader at a time per output folder: an exclusive ``flock`` on OUT/.grading.lock.

The kernel releases the lock when its holder exits, however it exits (even
SIGKILL or a power cut), so a lock file left behind never blocks the next
run. The file's text only says who holds the lock, for the refusal message.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".grading.lock"


class LockError(Exception):
    """The output folder's lock cannot be taken."""


class OutputBusy(LockError):
    """Another process is grading into the same output folder."""


@contextmanager
def hold(out: Path):
    """Hold the lock of ``out`` (which must exist) while the block runs; raise OutputBusy at
    once if another process holds it, LockError if the lock cannot be taken at all."""
    path = Path(out) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(f"another grader is writing to {out} ({_holder(fd)}). Wait for it to finish, "
                             "or stop it, then run again.") from None
        except OSError as exc:
            raise LockError(f"cannot lock {path} ({exc}): is OUT on a file system without locks?") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "command": _command()}) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _command() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py":
        argv[0] = f"python -m {Path(argv[0]).parent.name}"
    return " ".join(argv)


def _holder(fd: int) -> str:
    """Who holds the lock, from the lock file's text."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode())
        return f"process {int(data['pid'])}, grading since {data['since']}: {data['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said which yet"
