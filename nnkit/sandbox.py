"""Run student code in a sandboxed worker process, never beside the assertions.

Tiers, strongest first (``detect_tier``):

- ``bwrap``: the grader runs as root and bubblewrap works. The worker gets its
  own mount, PID, network, IPC and UTS namespaces; its file system holds only
  the system libraries, the Python runtime, NumPy, the worker's own modules
  and the staged package of the configuration under test (read-only), plus
  a private /tmp of at most ``tmp_bytes`` (its scratch folder); it runs as
  the unprivileged user ``nobody``, whose process limit is set after the
  switch so other workers' processes cannot keep it from starting; when
  bwrap goes, the whole namespace goes.
- ``setuid``: root without bubblewrap. The worker runs as ``nobody`` in its
  own session with the rlimits below, so it cannot signal or write to the
  grader.
- ``rlimits``: not root. The worker runs as the grader's user in its own
  session, in a private temp folder, with the rlimits below (run as root,
  it also loses every capability, so it cannot raise its own limits).

Without namespaces, the ``setuid`` and ``rlimits`` workers are confined with
Landlock where the kernel has it (Linux 5.13 and later; ``landlock_abi``):
they read only the runtime they need and the staged package, write only
their scratch folder, and with newer kernels open no TCP connection
(ABI 4) and signal no process outside their own tree (ABI 6). Without
Landlock they see the file system as their user does; reports say so.

Every tier: address-space, CPU-time, process-count, file-size and open-file
limits; BLAS pinned to one thread; output captured up to a cap and never
read as results; on timeout, crash or close the process tree is killed (the
grader process is a child subreaper, so even processes that detach with
setsid are found and killed).
"""
from __future__ import annotations

import ctypes
import hashlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import nnkit
from nnkit import transport
from nnkit.invoke import import_chain, module_name
from nnkit.local import raise_student_error
from nnkit.proxy import CallResult, GraderError, StudentCrash, StudentError, StudentTimeout

