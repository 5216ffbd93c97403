#!/usr/bin/env bash
# Debian packages the kit's own tests use, installed with apt-get when the tests run as root:
#   bubblewrap        the grader's strongest isolation tier
#   mmdebstrap        the root file system of the Gradescope-like container
#   python3-seccomp   compiles that container's seccomp filter
#   python3-venv      virtual environments from the system interpreter (Gradescope's kind)
# Without root or apt-get, it says what is missing and the tests that need it skip
# (or fail, where NNKIT_REQUIRE_TIERS is set).
set -uo pipefail
packages=(bubblewrap mmdebstrap python3-seccomp python3-venv)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not installed: ${missing[*]} (needs root and apt-get); the tests that use them will skip"
    exit 0
fi
echo "installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq "${missing[@]}") >/dev/null \
    || { echo "error: apt-get could not install ${missing[*]}"; exit 1; }
