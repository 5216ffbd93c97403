"""Pickle-free messages between the grader and the student's worker process.

A message is a tree of JSON values, tuples, string-keyed dicts, numpy arrays
and numpy scalars. On the wire:

    8-byte big-endian header length | header (UTF-8 JSON) | raw array bytes...

The header holds the tree, with each array replaced by {"__array__": i} and
described in a list of {"dtype", "shape"}; the raw bytes of the arrays follow
in order. Only the dtypes in DTYPES cross, within MAX_ARRAY_BYTES each and
MAX_TOTAL_BYTES in all. The reader rebuilds plain ``np.ndarray``s and accepts
nothing else: nothing received is ever unpickled or evaluated.

Large read-only inputs (the MNIST training split) need not cross at all: an
array opened with ``load_shared`` travels as {"__shared__": file name}, and
a reader given the folder holding that file (the worker, which sees it
read-only) maps it copy-on-write. A reader given no folder (the grader)
rejects such a reference.
"""
from __future__ import annotations

import json
import math
import os
import re
import select
import time
from pathlib import Path

import numpy as np

DTYPES = frozenset({"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f4", "<f8"})
"""Array dtypes (numpy ``dtype.str``) allowed to cross."""
MAX_HEADER_BYTES = 16 << 20
MAX_ARRAY_BYTES = 1 << 30
MAX_TOTAL_BYTES = 1 << 30
SMALL_ARRAY = 1 << 16
"""Arrays below this many bytes cross in runs: one buffer for many (a gradient check sends thousands)."""
_DTYPE_OF = {name: np.dtype(name) for name in DTYPES}
MAX_DEPTH = 32
MAX_NODES = 200_000


class TransportError(Exception):
    """A message is malformed, too large, of a forbidden type, or did not arrive in time."""


class PeerClosed(TransportError):
    """The other side closed its end (the process exited)."""


class Timeout(TransportError):
    """No complete message arrived before the deadline."""


SHARED_NAME = re.compile(r"[A-Za-z0-9_-]+\.npy")
"""What a shared file may be called."""
_shared: dict[int, tuple[np.ndarray, Path]] = {}
"""id -> (array, file) of the arrays opened with load_shared in this process."""


# ------------------------------------------------------------------ shared files

def load_shared(path: str | Path) -> np.ndarray:
    """A read-only mapping of the .npy file at ``path`` that crosses to a worker as its name, not its bytes.

    The worker must see the file's folder (its ``shared`` folder); there, and
    in ``private_copy``, the callee gets its own copy-on-write mapping.
    """
    path = Path(path)
    if not SHARED_NAME.fullmatch(path.name):
        raise TransportError(f"{path.name!r} is not a valid shared file name")
    arr = np.load(path, mmap_mode="r")
    _shared[id(arr)] = (arr, path)
    return arr


def private_copy(path: str | Path) -> np.ndarray:
    """A writable copy-on-write mapping of the .npy file at ``path``, as a plain ndarray:
    what the callee writes stays in its own process, and the file is never touched."""
    return np.load(path, mmap_mode="c").view(np.ndarray)


def shared_file(value) -> Path | None:
    """The file behind ``value`` if it came from load_shared in this process, else None."""
    entry = _shared.get(id(value))
    return entry[1] if entry is not None and entry[0] is value else None


# ------------------------------------------------------------------ encode

