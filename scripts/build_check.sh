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
leaked=$(tar tzf "$tarball" | grep -E '^(molecule|tests|scripts|\.ci|\.config|\.venv|\.lab|\.sanity|\.cache|inventories/lab)/' || true)
[ -z "$leaked" ] || { echo "test bed files in the artifact:"; echo "$leaked"; exit 1; }
ansible-galaxy collection install --force -p "$work/inst" "$tarball" >/dev/null
printf '[defaults]\n' >"$work/ansible.cfg"
export ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$work/inst
cd "$work"
ansible-playbook llmfleet.deepseek.site -i "$root/inventories/example" --syntax-check >/dev/null
echo "llmfleet.deepseek.site: syntax ok"
ansible-playbook llmfleet.deepseek.bundle -i "$root/inventories/example" --syntax-check >/dev/null
echo "llmfleet.deepseek.bundle: syntax ok"
ansible-playbook llmfleet.deepseek.drift -i "$root/inventories/example" --syntax-check >/dev/null
echo "llmfleet.deepseek.drift: syntax ok"
ansible-doc -t callback llmfleet.deepseek.drift >/dev/null; echo "llmfleet.deepseek.drift (callback): ansible-doc ok"
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

# The execution environment's build context (AWX/Tower, docs/awx.md): ansible-builder v3 writes it
# from execution-environment.yml with this very tarball; the image itself is built where the base
# image can be pulled.
cd "$root"
rm -rf .cache/ee && mkdir -p .cache/ee/collection && cp "$tarball" .cache/ee/collection/
ansible-builder create -f execution-environment.yml -c .cache/ee/context --output-filename Containerfile -v 1 >/dev/null
containerfile=.cache/ee/context/Containerfile
for want in 'ansible-core==2.19.14' 'ansible-galaxy collection install --no-deps --offline' 'ANSIBLE_CALLBACKS_ENABLED=llmfleet.deepseek.drift,llmfleet.deepseek.fork_gc'; do
  grep -rqF -- "$want" .cache/ee/context || { echo "EE build context: '$want' missing"; exit 1; }
done
[ -f ".cache/ee/context/_build/llmfleet/$(basename "$tarball")" ] || { echo "EE build context: the collection tarball is missing"; exit 1; }
grep -q '^ansible==12.3.0' .cache/ee/context/_build/requirements.txt || { echo "EE build context: python requirements missing"; exit 1; }
echo "execution environment: build context in .cache/ee/context ($(grep -c '^FROM' "$containerfile") stages)"
