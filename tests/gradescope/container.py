"""A container that behaves like Gradescope's, for the kit's own tests.

Gradescope builds an image from ``autograder.zip`` by running ``setup.sh``
as root, then runs ``/autograder/run_autograder`` as root in a fresh Docker
container for each submission: Docker's default capabilities (no
``CAP_SYS_ADMIN``), Docker's default seccomp profile (no namespaces, no
mounts), 768 MB of memory and half a CPU by default. This module rebuilds
that from pieces a Debian machine has:

- the image's base: a Debian root file system made once with ``mmdebstrap``
  and cached under ``build/`` by a key of its inputs (``base_rootfs``);
- each container: an overlay of the image on that base, in a private mount
  namespace (``unshare``), entered with bubblewrap as root with Docker's
  capability set, a seccomp program like Docker's for namespaces
  (``seccomp_profile.py``), its own PID, IPC and UTS namespaces and a 64 MB
  ``/dev/shm``;
- the limits: a memory and a CPU cgroup (v1 or v2) where this machine lets
  us make one; ``Limits.applied`` says which were.

It differs from Docker in what does not matter to grading: the network is the
host's (setup.sh needs the package registries), and bubblewrap sets
``no_new_privs``, which Docker does not (the kit sets it itself before
Landlock, and runs no setuid program).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
"""What Gradescope's base image has that setup.sh relies on (its apt-get install is then quick)."""
DOCKER_CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                       "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
"""Docker's default capability set (moby's oci/caps/defaults.go)."""
MEMORY_BYTES = 768 << 20
CPU_SHARE = 0.5
"""Gradescope's default limits: 768 MB and 1/2 vCPU."""
SHM_BYTES = 64 << 20
"""Docker's default /dev/shm."""
HERE = Path(__file__).resolve().parent
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""Bound into the container over its own, so pip trusts what this machine trusts."""
SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter with Debian's python3-seccomp, which compiles the seccomp program."""


class ContainerError(RuntimeError):
    """The container could not be built or run (not a grading result)."""


def tools_missing() -> list[str]:
    """What this machine lacks to run the container (empty: everything is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("mmdebstrap", "bwrap", "unshare", "mount"):
        if shutil.which(tool) is None:
            missing.append(tool)
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        missing.append(f"{SYSTEM_PYTHON} with the seccomp module (Debian's python3-seccomp)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("overlayfs")
    return missing


# ------------------------------------------------------------------ the base image


def rootfs_key() -> str:
    """The cache key of the base root file system: everything that decides its content."""
    version = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True).stdout.strip()
    return hashlib.sha256(json.dumps([SUITE, MIRROR, sorted(PACKAGES), "minbase", version]).encode()
                          ).hexdigest()[:16]


def base_rootfs(cache: Path) -> Path:
    """A Debian root file system with PACKAGES, built once under ``cache`` and reused."""
    target = Path(cache) / f"rootfs-{SUITE}-{rootfs_key()}"
    if (target / "etc" / "os-release").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="rootfs-partial-", dir=cache))
    partial.rmdir()
    done = subprocess.run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), "--quiet",
                           SUITE, str(partial), MIRROR], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ContainerError(f"mmdebstrap failed:\n{done.stderr[-3000:]}")
    partial.rename(target)
    for old in cache.glob(f"rootfs-{SUITE}-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def seccomp_program(folder: Path, landlock: bool) -> Path:
    """The compiled seccomp program (BPF) of Docker's profile, with or without Landlock allowed."""
    path = Path(folder) / f"seccomp{'' if landlock else '-no-landlock'}.bpf"
    if not path.is_file():
        cmd = [SYSTEM_PYTHON, str(HERE / "seccomp_profile.py"), str(path)] + ([] if landlock else ["--no-landlock"])
        subprocess.run(cmd, check=True, capture_output=True)
    return path


# ------------------------------------------------------------------ limits


