"""Writes the support matrix (what was proven where) from docs/support.yml into README.md, into
docs/support.md (with the detail of every cell) and into the "Where this ran" block of each page
a row names, so none of them is written by hand.

    python3 scripts/support_matrix.py          rewrite the generated blocks
    python3 scripts/support_matrix.py --check  exit 1, naming the files, when a block is stale or
                                               missing, or when docs/support.yml breaks its own rules

Each block stands between its two marker lines; the rest of each file is prose.
tests/unit/test_support_matrix.py holds the data against the repository (scenarios, unit tests,
the GPU machine's script).
"""
import argparse
import os
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = "docs/support.yml"
README = "README.md"
SUPPORT = "docs/support.md"
_GEN = "generated from docs/support.yml by scripts/support_matrix.py"
MATRIX = ("<!-- BEGIN SUPPORT MATRIX: %s -->" % _GEN, "<!-- END SUPPORT MATRIX -->")
DETAIL = ("<!-- BEGIN SUPPORT DETAIL: %s -->" % _GEN, "<!-- END SUPPORT DETAIL -->")
PAGE = ("<!-- BEGIN WHERE THIS RAN: %s -->" % _GEN, "<!-- END WHERE THIS RAN -->")

# status: (in the README's table, in sentences)
STATUSES = {
    "molecule": ("make test", "proven by `make test`"),
    "device": ("read/`--check` on the GPU", "read-only and `--check` runs on the GPU machine"),
    "unit": ("unit tests only", "unit-tested only, against fakes"),
    "docs": ("**never run**", "never run"),
    "n/a": ("n/a", "does not apply"),
}
EVIDENCE = ("molecule", "device", "unit", "make", "vars")
# The evidence a status needs, and the evidence it may not carry.
NEEDS = {"molecule": "molecule", "device": "device", "unit": "unit"}
FORBIDS = {"unit": ("molecule", "device"), "docs": ("molecule", "device", "unit", "make")}
KINDS = ("role", "module", "flow")
SHORT_MAX = 32


def load(root):
    return yaml.safe_load((pathlib.Path(root) / DATA).read_text())


def row_id(row):
    return row.get("id", row["name"])


def evidence(cell, kind=None):
    """The references of a cell's evidence, of one kind or all as (kind, reference) pairs."""
    pairs = [next(iter(item.items())) for item in cell.get("evidence") or []]
    return [ref for k, ref in pairs if k == kind] if kind else pairs


def problems(data):
    """What breaks the file's own rules (a list of sentences; empty when none)."""
    found = []
    targets = list(data.get("targets") or {})
    if not targets:
        found.append("no targets")
    seen = set()
    for row in data.get("rows") or []:
        name = row.get("name", "?")
        if row_id(row) in seen:
            found.append("%s: id %s used twice" % (name, row_id(row)))
        seen.add(row_id(row))
        for key in ("kind", "page", "summary", "targets"):
            if not row.get(key):
                found.append("%s: no %s" % (name, key))
        if row.get("kind") not in KINDS:
            found.append("%s: kind %r is not one of %s" % (name, row.get("kind"), ", ".join(KINDS)))
        if row.get("kind") == "flow" and not row.get("match"):
            found.append("%s: a flow needs match (the strings that show a test runs it)" % name)
        cells = row.get("targets") or {}
        if sorted(cells) != sorted(targets):
            found.append("%s: targets %s, not %s" % (name, sorted(cells), sorted(targets)))
        for target, cell in cells.items():
            where = "%s, %s" % (name, target)
            status = cell.get("status")
            if status not in STATUSES:
                found.append("%s: status %r is not one of %s" % (where, status, ", ".join(STATUSES)))
                continue
            for item in cell.get("evidence") or []:
                if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in EVIDENCE:
                    found.append("%s: evidence %r is not one of %s: <reference>" % (where, item, "/".join(EVIDENCE)))
            if any(not isinstance(item, dict) or len(item) != 1 for item in cell.get("evidence") or []):
                continue
            kinds = {pair[0] for pair in evidence(cell)}
            if status in NEEDS and NEEDS[status] not in kinds:
                found.append("%s: %s needs %s evidence" % (where, status, NEEDS[status]))
            for kind in FORBIDS.get(status, ()):
                if kind in kinds:
                    found.append("%s: %s cannot carry %s evidence" % (where, status, kind))
            if status == "n/a" and not cell.get("short"):
                found.append("%s: n/a needs short (why)" % where)
            if len(cell.get("short") or "") > SHORT_MAX:
                found.append("%s: short is longer than %d characters" % (where, SHORT_MAX))
    return found


def _title(row):
    name = row["name"]
    return "`%s`" % name if row["kind"] in ("role", "module") or name.endswith(".yml") else name


def _link(src, dest):
    """dest (a path from the root) as seen from the file src (a path from the root)."""
    return os.path.relpath(dest, os.path.dirname(src) or ".")


def _cell(cell):
    status = cell["status"]
    text = STATUSES[status][0]
    if status == "molecule":
        text += ": " + ", ".join("`%s`" % s for s in evidence(cell, "molecule"))
    if cell.get("short"):
        text += " (%s)" % cell["short"]
    return text


