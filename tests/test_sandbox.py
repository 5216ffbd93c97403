"""Specification of the sandbox's parts: the pickle-free transport, and the
worker in every isolation tier this machine offers.

The transport tests run in this process over pipes. The worker tests start
real workers through ``SandboxBackend`` on a small package whose
activations.py is the probe under test: each probe is an ordinary contract
function (``relu``) that reports what it could do as plain data, or misbehaves.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from nnkit.sandbox import backend as sandbox

from nnkit.sandbox import transport
from nnkit.course.config import AUTOGRADER_CONFIG_PATH, ROOT
from nnkit.grading.proxy import GraderError, StudentCrash, StudentError, StudentTimeout
from nnkit.sandbox.backend import DEFAULT_LIMITS, NOBODY, OUTPUT_CAP, SandboxBackend, detect_tier, landlock_abi
from tests.tiers import tier_missing
from nnkit.course.config import TESTS_DIR

TIERS = ("bwrap", "bwrap+fork", "setuid", "rlimits")
"""The isolation tiers; "bwrap+fork" is bwrap with one sandbox per submission whose workers are
forked from a zygote (nnkit.sandbox.backend.forking_available), where the kernel allows it."""
HIDDEN_TESTS = TESTS_DIR / "hidden"
REFERENCE_FORWARD = ROOT / "solutions" / "scratchnet" / "forward.py"


# ------------------------------------------------------------------ transport


def _pipe_roundtrip(tree):
    """Send ``tree`` through a pipe and read it back (small messages: the pipe holds them)."""
    r, w = os.pipe()
    try:
        transport.send(w, tree)
        return transport.receive(r, timeout=5)
    finally:
        os.close(r)
        os.close(w)


def _receive_bytes(data: bytes, timeout: float = 2.0):
    """Feed raw bytes to ``receive`` as if a worker had sent them."""
    r, w = os.pipe()
    try:
        os.write(w, data)
        os.close(w)
        w = None
        return transport.receive(r, timeout=timeout)
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def _frame(header: dict | bytes, payload: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "big") + raw + payload


def test_transport_round_trip_keeps_values_and_types():
    """Do arrays of every allowed dtype and shape (0-d, empty, non-contiguous), numpy
    scalars, tuples, dicts, lists, None, bools and non-finite floats come back equal and
    of the same kinds?"""
    arrays = {dtype: np.arange(6).astype(dtype).reshape(2, 3) for dtype in
              ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float32", "float64")}
    scalars = [np.int64(-3), np.float32(0.5), np.bool_(True), np.uint8(7)]
    tree = {"arrays": arrays, "empty": np.zeros((0, 4)), "zero_d": np.array(2.5),
            "transposed": np.arange(6.0).reshape(2, 3).T, "scalars": scalars, "float64": np.float64(1.5),
            "tuple": (1, "two", None, True), "list": [1.0, [2, 3]],
            "floats": [float("nan"), float("inf"), -float("inf")], "text": "héllo"}
    back = _pipe_roundtrip(tree)
    for dtype, arr in arrays.items():
        assert type(back["arrays"][dtype]) is np.ndarray
        assert back["arrays"][dtype].dtype == arr.dtype and np.array_equal(back["arrays"][dtype], arr)
    assert back["empty"].shape == (0, 4) and back["zero_d"].shape == () and back["zero_d"] == 2.5
    assert np.array_equal(back["transposed"], tree["transposed"])
    for got, sent in zip(back["scalars"], scalars):
        assert type(got) is type(sent) and got == sent
    assert isinstance(back["float64"], float) and back["float64"] == 1.5  # np.float64 is a float
    assert back["tuple"] == (1, "two", None, True) and isinstance(back["tuple"], tuple)
    assert back["list"] == [1.0, [2, 3]] and back["text"] == "héllo"
    assert np.isnan(back["floats"][0]) and back["floats"][1:] == [float("inf"), -float("inf")]


def test_transport_sends_subclasses_as_plain_arrays():
    """Does an ndarray subclass (here one whose == always says True) arrive as a plain ndarray?"""

    class AlwaysEqual(np.ndarray):
        def __eq__(self, other):
            return True

    back = _pipe_roundtrip(np.full(3, 7.0).view(AlwaysEqual))
    assert type(back) is np.ndarray
    assert not np.array_equal(back, np.zeros(3))


@pytest.mark.parametrize("value, why", [
    (np.array([object()], dtype=object), "dtype object"),
    (np.array([1 + 2j]), "dtype complex128"),
    ({1: np.zeros(2)}, "keys must be strings"),
    ({"a": {2, 3}}, "type set"),
    (pickle, "type module"),
], ids=["object-array", "complex-array", "int-key", "set", "module"])
def test_transport_refuses_what_cannot_cross(value, why):
    """Are object arrays, non-string keys and arbitrary objects refused at encoding?"""
    with pytest.raises(transport.TransportError, match=why):
        transport.encode(value)


def test_transport_refuses_oversized_and_deep_messages(monkeypatch):
    """Are arrays over the size cap and messages nested too deeply refused?"""
    monkeypatch.setattr(transport, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(transport.TransportError, match="size cap"):
        transport.encode(np.zeros(200))
    deep = []
    for _ in range(transport.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(transport.TransportError, match="nested"):
        transport.encode(deep)


@pytest.mark.parametrize("data, why", [
    (_frame(b"{not json"), "malformed header"),
    (_frame(b'{"body": 1, "arrays": []} trailing'), "malformed header"),
    (_frame(b"[1, 2]"), "malformed header"),
    (_frame({"body": 1, "arrays": [], "extra": 0}), "malformed header"),
    (_frame(b'{"body": NaN, "arrays": []}'), "malformed header"),
    ((transport.MAX_HEADER_BYTES + 1).to_bytes(8, "big"), "header exceeds"),
    (_frame({"body": {"__array__": 0, "scalar": False}, "arrays": [{"dtype": "|O", "shape": [1]}]}, b"\0" * 8),
     "forbidden dtype"),
    (_frame({"body": None, "arrays": [{"dtype": "<f8", "shape": [-1]}]}), "shape"),
    (_frame({"body": None, "arrays": [{"dtype": "<f8", "shape": [1 << 40]}]}), "size cap"),
    (_frame({"body": {"__array__": 3, "scalar": False}, "arrays": []}), "array reference"),
    (_frame({"body": {"__class__": "os.system", "args": ["true"]}, "arrays": []}), "malformed message node"),
    (_frame({"body": {"__dict__": {"a": 1}, "x": 2}, "arrays": []}), "malformed message node"),
], ids=["not-json", "trailing-garbage", "not-a-dict", "extra-key", "bare-nan", "huge-header",
        "object-dtype", "negative-shape", "huge-array", "bad-reference", "unknown-node", "mixed-node"])
def test_transport_rejects_malformed_messages(data, why):
    """Is every malformed message refused with TransportError, before anything is built from it?"""
    with pytest.raises(transport.TransportError, match=why):
        _receive_bytes(data)


def test_transport_garbage_after_a_message_is_refused_next():
    """Does garbage after a valid message fail the next read instead of passing as a message?"""
    r, w = os.pipe()
    try:
        transport.send(w, {"ok": True})
        os.write(w, b"\xff" * 16)
        assert transport.receive(r, timeout=2) == {"ok": True}
        with pytest.raises(transport.TransportError):
            transport.receive(r, timeout=2)
    finally:
        os.close(r)
        os.close(w)


def test_transport_never_unpickles(tmp_path, monkeypatch):
    """Is a pickle, sent as a whole message or inside one, refused without being unpickled?"""
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the transport called the unpickler")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    blob = pickle.dumps(Payload())
    attempts = [
        blob,                                                  # a raw pickle stream
        _frame(blob),                                          # a pickle where the header goes
        _frame({"body": {"__array__": 0, "scalar": False},     # a pickle as an object array's bytes
                "arrays": [{"dtype": "|O", "shape": [len(blob)]}]}, blob),
        _frame({"body": {"__pickle__": blob.hex()}, "arrays": []}),
    ]
    for data in attempts:
        with pytest.raises(transport.TransportError):
            _receive_bytes(data)
    assert not marker.exists()


def test_transport_times_out_on_a_silent_peer():
    """Does receive give up at its deadline when half a message arrives?"""
    r, w = os.pipe()
    try:
        os.write(w, (100).to_bytes(8, "big") + b"{")
        start = time.monotonic()
        with pytest.raises(transport.Timeout):
            transport.receive(r, timeout=0.5)
        assert time.monotonic() - start < 3
    finally:
        os.close(r)
        os.close(w)


def test_transport_sends_a_shared_file_by_name(tmp_path):
    """Does an array from load_shared cross as its file name, arrive as a writable plain
    ndarray with the same values, and leave the file untouched when the receiver writes?"""
    X = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "X_train.npy", X)
    shared = transport.load_shared(tmp_path / "X_train.npy")
    assert sum(len(b) for b in transport.encode({"x": shared})) < 200
    r, w = os.pipe()
    try:
        transport.send(w, {"x": shared, "y": X})
        got = transport.receive(r, timeout=5, shared_dir=tmp_path)
    finally:
        os.close(r)
        os.close(w)
    assert type(got["x"]) is np.ndarray and got["x"].tolist() == X.tolist()
    got["x"][0, 0] = -1.0
    assert np.load(tmp_path / "X_train.npy")[0, 0] == 0.0
    assert got["y"].tolist() == X.tolist()  # a plain array still crosses as bytes


@pytest.mark.parametrize("node,shared_dir,why", [
    ({"__shared__": "X_train.npy"}, None, "unexpected shared-file reference"),
    ({"__shared__": "../X_train.npy"}, "somewhere", "malformed shared-file reference"),
    ({"__shared__": "absent.npy"}, "somewhere", "cannot map shared file"),
], ids=["grader-side", "path-escape", "missing"])
def test_transport_refuses_bad_shared_references(tmp_path, node, shared_dir, why):
    """Does a reader refuse a shared-file reference it did not allow, or that leaves its folder?"""
    r, w = os.pipe()
    try:
        os.write(w, _frame({"body": node, "arrays": []}))
        with pytest.raises(transport.TransportError, match=why):
            transport.receive(r, timeout=2, shared_dir=shared_dir and tmp_path)
    finally:
        os.close(r)
        os.close(w)


# ------------------------------------------------------------------ workers


def _available(tier: str) -> bool:
    base = tier.split("+")[0]
    try:
        if detect_tier(base) != base:
            return False
    except GraderError:
        return False
    return not tier.endswith("+fork") or sandbox.forking_available(base)


@pytest.fixture(params=TIERS)
def tier(request) -> str:
    if not _available(request.param):
        tier_missing(f"isolation tier {request.param!r} is not available on this machine")
    return request.param


@pytest.fixture
def make_backend(tmp_path):
    """make_backend(tier, probe_source, **limits) -> a SandboxBackend whose activations.py is the probe."""
    backends = []

    def make(tier: str, source: str, shared: Path | None = None, **limits) -> SandboxBackend:
        root = tmp_path / f"pkg{len(backends)}"
        package = root / "scratchnet"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "activations.py").write_text(textwrap.dedent(source))
        for path in [tmp_path, root, *root.rglob("*")]:  # tmp_path: a forking sandbox holds all of it
            path.chmod(0o755 if path.is_dir() else 0o644)
        backend = SandboxBackend({None: root}, {"tier": tier.split("+")[0], "zygote": tier.endswith("+fork"),
                                                "limits": limits, "shared": shared})
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


def _relu(backend, *args, timeout=10.0):
    return backend.call(None, "relu", args or (np.zeros(2),), {}, timeout=timeout)


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_worker_answers_like_the_contract(tier, make_backend):
    """Does a worker in this tier compute, return plain arrays and report the student's exceptions?"""
    backend = make_backend(tier, """
        import numpy as np

        class Sneaky(np.ndarray):
            def __eq__(self, other):
                return True

        def relu(z):
            return np.maximum(z, 0.0).view(Sneaky)

        def tanh(z):
            raise ValueError("bad input " + str(z.shape))
    """)
    got = _relu(backend, np.array([-1.0, 2.0]))
    assert type(got.value) is np.ndarray and got.value.tolist() == [0.0, 2.0]
    assert backend.tier == tier.split("+")[0] and (backend.zygote is not None) == tier.endswith("+fork")
    with pytest.raises(StudentError, match=r"raised ValueError: bad input \(3,\)") as info:
        backend.call(None, "tanh", (np.zeros(3),), {})
    assert info.value.location.startswith("activations.py:")


