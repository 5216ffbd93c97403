"""The worker: the only process that runs student code.

Started by nnkit.sandbox.backend as

    python -I -S -c "<bootstrap>" REQUEST_FD RESPONSE_FD ROOT SYS_PATH [SHARED]

(or ``zygote CONTROL_FD - SYS_PATH [SHARED]``, see ``zygote`` below), with
ROOT holding the staged ``scratchnet`` package of one configuration and
SHARED the folder of the read-only files requests may refer to (the MNIST
training split; see nnkit.sandbox.transport.load_shared). It
reads requests {"op": "call", "function", "args", "kwargs", "keep_args", "measure"} or
{"op": "map", "function", "calls": [[args, kwargs], ...], "item"} and answers
{"ok": True, "result": {...}} or {"ok": False, "error": {...}} through
nnkit.sandbox.transport. It imports only numpy, the standard library and the staged
package. Whatever the student's code prints goes to this process's
stdout/stderr, which the grader caps and never reads as results.
"""
from __future__ import annotations

import importlib
import os
import sys


def _load(modules: dict, dotted: str, root: str, announce) -> object:
    """Import the graded modules up to ``dotted`` in dependency order, announcing each
    import as it completes, so the grader can tell which file's import never finished."""
    from nnkit.sandbox.invoke import import_chain

    for name in import_chain(dotted):
        if name not in modules and (name == dotted or os.path.isfile(
                os.path.join(root, *name.split(".")) + ".py")):
            modules[name] = importlib.import_module(name)
            announce({"event": "imported", "module": name})
    return modules[dotted]


def serve(request_fd: int, response_fd: int, root: str, shared: str | None = None) -> None:
    """Answer requests until the grader closes the channel."""
    from nnkit.sandbox import transport
    from nnkit.sandbox.invoke import ContractViolation, describe_exception, invoke, module_name, pick_item

    modules: dict = {}
    while True:
        try:
            request = transport.receive(request_fd, shared_dir=shared)
        except transport.PeerClosed:
            return
        except transport.TransportError as exc:  # before any student code runs: the grader's doing
            transport.send(response_fd, {"ok": False, "error": {
                "type": "GraderError", "grader": True, "message": f"the worker could not read its request: {exc}"}})
            return  # the stream may be out of step: the next call starts a fresh worker
        op = request.get("op") if isinstance(request, dict) else None
        if op == "ping":
            transport.send(response_fd, {"ok": True, "result": {"uid": os.getuid(), "pid": os.getpid()}})
            continue
        if op not in ("call", "map"):
            transport.send(response_fd, {"ok": False, "error": {"type": "GraderError", "grader": True,
                                                                "message": f"bad op {op!r}"}})
            continue
        function = request["function"]
        filename = module_name(function).split(".")[-1] + ".py"
        try:
            if not os.path.isfile(os.path.join(root, "scratchnet", filename)):
                raise ContractViolation(f"{filename} was not found in your submission")
            module = _load(modules, module_name(function), root, lambda m: transport.send(response_fd, m))
            if op == "call":
                result = invoke(module, function, request["args"], request["kwargs"], request.get("keep_args"),
                                copy_args=False, measure=request.get("measure"))
            else:  # one round trip for many calls: only the values come back
                item = request.get("item")
                result = {"values": [pick_item(invoke(module, function, args, kwargs, (), copy_args=False)["value"],
                                               item) for args, kwargs in request["calls"]]}
            answer = {"ok": True, "result": result}
        except ContractViolation as exc:
            answer = {"ok": False, "error": {"type": "ContractViolation", "message": str(exc),
                                             "location": "", "not_implemented": False}}
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: they are the student's
            answer = {"ok": False, "error": describe_exception(exc)}
        try:
            buffers = transport.encode(answer)
        except transport.TransportError as exc:
            buffers = transport.encode({"ok": False, "error": {
                "type": "ContractViolation", "location": "", "not_implemented": False,
                "message": f"{function}() returned something that is not plain data ({exc})"}})
        transport.write_all(response_fd, buffers)


# ------------------------------------------------------------------ zygote
# One sandbox per submission: the zygote imports NumPy once and forks a worker per
# configuration. Each worker, before it imports any student code, takes its own user,
# network and IPC namespaces and confines itself with Landlock to the runtime, its own
# staged package, the shared files and its own scratch folder; so configurations (and
# so parts) stay as far apart as separate sandboxes would keep them.

_CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x08000000, 0x10000000, 0x40000000
ISOLATION_FAILED = 3
"""Exit code of a forked worker that could not isolate itself (it never runs student code)."""


def _isolate(read: list, write: list, scratch: str) -> None:
    """Enter new user, network and IPC namespaces, drop every capability, apply Landlock."""
    import ctypes

    from nnkit.sandbox import landlock

    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWIPC) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    # The new user namespace came with every capability in it: give them all up.
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(ctypes.c_long(126 if os.uname().machine == "x86_64" else 91), header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    if landlock.restrict_self(read, write) < 6:
        raise OSError("Landlock ABI 6 or later is needed to keep forked workers apart")
    os.chdir(scratch)
    os.environ.update({"TMPDIR": scratch, "HOME": scratch})
    import tempfile

    tempfile.tempdir = scratch


def zygote(control_fd: int, shared: str | None) -> None:
    """Fork a worker for each request on the control socket until the grader closes it.

    Request: {"op": "fork", "root", "scratch", "read", "write"} with three file
    descriptors (requests in, answers out, output), answered {"pid": ...}; or
    {"op": "status", "pid"}, answered {"exit": code} or {"signal": n} once that
    worker has ended (or {"running": true} after two seconds).
    """
    import json
    import socket
    import time

    import gc
    import tempfile  # noqa: F401  (imported here once, not in each forked worker)

    import numpy  # noqa: F401  (the import every forked worker is spared)
    import numpy.linalg  # noqa: F401  (NumPy imports these two on first use: every worker uses them)
    import numpy.random  # noqa: F401
    from nnkit.sandbox import invoke  # noqa: F401
    from nnkit.sandbox import landlock
    from nnkit.sandbox import transport

    # Objects that exist now are never collected in a forked worker, so its garbage
    # collector does not write to (and so copy) every page it shares with the zygote.
    gc.collect()
    gc.freeze()

    control = socket.socket(fileno=control_fd)
    ended: dict[int, int] = {}

    def reap(block_for: int | None = None, deadline: float = 0.0) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                ended[pid] = status
            elif block_for is None or block_for in ended or time.monotonic() > deadline:
                return
            else:
                time.sleep(0.01)

    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        if not message:
            return
        request = json.loads(message)
        reap()
        if request["op"] == "status":
            pid = int(request["pid"])
            reap(pid, time.monotonic() + 2)
            status = ended.get(pid)
            answer = ({"running": True} if status is None else {"signal": os.WTERMSIG(status)}
                      if os.WIFSIGNALED(status) else {"exit": os.waitstatus_to_exitcode(status)})
            control.send(json.dumps(answer).encode())
            continue
        os.makedirs(request["scratch"], mode=0o700, exist_ok=True)
        try:
            pid = os.fork()
        except OSError as exc:  # the process limit, reached by the student's processes
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"error": f"fork failed: {exc}"}).encode())
            continue
        if pid == 0:
            code = 0
            try:
                control.close()
                request_fd, response_fd, output_fd = fds
                os.dup2(output_fd, 1)
                os.dup2(output_fd, 2)
                os.close(output_fd)
                try:
                    _isolate(request["read"], request["write"], request["scratch"])
                except OSError as exc:
                    print(f"the worker could not isolate itself: {exc}", flush=True)
                    os._exit(ISOLATION_FAILED)
                if request.get("cpu") is not None:
                    try:
                        os.sched_setaffinity(0, {int(request["cpu"])})  # beside the test process it answers
                    except (AttributeError, OSError):
                        pass
                sys.path.insert(0, request["root"])
                serve(request_fd, response_fd, request["root"], shared)
            except BaseException:  # noqa: BLE001  (the student's doing: end this worker only)
                code = 1
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"pid": pid}).encode())


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[0] == "zygote":
        zygote(int(argv[1]), argv[3] or None)
        return
    request_fd, response_fd, root = int(argv[0]), int(argv[1]), argv[2]
    shared = argv[3] if len(argv) > 3 and argv[3] else None
    sys.path.insert(0, root)
    import numpy  # noqa: F401  (imported before any student code runs)

    serve(request_fd, response_fd, root, shared)


if __name__ == "__main__":
    main()
