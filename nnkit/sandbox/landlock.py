"""Landlock (Linux 5.13 and later): a process confines itself and its future children.

Used by the grader for workers outside bubblewrap, and by the worker itself
when it is forked from a zygote; standard library only, since it runs in
the sandbox.
"""
from __future__ import annotations

import ctypes
import os
import sys

NO_LANDLOCK_ENV = "NNKIT_NO_LANDLOCK"
"""Set to 1 to grade as on a machine without Landlock (as on macOS): workers outside
bubblewrap are then not confined, and every report says so."""
_PR_SET_NO_NEW_PRIVS = 38
# The three syscalls have the same numbers on every architecture.
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_READ = 0b1101
"""Landlock rights EXECUTE | READ_FILE | READ_DIR."""
_FS_FILE_RIGHTS = 0b111 | (1 << 14) | (1 << 15)
"""The rights that apply to a file (not a folder): EXECUTE, WRITE_FILE, READ_FILE, TRUNCATE, IOCTL_DEV."""
SYSTEM_READ = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
               "/dev/zero", "/dev/urandom", "/dev/random")
"""What a worker outside bwrap may read besides Python, NumPy and its package."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none, off Linux (where the
    syscall numbers below mean other calls) and when NNKIT_NO_LANDLOCK=1."""
    if not sys.platform.startswith("linux") or os.environ.get(NO_LANDLOCK_ENV, "0") not in ("", "0"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = libc.syscall(ctypes.c_long(_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def landlock_ruleset(read: list, write: list) -> int | None:
    """A Landlock ruleset (its fd) allowing reads under ``read`` and everything under ``write``.

    The rest of the file system is denied, and so are TCP (ABI 4) and
    signals and abstract sockets to processes outside the restricted tree
    (ABI 6). Paths that do not exist or cannot be reached are skipped. None without Landlock.
    """
    abi = landlock_abi()
    if abi < 1:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    # Every right the ABI knows: 13 in v1, then REFER (v2), TRUNCATE (v3), IOCTL_DEV (v5).
    all_fs = (1 << (13 + (abi >= 2) + (abi >= 3) + (abi >= 5))) - 1
    attr = _RulesetAttr(all_fs, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    fd = libc.syscall(ctypes.c_long(_LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                      ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"could not create a Landlock ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for paths, rights in ((read, _FS_READ), (write, all_fs)):
            for path in map(str, paths):
                try:
                    parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except (FileNotFoundError, PermissionError):  # out of reach anyway
                    continue
                try:
                    allowed = rights if os.path.isdir(path) else rights & _FS_FILE_RIGHTS
                    rule = _PathBeneath(allowed, parent)
                    if libc.syscall(ctypes.c_long(_LANDLOCK_ADD_RULE), ctypes.c_int(fd),
                                    ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                    ctypes.c_uint32(0)) != 0:
                        raise OSError(ctypes.get_errno(), f"could not add {path} to the Landlock ruleset: "
                                                          f"{os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def landlock_restrictor(fd: int):
    """A function that confines the calling process to ruleset ``fd`` (for preexec_fn).

    The libc functions are looked up here, before the fork.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    prctl, syscall = libc.prctl, libc.syscall

    def restrict():
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
                syscall(ctypes.c_long(_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "could not apply the Landlock ruleset")
    return restrict


def restrict_self(read: list, write: list) -> int:
    """Confine this process (and what it starts) to ``read`` and ``write`` (see landlock_ruleset);
    return the ABI applied. Raises OSError when the kernel has no Landlock or refuses."""
    fd = landlock_ruleset(read, write)
    if fd is None:
        raise OSError("this kernel has no Landlock")
    try:
        landlock_restrictor(fd)()
    finally:
        os.close(fd)
    return landlock_abi()
