"""bundle_manifest and module_utils/bundle: the offline bundle's manifest is written the same way
every time, re-used where files did not change, and a bundle with a missing, altered, added or
linked file, or without a good signature by the trusted key (real gpg and gpgv), is refused
naming the file."""
import json
import os
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmfleet.deepseek.plugins.module_utils import bundle
from ansible_collections.llmfleet.deepseek.plugins.modules import bundle_manifest


class Exited(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result, self.failed = result, failed


def run(monkeypatch, args, check_mode=False, diff=False):
    def exit_json(self, **kwargs):
        raise Exited(kwargs, False)

    def fail_json(self, msg, **kwargs):
        raise Exited(dict(kwargs, msg=msg), True)

    monkeypatch.setattr(bundle_manifest.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(bundle_manifest.AnsibleModule, "fail_json", fail_json)
    with patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)):
        with pytest.raises(Exited) as done:
            bundle_manifest.main()
    return done.value


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "bundle"
    (root / "apt" / "pool").mkdir(parents=True)
    (root / "wheels").mkdir()
    (root / "apt" / "pool" / "nvidia-smi_535.261.03-1_amd64.deb").write_bytes(b"deb" * 1000)
    (root / "apt" / "Packages").write_text("Package: nvidia-smi\n")
    (root / "wheels" / "nvidia_ml_py-13.580.82-py3-none-any.whl").write_bytes(b"wheel")
    return root


@pytest.fixture(scope="module")
def gpg_key(tmp_path_factory):
    """A bundle key made with the real gpg, exported as a binary keyring for gpgv."""
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)

    def gpg(*args, **kwargs):
        return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet"] + list(args),
                              check=True, capture_output=True, **kwargs)

    keys = {}
    for name in ("bundle", "other"):
        gpg("--passphrase", "", "--quick-gen-key", "llmfleet %s key <%s@example.internal>" % (name, name), "ed25519", "sign", "never")
        listing = gpg("--with-colons", "--list-keys", "%s@example.internal" % name, text=True).stdout
        fingerprint = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]
        keyring = home / ("%s.gpg" % name)
        keyring.write_bytes(gpg("--export", fingerprint).stdout)
        keys[name] = (fingerprint, keyring)

    def sign(root, name="bundle"):
        target = root / bundle.SIGNATURE
        if target.exists():
            target.unlink()
        gpg("--local-user", keys[name][0], "--detach-sign", "--output", str(target), str(root / bundle.MANIFEST))

    return keys, sign


def test_manifest_is_sha256sum_format_sorted_and_checkable_with_sha256sum(monkeypatch, tree):
    result = run(monkeypatch, dict(path=str(tree), state="present"))
    assert not result.failed and result.result["changed"] and result.result["files"] == 3
    text = (tree / bundle.MANIFEST).read_text()
    assert [line.split("  ")[1] for line in text.splitlines()] == [
        "apt/Packages", "apt/pool/nvidia-smi_535.261.03-1_amd64.deb", "wheels/nvidia_ml_py-13.580.82-py3-none-any.whl"]
    assert result.result["bytes"] == 3000 + len("Package: nvidia-smi\n") + 5
    check = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", bundle.MANIFEST], cwd=tree, capture_output=True, check=False)
    assert check.returncode == 0, check.stderr


def test_second_build_changes_nothing_and_reads_no_unchanged_file(monkeypatch, tree):
    run(monkeypatch, dict(path=str(tree), state="present"))
    reads = []
    real = bundle.sha256_file
    monkeypatch.setattr(bundle, "sha256_file", lambda path, chunk=1 << 20: reads.append(path) or real(path))
    again = run(monkeypatch, dict(path=str(tree), state="present"))
    assert not again.result["changed"] and reads == []
    (tree / "wheels" / "requests-2.32.3-py3-none-any.whl").write_bytes(b"more")
    grown = run(monkeypatch, dict(path=str(tree), state="present"))
    assert grown.result["changed"] and grown.result["files"] == 4
    assert [os.path.basename(p) for p in reads] == ["requests-2.32.3-py3-none-any.whl"]


