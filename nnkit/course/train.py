"""``make train``: run the active assignment's own trainer on the reference.

Each assignment names the module of its command-line trainer in config.toml
(``[assignment] trainer``, e.g. "scratchnet.train"); this runs
``python -m <trainer> <arguments>`` with the reference package importable.
"""
from __future__ import annotations

import os
import subprocess
import sys

from nnkit.course.config import ROOT, load_config


def main(argv: list[str] | None = None) -> int:
    """Run the assignment's trainer with ``argv``; returns its exit status."""
    cfg = load_config()
    if not cfg.trainer:
        print(f"error: the assignment {cfg.name!r} names no trainer ([assignment] trainer in config.toml)",
              file=sys.stderr)
        return 2
    path = os.pathsep.join(p for p in (str(ROOT / "solutions"), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.call([sys.executable, "-m", cfg.trainer, *(argv or [])], env={**os.environ, "PYTHONPATH": path})
