#!/usr/bin/env bash
# ansible-test sanity without Docker and without the pip bootstrap host: the collection is copied
# (tracked and new files, nothing git ignores) to <dir>/ansible_collections/llmfleet/deepseek,
# ansible-test's get-pip download is answered from a local stand-in, and every sanity test runs
# in its own virtualenv (--venv) built from PyPI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${LLMFLEET_SANITY_DIR:-$root/.sanity}
dest=$work/ansible_collections/llmfleet/deepseek
py=${PYTHON_VERSION:-$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
# The pip version ansible-test bootstraps into its venvs (pip='x.y' in python_requirements.py).
pip_version=$(python3 -c 'import ansible_test, pathlib, re
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip=.([0-9.]+).", src).group(1))')
cache=$HOME/.ansible/test/cache
standin=$cache/get_pip_${pip_version//./_}.py
mkdir -p "$cache"
if ! ls "$cache"/pip-"$pip_version"-*.whl >/dev/null 2>&1; then
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$cache" "pip==$pip_version"
fi
cp "$root/tests/sanity/get_pip_standin.py" "$standin"

rm -rf "$dest"; mkdir -p "$dest"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r cp -P --parents -t "$dest")
cd "$dest"
# Its own git repository, so ansible-test lists exactly these files (not the ignored copy's parent).
git init -q . && git add -A
ansible-test sanity --venv --python "$py" --color no "$@"
