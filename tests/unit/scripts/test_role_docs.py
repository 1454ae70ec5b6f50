"""scripts/role_docs.py: variable tables generated from argument specs."""
import importlib.util
import pathlib
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts" / "role_docs.py")
role_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(role_docs)

SPECS = textwrap.dedent("""\
    argument_specs:
      main:
        options:
          demo_enabled:
            type: bool
            default: true
            description: Turn it on (C(true)), see O(demo_mode).
          demo_items:
            type: list
            elements: str
            default: [a, "b|c"]
            description: [First line., Second line.]
          demo_mode:
            type: str
            choices: [fast, safe]
            default: ""
            description: How.
    """)


def _collection(tmp_path, page=None):
    (tmp_path / "roles" / "demo" / "meta").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "meta" / "argument_specs.yml").write_text(SPECS)
    if page is not None:
        (tmp_path / "docs" / "roles").mkdir(parents=True)
        (tmp_path / "docs" / "roles" / "demo.md").write_text(page)
    return tmp_path


def test_table_has_types_defaults_and_escaped_cells(tmp_path):
    table = role_docs.render_table(_collection(tmp_path) / "roles/demo/meta/argument_specs.yml")
    rows = table.splitlines()
    assert rows[0] == "| Variable | Type | Default | Description |"
    assert rows[2] == "| `demo_enabled` | bool | `true` | Turn it on (`true`), see `demo_mode`. |"
    assert rows[3] == '| `demo_items` | list of str | `["a", "b\\|c"]` | First line. Second line. |'
    assert rows[4] == '| `demo_mode` | str (fast, safe) | `""` | How. |'


def test_check_reports_a_stale_page_and_write_fixes_it(tmp_path, capsys):
    root = _collection(tmp_path, page="# Demo\n\nProse stays.\n\n%s\nold table\n%s\n\nMore prose.\n"
                       % (role_docs.BEGIN, role_docs.END))
    assert role_docs.main(["--check", "--root", str(root)]) == 1
    assert "docs/roles/demo.md" in capsys.readouterr().err
    assert role_docs.main(["--root", str(root)]) == 0
    text = (root / "docs/roles/demo.md").read_text()
    assert "old table" not in text and "| `demo_enabled` |" in text
    assert text.startswith("# Demo\n\nProse stays.") and text.endswith("More prose.\n")
    assert role_docs.main(["--check", "--root", str(root)]) == 0


def test_missing_page_is_created_with_a_variables_section(tmp_path):
    root = _collection(tmp_path)
    assert role_docs.main(["--root", str(root)]) == 0
    text = (root / "docs/roles/demo.md").read_text()
    assert "## Variables" in text and role_docs.BEGIN in text and role_docs.END in text
