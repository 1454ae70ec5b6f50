"""Writes the variable table of each role's page (docs/roles/<role>.md) from its
meta/argument_specs.yml, so the table is never written twice by hand.

    python3 scripts/role_docs.py          rewrite the tables
    python3 scripts/role_docs.py --check  exit 1, naming the pages, when a table is stale or missing

The table stands between the two marker lines below; the rest of the page is prose.
"""
import argparse
import json
import re
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN VARIABLES: generated from meta/argument_specs.yml by scripts/role_docs.py -->"
END = "<!-- END VARIABLES -->"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markup(text):
    """Ansible doc markup (C(), O(), V(), I()) as markdown."""
    text = re.sub(r"\b[COV]\(([^)]*)\)", r"`\1`", text)
    return re.sub(r"\bI\(([^)]*)\)", r"*\1*", text)


def _default(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return "`%s`" % json.dumps(value, separators=(", ", ": "))
    if isinstance(value, bool):
        return "`%s`" % str(value).lower()
    return "`%s`" % value if value != "" else '`""`'


def _type(spec):
    kind = spec.get("type", "str")
    if kind == "list" and spec.get("elements"):
        kind = "list of %s" % spec["elements"]
    if spec.get("choices"):
        kind += " (%s)" % ", ".join(str(c) for c in spec["choices"])
    return kind


def render_table(spec_file):
    """The markdown table (a string) for the `main` entry point of an argument_specs file (or its
    only entry point: fleet_defaults names its `shared`, so that no role gains a check task)."""
    entries = yaml.safe_load(pathlib.Path(spec_file).read_text())["argument_specs"]
    specs = entries["main"] if "main" in entries else next(iter(entries.values()))
    lines = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, spec in specs.get("options", {}).items():
        desc = spec.get("description", "")
        if isinstance(desc, list):
            desc = " ".join(desc)
        cells = (name, _cell(_type(spec)), _cell(_default(spec.get("default"))), _cell(_markup(desc)))
        lines.append("| `%s` | %s | %s | %s |" % cells)
    return "\n".join(lines)


def splice(page_text, table):
    """page_text with the generated block replaced (or appended when the markers are missing)."""
    block = "%s\n%s\n%s" % (BEGIN, table, END)
    if BEGIN in page_text and END in page_text:
        head, rest = page_text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + block + tail
    return page_text.rstrip("\n") + "\n\n## Variables\n\n" + block + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale tables, change nothing")
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    stale = []
    for spec_file in sorted(root.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        page = root / "docs" / "roles" / ("%s.md" % role)
        old = page.read_text() if page.exists() else "# Role `%s`\n" % role
        new = splice(old, render_table(spec_file))
        if new != old:
            stale.append(str(page.relative_to(root)))
            if not args.check:
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(new)
    if args.check and stale:
        print("stale variable tables (run scripts/role_docs.py): %s" % ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