@dataclass
class Limits:
    """The memory and CPU cgroups of one container, where this machine allows them."""

    name: str
    memory_bytes: int = MEMORY_BYTES
    cpu_share: float = CPU_SHARE
    applied: list[str] = field(default_factory=list)
    """What was really applied, e.g. ["memory 768 MB (cgroup v1)", "cpu 0.5 (cgroup v1)"]."""
    folders: list[Path] = field(default_factory=list)
    _peak: Path | None = None

    def create(self) -> "Limits":
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").is_file():  # v2
            folder = root / self.name
            try:
                folder.mkdir()
                self.folders.append(folder)
                (folder / "memory.max").write_text(str(self.memory_bytes))
                (folder / "memory.swap.max").write_text("0")
                self.applied.append(f"memory {self.memory_bytes >> 20} MB (cgroup v2)")
                self._peak = folder / "memory.peak"
                (folder / "cpu.max").write_text(f"{int(self.cpu_share * 100000)} 100000")
                self.applied.append(f"cpu {self.cpu_share:g} (cgroup v2)")
            except OSError:
                pass
            return self
        memory, cpu = root / "memory" / self.name, root / "cpu" / self.name
        try:
            memory.mkdir()
            self.folders.append(memory)
            (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                (memory / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
            self.applied.append(f"memory {self.memory_bytes >> 20} MB (cgroup v1)")
            self._peak = memory / "memory.max_usage_in_bytes"
        except OSError:
            pass
        try:
            cpu.mkdir()
            self.folders.append(cpu)
            (cpu / "cpu.cfs_period_us").write_text("100000")
            (cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpu_share * 100000)))
            self.applied.append(f"cpu {self.cpu_share:g} (cgroup v1)")
        except OSError:
            pass
        return self

    def enter(self) -> None:
        """Move the calling process into every cgroup made (a preexec function)."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def processes(self) -> list[int]:
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return sorted(found)

    def processes_after(self, seconds: float) -> list[int]:
        """The processes still in the cgroups ``seconds`` after the container's end (the kernel
        kills a PID namespace's processes when its first process ends, but not instantly)."""
        deadline = time.monotonic() + seconds
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.processes()

    def peak_bytes(self) -> int | None:
        try:
            return int(self._peak.read_text()) if self._peak is not None else None
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        for folder in self.folders:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (folder / name).read_text().splitlines():
                        if line.split()[0] == key:
                            return int(line.split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        return 0

    def remove(self) -> None:
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


# ------------------------------------------------------------------ containers

INSPECT = r"""
import json, os, sys
mine = {os.getpid(), os.getppid(), 1}
procs = []
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) not in mine:
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            procs.append(f"{pid}: {cmd[:160]}")
stamp = os.stat("/autograder/.started").st_mtime
files = []
for top in ("/tmp", "/var/tmp", "/dev/shm", "/nonexistent", "/home", "/run/lock"):
    for folder, dirs, names in os.walk(top):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_mtime >= stamp or st.st_ctime >= stamp:
                files.append([path, st.st_size])
json.dump({"processes": procs, "files": files}, open("/autograder/.inspect.json", "w"))
"""
"""Run in the container after run_autograder: what is still running, and what was written outside the
autograder's own folders since the run started."""


@dataclass
class Run:
    """One run of run_autograder in a fresh container."""

    name: str
    results: dict | None
    returncode: int
    seconds: float
    peak_bytes: int | None
    limits: list[str]
    oom_kills: int
    left_running: list[str]
    """Processes of the container still running after run_autograder returned."""
    left_files: list[tuple[str, int]]
    """Files written outside /autograder during the run, still there after it: (path, bytes)."""
    processes_after_exit: list[int]
    """Processes still in the container's cgroups once the container is gone."""
    log: str

    @property
    def score(self) -> float | None:
        return None if self.results is None else float(self.results["score"])


class Gradescope:
    """An autograder image built from a zip, and the containers that grade with it."""

    def __init__(self, workdir: Path, rootfs: Path, *, pip_cache: Path | None = None):
        self.workdir = Path(workdir)
        self.rootfs = Path(rootfs)
        self.pip_cache = pip_cache
        self.image = self.workdir / "image"
        self._count = 0
        self._lock = threading.Lock()
        self.setup_seconds: float | None = None
        self.setup_log = ""

    # The overlay is mounted in a private mount namespace that ends with the container.
    def _command(self, lowers: list[Path], upper: Path, script: str, extra_binds=()) -> list[str]:
        merged, work = upper.parent / "merged", upper.parent / "work"
        merged.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
        bwrap = ["bwrap", "--bind", str(merged), "/", "--proc", "/proc", "--dev", "/dev",
                 "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
                 "--ro-bind", "/sys", "/sys",  # as Docker: the cgroup limits can be read
                 "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf",
                 # This machine's certificate authorities: the registries may be reached through a proxy.
                 "--ro-bind", HOST_CA_BUNDLE, HOST_CA_BUNDLE,
                 "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "gradescope",
                 "--die-with-parent", "--cap-drop", "ALL"]
        for cap in DOCKER_CAPABILITIES:
            bwrap += ["--cap-add", cap]
        for source, dest in extra_binds:
            bwrap += ["--bind", str(source), dest]
        bwrap += ["--seccomp", "{seccomp_fd}", "--chdir", "/autograder", "/bin/bash", "-c", script]
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                'mount -t overlay overlay -o "$0" "$1" && shift && exec "$@"', options, str(merged), *bwrap]

    def _spawn(self, cmd: list[str], seccomp: Path, limits: Limits | None, timeout: float) -> tuple[int, str]:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "PIP_CERT": HOST_CA_BUNDLE,
               **{k: v for k, v in os.environ.items() if k in ("PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT")}}
        with open(seccomp, "rb") as program:
            cmd = [a.replace("{seccomp_fd}", str(program.fileno())) for a in cmd]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    pass_fds=(program.fileno(),), start_new_session=True,
                                    preexec_fn=limits.enter if limits is not None else None)
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                out, _ = proc.communicate()
                return -9, out.decode(errors="replace") + f"\n[killed after {timeout:g} s]"
        return proc.returncode, out.decode(errors="replace")

    def build(self, zip_path: Path, *, seccomp: Path, edit=None, timeout: float = 1200) -> None:
        """Unpack ``zip_path`` into /autograder/source and run setup.sh there, as Gradescope
        builds its image (as root, Docker's capabilities and seccomp, no memory limit).
        ``edit(source)`` may change the unpacked source first, as an instructor would."""
        if self.image.exists():
            shutil.rmtree(self.image)
        upper = self.image / "upper"
        source = upper / "autograder" / "source"
        source.mkdir(parents=True)
        _unzip(zip_path, source)
        if edit is not None:
            edit(source)
        binds = []
        if self.pip_cache is not None:
            self.pip_cache.mkdir(parents=True, exist_ok=True)
            (upper / "root" / ".cache" / "pip").mkdir(parents=True)
            binds.append((self.pip_cache, "/root/.cache/pip"))
        script = ("set -e; cp /autograder/source/run_autograder /autograder/run_autograder; "
                  "mkdir -p /autograder/submission /autograder/results; "
                  "cd /autograder/source && bash ./setup.sh")
        start = time.monotonic()
        code, log = self._spawn(self._command([self.rootfs], upper, script, binds), seccomp, None, timeout)
        self.setup_seconds = time.monotonic() - start
        self.setup_log = log
        if code != 0:
            raise ContainerError(f"setup.sh failed with code {code}:\n{log[-4000:]}")

    def run(self, submission: Path, *, seccomp: Path, limits: bool = True, timeout: float = 900) -> Run:
        """Grade ``submission`` (a folder, or a .zip unpacked as Gradescope does) in a fresh container."""
        with self._lock:
            self._count += 1
            number = self._count
        name = Path(submission).name
        folder = self.workdir / f"run-{number}"
        upper = folder / "upper"
        target = upper / "autograder" / "submission"
        target.mkdir(parents=True)
        if Path(submission).is_dir():  # symlinks and named pipes as they are
            subprocess.run(["cp", "-a", f"{submission}/.", str(target)], check=True)
        else:
            _unzip(Path(submission), target)
        (upper / "autograder" / "results").mkdir()
        cgroup = Limits(f"nnkit-gradescope-{os.getpid()}-{number}").create() if limits else None
        script = ("touch /autograder/.started; sleep 0.01; "
                  "/autograder/run_autograder; code=$?; "
                  f"python3 -c {_shell_quote(INSPECT)}; exit $code")
        start = time.monotonic()
        try:
            code, log = self._spawn(self._command([self.image / "upper", self.rootfs], upper, script),
                                    seccomp, cgroup, timeout)
            seconds = time.monotonic() - start
            results_path = upper / "autograder" / "results" / "results.json"
            results = json.loads(results_path.read_text()) if results_path.is_file() else None
            inspect_path = upper / "autograder" / ".inspect.json"
            inspected = json.loads(inspect_path.read_text()) if inspect_path.is_file() else {
                "processes": ["(inspection did not run)"], "files": []}
            after = cgroup.processes_after(seconds=10.0) if cgroup else []
            return Run(name=name, results=results, returncode=code, seconds=seconds,
                       peak_bytes=cgroup.peak_bytes() if cgroup else None,
                       limits=list(cgroup.applied) if cgroup else [], oom_kills=cgroup.oom_kills() if cgroup else 0,
                       left_running=inspected["processes"],
                       left_files=[tuple(f) for f in inspected["files"]],
                       processes_after_exit=after, log=log)
        finally:
            if cgroup is not None:
                cgroup.remove()
            shutil.rmtree(folder, ignore_errors=True)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _unzip(zip_path: Path, dest: Path) -> None:
    """Unpack like Gradescope: modes kept (setup.sh and run_autograder stay executable)."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest / info.filename, mode)
