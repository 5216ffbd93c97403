#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs what grading needs, computes the MNIST reference ahead of time,
# and grades the reference and the student template in the isolation tier that
# grading will use: unless they score full marks and zero, the build fails.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# bubblewrap gives student code its own namespaces; without it (or where the
# container refuses namespaces) the grader falls back to a weaker tier and says
# so in every result.
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null \
    || apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
cd /autograder/source
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet -r requirements.txt
# Also sets which of the kit's files workers may read (again at every run).
/autograder/venv/bin/python -m nnkit run-autograder --prepare