def test_forked_worker_joins_the_processor_of_its_test_process(tmp_path):
    """Does a forked worker run on the processor the spec names (the test process's own)?"""
    if not _available("bwrap+fork"):
        tier_missing("forked workers are not available on this machine")
    cpu = max(os.sched_getaffinity(0))
    package = tmp_path / "stage" / "pkg" / "scratchnet"
    package.mkdir(parents=True)
    (package / "activations.py").write_text("import os\n\ndef relu(z):\n    return sorted(os.sched_getaffinity(0))\n")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    backend = SandboxBackend({None: package.parent}, {"tier": "bwrap", "zygote": True, "cpu": cpu})
    try:
        assert _relu(backend).value == [cpu]
    finally:
        backend.close()


def test_worker_maps_shared_files_copy_on_write(tier, make_backend, tmp_path):
    """Does a worker get a shared file's array (the MNIST training split) without the bytes
    crossing, write only its own copy, and fail to open the file itself for writing?"""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    np.save(shared / "X_train.npy", np.arange(6.0))
    (shared / "X_train.npy").chmod(0o444)
    backend = make_backend(tier, f"""
        import numpy as np

        def relu(z):
            z[0] = 100.0
            opened = []
            for path in ({str(shared / "X_train.npy")!r}, "/sandbox/shared/X_train.npy"):
                try:
                    open(path, "r+b").close()
                    opened.append(path)
                except OSError:
                    pass
            return {{"total": float(z.sum()), "plain": type(z) is np.ndarray, "opened for writing": opened}}
    """, shared=shared)
    got = _relu(backend, transport.load_shared(shared / "X_train.npy")).value
    assert got == {"total": 115.0, "plain": True, "opened for writing": []}
    assert np.load(shared / "X_train.npy").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_shared_file_the_worker_cannot_read_is_a_grader_error(tier, make_backend, tmp_path):
    """When a worker cannot open the grader's own file (the training split, unreadable to its user),
    is that a grader error naming the cause, not a crash blamed on the student's code?"""
    if tier.startswith("rlimits"):
        pytest.skip("in the rlimits tier the worker is the grader's user: it can read what the grader can")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    np.save(shared / "X_train.npy", np.arange(6.0))
    (shared / "X_train.npy").chmod(0o400)
    backend = make_backend(tier, """
        def relu(z):
            return z
    """, shared=shared)
    with pytest.raises(GraderError, match="could not read its request.*X_train.npy.*Permission denied"):
        _relu(backend, transport.load_shared(shared / "X_train.npy"))
    assert _relu(backend, np.arange(3.0)).value.tolist() == [0.0, 1.0, 2.0]  # the next call still works


