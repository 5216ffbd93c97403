"""The assignment's configuration (assignments/nn-from-scratch/config.toml) as typed objects."""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent.parent
"""The kit's root folder (in a release or the autograder zip, the folder holding nnkit/)."""

ASSIGNMENT_DIR = ROOT / "assignments" / "nn-from-scratch"
CONFIG_PATH = ASSIGNMENT_DIR / "config.toml"
AUTOGRADER_CONFIG_PATH = ROOT / "autograder" / "config.toml"


class ConfigError(ValueError):
    """The configuration file is missing a key or holds a value of the wrong kind."""


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
    )


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
