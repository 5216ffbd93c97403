"""Can `make grade` be interrupted safely, refused while another grader writes to OUT, and resumed?"""
import copy
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nnkit.grading import fingerprint

from nnkit.grading import outlock
from nnkit.course.config import load_config
from nnkit.grading.interrupt import Interrupted, Stop
from nnkit.grading.runner import Grader
from nnkit.course.config import TESTS_DIR, EXAMPLES_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = EXAMPLES_DIR
BATCH = {"ada": "ada", "ada-again": "ada", "cleo": "cleo", "dev": "dev", "template": "template"}
"""Submission name -> bundled example it copies (the quick ones: none trains on MNIST for long)."""
STOP_SECONDS = 10
"""Every process of the batch must be gone this long after SIGINT (the grader itself may still be
writing the report)."""


def _grader(tmp_path, secret="course-secret-for-tests") -> Grader:
    """A Grader with the kit's configuration, not prepared (fingerprints need no manifest)."""
    tests = tmp_path / "tests"
    if not tests.exists():
        shutil.copytree(TESTS_DIR, tests,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return Grader(config=load_config(), secret=secret, reference_pkg=ROOT / "solutions" / "scratchnet",
                  tests_dir=tests, cache_dir=tmp_path / "cache", tier="rlimits")


def _copy_example(name: str, dest: Path) -> Path:
    source = EXAMPLES / name
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)
    return dest


# ------------------------------------------------------------------ fingerprints


def test_submission_digest_follows_every_file(tmp_path):
    """Does a submission's hash change when a file changes, is added or renamed, and only then?"""
    folder = _copy_example("ada", tmp_path / "ada")
    first = fingerprint.submission_digest(folder)
    assert fingerprint.submission_digest(folder) == first
    with open(folder / "forward.py", "a") as f:
        f.write("\n# one more line\n")
    edited = fingerprint.submission_digest(folder)
    (folder / "notes.txt").write_text("extra")
    added = fingerprint.submission_digest(folder)
    (folder / "notes.txt").rename(folder / "notes.md")
    renamed = fingerprint.submission_digest(folder)
    assert len({first, edited, added, renamed}) == 4


def test_zip_digest_is_its_bytes(tmp_path):
    """Is a zip submission hashed by its bytes?"""
    zipped = _copy_example("ben.zip", tmp_path / "ben.zip")
    first = fingerprint.submission_digest(zipped)
    with open(zipped, "ab") as f:
        f.write(b"\0")
    assert fingerprint.submission_digest(zipped) not in (None, first)


def test_digest_neither_follows_symlinks_nor_opens_fifos(tmp_path):
    """Is a symlink hashed by its target (never followed) and a FIFO by its kind (never opened,
    which would hang)?"""
    folder = _copy_example("ada", tmp_path / "ada")
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    (folder / "link.py").symlink_to(outside)
    os.mkfifo(folder / "pipe.py")
    first = fingerprint.submission_digest(folder)
    assert first is not None
    outside.write_text("x = 2\n")
    assert fingerprint.submission_digest(folder) == first, "the symlink's target was followed"
    (folder / "link.py").unlink()
    (folder / "link.py").symlink_to(tmp_path / "elsewhere.py")
    assert fingerprint.submission_digest(folder) != first, "the symlink's target path was not hashed"


def test_unreadable_submission_has_no_key(tmp_path):
    """Is a submission that cannot be read keyed None (graded every time) rather than an error?"""
    assert fingerprint.submission_digest(tmp_path / "missing.zip") is None
    assert fingerprint.key(None, {"tests": "x"}) is None
    assert not fingerprint.is_current(tmp_path, None)


