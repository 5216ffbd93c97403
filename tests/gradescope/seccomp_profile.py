"""Write a seccomp BPF program like Docker's default profile, for the namespace system calls.

Run with the system interpreter, which has Debian's ``python3-seccomp``:

    /usr/bin/python3 seccomp_profile.py OUT.bpf [--no-landlock]

Docker's default profile (moby/profiles/seccomp/default.json) refuses, to a
container without CAP_SYS_ADMIN: ``unshare``, ``setns``, ``mount`` and the
other mount calls, ``pivot_root``; ``clone`` with any namespace flag
(mask 0x7E020000); and ``clone3``, which answers ENOSYS so that C libraries
fall back to ``clone``, where the flags can be inspected. Calls missing from
its allow list answer EPERM: with ``--no-landlock`` the Landlock calls do
too, as in Docker releases whose profile predates Landlock.
"""
from __future__ import annotations

import errno
import sys

import seccomp

CLONE_NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET."""
REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen",
           "fsconfig", "fsmount", "fspick", "mount_setattr")
LANDLOCK = ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")


def build(no_landlock: bool) -> seccomp.SyscallFilter:
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED + (LANDLOCK if no_landlock else ()):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for bit in (1 << n for n in range(32)):  # clone with any one namespace flag set
        if bit & CLONE_NAMESPACE_FLAGS:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return rules


def main(argv: list[str]) -> int:
    out, no_landlock = argv[0], "--no-landlock" in argv[1:]
    with open(out, "wb") as f:
        build(no_landlock).export_bpf(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
