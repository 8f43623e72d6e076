#!/usr/bin/env bash
# What `pip install loopline` gives a user, with no extra: build the wheel from this tree (its tracked and
# untracked-but-not-ignored files, copied to a temporary folder so that no stale build/ or *.egg-info leaks in),
# install it alone into a fresh virtual environment (its core dependencies from the package index), then run
# scripts/plain_install_checks.py there: --help, the core path on the embedded default store, and the commands
# that need an extra naming it. Exits non-zero with what broke on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/loopline-plain-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "plain install: FAILED: $*" >&2; exit 1; }
root=$(pwd)
started=$SECONDS

git rev-parse --is-inside-work-tree >/dev/null 2>&1 || fail "not a git checkout: the wheel is built from git's file list"
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$work/src"

echo "plain install: building the wheel"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip || fail "could not upgrade pip in the fresh venv"
"$work/venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src" \
  || fail "could not build the wheel"
wheels=("$work"/dist/loopline-*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || fail "expected one loopline wheel, found: ${wheels[*]}"
echo "plain install: installing $(basename "${wheels[0]}") without extras"
"$work/venv/bin/python" -m pip install --quiet "${wheels[0]}" || fail "could not install the wheel"
"$work/venv/bin/python" -m pip check || fail "pip check found broken dependencies"

# the checks run outside the source tree, so that `import loopline` can only find the installed wheel
(cd "$work" && "$work/venv/bin/python" "$root/scripts/plain_install_checks.py") || fail "see above"
echo "plain install: done in $((SECONDS - started)) s"
