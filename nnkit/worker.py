"""The worker: the only process that runs student code.

Started by nnkit.sandbox as

    python -I -S -c "<bootstrap>" REQUEST_FD RESPONSE_FD ROOT SYS_PATH [SHARED]

with ROOT holding the staged ``scratchnet`` package of one configuration and
SHARED the folder of the read-only files requests may refer to (the MNIST
training split; see nnkit.transport.load_shared). It
reads requests {"op": "call", "function", "args", "kwargs", "keep_args"} or
{"op": "map", "function", "calls": [[args, kwargs], ...]} and answers
{"ok": True, "result": {...}} or {"ok": False, "error": {...}} through
nnkit.transport. It imports only numpy, the standard library and the staged
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
    from nnkit.invoke import import_chain

    for name in import_chain(dotted):
        if name not in modules and (name == dotted or os.path.isfile(
                os.path.join(root, *name.split(".")) + ".py")):
            modules[name] = importlib.import_module(name)
            announce({"event": "imported", "module": name})
    return modules[dotted]


def serve(request_fd: int, response_fd: int, root: str, shared: str | None = None) -> None:
    """Answer requests until the grader closes the channel."""
    from nnkit import transport
    from nnkit.invoke import ContractViolation, describe_exception, invoke, module_name

    modules: dict = {}
    while True:
        try:
            request = transport.receive(request_fd, shared_dir=shared)
        except transport.PeerClosed:
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "ping":
            transport.send(response_fd, {"ok": True, "result": {"uid": os.getuid(), "pid": os.getpid()}})
            continue
        if op not in ("call", "map"):
            transport.send(response_fd, {"ok": False, "error": {"type": "GraderError", "message": f"bad op {op!r}"}})
            continue
        function = request["function"]
        filename = module_name(function).split(".")[-1] + ".py"
        try:
            if not os.path.isfile(os.path.join(root, "scratchnet", filename)):
                raise ContractViolation(f"{filename} was not found in your submission")
            module = _load(modules, module_name(function), root, lambda m: transport.send(response_fd, m))
            if op == "call":
                result = invoke(module, function, request["args"], request["kwargs"], request.get("keep_args"),
                                copy_args=False)
            else:  # one round trip for many calls: only the values come back
                result = {"values": [invoke(module, function, args, kwargs, (), copy_args=False)["value"]
                                     for args, kwargs in request["calls"]]}
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


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    request_fd, response_fd, root = int(argv[0]), int(argv[1]), argv[2]
    shared = argv[3] if len(argv) > 3 and argv[3] else None
    sys.path.insert(0, root)
    import numpy  # noqa: F401  (imported before any student code runs)

    serve(request_fd, response_fd, root, shared)


if __name__ == "__main__":
    main()