NOBODY = 65534
OUTPUT_CAP = 64 * 1024
KIT_DIR = Path(nnkit.__file__).resolve().parent
WORKER_MODULES = ("__init__.py", "contract.py", "invoke.py", "transport.py", "worker.py")
"""The kit's modules the worker imports (standard library and numpy only)."""
DEFAULT_LIMITS = {
    "call_timeout": 10.0,
    "memory_bytes": 3 << 30,
    "cpu_seconds": 600,
    "processes": 64,
    "file_bytes": 16 << 20,
    "open_files": 256,
    "tmp_bytes": 64 << 20,
}
BLAS_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
"""One BLAS thread per process: two parallel jobs with two threads each train several times slower."""
BLAS_ENV |= {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}
"""glibc would hand each mini-batch's arrays (about 200 KB) their own fresh mmap until its
adaptive threshold settles, which makes a fresh process's first MNIST epoch 2.5x slower."""
BOOTSTRAP = (
    "import sys; sys.path[:0] = sys.argv[4].split(':'); "
    "from nnkit.worker import main; main(sys.argv[1:4] + sys.argv[5:])"
)
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); True on success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_dead(procs: list, timeout: float) -> None:
    """Wait until every process is gone or a zombie (a stopped parent cannot reap it)."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.005)


def kill_tree(pid: int | None = None, *, include_self: bool = False) -> int:
    """SIGKILL every descendant of ``pid`` (default: this process), and ``pid``
    itself with ``include_self``; return how many processes were killed.

    ``pid`` is stopped first and killed last, so it starts nothing new and
    nothing below it is orphaned out of reach; the descendants are listed
    again until none is left, so processes forked while the others died are
    caught too.
    """
    try:
        root = psutil.Process(pid)
        if include_self:
            root.suspend()
    except psutil.Error:
        return 0
    killed = 0
    for _ in range(100):
        try:
            victims = [p for p in root.children(recursive=True) if _alive(p)]
        except psutil.Error:
            break
        if not victims:
            break
        for proc in victims:
            try:
                proc.kill()
            except psutil.Error:
                pass
        killed += len(victims)
        _wait_dead(victims, timeout=2)
    if include_self:
        try:
            root.kill()
            root.wait(timeout=5)
            killed += 1
        except (psutil.Error, psutil.TimeoutExpired):
            pass
    return killed


# ------------------------------------------------------------------ Landlock
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
    """The kernel's Landlock ABI version; 0 when it has none."""
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
    (ABI 6). Paths that do not exist are skipped. None without Landlock.
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
        raise GraderError(f"could not create a Landlock ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for paths, rights in ((read, _FS_READ), (write, all_fs)):
            for path in map(str, paths):
                try:
                    parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    allowed = rights if os.path.isdir(path) else rights & _FS_FILE_RIGHTS
                    rule = _PathBeneath(allowed, parent)
                    if libc.syscall(ctypes.c_long(_LANDLOCK_ADD_RULE), ctypes.c_int(fd),
                                    ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                    ctypes.c_uint32(0)) != 0:
                        raise GraderError(f"could not add {path} to the Landlock ruleset: "
                                          f"{os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _landlock_restrictor(fd: int):
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


def _describe_tiers() -> dict[str, str]:
    abi = landlock_abi()
    confined = (f"Landlock ABI {abi}: reads only the runtime and its package, writes only its scratch folder"
                + (", no TCP" if abi >= 4 else "") + (", signals only its own processes" if abi >= 6 else "")
                if abi else "no Landlock: sees the file system as its user does")
    return {
        "bwrap": "bwrap: namespaces (mount, pid, net, ipc), user nobody, rlimits",
        "setuid": f"setuid: user nobody, own session, rlimits, {confined} (bubblewrap unavailable)",
        "rlimits": f"rlimits: own session, rlimits, private temp folder, {confined} "
                   "(same user as the grader: not root)",
        "none (in-process)": "none: student code ran in the grading process (benchmark only)",
    }


TIER_DESCRIPTIONS = _describe_tiers()


def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--proc", "/proc",
             "--dev", "/dev", "--die-with-parent", "/bin/true"],
            capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def _bwrap_sizes_tmpfs() -> bool:
    """Can this bwrap cap the size of a tmpfs (``--size``, bubblewrap 0.8 and later)?"""
    try:
        usage = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--size" in usage.stdout + usage.stderr


def _world_executable(path: Path) -> bool:
    """Could ``nobody`` run this file (o+x on it and every folder above it)?"""
    path = Path(path).resolve()
    checks = [(p, 0o001) for p in path.parents] + [(path, 0o005)]
    return all(p.stat().st_mode & bits == bits for p, bits in checks)


def detect_tier(requested: str | None = None) -> str:
    """The strongest tier this machine allows (or ``requested``, if it is allowed)."""
    is_root = os.geteuid() == 0
    available = ["rlimits"]
    if is_root and _world_executable(_python_paths()["executable"]):
        available.insert(0, "setuid")
    if is_root and shutil.which("setpriv") and shutil.which("prlimit") and _bwrap_works():
        available.insert(0, "bwrap")
    if requested in (None, "auto"):
        return available[0]
    if requested not in available:
        raise GraderError(f"isolation tier {requested!r} is not available here (available: {available})")
    return requested


def _python_paths() -> dict[str, Path]:
    """Where the interpreter, its standard library and NumPy live."""
    import numpy

    numpy_dir = Path(numpy.__file__).resolve().parent
    return {
        "executable": Path(os.path.realpath(sys.executable)),
        "base_prefix": Path(sys.base_prefix).resolve(),
        "numpy": numpy_dir,
        "numpy_libs": numpy_dir.parent / "numpy.libs",
    }


def _bwrap_command(root: Path, limits: dict, fds: tuple[int, int], shared: Path | None = None) -> list[str]:
    paths = _python_paths()
    # /tmp is the worker's scratch folder, as in the other tiers: writable, and capped
    # since a tmpfs lives in memory. A bwrap that cannot cap it leaves it read-only.
    tmp = ["--perms", "1777", "--size", str(limits["tmp_bytes"])] if _bwrap_sizes_tmpfs() else []
    cmd = ["bwrap", "--die-with-parent", "--new-session",
           "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--proc", "/proc", "--dev", "/dev", *tmp, "--tmpfs", "/tmp"]
    made: set[str] = set()

    def bind(source: Path, dest: str) -> None:
        # bwrap creates missing parents as 0700, which nobody could not enter.
        for parent in reversed(Path(dest).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                cmd.extend(["--perms", "0755", "--dir", str(parent)])
        cmd.extend(["--ro-bind", str(source), dest])

    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            bind(path, str(path))
    cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    base = paths["base_prefix"]
    if not str(base).startswith("/usr/"):
        bind(base, str(base))
    if not str(paths["executable"]).startswith(("/usr/", str(base) + "/")):
        bind(paths["executable"], str(paths["executable"]))
    bind(paths["numpy"], "/sandbox/site/numpy")
    if paths["numpy_libs"].is_dir():
        bind(paths["numpy_libs"], "/sandbox/site/numpy.libs")
    for name in WORKER_MODULES:
        bind(KIT_DIR / name, f"/sandbox/kit/nnkit/{name}")
    bind(root, "/sandbox/sub")
    if shared is not None:
        bind(shared, "/sandbox/shared")
    cmd += ["--chdir", "/tmp", "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin"]
    for key, value in BLAS_ENV.items():
        cmd += ["--setenv", key, value]
    # The process limit is set after the switch to nobody: set before, the switch
    # would fail whenever other workers (of any submission) already hold that many.
    cmd += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            "prlimit", f"--nproc={limits['processes']}",
            str(paths["executable"]), "-I", "-S", "-c", BOOTSTRAP,
            str(fds[0]), str(fds[1]), "/sandbox/sub", "/sandbox/sub:/sandbox/kit:/sandbox/site",
            "/sandbox/shared" if shared is not None else ""]
    return cmd


def _plain_command(root: Path, site: Path, fds: tuple[int, int], *, drop_caps: bool,
                   shared: Path | None = None) -> list[str]:
    paths = _python_paths()
    cmd = [str(paths["executable"]), "-I", "-S", "-c", BOOTSTRAP,
           str(fds[0]), str(fds[1]), str(root), f"{root}:{site}", str(shared or "")]
    if drop_caps and shutil.which("setpriv"):
        # Still root (the rlimits tier run as root): drop every capability, so the
        # student's code cannot raise its own limits or act on the machine.
        cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *cmd]
    return cmd


