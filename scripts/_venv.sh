# Sourced by the other scripts: make sure .venv exists and holds the project.
# Usage: . scripts/_venv.sh [EXTRAS]   (e.g. "dev")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
target="."
if [ -n "${1:-}" ]; then target=".[$1]"; fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
export PATH="$PWD/$VENV/bin:$PATH"
