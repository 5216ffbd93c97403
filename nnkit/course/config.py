"""Which assignment of the course is active, and its configuration (assignments/<name>/config.toml)
as typed objects.

An assignment is a folder of ``assignments/``. The active one is named by the
environment variable NNKIT_ASSIGNMENT (``make ... ASSIGNMENT=<name>`` and
``python -m nnkit --assignment <name> ...`` set it); without it, the
``default`` of assignments/course.toml, or, in a release, which holds one
assignment only, that one. Everything the kit reads of an assignment is
found from ASSIGNMENT_DIR: config.toml, contract.py, causes.toml,
end_to_end.py, the public and hidden tests, the handout, the notebook and
the release inputs.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """The configuration file is missing a key or holds a value of the wrong kind."""


def read_toml(path: Path, what: str, error: type[Exception] | None = None) -> dict:
    """The TOML file at ``path``; ``error`` (default ConfigError) names the file when it is
    missing ("<what> not found: <path>") or malformed."""
    error = error or ConfigError
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: {exc}") from None


ROOT = Path(__file__).resolve().parent.parent.parent
"""The kit's root folder (in a release or the autograder zip, the folder holding nnkit/)."""

ASSIGNMENTS_DIR = ROOT / "assignments"
COURSE_PATH = ASSIGNMENTS_DIR / "course.toml"
"""The course: the order of its assignments and the default one (absent from releases)."""
ASSIGNMENT_ENV = "NNKIT_ASSIGNMENT"


def _course() -> tuple[tuple[str, ...], str]:
    """(the course's assignments in teaching order, the default one): course.toml's ``assignments``
    and ``default`` (default: the first), or, where there is no course.toml (a release), every folder
    of assignments/ that holds a config.toml, and the first of them."""
    if COURSE_PATH.is_file():
        data = read_toml(COURSE_PATH, "course file")
        names = data.get("assignments")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise ConfigError(f"{COURSE_PATH}: `assignments` must be a non-empty list of folder names")
        default = data.get("default", names[0])
        if default not in names:
            raise ConfigError(f"{COURSE_PATH}: default {default!r} is not one of the assignments {names}")
        return tuple(names), default
    names = tuple(sorted(path.parent.name for path in ASSIGNMENTS_DIR.glob("*/config.toml")))
    if not names:
        raise ConfigError(f"no assignment found: {ASSIGNMENTS_DIR} holds no <name>/config.toml")
    return names, names[0]


def course_assignments() -> tuple[str, ...]:
    """The course's assignments in teaching order (see ``_course``)."""
    return _course()[0]


def default_assignment() -> str:
    """The assignment every command uses unless told otherwise (see ``_course``)."""
    return _course()[1]


def active_assignment() -> str:
    """The name of the active assignment (see the module docstring)."""
    name = os.environ.get(ASSIGNMENT_ENV, "").strip() or default_assignment()
    if not (ASSIGNMENTS_DIR / name / "config.toml").is_file():
        known = ", ".join(course_assignments())
        raise ConfigError(f"unknown assignment {name!r}: the assignments are {known} (folders of {ASSIGNMENTS_DIR})")
    return name


def earlier_assignments(name: str) -> tuple[str, ...]:
    """The assignments taught before ``name``: their graded files ship complete with it."""
    names = course_assignments()
    return names[:names.index(name)] if name in names else ()


ASSIGNMENT = active_assignment()
"""The active assignment's folder name, e.g. "nn-from-scratch"."""
ASSIGNMENT_DIR = ASSIGNMENTS_DIR / ASSIGNMENT
TESTS_DIR = ASSIGNMENT_DIR / "tests"
"""The active assignment's suites: tests/public/ (shipped to students) and tests/hidden/."""
TEMPLATE_ROOT = ROOT / "student_template" / ASSIGNMENT
"""The folder holding the active assignment's committed student package (``make template``)."""
EXAMPLES_DIR = ROOT / "examples" / ASSIGNMENT
"""The active assignment's example submissions (what ``make grade`` grades by default)."""
CONFIG_PATH = ASSIGNMENT_DIR / "config.toml"
AUTOGRADER_CONFIG_PATH = ROOT / "autograder" / "config.toml"


@dataclass(frozen=True)
class MnistConfig:
    """The graded MNIST training configuration."""

    layer_sizes: tuple[int, ...]
    activation: str
    epochs: int
    batch_size: int
    lr: float
    seed: int
    threshold: float
    time_limit: float
    trajectory_rtol: float
    options: dict = field(default_factory=dict)
    """Further keyword arguments of the assignment's training function (e.g. optimizer, lam), as written."""


@dataclass(frozen=True)
class GradingConfig:
    """Limits and visibilities of the grader."""

    public_visibility: str
    hidden_visibility: str
    call_timeout: float
    submission_budget: float
    max_file_bytes: int


@dataclass(frozen=True)
class SimilarityConfig:
    """Settings of the class similarity report (nnkit.reports.similarity).

    Lengths count tokens as copydetect does: characters of the normalised
    code, where every name is one token (V), every string literal one (S),
    and whitespace and comments are gone.
    """

    noise_threshold: int
    """Shortest run of normalised code that can count as shared (copydetect's noise_t)."""
    guarantee_threshold: int
    """A shared run this long is always found (copydetect's guarantee_t; >= noise_threshold)."""
    flag_pair_tokens: int
    """A pair of submissions is flagged when it shares at least this many tokens beyond the template."""
    flag_file_tokens: int
    """... or when one graded file alone shares at least this many."""


