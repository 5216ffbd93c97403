"""The hostile corpus: submissions that attack the grader instead of solving the assignment.

Each case is a folder ``tests/hostile/<name>/`` holding one ``attack.toml``;
the submission itself is built at test time from the reference's four
graded files, so no copy of the reference is ever committed:

    description = "One sentence: what the attack tries."

    [[edit]]            # as in the mutation corpus: `find` must occur exactly once
    file = "train.py"
    find = "..."
    replace = "..."

    [[append]]          # code added at the end of a graded file (a later
    file = "activations.py"   # `def` of the same name replaces the reference's)
    text = '''...'''

    [[extra]]           # any other file of the submission (conftest.py, a .pth, ...)
    path = "conftest.py"
    text = '''...'''

    [[symlink]]         # a graded file replaced by a symlink ({reference}: the reference package)
    path = "forward.py"
    target = "{reference}/forward.py"

    [[fifo]]            # a graded file replaced by a named pipe
    path = "forward.py"

    [[zip_entry]]       # the submission becomes a .zip holding the graded files and these entries
    name = "../escape.txt"
    text = "..."

    generate = "pretrained_weights"   # fill {pretrained_weights} in the texts (see GENERATORS)

    [expect]
    fail = ["activations:.*"]   # regexes over "part:test name": each matches a test, all of them fail
    output = "SystemExit"       # text every failing test's message contains
    status = ["timeout"]        # texts the status column contains
    landlock = 6                # the rlimits tier (same user as the grader) contains the
                                # attack only with this Landlock ABI...
    [expect.uncontained]        # ...and below it, grading shows this instead (no table: the
    fail = ["backward:.*"]      # case is left out of that tier's batch)

Every test matched by no ``fail`` pattern must pass, as it does for the
reference: an attack costs the points of what it breaks, never more, and
never earns any.
"""
from __future__ import annotations

import base64
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnkit.course.config import ASSIGNMENTS_DIR, load_config

CORPUS_CONFIG = ASSIGNMENTS_DIR / "nn-from-scratch" / "config.toml"
"""The assignment whose graded files the cases edit: they are Assignment 1 submissions, and run in its
session only (other assignments' sessions import the test modules but deselect these tests)."""

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CASES_DIR = Path(__file__).resolve().parent
"""The folder of the hostile cases."""

KEYS = {"description", "edit", "append", "extra", "symlink", "fifo", "zip_entry", "generate", "expect"}
EXPECT_KEYS = {"fail", "output", "status", "landlock", "uncontained"}


class CaseError(ValueError):
    """An attack.toml is malformed, or one of its edits does not apply to the reference."""


@dataclass(frozen=True)
class Expect:
    """What grading the case must show."""

    fail: tuple[str, ...] = ()
    """Regexes over "part:name"; each must match at least one test, and every match must fail."""
    output: str = ""
    """Text that the message of every failing test contains ("" for no check)."""
    status: tuple[str, ...] = ()
    """Texts the submission's status column contains."""
    landlock: int = 0
    """Landlock ABI the rlimits tier (same user as the grader) needs to contain the attack (0: none)."""
    uncontained: "Expect | None" = None
    """What grading shows in the rlimits tier below that ABI (None: the case is not graded there)."""

    def in_tier(self, tier: str, landlock_abi: int) -> "Expect | None":
        """The expectations that hold in ``tier`` on a kernel with this Landlock ABI."""
        return self.uncontained if tier == "rlimits" and landlock_abi < self.landlock else self

    def must_fail(self, part: str, name: str) -> bool:
        """Is the test "part:name" one the attack is allowed (and bound) to break?"""
        return any(re.fullmatch(pattern, f"{part}:{name}") for pattern in self.fail)


@dataclass(frozen=True)
class Case:
    """One hostile submission, as described by its attack.toml."""

    name: str
    description: str
    edits: tuple[dict, ...] = ()
    appends: tuple[dict, ...] = ()
    extras: tuple[dict, ...] = ()
    symlinks: tuple[dict, ...] = ()
    fifos: tuple[dict, ...] = ()
    zip_entries: tuple[dict, ...] = ()
    generate: str | None = None
    expect: Expect = field(default_factory=Expect)


def _strings(table: dict, keys: tuple[str, ...], where: str) -> dict:
    if set(table) != set(keys):
        raise CaseError(f"{where}: expected exactly the keys {list(keys)}, got {sorted(table)}")
    for key in keys:
        if not isinstance(table[key], str):
            raise CaseError(f"{where}: {key!r} must be a string")
    return dict(table)