def _plain_ruleset(root: Path, site: Path, scratch: Path, shared: Path | None = None) -> int | None:
    """The Landlock ruleset of a worker outside bwrap (None without Landlock)."""
    paths = _python_paths()
    read = [*SYSTEM_READ, paths["base_prefix"], paths["executable"], paths["numpy"], paths["numpy_libs"],
            site, root, *([shared] if shared is not None else [])]
    return landlock_ruleset(read, [scratch, "/dev/null"])


def _plain_site(workdir: Path) -> Path:
    """A folder holding only NumPy and the worker's modules, for tiers without bwrap."""
    paths = _python_paths()
    site = workdir / "site"
    (site / "nnkit").mkdir(parents=True, exist_ok=True)
    for name in WORKER_MODULES:
        shutil.copyfile(KIT_DIR / name, site / "nnkit" / name)
    for key, name in (("numpy", "numpy"), ("numpy_libs", "numpy.libs")):
        if paths[key].is_dir() and not (site / name).exists():
            (site / name).symlink_to(paths[key])
    for path in [site, *site.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return site


def _limits_preexec(limits: dict, *, drop_to_nobody: bool, nproc: bool = True, landlock_fd: int | None = None):
    restrict = _landlock_restrictor(landlock_fd) if landlock_fd is not None else None

    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if restrict is not None:
            restrict()
        if drop_to_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    return apply


def _widen_pipe(fd: int) -> None:
    """Grow a pipe's buffer to 1 MiB where allowed: the MNIST matrix crosses in far fewer writes."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass


class Worker:
    """One sandboxed worker process serving one staged configuration."""

    def __init__(self, root: Path, tier: str, limits: dict, workdir: Path, shared: Path | None = None):
        self.root = Path(root)
        self.shared = shared
        """Folder of the read-only files requests may refer to (nnkit.transport.load_shared)."""
        self.tier = tier
        self.limits = limits
        self.workdir = workdir
        self.output = bytearray()
        self.proc: subprocess.Popen | None = None
        self.imported: set[str] = set()
        """Graded modules the running worker has finished importing."""

    def start(self) -> None:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), "LANG": "C.UTF-8", **BLAS_ENV}
        scratch = self.workdir / "tmp"
        scratch.mkdir(exist_ok=True)
        scratch.chmod(0o777)
        ruleset = None
        if self.tier != "bwrap":
            site = _plain_site(self.workdir)
            ruleset = _plain_ruleset(self.root, site, scratch, self.shared)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        for fd in (req_w, resp_w):
            _widen_pipe(fd)
        if self.tier == "bwrap":
            cmd = _bwrap_command(self.root, self.limits, (req_r, resp_w), self.shared)
            preexec = _limits_preexec(self.limits, drop_to_nobody=False, nproc=False)
        else:
            cmd = _plain_command(self.root, site, (req_r, resp_w), shared=self.shared,
                                 drop_caps=self.tier == "rlimits" and os.geteuid() == 0)
            preexec = _limits_preexec(self.limits, drop_to_nobody=self.tier == "setuid", landlock_fd=ruleset)
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(req_r, resp_w),
                cwd=scratch, env=env | {"TMPDIR": str(scratch)}, preexec_fn=preexec, close_fds=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise GraderError(f"could not start the worker ({self.tier}): {exc}") from None
        finally:
            for fd in (req_r, resp_w, out_w) + ((ruleset,) if ruleset is not None else ()):
                os.close(fd)
        self.request_fd, self.response_fd = req_w, resp_r
        self.imported = set()
        self._drain = threading.Thread(target=self._drain_output, args=(out_r,), daemon=True)
        self._drain.start()

    def _drain_output(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(1 << 16)
                if not chunk:
                    return
                if len(self.output) < OUTPUT_CAP:
                    self.output += chunk[: OUTPUT_CAP - len(self.output)]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exchange(self, request: dict, timeout: float) -> dict:
        """Send one request (starting the process if needed) and return the answer."""
        if not self.alive:
            self.start()
        function = request["function"]
        deadline = time.monotonic() + timeout
        try:
            transport.send(self.request_fd, request)
            while True:
                answer = transport.receive(self.response_fd, timeout=max(0.0, deadline - time.monotonic()))
                if not (isinstance(answer, dict) and answer.get("event") == "imported"):
                    return answer
                self.imported.add(str(answer.get("module")))
        except transport.Timeout:
            self.stop()
            hanging = [m for m in import_chain(module_name(function))
                       if m not in self.imported and (self.root / (m.replace(".", "/") + ".py")).is_file()]
            raise StudentTimeout(function, timeout, importing=hanging[0] if hanging else None) from None
        except (transport.PeerClosed, BrokenPipeError):
            reason = self._exit_reason()
            self.stop()
            raise StudentCrash(function, reason) from None
        except transport.TransportError as exc:
            self.stop()
            raise StudentCrash(function, f"it sent a malformed answer ({exc})") from None

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "it closed its channel"
        if code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": "CPU time limit reached", "SIGXFSZ": "file size limit reached",
                   "SIGKILL": "killed (memory or process limit?)", "SIGSEGV": "segmentation fault"}
            return f"{name}: {why.get(name, 'terminated by a signal')}"
        return f"the process exited with code {code} (sys.exit or os._exit in your code?)"

    def stop(self) -> None:
        if self.proc is None:
            return
        for fd in (self.request_fd, self.response_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        kill_tree(self.proc.pid, include_self=True)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


TIMEOUTS_BEFORE_SKIPPING = 2
"""After this many timed-out calls of one function (in one configuration), later tests calling it
fail at once instead of waiting again: a hanging function must not eat the submission's budget."""


class SandboxBackend:
    """Backend running each configuration in its own sandboxed worker."""

    def __init__(self, roots: dict, spec: dict):
        self.roots = {part: Path(root) for part, root in roots.items()}
        self.limits = {**DEFAULT_LIMITS, **spec.get("limits", {})}
        self.tier = detect_tier(spec.get("tier"))
        self.shared = Path(spec["shared"]) if spec.get("shared") else None
        self.workdir = Path(tempfile.mkdtemp(prefix="nnkit-worker-"))
        self.workdir.chmod(0o755)
        become_subreaper()
        self.workers: dict = {}
        self.timeouts: dict[tuple, int] = {}
        self.hung_imports: set[bytes] = set()
        """Contents (hashed) of graded files whose import ran past the time limit: every later
        call that would import the same file fails at once, in any configuration."""
        """(staged folder, function) -> calls that timed out; see TIMEOUTS_BEFORE_SKIPPING."""

    def _worker(self, part) -> Worker:
        root = self.roots.get(part, self.roots.get(None))
        if root is None:
            raise GraderError(f"no staged package for part {part!r}")
        key = str(root)
        if key not in self.workers:
            self.workers[key] = Worker(root, self.tier, self.limits, self.workdir, self.shared)
        return self.workers[key]

    def warm(self) -> None:
        """Start a worker for every configuration now, without waiting for them: each imports
        NumPy (most of its start-up) while the test process collects and runs its first tests."""
        for part in self.roots:
            worker = self._worker(part)
            if not worker.alive:
                worker.start()

    def call(self, part, function, args, kwargs, timeout=None, keep_args=None) -> CallResult:
        request = {"op": "call", "function": function, "args": args, "kwargs": kwargs,
                   "keep_args": None if keep_args is None else [int(i) for i in keep_args]}
        result, seconds = self._exchange(part, request, timeout)
        result = _call_result(function, result)
        result.seconds = seconds  # measured here: the worker's own clock is the student's to tamper with
        return result

    def call_many(self, part, function, calls, timeout=None) -> list:
        request = {"op": "map", "function": function, "calls": [[args, kwargs] for args, kwargs in calls]}
        result, _ = self._exchange(part, request, timeout)
        if not isinstance(result, dict) or set(result) != {"values"} or not isinstance(result["values"], list) \
                or len(result["values"]) != len(calls):
            raise StudentCrash(function, "it sent a malformed answer")
        return result["values"]

    def _exchange(self, part, request: dict, timeout) -> tuple[object, float]:
        """Run one request in the worker of ``part``; return its result and the wall-clock seconds."""
        function = request["function"]
        timeout = float(timeout or self.limits["call_timeout"])
        worker = self._worker(part)
        filename = module_name(function).split(".")[-1] + ".py"
        if not (worker.root / "scratchnet" / filename).is_file():
            raise StudentError(function, "MissingFile", f"{filename} was not found in your submission")
        key = (str(worker.root), function)
        if self.timeouts.get(key, 0) >= TIMEOUTS_BEFORE_SKIPPING:
            raise StudentTimeout(function, timeout, earlier=self.timeouts[key])
        for dotted in import_chain(module_name(function)) if self.hung_imports else ():
            if self._file_key(worker.root, dotted) in self.hung_imports:
                raise StudentTimeout(function, timeout, importing=dotted, earlier=1)
        start = time.perf_counter()
        try:
            answer = worker.exchange(request, timeout)
        except StudentTimeout as exc:
            if exc.importing:
                self.hung_imports.add(self._file_key(worker.root, exc.importing))
            else:
                self.timeouts[key] = self.timeouts.get(key, 0) + 1
            raise
        finally:
            if not worker.alive:
                self._reap_orphans()
        seconds = time.perf_counter() - start
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            raise StudentCrash(function, "it sent a malformed answer")
        if not answer["ok"]:
            error = answer.get("error")
            if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                raise StudentCrash(function, "it sent a malformed error")
            if error.get("type") == "ContractViolation":
                raise StudentError(function, "ContractViolation", error["message"])
            raise_student_error(function, {"type": str(error.get("type", "Exception")), **error})
        return answer.get("result"), seconds

    @staticmethod
    def _file_key(root: Path, dotted: str) -> bytes:
        path = Path(root) / (dotted.replace(".", "/") + ".py")
        return hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b""

    def _reap_orphans(self) -> None:
        """Kill processes that detached from a worker that is gone (they re-parented to us)."""
        live = {w.proc.pid for w in self.workers.values() if w.alive}
        for child in psutil.Process().children():
            if child.pid not in live:
                kill_tree(child.pid, include_self=True)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        kill_tree()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _call_result(function: str, result) -> CallResult:
    fields = {"value", "args", "kwargs", "rng_state", "warnings", "seconds"}
    if not isinstance(result, dict) or set(result) != fields:
        raise StudentCrash(function, "it sent a malformed answer")
    if not isinstance(result["args"], tuple) or not isinstance(result["kwargs"], dict):
        raise StudentCrash(function, "it sent a malformed answer")
    warnings = result["warnings"]
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise StudentCrash(function, "it sent malformed warnings")
    seconds = result["seconds"]
    if not isinstance(seconds, (int, float)):
        raise StudentCrash(function, "it sent a malformed duration")
    return CallResult(value=result["value"], args=result["args"], kwargs=result["kwargs"],
                      rng_state=result["rng_state"], warnings=warnings, seconds=float(seconds))
