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


def test_gpgv_runs_in_the_c_locale(monkeypatch, tree, gpg_key):
    """Its output is parsed (and quoted in messages): the real gpgv, with a spy on run_command."""
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    seen = []
    real = bundle_manifest.AnsibleModule.run_command

    def spy(self, args, **kwargs):
        seen.append((os.path.basename(args[0]), kwargs.get("environ_update")))
        return real(self, args, **kwargs)

    monkeypatch.setattr(bundle_manifest.AnsibleModule, "run_command", spy)
    assert not run(monkeypatch, dict(path=str(tree), keyring=str(keys["bundle"][1]))).failed
    assert seen == [("gpgv", {"LANG": "C", "LC_ALL": "C"})]


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


# --------------------------------------------------------------------------------------------- awkward names
# A bundle that builds always verifies (issue 24, class 4): for every name, either the build
# refuses it naming the file and why (and writes no manifest), or the build succeeds and the
# verify - the same parser the target runs - accepts the bundle.

AWKWARD = [
    "space inside.whl", " leading-space.whl", "trailing-space.whl ", "tab\tinside.whl", "\tleading-tab.whl",
    "trailing-tab.whl\t", "new\nline.whl", "trailing-newline.whl\n", "carriage\rreturn.whl", "crlf\r\n.whl",
    "vertical\x0btab.whl", "form\x0cfeed.whl", "file\x1cseparator.whl", "next\x85line.whl", "line\u2028separator.whl",
    "paragraph\u2029separator.whl", "bell\x07.whl", "delete\x7f.whl", "c1\x9bcsi.whl", "nbsp\xa0inside.whl",
    "\xa0leading-nbsp.whl", "zero\u200bwidth.whl", "rtl\u202eoverride.whl", "unicod\u00e9-\u00fc\u00df.whl",
    "\u65e5\u672c\u8a9e.whl", "emoji-\U0001F642.whl", "-dash.whl", "--help", "#hash.whl", "*star.whl",
    "back\\slash.whl", "quotes'\".whl", "percent%41.whl", "colon:x.whl", "semi;colon", "dollar$HOME", "glob[ab]?.whl",
    "dir with space/x.whl", "dir/ leading-space-in-file.whl", "trailing-space-dir /x.whl", "sub/MANIFEST.sha256",
    "MANIFEST.sha256 ", ".hidden", "..dots", "a" * 200, b"latin1-\xe9.whl", b"bad-utf8-\xff\xfe.whl",
]


def _make(root, name):
    """Create the file `name` (str, or bytes for a name that is not UTF-8) under root; its relative path as os.walk sees it."""
    if isinstance(name, bytes):
        path = os.path.join(os.fsencode(str(root)), name)
        rel = os.fsdecode(name)
    else:
        path = os.path.join(str(root), name)
        rel = name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"payload of an awkward name")
    return rel


@pytest.mark.parametrize("name", AWKWARD, ids=[ascii(n) for n in AWKWARD])
def test_an_awkward_name_is_refused_by_the_build_or_verifies(monkeypatch, tree, name):
    rel = _make(tree / "wheels", name)
    rel = "wheels/" + rel
    built = run(monkeypatch, dict(path=str(tree), state="present"))
    if built.failed:
        msg = built.result["msg"]
        assert msg.startswith("bundle %s: " % tree) and msg.endswith("; no manifest was written"), msg
        assert "%s cannot be listed in the manifest (the path " % bundle.shown(rel) in msg, msg
        assert built.result["problems"] == [dict(kind="cannot be listed in the manifest", path=bundle.text_path(rel),
                                                 detail="the path " + bundle.name_problem(rel))]
        assert not (tree / bundle.MANIFEST).exists() and not (tree / bundle.HASH_CACHE).exists()
        return
    assert built.result["files"] == 4
    entries = bundle.parse((tree / bundle.MANIFEST).read_bytes().decode("utf-8"))
    assert rel in entries and len(entries) == 4
    verified = run(monkeypatch, dict(path=str(tree), require_signature=False))
    assert not verified.failed, verified.result
    assert verified.result["files"] == 4


@pytest.mark.parametrize("name, why", [
    ("trailing-space.whl ", "has a file name 'trailing-space.whl ' that starts or ends with whitespace"),
    (" leading-space.whl", "has a file name ' leading-space.whl' that starts or ends with whitespace"),
    ("dir/ leading-space.whl", "has a file name ' leading-space.whl' that starts or ends with whitespace"),
    ("trailing-space-dir /x.whl", "has a directory name 'trailing-space-dir ' that starts or ends with whitespace"),
    ("new\nline.whl", "holds a line break '\\n' at position 3"),
    ("carriage\rreturn.whl", "holds a line break '\\r' at position 8"),
    ("\tleading-tab.whl", "holds '\\t' at position 0, a control, format or non-plain space character"),
    ("tab\tinside.whl", "holds '\\t' at position 3, a control, format or non-plain space character"),
    ("next\x85line.whl", "holds a line break '\\x85' at position 4"),
    ("back\\slash.whl", "holds a backslash"),
    (b"bad-utf8-\xff\xfe.whl", "is not valid UTF-8 (its bytes: b'bad-utf8-\\xff\\xfe.whl')"),
])
def test_a_name_the_manifest_cannot_carry_is_refused_naming_file_and_why(monkeypatch, tree, name, why):
    rel = _make(tree, name)
    built = run(monkeypatch, dict(path=str(tree), state="present"), check_mode=True)
    assert built.failed and why in built.result["msg"], built.result["msg"]
    assert built.result["msg"].startswith("bundle %s: %s cannot be listed in the manifest (the path " % (tree, bundle.shown(rel)))
    assert built.result["problems"][0]["path"] == bundle.text_path(rel)


