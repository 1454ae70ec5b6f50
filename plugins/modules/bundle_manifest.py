#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bundle_manifest
short_description: Write or verify the sha256 manifest of an offline bundle
version_added: "0.2.0"
description:
  - An offline bundle (C(playbooks/bundle.yml)) is a directory whose C(MANIFEST.sha256) lists
    every file in it with its sha256, in C(sha256sum)'s format (paths relative to the bundle,
    sorted), signed by the bundle key as the detached C(MANIFEST.sha256.sig).
  - O(state=present) (the build side) writes the manifest for the files now in O(path). A file
    whose size and modification time match the previous run keeps the sha256 recorded then
    (C(.llmfleet-hash-cache.json)), so re-running a build does not read every model file again.
    A changed manifest removes the signature it no longer matches (sign it again).
  - The build refuses, before it reads any file and naming each, every file whose path the
    verify would not read back as the same path, so a bundle that builds always verifies - a
    path that is not UTF-8, holds a line break, tab or other control, format or non-plain space
    character, a backslash, or has a file or directory name that starts or ends with
    whitespace. Links and special files are refused the same way. No manifest is written then.
  - O(state=verified) (the target) checks the signature with C(gpgv) against O(keyring) - the
    key the operator trusts, never one carried in the bundle - then every file against the
    manifest, and fails naming each file that is missing, altered (with both sha256), unlisted
    (an added file would be taken by pip's C(--find-links) or apt's pool) or not a regular file.
    Nothing is changed.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  path:
    description: The bundle's root directory.
    type: path
    required: true
  state:
    description: C(present) writes the manifest; C(verified) checks the bundle against it.
    type: str
    choices: [present, verified]
    default: verified
  keyring:
    description:
      - A binary OpenPGP public keyring (C(gpg --export KEY > bundle-key.gpg)) holding the bundle
        key (O(state=verified)). Required unless O(require_signature=false).
    type: path
  require_signature:
    description:
      - Refuse a bundle without a good signature by a key in O(keyring) (O(state=verified)).
        C(false) checks the files only (a bundle whose manifest reached the host some trusted
        way).
    type: bool
    default: true
  prune:
    description:
      - With O(state=verified), remove files the manifest does not list (and links) before the
        check - for a copy of a bundle already verified elsewhere, whose destination still holds
        files of the previous bundle. Without it such files are refused as unlisted. Not in
        check mode (it reports them).
    type: bool
    default: false
  gpgv:
    description:
      - The C(gpgv) executable, a name looked up on C(PATH) or a path (Debian and Ubuntu have it
        as apt's dependency, package C(gpgv); RHEL and Fedora in C(gnupg2)).
      - Used with O(state=verified) and O(require_signature=true) only. When it is not found or
        cannot be run the task fails naming the program, where it was looked for and the
        package that provides it, before anything is pruned.
    type: path
    default: gpgv
attributes:
  check_mode:
    support: full
    description:
      - O(state=present) reports the manifest it would write and writes nothing; O(state=verified)
        checks as usual and reports the files O(prune) would remove without removing them.
  diff_mode:
    support: full
    description: O(state=present) - the manifest's lines before and after.
  platform:
    description: Reads and writes plain files; C(gpgv) for the signature.
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.posix
seealso:
  - name: Air-gapped installs
    description: docs/airgap.md in the collection - build, transfer, verify, install.
    link: https://github.com/llmfleet/deepseek/blob/main/docs/airgap.md
"""

EXAMPLES = r"""
- name: Write the bundle's manifest (build host)
  llmfleet.deepseek.bundle_manifest:
    path: /srv/bundles/llmfleet-bookworm
    state: present

- name: Verify the bundle before anything is installed (target)
  llmfleet.deepseek.bundle_manifest:
    path: /srv/llmfleet/bundle
    keyring: /etc/llmfleet/bundle-key.gpg
"""

RETURN = r"""
files:
  description: The number of files the manifest lists.
  returned: always
  type: int
  sample: 212
bytes:
  description: Their total size.
  returned: always
  type: int
  sample: 160432128
manifest:
  description: The manifest's path.
  returned: always
  type: str
  sample: /srv/llmfleet/bundle/MANIFEST.sha256
signed_by:
  description: The fingerprint of the key whose good signature was checked (O(state=verified)).
  returned: when the signature was checked
  type: str
  sample: 3F2A0C8D9E1B4A7C6D5E8F9A0B1C2D3E4F5A6B7C
problems:
  description:
    - What is wrong, one C({kind, path, detail}) per file - with O(state=verified) C(missing),
      C(altered), C(unlisted), C(not a regular file); with O(state=present) C(not a regular file)
      and C(cannot be listed in the manifest) (C(detail) says why).
    - A path that is not UTF-8 is given with C(\xNN) escapes for its bytes.
  returned: on failure
  type: list
  elements: dict
pruned:
  description: The files removed (O(prune)), or that would be in check mode.
  returned: when O(state=verified)
  type: list
  elements: str
signature_removed:
  description: The manifest changed and the old signature was removed (O(state=present)).
  returned: when O(state=present)
  type: bool
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.deepseek.plugins.module_utils import bundle, c_locale


def _read(path, errors="strict"):
    """The file's text as UTF-8 (the manifest is always UTF-8, whatever the host's locale), or
    None when it cannot be read. UnicodeDecodeError with errors='strict' and other bytes."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.decode("utf-8", errors)


def _write(path, text):
    """Write text as UTF-8 through a temporary file and a rename."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(text.encode("utf-8"))
    os.replace(tmp, path)


# The program that checks signatures, and the packages that provide it.
GPGV_PACKAGES = "gpgv (Debian, Ubuntu; gnupg pulls it in) or gnupg2 (RHEL, Fedora)"


def _gpgv_program(module):
    """The gpgv executable to run: the option as a path, or looked up on PATH. Fails naming the
    program, where it was looked for and the package that provides it."""
    name = module.params["gpgv"]
    if "/" in name:
        if not os.path.exists(name):
            module.fail_json(msg="gpgv: the program %s does not exist on the host; install the package %s, or set gpgv to "
                                 "the path of the gpgv program" % (name, GPGV_PACKAGES))
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            module.fail_json(msg="gpgv: %s is not an executable program on the host; set gpgv to the gpgv program "
                                 "(from the package %s)" % (name, GPGV_PACKAGES))
        return name
    found = module.get_bin_path(name)
    if not found:
        module.fail_json(msg="gpgv: the program %s is not on PATH (%s) or in /sbin, /usr/sbin, /usr/local/sbin on the host; "
                             "install the package %s, or set gpgv to its full path"
                             % (name, os.environ.get("PATH", ""), GPGV_PACKAGES))
    return found


def _check_signature(module, root, keyring, gpgv):
    manifest = os.path.join(root, bundle.MANIFEST)
    signature = os.path.join(root, bundle.SIGNATURE)
    if not os.path.isfile(signature):
        module.fail_json(msg="bundle %s: %s is missing - an unsigned bundle is refused (require_signature)" % (root, bundle.SIGNATURE))
    if not keyring or not os.path.isfile(keyring):
        module.fail_json(msg="bundle %s: keyring %s is not a file (the bundle key you trust, gpg --export)" % (root, keyring))
    home = tempfile.mkdtemp(prefix="llmfleet-gpgv-")
    try:
        rc, out, err = c_locale.run(
            module, [gpgv, "--homedir", home, "--status-fd", "1", "--keyring", keyring, signature, manifest],
            handle_exceptions=False)
    except OSError as exc:
        module.fail_json(msg="gpgv: the program %s could not be run (%s); install the package %s, or set gpgv to the path of "
                             "the gpgv program" % (gpgv, exc.strerror or exc, GPGV_PACKAGES))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    valid = [line.split()[2] for line in out.splitlines() if line.startswith("[GNUPG:] VALIDSIG ")]
    if rc != 0 or not valid:
        said = [line for line in (err or out).strip().splitlines() if line.strip()]
        module.fail_json(msg="bundle %s: the signature of %s is not good by a key in %s (%s); nothing was installed from it"
                         % (root, bundle.MANIFEST, keyring, said[-1] if said else "gpgv exit %d" % rc))
    return valid[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "verified"], default="verified"),
            keyring=dict(type="path"),
            require_signature=dict(type="bool", default=True),
            prune=dict(type="bool", default=False),
            gpgv=dict(type="path", default="gpgv"),
        ),
        supports_check_mode=True,
    )
    root = os.path.abspath(module.params["path"])
    manifest = os.path.join(root, bundle.MANIFEST)
    if not os.path.isdir(root):
        module.fail_json(msg="bundle %s is not a directory" % root)

    if module.params["state"] == "present":
        entries, cache, problems = bundle.build(root, bundle.load_cache(root))
        if problems:
            module.fail_json(msg="bundle %s: %s; no manifest was written" % (root, bundle.describe(problems)),
                             problems=[dict(kind=k, path=bundle.text_path(p), detail=d) for k, p, d in problems])
        text = bundle.render(entries)
        before = _read(manifest, errors="replace")
        changed = before != text
        signature = os.path.join(root, bundle.SIGNATURE)
        removed = changed and os.path.exists(signature)
        if not module.check_mode:
            if changed:
                if removed:
                    os.remove(signature)
                _write(manifest, text)
            cache_path = os.path.join(root, bundle.HASH_CACHE)
            cache_text = json.dumps(cache, sort_keys=True)
            if _read(cache_path, errors="replace") != cache_text:
                _write(cache_path, cache_text)
        result = dict(changed=changed, files=len(entries), bytes=bundle.total_size(root, entries), manifest=manifest,
                      signature_removed=removed)
        if module._diff and changed:
            result["diff"] = dict(before=before or "", after=text, before_header=manifest, after_header=manifest)
        module.exit_json(**result)

    gpgv = _gpgv_program(module) if module.params["require_signature"] else None
    try:
        text = _read(manifest)
    except UnicodeDecodeError as exc:
        module.fail_json(msg="bundle %s: %s is not UTF-8 text (%s); nothing was installed from it" % (root, bundle.MANIFEST, exc))
    if text is None:
        module.fail_json(msg="bundle %s: %s is missing (not a bundle, or an unfinished copy)" % (root, bundle.MANIFEST))
    signed_by = None
    if module.params["require_signature"]:
        signed_by = _check_signature(module, root, module.params["keyring"], gpgv)
    try:
        entries = bundle.parse(text)
    except bundle.ManifestError as exc:
        module.fail_json(msg="bundle %s: %s %s" % (root, bundle.MANIFEST, exc))
    pruned = []
    if module.params["prune"]:
        files, odd = bundle.scan(root)
        pruned = sorted([rel for rel in files if rel not in entries] + [rel for _kind, rel in odd])
        if not module.check_mode:
            for rel in pruned:
                os.remove(os.path.join(root, rel))
    problems = bundle.verify(root, entries)
    if module.check_mode and pruned:
        problems = [p for p in problems if not (p[0] in ("unlisted", "not a regular file") and p[1] in pruned)]
    if problems:
        module.fail_json(msg="bundle %s is refused, nothing was installed from it: %s" % (root, bundle.describe(problems)),
                         problems=[dict(kind=k, path=bundle.text_path(p), detail=d) for k, p, d in problems],
                         files=len(entries), bytes=0, manifest=manifest)
    result = dict(changed=bool(pruned), files=len(entries), bytes=bundle.total_size(root, entries), manifest=manifest,
                  pruned=[bundle.text_path(rel) for rel in pruned])
    if signed_by:
        result["signed_by"] = signed_by
    module.exit_json(**result)


if __name__ == "__main__":
    main()