def test_a_worker_missing_its_own_modules_is_a_grader_error(make_backend, monkeypatch):
    """When a worker cannot import the kit's own modules (a broken install), is that a grader error
    naming the cause, not an exit blamed on the student's code?"""
    if not _available("rlimits"):
        tier_missing("isolation tier 'rlimits' is not available on this machine")
    monkeypatch.setattr(sandbox, "WORKER_MODULES", tuple(m for m in sandbox.WORKER_MODULES if m != "sandbox/worker.py"))
    backend = make_backend("rlimits", """
        def relu(z):
            return z
    """)
    with pytest.raises(GraderError, match="could not import its own modules"):
        _relu(backend)


def test_forked_workers_are_kept_apart(tmp_path):
    """With one forking sandbox per submission: can a configuration's worker read another's
    package, reach it over UDP on loopback, signal it or the zygote, or see its scratch folder?"""
    if not _available("bwrap+fork"):
        tier_missing("forked workers are not available on this machine")
    listener = """
        import os, socket

        SOCK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        SOCK.bind(("127.0.0.1", 47999))
        SOCK.settimeout(0.5)
        open("secret-note", "w").write("x")

        def relu(z):
            try:
                return {"pid": os.getpid(), "heard": SOCK.recv(100).decode(), "scratch": os.getcwd()}
            except OSError:
                return {"pid": os.getpid(), "heard": "", "scratch": os.getcwd()}
    """
    prober = """
        import os, signal, socket

        def relu(z):
            pid, scratch = int(z[0]), str(z[1])
            found = []
            for path in ("/sandbox/stage/a/scratchnet/activations.py", scratch + "/secret-note", "/proc/1/status"):
                try:
                    open(path).close()
                    found.append(path)
                except OSError:
                    pass
            signalled = []
            for target in (pid, os.getppid()):
                try:
                    os.kill(target, signal.SIGKILL)
                    signalled.append(target)
                except OSError:
                    pass
            try:  # a network namespace of its own: loopback is down, or leads nowhere else
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", ("127.0.0.1", 47999))
            except OSError:
                pass
            return {"found": found, "signalled": signalled}
    """
    roots = {}
    for name, source in (("a", listener), ("b", prober)):
        package = tmp_path / "stage" / name / "scratchnet"
        package.mkdir(parents=True)
        (package / "activations.py").write_text(textwrap.dedent(source))
        roots[name] = package.parent
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    backend = SandboxBackend({"forward": roots["a"], None: roots["b"]}, {"tier": "bwrap", "zygote": True})
    try:
        first = backend.call("forward", "relu", (np.zeros(1),), {}).value
        probe = backend.call(None, "relu", ([first["pid"], first["scratch"]],), {}).value
        assert probe == {"found": [], "signalled": []}
        assert backend.call("forward", "relu", (np.zeros(1),), {}).value["heard"] == ""
    finally:
        backend.close()


