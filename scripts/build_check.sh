#!/usr/bin/env bash
# The artifact users install: build the collection, install it into an empty path, and check that
# its playbook resolves (`llmfleet.deepseek.site`), every role and module renders in ansible-doc,
# and nothing of the test bed went into the tarball.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$root"
ansible-galaxy collection build --force --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/llmfleet-deepseek-*.tar.gz)
echo "built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
leaked=$(tar tzf "$tarball" | grep -E '^(molecule|tests|scripts|\.ci|\.config|\.venv|\.lab|\.sanity|inventories/lab)/' || true)
[ -z "$leaked" ] || { echo "test bed files in the artifact:"; echo "$leaked"; exit 1; }
ansible-galaxy collection install --force -p "$work/inst" "$tarball" >/dev/null
printf '[defaults]\n' >"$work/ansible.cfg"
export ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$work/inst
cd "$work"
ansible-playbook llmfleet.deepseek.site -i "$root/inventories/example" --syntax-check >/dev/null
echo "llmfleet.deepseek.site: syntax ok"
ansible-playbook llmfleet.deepseek.bundle -i "$root/inventories/example" --syntax-check >/dev/null
echo "llmfleet.deepseek.bundle: syntax ok"
ansible-playbook llmfleet.deepseek.site -i "$root/inventories/offline" --syntax-check >/dev/null
ansible-playbook llmfleet.deepseek.bundle -i "$root/inventories/offline" --syntax-check >/dev/null
echo "inventories/offline: site and bundle syntax ok"
for filter in "$root"/plugins/filter/*.yml; do
  name=llmfleet.deepseek.$(basename "$filter" .yml)
  ansible-doc -t filter "$name" >/dev/null; echo "$name: ansible-doc ok"
done
for role in "$root"/roles/*/; do
  name=llmfleet.deepseek.$(basename "$role")
  ansible-doc -t role "$name" >/dev/null; echo "$name: ansible-doc ok"
done
for module in "$root"/plugins/modules/*.py; do
  [ -e "$module" ] || continue
  name=llmfleet.deepseek.$(basename "$module" .py)
  ansible-doc -t module "$name" >/dev/null; echo "$name: ansible-doc ok"
done