def test_key_follows_secret_tests_config_and_kit(tmp_path):
    """Does the key change with the course secret, a test file, the grading options and the
    reference package (part of the kit's version), and stay the same when nothing changed?"""
    grader = _grader(tmp_path)
    digest = fingerprint.submission_digest(EXAMPLES / "ada")
    base = fingerprint.key(digest, fingerprint.grader_inputs(grader))
    assert fingerprint.key(digest, fingerprint.grader_inputs(_grader(tmp_path))) == base

    changed = {"secret": fingerprint.grader_inputs(_grader(tmp_path, secret="another-course-secret"))}
    skipping = copy.copy(grader)
    skipping.skip_files = ("test_mnist.py",)
    changed["skip_files"] = fingerprint.grader_inputs(skipping)
    other_tier = copy.copy(grader)
    other_tier.tier = "bwrap"
    changed["tier"] = fingerprint.grader_inputs(other_tier)
    edited_reference = copy.copy(grader)
    edited_reference.reference_pkg = tmp_path / "scratchnet"
    shutil.copytree(grader.reference_pkg, edited_reference.reference_pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert fingerprint.grader_inputs(edited_reference) == fingerprint.grader_inputs(grader)
    with open(edited_reference.reference_pkg / "forward.py", "a") as f:
        f.write("\n# a comment\n")
    changed["reference"] = fingerprint.grader_inputs(edited_reference)
    with open(grader.tests_dir / "hidden" / "test_hidden_forward.py", "a") as f:
        f.write("\n# reworded\n")
    changed["tests"] = fingerprint.grader_inputs(grader)
    keys = {what: fingerprint.key(digest, inputs) for what, inputs in changed.items()}
    assert base not in keys.values(), [what for what, key in keys.items() if key == base]
    assert len(set(keys.values())) == len(keys)
    assert fingerprint.key(fingerprint.submission_digest(EXAMPLES / "cleo"), changed["tests"]) != keys["tests"]


def test_inputs_file_keeps_the_secret_out(tmp_path):
    """Does inputs.json hold the key and every input's hash but the secret's?"""
    grader = _grader(tmp_path)
    inputs = fingerprint.grader_inputs(grader)
    folder = tmp_path / "result"
    folder.mkdir()
    (folder / "result.json").write_text("{}")
    key = fingerprint.key("digest", inputs)
    fingerprint.write(folder, key, "digest", inputs)
    text = (folder / fingerprint.INPUTS_FILE).read_text()
    assert inputs["secret"] not in text and grader.secret not in text and inputs["tests"] in text
    assert fingerprint.is_current(folder, key)
    (folder / "result.json").unlink()
    assert not fingerprint.is_current(folder, key), "a folder without result.json was taken as complete"


def _result(kind: str):
    from nnkit.grading.results import SubmissionResult, TestResult

    test = TestResult(name="test_relu", part="activations", suite="public", max_score=1.0,
                      passed=kind == "passed", kind=kind)
    return SubmissionResult(submission="ada", tests=[test], tier="rlimits")


def test_result_folder_is_replaced_whole(tmp_path):
    """Does publishing a result replace the previous folder entirely, inputs.json included, and
    leave nothing in the staging folder?"""
    from nnkit.grading.runner import STAGING, _publish

    out = tmp_path / "out"
    (out / STAGING).mkdir(parents=True)
    (out / "ada").mkdir()
    (out / "ada" / "stale.txt").write_text("from an older kit")
    _publish(_result("passed"), out, {}, ("key", "digest"), {"tests": "t"})
    assert sorted(p.name for p in (out / "ada").iterdir()) == \
        ["feedback.md", fingerprint.INPUTS_FILE, "result.json", "results.json"]
    assert fingerprint.is_current(out / "ada", "key")
    assert list((out / STAGING).iterdir()) == []


def test_grader_error_is_never_taken_as_up_to_date(tmp_path):
    """Is a result with a grader error published without inputs.json, so the next run regrades it?"""
    from nnkit.grading.runner import STAGING, _publish

    out = tmp_path / "out"
    (out / STAGING).mkdir(parents=True)
    _publish(_result("grader-error"), out, {}, ("key", "digest"), {"tests": "t"})
    assert (out / "ada" / "result.json").is_file()
    assert not fingerprint.is_current(out / "ada", "key")


# ------------------------------------------------------------------ the lock

HOLDER = ("import sys, time; from pathlib import Path; from nnkit.grading import outlock\n"
          "with outlock.hold(Path(sys.argv[1])):\n"
          "    print('held', flush=True); time.sleep(600)\n")


@pytest.fixture
def held(tmp_path):
    """OUT locked by another process: (out, that process)."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    proc.kill()
    proc.wait()


def test_lock_names_its_holder(held):
    """Is a second lock on OUT refused at once, naming the holder's process and start time?"""
    out, proc = held
    with pytest.raises(outlock.OutputBusy) as refused:
        with outlock.hold(out):
            pass
    message = str(refused.value)
    assert f"process {proc.pid}" in message and "grading since" in message and str(out) in message


def test_lock_of_a_killed_grader_does_not_block(held):
    """Once the holder is killed (SIGKILL: no clean-up at all), can the next grader take the lock?"""
    out, proc = held
    proc.kill()
    proc.wait()
    assert (out / outlock.LOCK_FILE).exists()
    with outlock.hold(out):
        pass


def test_cli_refuses_while_another_grader_writes(held):
    """Does `python -m nnkit grade` into a locked OUT exit with status 2 and say who holds it,
    without writing anything?"""
    out, proc = held
    done = subprocess.run([sys.executable, "-m", "nnkit", "grade", str(EXAMPLES), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "another grader is writing to" in done.stderr and f"process {proc.pid}" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [outlock.LOCK_FILE]


def test_make_passes_fresh():
    """Does `make grade FRESH=1` ask the CLI for a full regrade, and plain `make grade` not?"""
    def command(*variables):
        done = subprocess.run(["make", "-n", "grade", *variables], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if "nnkit grade" in line][0]

    assert "--fresh" in command("FRESH=1")
    assert "--fresh" not in command()


# ------------------------------------------------------------------ stopping


def test_signal_stops_an_armed_batch_and_aborts_preparations():
    """Does SIGINT only raise the flag while a batch runs (armed), and abandon what runs before?"""
    stop = Stop()
    with stop.on_signals():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert stop.requested and stop.exit_status == 130

    stop = Stop()
    with stop.on_signals(), stop.armed():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
    assert stop.requested and stop.describe() == "SIGTERM" and stop.exit_status == 143
    with pytest.raises(Interrupted):
        stop.check()


# ------------------------------------------------------------------ a real batch, interrupted


def _batch_processes(tmp_path: Path, grader_pid: int) -> list[psutil.Process]:
    """Live processes other than the grader whose command line mentions ``tmp_path`` (every
    test process and sandbox does: their folders are under the grader's TMPDIR)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] in (grader_pid, os.getpid()) or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(tmp_path) in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _alive(procs) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _grade_command(submissions: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "nnkit", "grade", str(submissions), "--out", str(out), "--jobs", "2",
            "--no-progress", *extra]


def _env(tmp_path: Path) -> dict:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp")}


def _finished(out: Path) -> set[str]:
    return {p.parent.name for p in out.glob(f"*/{fingerprint.INPUTS_FILE}")}


def _gradebook(out: Path) -> set[str]:
    with open(out / "grades.csv", newline="") as f:
        return {row["submission"] for row in csv.DictReader(f)}


def _mtimes(out: Path, names) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for name in names for p in (out / name).iterdir()}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A real `python -m nnkit grade` over five submissions, sent SIGINT (as Ctrl-C sends it to the
    process group) once the first submission finished; a second grader started meanwhile."""
    tmp_path = tmp_path_factory.mktemp("nnkit-resume")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name, example in BATCH.items():
        _copy_example(example, submissions / name)
    out = tmp_path / "out"
    proc = subprocess.Popen(_grade_command(submissions, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=_env(tmp_path), start_new_session=True)
    found = {"tmp": tmp_path, "submissions": submissions, "out": out}
    try:
        deadline = time.monotonic() + 60
        while not (out / outlock.LOCK_FILE).is_file() or not (out / outlock.LOCK_FILE).read_text():
            assert proc.poll() is None and time.monotonic() < deadline, "the grader never took its lock"
            time.sleep(0.1)
        found["second"] = subprocess.run(_grade_command(submissions, out), capture_output=True, text=True,
                                         cwd=ROOT, env=_env(tmp_path), timeout=60)
        deadline = time.monotonic() + 600
        while not _finished(out):
            assert proc.poll() is None and time.monotonic() < deadline, "no submission finished"
            time.sleep(0.05)
        grader = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        while not _batch_processes(tmp_path, proc.pid):  # the next submission's test process
            assert time.monotonic() < deadline, "no test process ran after the first submission finished"
            time.sleep(0.05)
        found["running"] = grader.children(recursive=True) + _batch_processes(tmp_path, proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        while (_alive(found["running"]) or _batch_processes(tmp_path, proc.pid)) \
                and time.monotonic() < sent + STOP_SECONDS:
            time.sleep(0.1)
        found["left"] = _alive(found["running"]) + _batch_processes(tmp_path, proc.pid)
        found["stdout"], found["stderr"] = proc.communicate(timeout=300)
        found["returncode"] = proc.returncode
        found["left_after_exit"] = _batch_processes(tmp_path, proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    found["finished"] = _finished(out)
    return found


@pytest.mark.slow
def test_interrupt_stops_every_process_of_the_batch(interrupted):
    """Within seconds of SIGINT, is every test process and sandbox of the batch gone, and does the
    grader exit with status 130?"""
    assert interrupted["running"], "no process of the batch was seen running"
    assert interrupted["left"] == [], f"still running {STOP_SECONDS} s after SIGINT: {interrupted['left']}"
    assert interrupted["left_after_exit"] == []
    assert interrupted["returncode"] == 130, interrupted["stderr"][-3000:]


@pytest.mark.slow
def test_interrupt_writes_the_gradebook_of_what_finished(interrupted):
    """After SIGINT, do grades.csv and report.html list exactly the submissions that finished, with
    no result folder, complete-looking or partial, for the others, and a line saying how to resume?"""
    out, finished = interrupted["out"], interrupted["finished"]
    assert finished and finished < set(BATCH)
    assert _gradebook(out) == finished
    report = (out / "report.html").read_text()
    assert all(name in report for name in finished)
    assert {p.name for p in out.iterdir() if p.is_dir()} == finished
    assert not (out / ".partial").exists()
    assert f"interrupted by SIGINT: {len(finished)} of {len(BATCH)} submissions graded" in interrupted["stdout"]
    assert f"{len(BATCH) - len(finished)} not graded. Run `make grade` again" in interrupted["stdout"]


@pytest.mark.slow
def test_second_grader_is_refused_while_one_runs(interrupted):
    """Is a second grader into the same OUT refused (status 2), naming the running one?"""
    second = interrupted["second"]
    assert second.returncode == 2, second.stderr[-3000:]
    assert "another grader is writing to" in second.stderr and "grading since" in second.stderr


@pytest.fixture(scope="module")
def resumed(interrupted):
    out = interrupted["out"]
    before = _mtimes(out, interrupted["finished"])
    done = subprocess.run(_grade_command(interrupted["submissions"], out), capture_output=True, text=True,
                          cwd=ROOT, env=_env(interrupted["tmp"]), timeout=900)
    return done, before, _mtimes(out, interrupted["finished"])


@pytest.mark.slow
def test_rerun_grades_only_what_did_not_finish(interrupted, resumed):
    """Does running again skip the finished submissions (their files untouched) and grade the rest?"""
    done, before, after = resumed
    out, finished = interrupted["out"], interrupted["finished"]
    assert done.returncode == 0, done.stderr[-3000:]
    n = len(finished)
    assert f"skipped {n} submission{'s' if n != 1 else ''} already graded from the same inputs" in done.stdout
    assert after == before
    assert _finished(out) == set(BATCH) == _gradebook(out)
    graded_now = {line.split()[0] for line in done.stdout.splitlines() if "/100" in line}
    assert graded_now == set(BATCH) - finished


# ------------------------------------------------------------------ what makes a submission regraded


@pytest.fixture(scope="module")
def quick_grader():
    """The real grader, without the MNIST test (for time)."""
    from nnkit.grading.grade import build_grader
    from nnkit.grading.runner import collect_manifest

    grader = build_grader()
    grader.skip_files = ("test_mnist.py",)
    grader.manifest = collect_manifest(grader)
    return grader


@pytest.mark.slow
def test_changes_regrade_exactly_what_they_touch(quick_grader, tmp_path):
    """Is a submission regraded when one of its files changes, every one when the secret changes
    or with fresh, the `only` one always, and nothing otherwise?"""
    from nnkit.grading.runner import grade_batch

    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in ("ada", "template"):
        _copy_example(name, submissions / name)
    out = tmp_path / "out"

    def run(grader=quick_grader, **options):
        before = _mtimes(out, ("ada", "template")) if (out / "ada").exists() else {}
        batch = grade_batch(grader, submissions, out, jobs=2, progress=False, **options)
        after = _mtimes(out, ("ada", "template"))
        touched = {Path(p).parent.name for p in after if before.get(p) != after[p]}
        assert {r.submission for r in batch.results} == touched
        assert _gradebook(out) == {"ada", "template"}
        return sorted(touched), batch.unchanged

    assert run() == (["ada", "template"], [])
    assert run() == ([], ["ada", "template"])
    with open(submissions / "ada" / "train.py", "a") as f:
        f.write("\n# started on the training loop\n")
    assert run() == (["ada"], ["template"])
    rotated = copy.copy(quick_grader)
    rotated.secret = quick_grader.secret + "-rotated"
    assert run(rotated) == (["ada", "template"], [])
    assert run(rotated) == ([], ["ada", "template"])
    assert run(rotated, fresh=True) == (["ada", "template"], [])
    assert run(rotated, only="template") == (["template"], [])
    assert not (out / ".partial").exists()