def test_names_the_manifest_carries_build_and_verify_with_sha256sum_too(monkeypatch, tree):
    names = ["space inside.whl", "unicod\u00e9-\u00fc\u00df.whl", "-dash.whl", "#hash.whl", "*star.whl", "dir with space/x.whl",
             "\u65e5\u672c\u8a9e.whl", "quotes'\".whl", "glob[ab]?.whl"]
    for name in names:
        _make(tree / "wheels", name)
    built = run(monkeypatch, dict(path=str(tree), state="present"))
    assert not built.failed and built.result["files"] == 3 + len(names), built.result
    check = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", bundle.MANIFEST], cwd=tree, capture_output=True, check=False)
    assert check.returncode == 0, check.stderr
    assert not run(monkeypatch, dict(path=str(tree), require_signature=False)).failed


def test_the_build_refuses_before_reading_any_file(monkeypatch, tree):
    _make(tree / "wheels", "trailing-space.whl ")
    reads = []
    monkeypatch.setattr(bundle, "sha256_file", lambda path, chunk=1 << 20: reads.append(path))
    assert run(monkeypatch, dict(path=str(tree), state="present")).failed and reads == []


def test_every_refused_name_is_reported_at_once(monkeypatch, tree):
    for name in ("a.whl ", "b\nc.whl", "d\te.whl"):
        _make(tree / "wheels", name)
    built = run(monkeypatch, dict(path=str(tree), state="present"))
    assert built.failed and [p["path"] for p in built.result["problems"]] == ["wheels/a.whl ", "wheels/b\nc.whl", "wheels/d\te.whl"]
    assert "'wheels/a.whl ' cannot" in built.result["msg"] and "'wheels/b\\nc.whl' cannot" in built.result["msg"]


# --------------------------------------------------------------------------------------------- gpgv


@pytest.fixture
def built_and_signed(monkeypatch, tree, gpg_key):
    keys, sign = gpg_key
    run(monkeypatch, dict(path=str(tree), state="present"))
    sign(tree)
    return dict(path=str(tree), keyring=str(keys["bundle"][1]))


def test_gpgv_not_on_path_says_which_program_and_the_package(monkeypatch, built_and_signed):
    monkeypatch.setenv("PATH", "/nonexistent-bin")
    monkeypatch.setattr(bundle_manifest.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    done = run(monkeypatch, dict(built_and_signed), check_mode=True)
    assert done.failed
    assert done.result["msg"] == (
        "gpgv: the program gpgv is not on PATH (/nonexistent-bin) or in /sbin, /usr/sbin, /usr/local/sbin on the host; "
        "install the package gpgv (Debian, Ubuntu; gnupg pulls it in) or gnupg2 (RHEL, Fedora), or set gpgv to its full path")


@pytest.mark.parametrize("program, why", [
    ("no-such-gpgv-program", "gpgv: the program no-such-gpgv-program is not on PATH ("),
    ("/nonexistent/gpgv", "gpgv: the program /nonexistent/gpgv does not exist on the host; install the package gpgv (Debian, Ubuntu"),
    ("{tmp}", "gpgv: {tmp} is not an executable program on the host; set gpgv to the gpgv program (from the package gpgv ("),
    ("{tmp}/not-executable", "gpgv: {tmp}/not-executable is not an executable program on the host"),
    ("{tmp}/empty-executable", "gpgv: the program {tmp}/empty-executable could not be run (Exec format error); install the package gpgv ("),
])
def test_a_gpgv_that_cannot_run_is_named_with_where_and_the_package(monkeypatch, built_and_signed, tmp_path, program, why):
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    (tmp_path / "empty-executable").write_bytes(b"")
    os.chmod(tmp_path / "empty-executable", 0o755)
    done = run(monkeypatch, dict(built_and_signed, gpgv=program.format(tmp=tmp_path)))
    assert done.failed and done.result["msg"].startswith(why.format(tmp=tmp_path)), done.result["msg"]
    assert "gnupg2 (RHEL, Fedora)" in done.result["msg"]


def test_gpgv_is_not_needed_without_a_signature_check(monkeypatch, built_and_signed):
    done = run(monkeypatch, dict(built_and_signed, gpgv="/nonexistent/gpgv", require_signature=False))
    assert not done.failed, done.result


def test_a_manifest_that_is_not_utf8_is_refused_by_the_verify(monkeypatch, tree):
    (tree / bundle.MANIFEST).write_bytes(b"%s  apt/Packages\xff\n" % (b"a" * 64))
    done = run(monkeypatch, dict(path=str(tree), require_signature=False))
    assert done.failed and done.result["msg"].startswith("bundle %s: MANIFEST.sha256 is not UTF-8 text (" % tree)