def test_check_mode_writes_nothing_and_diff_shows_the_lines(monkeypatch, tree):
    result = run(monkeypatch, dict(path=str(tree), state="present"), check_mode=True, diff=True)
    assert result.result["changed"] and not (tree / bundle.MANIFEST).exists() and not (tree / bundle.HASH_CACHE).exists()
    assert "apt/Packages" in result.result["diff"]["after"] and result.result["diff"]["before"] == ""


def test_a_changed_manifest_drops_the_signature_it_no_longer_matches(monkeypatch, tree, gpg_key):
    sign = gpg_key[1]
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    (tree / "apt" / "Packages").write_text("Package: nvidia-smi\nVersion: 2\n")
    result = run(monkeypatch, dict(path=str(tree), state="present"))
    assert result.result["changed"] and result.result["signature_removed"] and not (tree / bundle.SIGNATURE).exists()


def test_a_link_in_the_bundle_is_refused_when_building(monkeypatch, tree):
    os.symlink("/etc/passwd", tree / "wheels" / "evil.whl")
    result = run(monkeypatch, dict(path=str(tree), state="present"))
    assert result.failed and "wheels/evil.whl not a regular file" in result.result["msg"]


def test_a_signed_untouched_bundle_verifies(monkeypatch, tree, gpg_key):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    result = run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1])), check_mode=True)
    assert not result.failed, result.result
    assert result.result["signed_by"] == keys["bundle"][0] and result.result["files"] == 3 and not result.result["changed"]


@pytest.mark.parametrize("tamper, expected", [
    (lambda root: (root / "apt" / "pool" / "nvidia-smi_535.261.03-1_amd64.deb").write_bytes(b"dea" + b"deb" * 999),
     "apt/pool/nvidia-smi_535.261.03-1_amd64.deb altered (sha256 "),
    (lambda root: (root / "wheels" / "nvidia_ml_py-13.580.82-py3-none-any.whl").unlink(),
     "wheels/nvidia_ml_py-13.580.82-py3-none-any.whl missing"),
    (lambda root: (root / "wheels" / "pynvml-evil-py3-none-any.whl").write_bytes(b"x"),
     "wheels/pynvml-evil-py3-none-any.whl unlisted"),
    (lambda root: os.symlink("/etc/shadow", root / "apt" / "pool" / "x.deb"), "apt/pool/x.deb not a regular file"),
])
def test_a_tampered_bundle_is_refused_naming_the_file(monkeypatch, tree, gpg_key, tamper, expected):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    tamper(tree)
    result = run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1])))
    assert result.failed and "is refused, nothing was installed from it" in result.result["msg"]
    assert expected in result.result["msg"], result.result["msg"]
    assert len(result.result["problems"]) == 1


def test_an_edited_manifest_fails_the_signature(monkeypatch, tree, gpg_key):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    # The attacker changes a file and "fixes" the manifest to match: the signature no longer does.
    (tree / "apt" / "Packages").write_text("Package: evil\n")
    lines = (tree / bundle.MANIFEST).read_text().splitlines()
    lines[0] = "%s  apt/Packages" % bundle.sha256_file(str(tree / "apt" / "Packages"))
    (tree / bundle.MANIFEST).write_text("\n".join(lines) + "\n")
    result = run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1])))
    assert result.failed and "the signature of MANIFEST.sha256 is not good" in result.result["msg"], result.result["msg"]


def test_a_bundle_signed_by_another_key_or_unsigned_is_refused(monkeypatch, tree, gpg_key):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    unsigned = run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1])))
    assert unsigned.failed and "MANIFEST.sha256.sig is missing" in unsigned.result["msg"]
    sign(tree, "other")
    other = run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1])))
    assert other.failed and "is not good by a key in" in other.result["msg"]
    assert not run(monkeypatch, dict(path=str(tree), require_signature=False)).failed


