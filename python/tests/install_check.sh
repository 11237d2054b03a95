#!/usr/bin/env bash
# Installs the Python package as a user would, into a fresh virtual environment of Debian's
# python3 (no network: pip install --no-build-isolation ./python), then, from outside the source
# tree, checks that the installed package is the one imported and runs the README's example and
# part of the package's tests against it. Run from anywhere: python/tests/install_check.sh.
# UNIO_CMAKE_ARGS is passed to the build (the CI sets a compiler launcher).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3

"$py" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --no-build-isolation --no-input --quiet "$src/python"

cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys, unio
venv = sys.argv[1]
assert unio.__file__.startswith(venv), f"imported {unio.__file__}, not the installed package"
assert unio._unio.__file__.startswith(venv), unio._unio.__file__
print("installed:", unio.__file__, "backends:", ", ".join(b.name for b in unio.backends() if b.available))
PY
env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$src/python/tests/test_readme.py" "$src/python/tests/test_module.py" "$src/python/tests/test_uvloop.py"
echo "install_check: passed"
