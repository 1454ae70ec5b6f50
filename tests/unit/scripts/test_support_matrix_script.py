"""scripts/support_matrix.py: the support matrix rendered from docs/support.yml into the README,
docs/support.md and each page a row names; its own rules on the data."""
import copy
import importlib.util
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("support_matrix", ROOT / "scripts" / "support_matrix.py")
support_matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support_matrix)

DATA = {
    "targets": {"deb": "Debian 12, no GPU", "gpu": "GPU machine"},
    "rows": [
        {"name": "demo", "kind": "role", "page": "docs/roles/demo.md", "summary": "a demo role",
         "targets": {
             "deb": {"status": "molecule", "evidence": [{"molecule": "demo"}, {"molecule": "fleet"}],
                     "note": "Seen | from outside."},
             "gpu": {"status": "docs", "note": "Never on a GPU."}}},
        {"name": "demo.yml", "id": "flow", "kind": "flow", "page": "docs/flow.md", "summary": "a flow",
         "match": ["demo.yml"],
         "targets": {
             "deb": {"status": "unit", "evidence": [{"unit": "tests/unit/test_demo.py"}], "short": "fakes"},
             "gpu": {"status": "n/a", "short": "no GPU step"}}},
    ],
}
MARKED = "%s\n%s\n"


def _tree(tmp_path, data=None, role_page="# Role `demo`\n\n## Limits\n\n- Other limit.\n\n## Variables\n\nTable.\n"):
    (tmp_path / "docs" / "roles").mkdir(parents=True)
    (tmp_path / "docs" / "support.yml").write_text(yaml.safe_dump(DATA if data is None else data))
    (tmp_path / "README.md").write_text("# Demo\n\nIntro.\n\n%s\nold\n%s\n\nMore.\n" % support_matrix.MATRIX)
    (tmp_path / "docs" / "support.md").write_text(
        "# Support\n\n" + MARKED % support_matrix.MATRIX + "\nProse.\n\n" + MARKED % support_matrix.DETAIL)
    (tmp_path / "docs" / "roles" / "demo.md").write_text(role_page)
    (tmp_path / "docs" / "flow.md").write_text("# Flow\n\nText.\n")
    return tmp_path


def test_the_table_names_scenarios_and_marks_what_never_ran():
    rows = support_matrix.matrix(DATA, "README.md").splitlines()
    assert rows[0] == "| | Debian 12, no GPU | GPU machine |"
    assert rows[2] == "| role [`demo`](docs/roles/demo.md) | make test: `demo`, `fleet` | **never run** |"
    assert rows[3] == "| flow [`demo.yml`](docs/flow.md) | unit tests only (fakes) | n/a (no GPU step) |"
    # Links follow the file the table is written into.
    assert "(roles/demo.md)" in support_matrix.matrix(DATA, "docs/support.md")


def test_the_detail_has_every_cell_with_its_evidence_and_escaped_notes():
    text = support_matrix.detail(DATA, "docs/support.md")
    assert '### <a id="demo"></a>`demo` (role)' in text
    assert "| Debian 12, no GPU | proven by `make test` | Molecule `demo`, `fleet` | Seen \\| from outside. |" in text
    assert "| GPU machine | does not apply (no GPU step) | - | - |" in text


def test_check_reports_stale_files_and_write_fixes_them(tmp_path, capsys):
    root = _tree(tmp_path)
    assert support_matrix.main(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "README.md" in err and "docs/support.md" in err and "docs/roles/demo.md" in err
    assert support_matrix.main(["--root", str(root)]) == 0
    readme = (root / "README.md").read_text()
    assert "old" not in readme and readme.startswith("# Demo\n\nIntro.") and readme.endswith("More.\n")
    page = (root / "docs" / "roles" / "demo.md").read_text()
    # A page without the markers gets the block at the top of its Limits section.
    assert page.index("## Limits") < page.index(support_matrix.PAGE[0]) < page.index("- Other limit.")
    assert "- **GPU machine**: never run. Never on a GPU." in page
    flow = (root / "docs" / "flow.md").read_text()
    assert flow.startswith("# Flow\n\nText.\n\n## Limits\n\n" + support_matrix.PAGE[0])
    assert support_matrix.main(["--check", "--root", str(root)]) == 0


def test_a_file_without_its_markers_is_named(tmp_path, capsys):
    root = _tree(tmp_path)
    (root / "README.md").write_text("# Demo\n")
    assert support_matrix.main(["--root", str(root)]) == 1
    assert "README.md" in capsys.readouterr().err


def test_the_rules_refuse_claims_without_their_evidence():
    data = copy.deepcopy(DATA)
    cells = data["rows"][0]["targets"]
    cells["deb"]["evidence"] = [{"unit": "tests/unit/test_demo.py"}]
    cells["gpu"] = {"status": "docs", "evidence": [{"device": "tests/device/x.yml"}]}
    data["rows"][1]["targets"]["gpu"] = {"status": "n/a"}
    data["rows"][1]["targets"]["deb"]["status"] = "proven"
    found = support_matrix.problems(data)
    assert "demo, deb: molecule needs molecule evidence" in found
    assert "demo, gpu: docs cannot carry device evidence" in found
    assert "demo.yml, gpu: n/a needs short (why)" in found
    assert any(p.startswith("demo.yml, deb: status 'proven'") for p in found)


def test_a_row_must_cover_every_target_and_a_flow_must_say_what_shows_it():
    data = copy.deepcopy(DATA)
    del data["rows"][0]["targets"]["gpu"]
    del data["rows"][1]["match"]
    found = support_matrix.problems(data)
    assert any(p.startswith("demo: targets ['deb']") for p in found)
    assert any(p.startswith("demo.yml: a flow needs match") for p in found)