def test_bwrap_worker_is_nobody_and_sees_nothing_of_the_grader(make_backend):
    """In bwrap: is the worker uid 65534, blind to /work, the hidden tests, the course
    secret and the reference, without network and without a writable folder?"""
    if not _available("bwrap"):
        tier_missing("bubblewrap tier not available")
    backend = make_backend("bwrap", f"""
        import os, socket

        def relu(z):
            seen = [p for p in {[str(ROOT), str(HIDDEN_TESTS), str(AUTOGRADER_CONFIG_PATH), str(REFERENCE_FORWARD)]!r}
                    if os.path.exists(p)]
            writable = []
            for folder in (os.getcwd(), "/tmp", os.path.expanduser("~"), "/dev/shm", "/sandbox/sub"):
                try:
                    with open(os.path.join(folder, "probe"), "w") as f:
                        f.write("x")
                    writable.append(folder)
                except OSError:
                    pass
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=2).close()
                network = "connected"
            except OSError as exc:
                network = type(exc).__name__
            return {{"uid": os.getuid(), "gid": os.getgid(), "seen": seen, "writable": writable,
                     "network": network, "interfaces": [name for _, name in socket.if_nameindex()]}}
    """)
    report = _relu(backend).value
    assert report["uid"] == NOBODY and report["gid"] == NOBODY
    assert report["seen"] == []
    assert set(report["writable"]) <= {"/tmp"}  # its own tmpfs: cwd, temp folder and home
    assert report["network"] != "connected" and report["interfaces"] == ["lo"]