def test_no_manifest_or_no_keyring_is_a_clear_error(monkeypatch, tree, tmp_path):
    missing = run(monkeypatch, dict(path=str(tree), require_signature=False))
    assert missing.failed and "MANIFEST.sha256 is missing" in missing.result["msg"]
    (tree / bundle.MANIFEST).write_text("")
    (tree / bundle.SIGNATURE).write_bytes(b"")
    nokey = run(monkeypatch, dict(path=str(tree), keyring=str(tmp_path / "none.gpg")))
    assert nokey.failed and "keyring %s is not a file" % (tmp_path / "none.gpg") in nokey.result["msg"]


@pytest.mark.parametrize("line, why", [
    ("%s  ../etc/passwd" % ("a" * 64), "outside the bundle"),
    ("%s  /etc/passwd" % ("a" * 64), "outside the bundle"),
    ("%s  MANIFEST.sha256" % ("a" * 64), "never lists"),
    ("%s apt/Packages" % ("a" * 64), "is not '<sha256>  <path>'"),
    ("%s  a\n%s  a" % ("a" * 64, "b" * 64), "a second time"),
])
def test_a_malformed_manifest_is_refused(line, why):
    with pytest.raises(bundle.ManifestError, match=why):
        bundle.parse(line + "\n")


def test_the_cache_is_json_of_size_mtime_and_sha256(monkeypatch, tree):
    run(monkeypatch, dict(path=str(tree), state="present"))
    cache = json.loads((tree / bundle.HASH_CACHE).read_text())
    size, mtime, digest = cache["apt/Packages"]
    assert size == len("Package: nvidia-smi\n") and mtime > 0 and digest == bundle.sha256_file(str(tree / "apt" / "Packages"))


MADISON = [
    "nvidia-smi | 535.309.01-0+deb12u1 | http://deb.debian.org/debian bookworm/non-free amd64 Packages",
    "nvidia-smi | 535.261.03-1~deb12u1 | http://deb.debian.org/debian bookworm-updates/non-free amd64 Packages",
    "nvidia-smi | 535.216.01-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/non-free amd64 Packages",
    "libcuda1 | 535.261.03-1~deb12u1 | http://deb.debian.org/debian bookworm/non-free amd64 Packages",
]


def test_pins_with_a_pattern_get_the_newest_matching_version():
    resolved, unresolved = bundle.pick_versions(
        ["jq", "nvidia-smi=535.261.03-*", "libcuda1=535.261.03-*", "nginx=1.22.1-9"], MADISON)
    assert resolved == ["jq", "nvidia-smi=535.261.03-1~deb12u1", "libcuda1=535.261.03-1~deb12u1", "nginx=1.22.1-9"]
    assert unresolved == []
    assert bundle.pick_versions(["nvidia-smi=535.*"], MADISON)[0] == ["nvidia-smi=535.309.01-0+deb12u1"]


def test_a_pin_nothing_matches_is_unresolved():
    resolved, unresolved = bundle.pick_versions(["nvidia-smi=580.95.05-*", "libnvidia-ml1=535.261.03-*"], MADISON)
    assert resolved == [] and unresolved == ["nvidia-smi=580.95.05-*", "libnvidia-ml1=535.261.03-*"]


def test_prune_removes_what_a_new_bundle_no_longer_lists_then_verifies(monkeypatch, tree, gpg_key):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    (tree / "wheels" / "old-1.0-py3-none-any.whl").write_bytes(b"from the previous bundle")
    args = dict(path=str(tree), keyring=str(keys["bundle"][1]), prune=True)
    checked = run(monkeypatch, args, check_mode=True)
    assert not checked.failed and checked.result["pruned"] == ["wheels/old-1.0-py3-none-any.whl"]
    assert (tree / "wheels" / "old-1.0-py3-none-any.whl").exists()
    done = run(monkeypatch, args)
    assert not done.failed and done.result["changed"] and not (tree / "wheels" / "old-1.0-py3-none-any.whl").exists()
    again = run(monkeypatch, args)
    assert not again.result["changed"] and again.result["pruned"] == []