@dataclass(frozen=True)
class AssignmentConfig:
    """Everything in config.toml."""

    name: str
    package: str
    parts: tuple[str, ...]
    files: dict[str, str]
    points: dict[str, float]
    mnist: MnistConfig
    grading: GradingConfig
    similarity: SimilarityConfig
    trainer: str = ""
    """The module of the assignment's command-line trainer (``python -m <trainer>``, ``make train``)."""
    provided: tuple[str, ...] = ()
    """Modules of the package this assignment introduces without grading them (e.g. its CLI);
    releases of earlier assignments leave them out."""

    @property
    def max_score(self) -> float:
        """Total points of the assignment."""
        return float(sum(self.points.values()))

    def part_of_file(self, filename: str) -> str:
        """The part a graded file name (e.g. "train.py") belongs to."""
        for part, name in self.files.items():
            if name == filename:
                return part
        raise KeyError(filename)


MNIST_KEYS = ("layer_sizes", "activation", "epochs", "batch_size", "lr", "seed", "threshold", "time_limit",
              "trajectory_rtol")
"""The keys every [mnist] section has; any other key is a training option of the assignment."""


def _section(data: dict, name: str, path: Path) -> dict:
    if name not in data or not isinstance(data[name], dict):
        raise ConfigError(f"{path}: missing section [{name}]")
    return data[name]


def _similarity(data: dict, path: Path) -> SimilarityConfig:
    """The [similarity] section: every key present, no other key, whole numbers in range."""
    s = _section(data, "similarity", path)
    keys = [f.name for f in fields(SimilarityConfig)]
    unknown = sorted(set(s) - set(keys))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown} in [similarity]; expected {keys}")
    values = {}
    for key in keys:
        if key not in s:
            raise ConfigError(f"{path}: missing key {key!r} in [similarity]")
        value = s[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{path}: [similarity] {key} must be a whole number of at least 1, got {value!r}")
        values[key] = value
    if values["guarantee_threshold"] < values["noise_threshold"]:
        raise ConfigError(f"{path}: [similarity] guarantee_threshold ({values['guarantee_threshold']}) must be at "
                          f"least noise_threshold ({values['noise_threshold']})")
    return SimilarityConfig(**values)


def load_config(path: Path | str = CONFIG_PATH) -> AssignmentConfig:
    """Read and check config.toml; raise ConfigError naming the file and key on a problem."""
    path = Path(path)
    data = read_toml(path, "assignment config")
    a = _section(data, "assignment", path)
    parts = tuple(a["parts"])
    files = dict(_section(data, "files", path))
    points = {k: float(v) for k, v in _section(data, "points", path).items()}
    for part in parts:
        if part not in files or part not in points:
            raise ConfigError(f"{path}: part {part!r} needs an entry in [files] and [points]")
    m = _section(data, "mnist", path)
    g = _section(data, "grading", path)
    try:
        mnist = MnistConfig(
            layer_sizes=tuple(int(n) for n in m["layer_sizes"]),
            activation=str(m["activation"]),
            epochs=int(m["epochs"]),
            batch_size=int(m["batch_size"]),
            lr=float(m["lr"]),
            seed=int(m["seed"]),
            threshold=float(m["threshold"]),
            time_limit=float(m["time_limit"]),
            trajectory_rtol=float(m["trajectory_rtol"]),
            options={k: v for k, v in m.items() if k not in MNIST_KEYS},
        )
        grading = GradingConfig(
            public_visibility=str(g["public_visibility"]),
            hidden_visibility=str(g["hidden_visibility"]),
            call_timeout=float(g["call_timeout"]),
            submission_budget=float(g["submission_budget"]),
            max_file_bytes=int(g["max_file_bytes"]),
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc.args[0]!r}") from None
    return AssignmentConfig(
        name=str(a["name"]), package=str(a["package"]), parts=parts,
        files=files, points=points, mnist=mnist, grading=grading, similarity=_similarity(data, path),
        provided=tuple(str(name) for name in a.get("provided", ())), trainer=str(a.get("trainer", "")),
    )


@functools.cache
def later_modules(name: str = ASSIGNMENT) -> frozenset[str]:
    """File names of the package that assignments after ``name`` introduce (their graded files and
    the ``provided`` modules of their [assignment]): no release of ``name`` ships them."""
    names = course_assignments()
    later = names[names.index(name) + 1:] if name in names else ()
    files: set[str] = set()
    for other in later:
        path = ASSIGNMENTS_DIR / other / "config.toml"
        if path.is_file():
            other_cfg = load_config(path)
            files |= set(other_cfg.files.values()) | set(other_cfg.provided)
    return frozenset(files)


@functools.cache
def earlier_graded(name: str = ASSIGNMENT) -> dict[str, str]:
    """File name -> assignment, for the graded files of the assignments before ``name``:
    a release of ``name`` ships them complete, as provided code. Read once per process, like
    ``later_modules``: both are asked for each file staged or released."""
    files: dict[str, str] = {}
    for other in earlier_assignments(name):
        for filename in load_config(ASSIGNMENTS_DIR / other / "config.toml").files.values():
            files[filename] = other
    return files


def load_course_secret(path: Path | str = AUTOGRADER_CONFIG_PATH) -> str:
    """The course secret that seeds the hidden tests' inputs."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            secret = tomllib.load(f).get("course_secret")
    except FileNotFoundError:
        raise ConfigError(f"autograder config not found: {path}") from None
    if not isinstance(secret, str) or len(secret) < 8:
        raise ConfigError(f"{path}: course_secret must be a string of at least 8 characters")
    return secret