def test_bwrap_scratch_folder_is_capped(make_backend):
    """In bwrap: is the worker's /tmp (memory, not disk) capped at tmp_bytes across all its files?"""
    if not _available("bwrap"):
        tier_missing("bubblewrap tier not available")
    if not sandbox._bwrap_sizes_tmpfs():
        pytest.skip("this bubblewrap cannot cap a tmpfs (before 0.8): /tmp stays read-only")
    backend = make_backend("bwrap", """
        def relu(z):
            written = 0
            for i in range(16):
                with open(f"/tmp/part{i}", "wb") as f:
                    f.write(bytes(1 << 20))
                written += 1
            return written
    """, tmp_bytes=4 << 20)
    with pytest.raises(StudentError, match="No space left on device"):
        _relu(backend)


def test_plain_worker_is_confined_by_landlock(make_backend):
    """Outside bwrap, with Landlock: can the worker read only its runtime, write only its
    scratch folder, reach no TCP address, signal no grader process and raise no limit?"""
    if not _available("rlimits"):
        tier_missing("rlimits tier not available")
    abi = landlock_abi()
    if abi < 1:
        pytest.skip("this kernel has no Landlock: the rlimits tier sees the file system as its user does")
    backend = make_backend("rlimits", f"""
        import os, resource, signal, socket, tempfile

        def relu(z):
            seen = []
            for path in {[str(REFERENCE_FORWARD), str(AUTOGRADER_CONFIG_PATH), str(HIDDEN_TESTS / "test_mnist.py"),
                         "/etc/passwd"]!r}:
                try:
                    open(path).close()
                    seen.append(path)
                except OSError:
                    pass
            written = []
            for folder in (os.getcwd(), tempfile.gettempdir(), os.path.dirname(os.getcwd()), "/tmp"):
                try:
                    with open(os.path.join(folder, "nnkit-probe-written"), "w") as f:
                        f.write("x")
                    written.append(folder)
                except OSError:
                    pass
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=2).close()
                network = "connected"
            except OSError as exc:
                network = type(exc).__name__
            try:
                os.kill(os.getppid(), 0)
                signal_parent = "allowed"
            except OSError as exc:
                signal_parent = type(exc).__name__
            try:
                resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
                raised = True
            except (OSError, ValueError):
                raised = False
            return {{"seen": seen, "written": written, "cwd": os.getcwd(), "network": network,
                     "signal_parent": signal_parent, "raised_limit": raised}}
    """)
    report = _relu(backend).value
    assert report["seen"] == []
    assert report["written"] == [report["cwd"]] * 2  # the scratch folder is both its cwd and its temp folder
    assert report["raised_limit"] is False
    if abi >= 4:
        assert report["network"] == "PermissionError"
    if abi >= 6:
        assert report["signal_parent"] == "PermissionError"


