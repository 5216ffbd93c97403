#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs what grading needs and computes the MNIST reference ahead of time.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# bubblewrap gives student code its own namespaces; without it the grader
# falls back to a weaker tier and says so in every result.
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null \
    || apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
cd /autograder/source
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet -r requirements.txt
/autograder/venv/bin/python -m nnkit run-autograder --prepare
# Without bubblewrap, student code runs as nobody and sees the file system:
# keep the reference, the tests, the secret and the MNIST cache from it.
chmod -R o-rwx /autograder/source/autograder /autograder/source/solutions /autograder/source/build