def encode(tree) -> list[bytes | memoryview]:
    """Encode a message; return the buffers to write, in order."""
    arrays: list[np.ndarray] = []
    nodes = [0]

    def add_array(arr: np.ndarray, scalar: bool) -> dict:
        if arr.dtype.str not in DTYPES:
            raise TransportError(f"arrays of dtype {arr.dtype} cannot cross")
        # Not np.ascontiguousarray: it turns a 0-d array (a numpy scalar) into shape (1,).
        arrays.append(arr if arr.flags.c_contiguous else arr.copy(order="C"))
        return {"__array__": len(arrays) - 1, "scalar": scalar}

    def enc(value, depth):
        nodes[0] += 1
        if depth > MAX_DEPTH or nodes[0] > MAX_NODES:
            raise TransportError("message too deeply nested or too large")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.ndarray):
            if shared_file(value) is not None:
                return {"__shared__": shared_file(value).name}
            return add_array(value, False)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic):
            return add_array(np.asarray(value), True)
        if isinstance(value, tuple):
            return {"__tuple__": [enc(v, depth + 1) for v in value]}
        if isinstance(value, list):
            return [enc(v, depth + 1) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TransportError("dict keys must be strings")
            return {"__dict__": {k: enc(v, depth + 1) for k, v in value.items()}}
        raise TransportError(f"values of type {type(value).__name__} cannot cross")

    body = enc(tree, 0)
    specs = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    total = sum(a.nbytes for a in arrays)
    if total > MAX_TOTAL_BYTES or any(a.nbytes > MAX_ARRAY_BYTES for a in arrays):
        raise TransportError(f"message of {total} bytes exceeds the size cap")
    header = json.dumps({"body": body, "arrays": specs}, allow_nan=False).encode()
    if len(header) > MAX_HEADER_BYTES:
        raise TransportError("message header exceeds the size cap")
    buffers: list[bytes | memoryview] = [len(header).to_bytes(8, "big"), header]
    # Runs of small arrays go as one buffer (copied: cheap), large ones as they are.
    run: list[bytes] = []
    for a in arrays:
        if a.nbytes < SMALL_ARRAY:
            run.append(a.tobytes())
            continue
        if run:
            buffers.append(b"".join(run))
            run = []
        buffers.append(memoryview(a).cast("B"))
    if run:
        buffers.append(b"".join(run))
    return buffers


def send(fd: int, tree) -> None:
    """Write one message to a file descriptor."""
    write_all(fd, encode(tree))


IOV_MAX = 1024
"""Most buffers one readv/writev call takes (Linux's UIO_MAXIOV)."""


def _transfer(call, fd: int, views: list[memoryview], before=None) -> None:
    """Pass every view, in order, to readv or writev (``call``) until all are done."""
    views = [v for v in views if len(v)]
    i = 0
    while i < len(views):
        if before is not None:
            before()
        n = call(fd, views[i:i + IOV_MAX])
        if n == 0:
            raise PeerClosed("peer closed the channel")
        while n and i < len(views):
            if n >= len(views[i]):
                n -= len(views[i])
                i += 1
            else:
                views[i] = views[i][n:]
                n = 0


def write_all(fd: int, buffers) -> None:
    """Write every buffer, in order, in as few system calls as the pipe allows."""
    _transfer(os.writev, fd, [memoryview(b).cast("B") for b in buffers])


# ------------------------------------------------------------------ decode

def _read_exact(fd: int, n: int, deadline: float | None, buf=None):
    """Read exactly n bytes into ``buf`` (default: a new bytearray) and return it."""
    buf = bytearray(n) if buf is None else buf
    _read_into(fd, [memoryview(buf).cast("B")], deadline)
    return buf


def _read_into(fd: int, views: list[memoryview], deadline: float | None) -> None:
    """Fill every view, in order (one readv per pipe-full, not one per buffer)."""
    def wait():
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout("timed out")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise Timeout("timed out")

    _transfer(os.readv, fd, views, wait)


def _spec_nbytes(spec) -> tuple[np.dtype, tuple[int, ...], int]:
    if not isinstance(spec, dict) or len(spec) != 2 or "dtype" not in spec or "shape" not in spec:
        raise TransportError("malformed array description")
    dtype = _DTYPE_OF.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
    if dtype is None:
        raise TransportError(f"forbidden dtype {spec['dtype']!r}")
    shape = spec["shape"]
    if type(shape) is not list or len(shape) > 32 or not all(type(s) is int and 0 <= s for s in shape):
        raise TransportError("malformed array shape")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise TransportError("array exceeds the size cap")
    return dtype, tuple(shape), nbytes


def receive(fd: int, timeout: float | None = None, shared_dir: str | Path | None = None):
    """Read one message; raise Timeout, PeerClosed or TransportError.

    ``shared_dir``: the folder of the shared files this reader may map (None:
    a shared-file reference is malformed).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    length = int.from_bytes(_read_exact(fd, 8, deadline), "big")
    if length > MAX_HEADER_BYTES:
        raise TransportError("header exceeds the size cap")
    try:
        header = json.loads(bytes(_read_exact(fd, length, deadline)), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransportError(f"malformed header: {exc}") from None
    if not isinstance(header, dict) or set(header) != {"body", "arrays"} or not isinstance(header["arrays"], list):
        raise TransportError("malformed header")
    specs = [_spec_nbytes(s) for s in header["arrays"]]
    if sum(n for _, _, n in specs) > MAX_TOTAL_BYTES:
        raise TransportError("message exceeds the size cap")
    # As encode groups them: runs of small arrays read into one staging buffer, then copied
    # out; large ones straight into their own np.empty (numpy asks for huge pages there).
    arrays: list = [None] * len(specs)
    views, runs, run = [], [], []

    def close_run():
        if run:
            staging = np.empty(sum(n for _, _, _, n in run), dtype=np.uint8)
            views.append(memoryview(staging))
            runs.append((staging, list(run)))
            run.clear()

    for i, (dtype, shape, nbytes) in enumerate(specs):
        if nbytes < SMALL_ARRAY:
            run.append((i, dtype, shape, nbytes))
            continue
        close_run()
        arrays[i] = np.empty(shape, dtype=dtype)
        views.append(memoryview(arrays[i]).cast("B"))
    close_run()
    _read_into(fd, views, deadline)
    for staging, entries in runs:
        offset = 0
        for i, dtype, shape, nbytes in entries:
            arrays[i] = staging[offset:offset + nbytes].view(dtype).reshape(shape).copy()
            offset += nbytes
    return _decode(header["body"], arrays, 0, shared_dir)


def _no_constant(name):
    raise ValueError(f"bare {name} is not allowed")


def _open_shared(name, shared_dir) -> np.ndarray:
    if shared_dir is None:
        raise TransportError("unexpected shared-file reference")
    if not isinstance(name, str) or not SHARED_NAME.fullmatch(name):
        raise TransportError("malformed shared-file reference")
    try:
        return private_copy(Path(shared_dir) / name)
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot map shared file {name}: {exc}") from None


def _decode(node, arrays, depth, shared_dir=None):
    if depth > MAX_DEPTH:
        raise TransportError("message too deeply nested")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, depth + 1, shared_dir) for v in node]
    if isinstance(node, dict) and set(node) == {"__shared__"}:
        return _open_shared(node["__shared__"], shared_dir)
    if isinstance(node, dict) and len(node) in (1, 2):
        if "__array__" in node:
            index = node["__array__"]
            if not isinstance(index, int) or not 0 <= index < len(arrays) or set(node) != {"__array__", "scalar"}:
                raise TransportError("malformed array reference")
            arr = arrays[index]
            if node["scalar"] is True:
                if arr.shape != ():
                    raise TransportError("malformed scalar")
                return arr[()]
            return arr
        if set(node) == {"__tuple__"} and isinstance(node["__tuple__"], list):
            return tuple(_decode(v, arrays, depth + 1, shared_dir) for v in node["__tuple__"])
        if set(node) == {"__dict__"} and isinstance(node["__dict__"], dict):
            return {str(k): _decode(v, arrays, depth + 1, shared_dir) for k, v in node["__dict__"].items()}
        if set(node) == {"__float__"} and node["__float__"] in ("nan", "inf", "-inf"):
            return float(node["__float__"])
    raise TransportError("malformed message node")
