# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The offline bundle's manifest: every file of the bundle with its sha256, written on the build
host and verified on the target the same way.

The manifest (MANIFEST.sha256) is in sha256sum's format - "<64 hex>  <path>", paths relative to
the bundle's root, sorted - so an operator can also check a bundle with `sha256sum --check`.
The manifest and its detached signature are not listed in it. A bundle is good when every listed
file is there with its sha256, nothing else is there (pip's --find-links and apt's pool would
take an added file), and nothing is a link or a special file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import stat
import unicodedata

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
# Written by the build side next to the manifest, never trusted by the target.
HASH_CACHE = ".llmfleet-hash-cache.json"
UNLISTED = (MANIFEST, SIGNATURE, HASH_CACHE)
_LINE = re.compile(r"^([0-9a-f]{64})  (\S(?:.*\S)?)$")
CANNOT_CARRY = "cannot be listed in the manifest"
_PROBE_DIGEST = "0" * 64


class ManifestError(ValueError):
    """A manifest that cannot be read (its line number and why)."""


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def safe_relative(rel):
    """A manifest path must stay inside the bundle: relative, normalised, no '..', no NUL."""
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    return all(part not in ("", ".", "..") for part in parts)


def shown(rel):
    """rel as a message shows it: as is when every character is visible and no part of it has a
    space at either end, else quoted with escapes (a trailing space, a tab or a newline made visible).
    A name that is not UTF-8 shows its bytes as \\xNN."""
    try:
        rel.encode("utf-8")
    except UnicodeError:
        return repr(os.fsencode(rel).decode("utf-8", "backslashreplace"))
    if any(part != part.strip() for part in rel.split("/")) or not all(char.isprintable() or char == " " for char in rel):
        return repr(rel)
    return rel


def text_path(rel):
    """rel as text that JSON and the controller can carry (a non-UTF-8 name as \\xNN escapes)."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")


def name_problem(rel):
    """Why the manifest cannot carry the relative path `rel` so that the verify reads back the
    same path (the end of a sentence naming the file), or None when it can.

    The manifest is UTF-8 text of lines "<sha256>  <path>", split as parse() splits them. The
    checks before the last only word the common reasons; the last one is the verify's own parser
    reading the line back, so any name the verify would refuse or read differently is refused
    here, whatever the character.
    """
    try:
        rel.encode("utf-8")
    except UnicodeError:
        return "is not valid UTF-8 (its bytes: %s); the manifest is UTF-8 text" % os.fsencode(rel)
    for position, char in enumerate(rel):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or (char.isspace() and char != " "):
            if len(("x%sx" % char).splitlines()) > 1:
                return "holds a line break %r at position %d; a manifest line cannot carry it" % (char, position)
            return ("holds %r at position %d, a control, format or non-plain space character the manifest does not carry"
                    % (char, position))
    parts = rel.split("/")
    for number, part in enumerate(parts, 1):
        if part != part.strip():
            # The verify's line cannot carry it at the start or end of the line; anywhere else it
            # would read back, but a name whose space is invisible is refused the same everywhere.
            return ("has a %s %r that starts or ends with whitespace; the manifest does not carry it"
                    % ("file name" if number == len(parts) else "directory name", part))
    if "\\" in rel:
        return "holds a backslash, which the manifest never carries (sha256sum escapes it, the verify refuses it)"
    if not safe_relative(rel):
        return "is not a plain relative path inside the bundle"
    try:
        back = parse(render({rel: _PROBE_DIGEST}).encode("utf-8").decode("utf-8"))
    except ManifestError as exc:
        return "would not be read back by the verify (%s)" % exc
    if back != {rel: _PROBE_DIGEST}:
        return "would be read back by the verify as %s" % ", ".join(shown(name) for name in back)
    return None


def scan(root):
    """(files, problems): every regular file under root as a relative path, sorted, and the
    entries that are not regular files or directories (links, sockets, devices)."""
    files, problems = [], []
    root = os.path.abspath(root)
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames):
            full = os.path.join(directory, name)
            if os.path.islink(full):
                problems.append(("not a regular file", os.path.relpath(full, root)))
        for name in filenames:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                problems.append(("not a regular file", rel))
            elif rel not in UNLISTED:
                files.append(rel)
    return sorted(files), sorted(problems)


def parse(text):
    """{path: sha256} from a manifest's text; ManifestError on a malformed or unsafe line."""
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ManifestError("line %d is not '<sha256>  <path>': %r" % (number, line[:120]))
        digest, rel = match.groups()
        if not safe_relative(rel):
            raise ManifestError("line %d names a path outside the bundle: %r" % (number, rel))
        if rel in UNLISTED:
            raise ManifestError("line %d lists %s, which the manifest never lists" % (number, rel))
        if rel in entries:
            raise ManifestError("line %d lists %s a second time" % (number, rel))
        entries[rel] = digest
    return entries