def load_case(folder: Path) -> Case:
    """Read and check ``folder/attack.toml``."""
    path = Path(folder) / "attack.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CaseError(f"{path}: {exc}") from None
    unknown = set(data) - KEYS
    if unknown:
        raise CaseError(f"{path}: unknown keys {sorted(unknown)}; expected some of {sorted(KEYS)}")
    graded = set(load_config(CORPUS_CONFIG).files.values())
    tables = {}
    for key, keys in (("edit", ("file", "find", "replace")), ("append", ("file", "text")),
                      ("extra", ("path", "text")), ("symlink", ("path", "target")), ("fifo", ("path",)),
                      ("zip_entry", ("name", "text"))):
        tables[key] = tuple(_strings(t, keys, f"{path} [[{key}]] {i}") for i, t in enumerate(data.get(key, []), 1))
    for table in tables["edit"] + tables["append"]:
        if table["file"] not in graded:
            raise CaseError(f"{path}: {table['file']!r} is not a graded file {sorted(graded)}")
    if not isinstance(data.get("description"), str):
        raise CaseError(f"{path}: needs a description")
    if data.get("generate") not in (None, *GENERATORS):
        raise CaseError(f"{path}: unknown generator {data['generate']!r}; expected one of {sorted(GENERATORS)}")
    return Case(
        name=Path(folder).name, description=data["description"], edits=tables["edit"],
        appends=tables["append"], extras=tables["extra"], symlinks=tables["symlink"], fifos=tables["fifo"],
        zip_entries=tables["zip_entry"], generate=data.get("generate"),
        expect=_expect(data.get("expect", {}), path),
    )


def _expect(table: dict, path: Path) -> Expect:
    unknown = set(table) - EXPECT_KEYS
    if unknown:
        raise CaseError(f"{path}: unknown [expect] keys {sorted(unknown)}; expected some of {sorted(EXPECT_KEYS)}")
    uncontained = table.get("uncontained")
    return Expect(fail=tuple(table.get("fail", ())), output=str(table.get("output", "")),
                  status=tuple(table.get("status", ())), landlock=int(table.get("landlock", 0)),
                  uncontained=None if uncontained is None else _expect(uncontained, path))


def load_cases() -> list[Case]:
    """Every case of tests/hostile/, sorted by name."""
    return [load_case(p.parent) for p in sorted(CASES_DIR.glob("*/attack.toml"))]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def build(case: Case, dest: Path, reference_dir: Path, values: dict[str, str] | None = None) -> Path:
    """Write the case's submission into ``dest`` (a folder, or a .zip with zip entries); return its path.

    ``values`` fills the placeholders of the texts: {reference} is always the
    reference package; a generator's output goes under its own name.
    """
    values = {"reference": str(Path(reference_dir).resolve()), **(values or {})}
    sources = {name: (Path(reference_dir) / name).read_text() for name in load_config().files.values()}
    for i, edit in enumerate(case.edits, 1):
        count = sources[edit["file"]].count(edit["find"])
        if count != 1:
            raise CaseError(f"case {case.name!r}, edit {i}: the snippet occurs {count} times in "
                            f"{edit['file']} (expected once); the reference changed, update the case")
        sources[edit["file"]] = sources[edit["file"]].replace(edit["find"], _fill(edit["replace"], values))
    for append in case.appends:
        sources[append["file"]] += "\n\n" + _fill(append["text"], values)
    links = {link["path"]: _fill(link["target"], values) for link in case.symlinks}
    fifos = {fifo["path"] for fifo in case.fifos}
    if case.zip_entries:
        target = Path(dest) / f"{case.name}.zip"
        with zipfile.ZipFile(target, "w") as zf:
            for name, text in sources.items():
                zf.writestr(name, text)
            for entry in case.zip_entries:
                zf.writestr(zipfile.ZipInfo(entry["name"]), _fill(entry["text"], values))
        return target
    folder = Path(dest) / case.name
    folder.mkdir(parents=True)
    for name, text in sources.items():
        if name not in links and name not in fifos:
            (folder / name).write_text(text)
    for name, target in links.items():
        (folder / name).symlink_to(target)
    for name in fifos:
        os.mkfifo(folder / name)
    for extra in case.extras:
        path = folder / extra["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(extra["text"], values))
    return folder


# ------------------------------------------------------------------ generators


def pretrained_weights(mnist_data: Path, seed: int = 20240) -> str:
    """MNIST weights for the graded network as base64 text of float16 values.

    The reference trains them for one epoch from its own seed (not the
    grader's), as a student could at home; the arrays are concatenated in
    sorted key order (W1, W2, ..., b1, b2, ...), each flattened.
    """
    from nnkit.grading.end_to_end import load_data
    from scratchnet import forward, train  # the reference (solutions/ is on sys.path)

    cfg = load_config().mnist
    X, y, _, _ = load_data(mnist_data)
    params = forward.init_params(list(cfg.layer_sizes), np.random.default_rng(seed))
    train.train(params, X, y, epochs=1, batch_size=cfg.batch_size, lr=cfg.lr,
                rng=np.random.default_rng(seed + 1), activation=cfg.activation)
    blob = np.concatenate([params[key].astype(np.float16).ravel() for key in sorted(params)])
    return base64.b64encode(blob.tobytes()).decode("ascii")


GENERATORS = {"pretrained_weights": pretrained_weights}
"""Name used by ``generate`` -> function of the MNIST data file returning the placeholder's text."""
