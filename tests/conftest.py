"""Settings and fixtures every test module shares.

The kit's tests run once per assignment of the course, each session with its
assignment active (NNKIT_ASSIGNMENT; `make test` runs them all). Tests of one
assignment only live in tests/<assignment>/ (dashes as underscores), which
the sessions of the other assignments do not collect.
"""
import os
import shutil
import tempfile

import pytest

from nnkit.course.config import ASSIGNMENT, course_assignments, default_assignment

collect_ignore = [name.replace("-", "_") for name in course_assignments() if name != ASSIGNMENT]
OWN_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), ASSIGNMENT.replace("-", "_"))


def pytest_collection_modifyitems(config, items):
    """In the session of any assignment but the course's default, run only the tests of its own
    folder and those marked ``every_assignment``; the engine's tests run once, in the default's."""
    if ASSIGNMENT == default_assignment():
        return
    keep, drop = [], []
    for item in items:
        mine = str(item.path).startswith(OWN_FOLDER + os.sep) or item.get_closest_marker("every_assignment")
        (keep if mine else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config):
    """Run as root, the setuid tier's workers are ``nobody`` and must reach the staged packages that
    tests put in their temporary folders, as they reach the grader's own under /tmp. pytest's own
    base folder (/tmp/pytest-of-root) is made 0700 again by every root session that starts, so each
    root session uses a base folder of its own, removed when the session ends."""
    if os.geteuid() == 0 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="nnkit-tests-")
        config.stash[OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config):
    folder = config.stash.get(OWN_BASETEMP, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def workers_can_reach_temp_folders(tmp_path_factory):
    """Let other users pass through (not list) the base folder above every test's folder."""
    if os.geteuid() == 0:
        tmp_path_factory.getbasetemp().chmod(0o711)



def pytest_terminal_summary(terminalreporter):
    from tests.figures import FIGURES

    if FIGURES:
        terminalreporter.section("figures measured by this run")
        for line in FIGURES:
            terminalreporter.write_line(line)