def render(entries):
    return "".join("%s  %s\n" % (entries[rel], rel) for rel in sorted(entries))


def load_cache(root):
    try:
        with open(os.path.join(root, HASH_CACHE)) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def build(root, cache=None):
    """(entries, cache, problems) for the files now under root. A file whose size and mtime
    (ns) are those of the cache keeps its cached sha256 (re-running a build does not read 700
    GB of weights again); everything else is read.

    problems are (kind, path, detail): links and special files, and names the manifest cannot
    carry (name_problem). With any problem nothing is read and entries are empty: a manifest the
    verify would refuse is never written."""
    cache = cache or {}
    files, found = scan(root)
    problems = [(kind, rel, "") for kind, rel in found]
    for rel in files:
        why = name_problem(rel)
        if why:
            problems.append((CANNOT_CARRY, rel, "the path " + why))
    if problems:
        return {}, {}, problems
    entries, new_cache = {}, {}
    for rel in files:
        info = os.stat(os.path.join(root, rel))
        key = [info.st_size, info.st_mtime_ns]
        cached = cache.get(rel)
        if isinstance(cached, list) and len(cached) == 3 and cached[:2] == key:
            digest = cached[2]
        else:
            digest = sha256_file(os.path.join(root, rel))
        entries[rel] = digest
        new_cache[rel] = key + [digest]
    return entries, new_cache, problems


def verify(root, entries):
    """Problems of the bundle at root against the manifest's entries, as (kind, path, detail):
    missing, altered (detail: expected and actual sha256), unlisted, not a regular file.
    Empty: every file is there, as listed, and nothing else is."""
    files, problems = scan(root)
    present = set(files)
    out = [(kind, rel, "") for kind, rel in problems]
    for rel in sorted(entries):
        if rel not in present:
            out.append(("missing", rel, ""))
            continue
        actual = sha256_file(os.path.join(root, rel))
        if actual != entries[rel]:
            out.append(("altered", rel, "sha256 %s, the manifest says %s" % (actual, entries[rel])))
    for rel in files:
        if rel not in entries:
            out.append(("unlisted", rel, ""))
    return out


def describe(problems, limit=10):
    """One line naming the files (the first `limit`) and what is wrong with each."""
    words = ["%s %s%s" % (shown(rel), kind, (" (%s)" % detail) if detail else "") for kind, rel, detail in problems[:limit]]
    more = len(problems) - limit
    return "; ".join(words) + ("; and %d more" % more if more > 0 else "")


def total_size(root, entries):
    return sum(os.path.getsize(os.path.join(root, rel)) for rel in entries if os.path.isfile(os.path.join(root, rel)))


def pick_versions(specs, madison_lines):
    """(resolved, unresolved) for apt specs "name=pattern" whose pattern has '*' (the roles' pins,
    e.g. nvidia-smi=535.261.03-*): the newest version apt-cache madison lists for that name that
    matches the pattern as a glob. Specs without '*' pass through unchanged."""
    import fnmatch

    available = {}
    for line in madison_lines:
        fields = [field.strip() for field in line.split("|")]
        if len(fields) >= 2 and fields[0] and fields[1]:
            available.setdefault(fields[0], []).append(fields[1])
    resolved, unresolved = [], []
    for spec in specs:
        name, eq, pattern = spec.partition("=")
        if not eq or "*" not in pattern:
            resolved.append(spec)
            continue
        matches = [version for version in available.get(name, []) if fnmatch.fnmatchcase(version, pattern)]
        if matches:
            resolved.append("%s=%s" % (name, matches[0]))
        else:
            unresolved.append(spec)
    return resolved, unresolved