def test_timeout_kills_the_whole_tree(tier, make_backend):
    """Does a call past its time limit raise StudentTimeout and kill the worker and every
    process it started, detached ones included?"""
    backend = make_backend(tier, """
        import os, time

        def relu(z):
            for _ in range(3):
                if os.fork() == 0:
                    try:
                        os.setsid()
                        if os.fork() == 0:
                            time.sleep(120)
                    finally:
                        os._exit(0)
            return z

        def tanh(z):
            while True:
                pass
    """)
    before = _descendants()
    _relu(backend)
    time.sleep(0.5)
    started = _descendants() - before
    assert len(started) >= 2  # the worker (and bwrap) and the detached sleepers
    start = time.monotonic()
    with pytest.raises(StudentTimeout, match="did not return within 1 s"):
        backend.call(None, "tanh", (np.zeros(2),), {}, timeout=1.0)
    assert time.monotonic() - start < 8
    assert [pid for pid in started if psutil.pid_exists(pid) and
            psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []


def test_process_limit_stops_a_fork_burst(tier, make_backend):
    """Does the process limit stop a burst of forks with an error inside the worker?"""
    if tier == "rlimits" and os.geteuid() == 0:
        pytest.skip("RLIMIT_NPROC does not bind root, who runs this tier here")
    backend = make_backend(tier, """
        import os, time

        def relu(z):
            started = 0
            for _ in range(200):
                try:
                    child = os.fork()
                except OSError:
                    return started
                if child == 0:
                    time.sleep(60)
                    os._exit(0)
                started += 1
            return started
    """, processes=16)
    assert 0 <= _relu(backend).value < 16


def test_fork_burst_does_not_starve_other_workers(make_backend):
    """In bwrap, where every worker is nobody: does a worker still start while another one
    holds all the processes nobody may have?"""
    if not _available("bwrap"):
        tier_missing("bubblewrap tier not available")
    hog = make_backend("bwrap", """
        import os, time

        def relu(z):
            started = 0
            while True:
                try:
                    child = os.fork()
                except OSError:
                    return started
                if child == 0:
                    time.sleep(60)
                    os._exit(0)
                started += 1
    """, processes=16)
    _relu(hog)
    honest = make_backend("bwrap", """
        import numpy as np

        def relu(z):
            return np.maximum(z, 0.0)
    """, processes=16)
    assert _relu(honest, np.array([-1.0, 3.0])).value.tolist() == [0.0, 3.0]


def test_file_size_limit_stops_a_large_write(make_backend):
    """Outside bwrap (where nothing is writable at all): does a write past the file-size
    limit fail (Python ignores SIGXFSZ, so as OSError "File too large") with the file cut at the limit?"""
    if not _available("rlimits"):
        tier_missing("rlimits tier not available")
    limit = 4 << 20
    backend = make_backend("rlimits", """
        def relu(z):
            with open("big.bin", "wb") as f:
                for _ in range(64):
                    f.write(bytes(1 << 20))
            return z
    """, file_bytes=limit)
    with pytest.raises(StudentError, match="File too large"):
        _relu(backend)
    assert (backend.workdir / "tmp" / "big.bin").stat().st_size == limit


def test_memory_limit_stops_a_large_allocation(tier, make_backend):
    """Does allocating more than the address-space limit fail with MemoryError?"""
    backend = make_backend(tier, f"""
        import numpy as np

        def relu(z):
            hoard = np.empty({DEFAULT_LIMITS["memory_bytes"] + (1 << 30)}, dtype=np.uint8)
            return z
    """)
    with pytest.raises(StudentError, match="MemoryError"):
        _relu(backend)


def test_output_is_captured_up_to_the_cap(tier, make_backend):
    """Is a flood of output captured up to OUTPUT_CAP, without delaying the answer?"""
    backend = make_backend(tier, """
        import sys

        def relu(z):
            for _ in range(16):
                sys.stdout.write("x" * (1 << 20))
            sys.stdout.flush()
            return z
    """)
    start = time.monotonic()
    _relu(backend)
    assert time.monotonic() - start < 8
    worker = next(iter(backend.workers.values()))
    time.sleep(0.2)
    assert len(worker.output) == OUTPUT_CAP and set(bytes(worker.output)) == {ord("x")}
