"""Run student code in a sandboxed worker process, never beside the assertions.

Tiers, strongest first (``detect_tier``):

- ``bwrap``: the grader runs as root and bubblewrap works. The worker gets its
  own mount, PID, network, IPC and UTS namespaces; its file system holds only
  the system libraries, the Python runtime, NumPy, the worker's own modules
  and the staged package of the configuration under test (read-only), plus
  a private /tmp of at most ``tmp_bytes`` (its scratch folder); it runs as
  the unprivileged user ``nobody``, whose process limit is set after the
  switch so other workers' processes cannot keep it from starting; when
  bwrap goes, the whole namespace goes. Where ``forking_available``, one
  bwrap sandbox serves a whole submission instead: its ``Zygote`` imports
  NumPy once and forks each configuration's worker, which enters its own
  user, network and IPC namespaces and Landlock domain before it runs any
  student code (see nnkit.sandbox.worker.zygote).
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
Landlock they see the file system as their user does; reports say so, and
in the rlimits tier warn (``tier_warning``).

Every tier: address-space, CPU-time, process-count, file-size and open-file
limits; BLAS pinned to one thread; output captured up to a cap and never
read as results; on timeout, crash or close the process tree is killed (the
grader process is a child subreaper, so even processes that detach with
setsid are found and killed).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import nnkit
from nnkit.sandbox import transport
from nnkit.sandbox.invoke import import_chain, module_name
from nnkit.sandbox.landlock import SYSTEM_READ, landlock_abi, landlock_restrictor
from nnkit.sandbox.landlock import landlock_ruleset as _ruleset
from nnkit.grading.local import raise_student_error
from nnkit.sandbox.profiling import Profile
from nnkit.grading.proxy import CallResult, GraderError, StudentCrash, StudentError, StudentTimeout
from nnkit.grading.stage import roots_by_part
from nnkit.sandbox.worker import ISOLATION_FAILED

NOBODY = 65534
OUTPUT_CAP = 64 * 1024
KIT_DIR = Path(nnkit.__file__).resolve().parent
WORKER_MODULES = ("__init__.py", "course/__init__.py", "course/contract.py", "sandbox/__init__.py", "sandbox/invoke.py",
                  "sandbox/landlock.py", "sandbox/profiling.py", "sandbox/transport.py", "sandbox/worker.py")
"""The kit's modules the worker imports (standard library and numpy only), below nnkit/."""


def worker_modules() -> dict[str, Path]:
    """What a worker's nnkit/ holds: path below nnkit/ -> source file. The kit's WORKER_MODULES,
    and the active assignment's contract as course/assignment_contract.py (nnkit.course.contract)."""
    from nnkit.course.contract import contract_path

    files = {name: KIT_DIR / name for name in WORKER_MODULES}
    files["course/assignment_contract.py"] = contract_path()
    return files
DEFAULT_LIMITS = {
    "call_timeout": 10.0,
    "memory_bytes": 3 << 30,
    "cpu_seconds": 600,
    "processes": 64,
    "file_bytes": 16 << 20,
    "open_files": 256,
    "tmp_bytes": 64 << 20,
}
GRADER_RESERVE = 100 << 20
"""Memory left to the grader's own processes when a container's limit caps what a worker may use."""
BLAS_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
"""One BLAS thread per process: two parallel jobs with two threads each train several times slower."""
BLAS_ENV |= {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}
"""glibc would hand each mini-batch's arrays (about 200 KB) their own fresh mmap until its
adaptive threshold settles, which makes a fresh process's first MNIST epoch 2.5x slower."""
BOOTSTRAP = (
    "import sys; sys.path[:0] = sys.argv[4].split(':')\n"
    "try:\n"
    "    from nnkit.sandbox.worker import main\n"
    "except BaseException as exc:\n"
    "    import os; print(f'the worker could not import its own modules: {exc!r}', flush=True); os._exit(3)\n"
    "main(sys.argv[1:4] + sys.argv[5:])"
)
"""The worker's start: its own modules fail to import only by the grader's doing (exit code
ISOLATION_FAILED, reported as a grader error), before any student code runs."""
_PR_SET_CHILD_SUBREAPER = 36


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