def matrix(data, src):
    """The table, for the file src (links are relative to it)."""
    targets = data["targets"]
    lines = ["| | %s |" % " | ".join(targets.values()), "|---" * (len(targets) + 1) + "|"]
    for row in data["rows"]:
        head = "%s [%s](%s)" % (row["kind"], _title(row), _link(src, row["page"]))
        lines.append("| %s | %s |" % (head, " | ".join(_cell(row["targets"][t]) for t in targets)))
    return "\n".join(lines)


def _refs(cell):
    """The evidence in words: Molecule `a`, `b`; unit `path`; ..."""
    words = {"molecule": "Molecule", "device": "`scripts/device_check.sh`:", "unit": "unit",
             "make": "`make test` runs", "vars": "written into"}
    parts = []
    for kind in EVIDENCE:
        refs = evidence(cell, kind)
        if refs:
            parts.append("%s %s" % (words[kind], ", ".join("`%s`" % r for r in refs)))
    return "; ".join(parts)


def _sentence(cell):
    text = STATUSES[cell["status"]][1]
    if cell.get("short") and cell["status"] == "n/a":
        text += " (%s)" % cell["short"]
    refs = _refs(cell)
    if refs:
        text += " (%s)" % refs
    note = (cell.get("note") or "").strip()
    return "%s.%s" % (text, " " + note if note else "")


def detail(data, src):
    """Every row with the evidence and notes of every cell, for the file src."""
    targets = data["targets"]
    out = []
    for row in data["rows"]:
        out += ['### <a id="%s"></a>%s (%s)' % (row_id(row), _title(row), row["kind"]), "",
                "%s. Page: [%s](%s)." % (row["summary"], row["page"], _link(src, row["page"])), "",
                "| Target | Status | Evidence | Notes |", "| --- | --- | --- | --- |"]
        for key, label in targets.items():
            cell = row["targets"][key]
            status = STATUSES[cell["status"]][1] + (" (%s)" % cell["short"] if cell.get("short") else "")
            note = " ".join((cell.get("note") or "").split()).replace("|", "\\|")
            out.append("| %s | %s | %s | %s |" % (label, status, _refs(cell) or "-", note or "-"))
        out.append("")
    return "\n".join(out).rstrip("\n")


def pages(data):
    """Each page a row names, with its rows (in the file's order)."""
    found = {}
    for row in data["rows"]:
        found.setdefault(row["page"], []).append(row)
    return found


def page_block(data, page, rows):
    head = "Where it ran, by target (%s; every row: [the support matrix](%s)):" % (
        "from [docs/support.yml](%s)" % _link(page, DATA), _link(page, SUPPORT))
    out = [head, ""]
    for row in rows:
        indent = ""
        if len(rows) > 1:
            out.append("- %s:" % _title(row))
            indent = "  "
        for key, label in data["targets"].items():
            text = " ".join(_sentence(row["targets"][key]).split())
            out.append("%s- **%s**: %s" % (indent, label, text))
    return "\n".join(out)


def splice(text, markers, block):
    """text with the block between the markers replaced; None when the markers are missing."""
    begin, end = markers
    if begin not in text or end not in text:
        return None
    head, rest = text.split(begin, 1)
    return head + begin + "\n" + block + "\n" + end + rest.split(end, 1)[1]


def _insert(text, markers, block):
    """A page without the markers: the block opens its Limits section, or becomes one (before the
    variable table, or at the end)."""
    marked = "%s\n%s\n%s\n" % (markers[0], block, markers[1])
    if "\n## Limits\n" in text:
        head, tail = text.split("\n## Limits\n", 1)
        return head + "\n## Limits\n\n" + marked + "\n" + tail.lstrip("\n")
    section = "## Limits\n\n" + marked
    if "\n## Variables" in text:
        head, tail = text.split("\n## Variables", 1)
        return head.rstrip("\n") + "\n\n" + section + "\n## Variables" + tail
    return text.rstrip("\n") + "\n\n" + section


def outputs(data, root):
    """{path: (old text, new text or None when its markers are missing)} for every generated block."""
    root = pathlib.Path(root)
    result = {}
    for path, blocks in ((README, [(MATRIX, matrix(data, README))]),
                         (SUPPORT, [(MATRIX, matrix(data, SUPPORT)), (DETAIL, detail(data, SUPPORT))])):
        old = (root / path).read_text() if (root / path).exists() else ""
        new = old
        for markers, block in blocks:
            new = splice(new, markers, block) if new is not None else None
        result[path] = (old, new)
    for page, rows in pages(data).items():
        old = (root / page).read_text() if (root / page).exists() else ""
        block = page_block(data, page, rows)
        new = splice(old, PAGE, block)
        result[page] = (old, new if new is not None else _insert(old, PAGE, block))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    data = load(root)
    broken = problems(data)
    if broken:
        print("%s breaks its rules:\n  %s" % (DATA, "\n  ".join(broken)), file=sys.stderr)
        return 1
    stale, unmarked = [], []
    for path, (old, new) in outputs(data, root).items():
        if new is None:
            unmarked.append(path)
        elif new != old:
            stale.append(path)
            if not args.check:
                (root / path).write_text(new)
    if unmarked:
        print("no generated block's markers in (add %s ... %s): %s" % (MATRIX[0], MATRIX[1], ", ".join(unmarked)),
              file=sys.stderr)
    if args.check and stale:
        print("stale support matrix (run scripts/support_matrix.py): %s" % ", ".join(stale), file=sys.stderr)
    return 1 if unmarked or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