def _describe_tiers(abi: int) -> dict[str, str]:
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


TIER_DESCRIPTIONS = _describe_tiers(landlock_abi())
UNCONFINED_DESCRIPTION = _describe_tiers(0)["rlimits"]
"""The weakest configuration: the rlimits tier without Landlock (macOS, kernels before 5.13,
NNKIT_NO_LANDLOCK=1)."""
UNCONFINED_WARNING = ("Warning: student code ran with resource limits only, with the grader's user's "
                      "access to files (no Landlock, no namespaces, no separate user).")
"""Said in every report of a submission graded in the weakest configuration."""
UNCONFINED_ADVICE = ("For grades that count, grade on Gradescope, or on Linux as root with bubblewrap "
                     "(see 'Grading on macOS or without root' in docs/instructor-guide.md).")
"""What the instructor's reports (make grade's summary, report.html) add to UNCONFINED_WARNING."""


def tier_warning(description: str) -> str:
    """UNCONFINED_WARNING when ``description`` (a TIER_DESCRIPTIONS value, as reports record
    it) is the weakest configuration's, else ""."""
    return UNCONFINED_WARNING if description == UNCONFINED_DESCRIPTION else ""


FORKING_DESCRIPTION = ("; one sandbox per submission, each part's worker forked into its own user, "
                       "network and IPC namespaces and Landlock domain")


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
    # Run as root, the rlimits worker must give up root's capabilities, which takes setpriv.
    available = ["rlimits"] if not is_root or shutil.which("setpriv") else []
    if is_root and _world_executable(_python_paths()["executable"]):
        available.insert(0, "setuid")
    if is_root and shutil.which("setpriv") and shutil.which("prlimit") and _bwrap_works():
        available.insert(0, "bwrap")
    if not available:
        raise GraderError("no isolation tier is available here: run as root, the grader needs setpriv "
                          "(util-linux) for the rlimits tier or a Python that user nobody can run for the "
                          "setuid tier; or run it as an ordinary user")
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


def _bwrap_command(root: Path, limits: dict, fds: tuple[int, int], shared: Path | None = None,
                   zygote: bool = False) -> list[str]:
    """The bwrap command of a worker serving ``root`` on ``fds`` (requests in, answers out);
    with ``zygote``, of a zygote serving every package under ``root`` on control socket fds[0]."""
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
    for name, source in worker_modules().items():
        bind(source, f"/sandbox/kit/nnkit/{name}")
    bind(root, "/sandbox/stage" if zygote else "/sandbox/sub")
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
            str(paths["executable"]), "-I", "-S", "-c", BOOTSTRAP]
    shared_arg = "/sandbox/shared" if shared is not None else ""
    if zygote:
        cmd += ["zygote", str(fds[0]), "-", "/sandbox/kit:/sandbox/site", shared_arg]
    else:
        cmd += [str(fds[0]), str(fds[1]), "/sandbox/sub", "/sandbox/sub:/sandbox/kit:/sandbox/site", shared_arg]
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


def landlock_ruleset(read: list, write: list) -> int | None:
    """nnkit.sandbox.landlock.landlock_ruleset, its failures raised as GraderError (fail closed)."""
    try:
        return _ruleset(read, write)
    except OSError as exc:
        raise GraderError(str(exc)) from None


def _plain_site(workdir: Path) -> Path:
    """A folder holding only NumPy and the worker's modules, for tiers without bwrap."""
    paths = _python_paths()
    site = workdir / "site"
    for name, source in worker_modules().items():
        (site / "nnkit" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, site / "nnkit" / name)
    for key, name in (("numpy", "numpy"), ("numpy_libs", "numpy.libs")):
        if paths[key].is_dir() and not (site / name).exists():
            (site / name).symlink_to(paths[key])
    for path in [site, *site.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return site


LIMITS_MAY_BE_REFUSED = not sys.platform.startswith("linux")
"""Off Linux, a limit the system refuses is left out rather than keeping every worker from
starting: macOS refuses an address-space limit (EINVAL), which it would not enforce anyway."""


def _set_limit(kind: int, soft: int, hard: int) -> None:
    try:
        resource.setrlimit(kind, (soft, hard))
    except (ValueError, OSError):
        if not LIMITS_MAY_BE_REFUSED:
            raise


def _limits_preexec(limits: dict, *, drop_to_nobody: bool, nproc: bool = True, landlock_fd: int | None = None):
    restrict = landlock_restrictor(landlock_fd) if landlock_fd is not None else None

    def apply():
        os.setsid()
        try:  # if memory runs out anyway, the kernel ends the worker, not the grader
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        _set_limit(resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"])
        _set_limit(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 5)
        _set_limit(resource.RLIMIT_FSIZE, limits["file_bytes"], limits["file_bytes"])
        _set_limit(resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"])
        _set_limit(resource.RLIMIT_CORE, 0, 0)
        if restrict is not None:
            restrict()
        if drop_to_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        if nproc:
            _set_limit(resource.RLIMIT_NPROC, limits["processes"], limits["processes"])
    return apply


def container_memory_limit() -> int | None:
    """The memory limit of the cgroup this process runs in (v1 or v2, the tightest of it and
    its ancestors), in bytes; None where there is none or it cannot be read."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = Path("/sys/fs/cgroup"), "memory.max"
        elif "memory" in controllers.split(","):
            base, name = Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"
        else:
            continue
        folder = Path(path)
        candidates += [base / p.relative_to("/") / name for p in [folder, *folder.parents]]
    limits = []
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except (OSError, ValueError):
            continue
        if text.isdigit() and int(text) < 1 << 50:  # "max", or v1's "unlimited" (a huge number)
            limits.append(int(text))
    return min(limits) if limits else None


def worker_memory_bytes(configured: int) -> int:
    """The address space a worker may use: ``configured``, or less where a container's memory
    limit (Gradescope's 768 MB, say) would otherwise let one worker exhaust it and bring the
    grader down with it. The worker then meets a MemoryError it can be told about."""
    limit = container_memory_limit()
    if limit is None:
        return configured
    return max(256 << 20, min(configured, limit - GRADER_RESERVE))


SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock", "/var/lock")
"""World-writable places every user can reach, where files outlive the process that wrote them."""


def remove_worker_files(uid: int = NOBODY, places=SHARED_WRITABLE, keep_prefix: str = "nnkit-") -> list[str]:
    """Remove what the workers' user ``uid`` left in the world-writable ``places`` and its home
    folder (the ``setuid`` tier without Landlock can write there); return what was removed.

    Only entries owned by ``uid`` go, so this is for a user that nothing but workers runs as
    (``nobody`` in a grading container). The grader's own folders (``keep_prefix``) are left
    to the grader, which removes them itself."""
    removed = []

    def sweep(folder: Path, depth: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            path = Path(entry.path)
            if info.st_uid == uid:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed.append(str(path))
                except OSError:
                    pass
            elif (entry.is_dir(follow_symlinks=False) and info.st_mode & 0o002 and depth < 4
                  and not entry.name.startswith(keep_prefix)):
                sweep(path, depth + 1)

    homes = []
    try:
        import pwd

        homes.append(pwd.getpwuid(uid).pw_dir)
    except (ImportError, KeyError):
        pass
    for place in [*places, *homes]:
        if Path(place).is_dir() and Path(place) != Path("/"):
            sweep(Path(place), 0)
    return removed


def _signal_reason(number: int) -> str:
    name = signal.Signals(number).name
    why = {"SIGXCPU": "CPU time limit reached", "SIGXFSZ": "file size limit reached",
           "SIGKILL": "killed (memory or process limit?)", "SIGSEGV": "segmentation fault"}
    return f"{name}: {why.get(name, 'terminated by a signal')}"


def _channel_pipes() -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(read, write) ends of a worker's request, answer and output pipes; the first two widened."""
    request, answer, output = os.pipe(), os.pipe(), os.pipe()
    for fd in (request[1], answer[1]):
        _widen_pipe(fd)
    return request, answer, output


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
        """Folder of the read-only files requests may refer to (nnkit.sandbox.transport.load_shared)."""
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
        (req_r, req_w), (resp_r, resp_w), (out_r, out_w) = _channel_pipes()
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
        self._connect(req_w, resp_r, out_r)

    def _connect(self, request_fd: int, response_fd: int, output_fd: int) -> None:
        """Talk to a freshly started process through these pipe ends; collect its output."""
        self.request_fd, self.response_fd = request_fd, response_fd
        self.imported = set()
        threading.Thread(target=_drain, args=(output_fd, self.output), daemon=True).start()

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
            return _signal_reason(-code)
        if code == ISOLATION_FAILED and not self.imported:
            raise GraderError("the worker could not start: " + bytes(self.output).decode(errors="replace")[-300:])
        return f"the process exited with code {code} (sys.exit or os._exit in your code?)"

    @property
    def host_pid(self) -> int | None:
        """The grader's child to keep when orphans are reaped (None when not running)."""
        return self.proc.pid if self.alive else None

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


class Zygote:
    """One bwrap sandbox per submission holding every staged configuration (read-only, under
    /sandbox/stage) and a process that has imported NumPy once and forks a worker per
    configuration (see nnkit.sandbox.worker.zygote for how each worker isolates itself)."""

    def __init__(self, stage: Path, limits: dict, workdir: Path, shared: Path | None, cpu: int | None = None):
        self.stage = Path(stage)
        self.cpu = cpu
        self.limits = limits
        self.workdir = workdir
        self.shared = shared
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.generation = 0
        """Bumped at every start: workers forked by an earlier zygote are gone."""
        self._forks = 0
        self.output = bytearray()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        cmd = _bwrap_command(self.stage, self.limits, (child.fileno(), -1), self.shared, zygote=True)
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(child.fileno(),),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, close_fds=True,
                preexec_fn=_limits_preexec(self.limits, drop_to_nobody=False, nproc=False))
        except (OSError, subprocess.SubprocessError) as exc:
            raise GraderError(f"could not start the sandbox: {exc}") from None
        finally:
            child.close()
            os.close(out_w)
        self.control = parent
        self.generation += 1
        threading.Thread(target=_drain, args=(out_r, self.output), daemon=True).start()

    def _ask(self, request: dict, fds=(), timeout: float = 20.0) -> dict:
        if not self.alive:
            raise GraderError("the sandbox's zygote is not running")
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()], list(fds))
            self.control.settimeout(timeout)
            answer = json.loads(self.control.recv(1 << 16) or b"null")
        except (OSError, ValueError) as exc:
            self.stop()
            raise GraderError(f"the sandbox's zygote did not answer: {exc}") from None
        if not isinstance(answer, dict):
            self.stop()
            raise GraderError("the sandbox's zygote stopped"
                              + (f": {bytes(self.output).decode(errors='replace')[-300:]}" if self.output else ""))
        return answer

    def fork(self, root: Path, fds: tuple[int, int, int]) -> int:
        """Fork a worker for the configuration in ``root`` (a folder of the stage); its pid."""
        paths = _python_paths()
        inside = f"/sandbox/stage/{Path(root).relative_to(self.stage)}"
        self._forks += 1
        scratch = f"/tmp/w{self._forks}"
        read = [*SYSTEM_READ, str(paths["base_prefix"]), str(paths["executable"]), "/sandbox/kit", "/sandbox/site",
                inside, *(["/sandbox/shared"] if self.shared is not None else [])]
        request = {"op": "fork", "root": inside, "scratch": scratch, "read": read, "write": [scratch, "/dev/null"],
                   "cpu": self.cpu}
        if not self.alive:
            self.start()
        answer = self._ask(request, fds)
        if "error" in answer:
            # Processes the student's code left behind fill the process limit: end them all.
            self.stop()
            self.start()
            answer = self._ask(request, fds)
        if not isinstance(answer.get("pid"), int):
            self.stop()
            raise GraderError("the sandbox's zygote sent a malformed answer")
        return answer["pid"]

    def status(self, pid: int) -> dict:
        """How a forked worker ended: {"exit": code}, {"signal": n} or {"running": True}."""
        return self._ask({"op": "status", "pid": pid}, timeout=5.0)

    def stop(self) -> None:
        """Kill the whole sandbox: the zygote and every worker it forked."""
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.proc is not None:
            kill_tree(self.proc.pid, include_self=True)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


def _drain(fd: int, sink: bytearray) -> None:
    """Keep the first OUTPUT_CAP bytes written to pipe ``fd`` in ``sink``; discard the rest."""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(1 << 16)
            if not chunk:
                return
            if len(sink) < OUTPUT_CAP:
                sink += chunk[: OUTPUT_CAP - len(sink)]


class ForkedWorker(Worker):
    """A worker forked by the submission's zygote. Any failure (timeout, crash) stops the
    whole sandbox, so nothing the student's code started survives; the next call forks again."""

    def __init__(self, root: Path, zygote: Zygote, limits: dict):
        super().__init__(root, "bwrap", limits, zygote.workdir, zygote.shared)
        self.zygote = zygote
        self.pid: int | None = None
        self.generation = -1

    def start(self) -> None:
        (req_r, req_w), (resp_r, resp_w), (out_r, out_w) = _channel_pipes()
        try:
            self.pid = self.zygote.fork(self.root, (req_r, resp_w, out_w))
        except BaseException:
            for fd in (req_w, resp_r, out_r):
                os.close(fd)
            raise
        finally:
            for fd in (req_r, resp_w, out_w):
                os.close(fd)
        self.generation = self.zygote.generation
        self._connect(req_w, resp_r, out_r)

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.zygote.alive and self.generation == self.zygote.generation

    @property
    def host_pid(self) -> int | None:
        return self.zygote.proc.pid if self.alive else None

    def _exit_reason(self) -> str:
        try:
            status = self.zygote.status(self.pid)
        except GraderError:
            return "it closed its channel"
        if "signal" in status:
            return _signal_reason(int(status["signal"]))
        if "exit" in status:
            if status["exit"] == ISOLATION_FAILED:
                raise GraderError("a forked worker could not isolate itself: "
                                  + bytes(self.output).decode(errors="replace")[-300:])
            return f"the process exited with code {status['exit']} (sys.exit or os._exit in your code?)"
        return "it closed its channel"

    def stop(self) -> None:
        if self.pid is None:
            return
        for fd in (self.request_fd, self.response_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.pid = None
        self.zygote.stop()


TIMEOUTS_BEFORE_SKIPPING = 2
"""After this many timed-out calls of one function (in one configuration), later tests calling it
fail at once instead of waiting again: a hanging function must not eat the submission's budget."""


class SandboxBackend:
    """Backend running each configuration in its own sandboxed worker."""

    def __init__(self, roots: dict, spec: dict):
        self.roots = {part: Path(root) for part, root in roots.items()}
        self.limits = {**DEFAULT_LIMITS, **spec.get("limits", {})}
        self.limits["memory_bytes"] = worker_memory_bytes(self.limits["memory_bytes"])
        self.tier = detect_tier(spec.get("tier"))
        self.shared = Path(spec["shared"]) if spec.get("shared") else None
        self.cpu = spec.get("cpu")
        """The processor of the test process, which forked workers join (see runner._cpu_slots)."""
        stages = {Path(root).parent for root in self.roots.values()}
        self.zygote: Zygote | None = None
        """With ``spec["zygote"]`` (see forking_available) in the bwrap tier: one sandbox for
        every configuration, whose workers are forked instead of each importing NumPy."""
        self.workdir = Path(tempfile.mkdtemp(prefix="nnkit-worker-"))
        self.workdir.chmod(0o755)
        become_subreaper()
        if spec.get("zygote") and self.tier == "bwrap" and len(stages) == 1:
            self.zygote = Zygote(stages.pop(), self.limits, self.workdir, self.shared, self.cpu)
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
            self.workers[key] = (ForkedWorker(root, self.zygote, self.limits) if self.zygote is not None
                                 else Worker(root, self.tier, self.limits, self.workdir, self.shared))
        return self.workers[key]

    def warm(self) -> None:
        """Start a worker for every configuration now, without waiting for them: each imports
        NumPy (most of its start-up) while the test process collects and runs its first tests.
        With a zygote, only the zygote starts (it forks each worker in a few milliseconds)."""
        if self.zygote is not None:
            if not self.zygote.alive:
                self.zygote.start()
            return
        for part in self.roots:
            worker = self._worker(part)
            if not worker.alive:
                worker.start()

    def call(self, part, function, args, kwargs, timeout=None, keep_args=None, measure=None) -> CallResult:
        request = {"op": "call", "function": function, "args": args, "kwargs": kwargs,
                   "keep_args": None if keep_args is None else [int(i) for i in keep_args], "measure": measure}
        result, seconds = self._exchange(part, request, timeout)
        result = _call_result(function, result)
        result.seconds = seconds  # measured here: the worker's own clock is the student's to tamper with
        return result

    def call_many(self, part, function, calls, timeout=None, item=None) -> list:
        request = {"op": "map", "function": function, "calls": [[args, kwargs] for args, kwargs in calls],
                   "item": None if item is None else int(item)}
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
            if error.get("grader") is True:  # the worker ends after such an answer: start afresh next time
                worker.stop()
                raise GraderError(f"{function}(): {error['message']}")
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
        live = {w.host_pid for w in self.workers.values() if w.alive}
        for child in psutil.Process().children():
            if child.pid not in live:
                kill_tree(child.pid, include_self=True)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.zygote is not None:
            self.zygote.stop()
        kill_tree()
        shutil.rmtree(self.workdir, ignore_errors=True)


EARLY: dict = {}
"""The backend start_early made, by the path of its grading spec (taken over by nnkit.grading.harness)."""


def start_early(argv: list[str]) -> None:
    """Start the sandbox of ``--grading-spec SPEC`` in ``argv`` now, before the test process imports
    pytest and collects the tests (nnkit.grading.runner's test command calls this first)."""
    if "--grading-spec" not in argv[:-1]:
        return
    path = argv[argv.index("--grading-spec") + 1]
    spec = json.loads(Path(path).read_text())
    if spec.get("backend") != "sandbox":
        return
    try:
        backend = SandboxBackend(roots_by_part(spec["roots"]), spec)
        backend.warm()
    except GraderError:
        return  # nnkit.grading.harness tries again, and reports the failure in every test
    finally:
        keep_on_cpu(spec.get("cpu"))  # after the zygote started: its start-up runs on another processor
    EARLY[str(Path(path).resolve())] = backend


def keep_on_cpu(cpu: int | None) -> None:
    """Keep this process (and the processes it starts) on processor ``cpu``, where supported."""
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {int(cpu)})
    except (AttributeError, OSError, ValueError):
        pass


@functools.lru_cache(maxsize=None)
def forking_available(tier: str) -> bool:
    """Can workers be forked from one zygote per submission here, each in its own user, network
    and IPC namespaces and Landlock domain (ABI 6 or later, for signals)? Tried for real once."""
    if tier != "bwrap" or landlock_abi() < 6:
        return False
    with tempfile.TemporaryDirectory(prefix="nnkit-probe-") as tmp:
        stage = Path(tmp) / "stage"
        (stage / "probe" / "scratchnet").mkdir(parents=True)
        for path in [Path(tmp), *Path(tmp).rglob("*")]:
            path.chmod(0o755)
        zygote = Zygote(stage, DEFAULT_LIMITS, Path(tmp), None)
        worker = ForkedWorker(stage / "probe", zygote, DEFAULT_LIMITS)
        try:
            worker.start()
            transport.send(worker.request_fd, {"op": "ping"})
            answer = transport.receive(worker.response_fd, timeout=20)
            return bool(answer.get("ok")) and answer["result"].get("uid") == NOBODY
        except (GraderError, transport.TransportError, OSError):
            return False
        finally:
            worker.stop()
            zygote.stop()


def _call_result(function: str, result) -> CallResult:
    fields = {"value", "args", "kwargs", "rng_state", "warnings", "seconds", "profile"}
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
    try:
        profile = None if result["profile"] is None else Profile.from_plain(result["profile"])
    except ValueError:
        raise StudentCrash(function, "it sent a malformed profile") from None
    return CallResult(value=result["value"], args=result["args"], kwargs=result["kwargs"],
                      rng_state=result["rng_state"], warnings=warnings, seconds=float(seconds), profile=profile)
