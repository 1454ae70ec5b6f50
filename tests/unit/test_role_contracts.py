"""Every role's meta/argument_specs.yml and defaults/main.yml tell the same story.

House style: argument specs carry the types and defaults; defaults/main.yml holds the same
values. A variable in one and not the other, or two different defaults, is a defect users meet
as a surprise, so it fails here.
"""
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def _load(path):
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs(role):
    specs = _load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    assert "main" in specs["argument_specs"]
    for name, spec in specs["argument_specs"]["main"]["options"].items():
        assert spec.get("description"), "%s: %s has no description" % (role, name)
        assert "type" in spec, "%s: %s has no type" % (role, name)
        if spec["type"] == "list":
            assert "elements" in spec, "%s: list %s has no elements" % (role, name)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role):
    defaults = _load(ROOT / "roles" / role / "defaults" / "main.yml")
    options = _load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    undocumented = sorted(set(defaults) - set(options))
    assert not undocumented, "%s: defaults without argument spec: %s" % (role, undocumented)
    for name, spec in options.items():
        if spec.get("required"):
            assert name not in defaults, "%s: required %s must not have a default" % (role, name)
            continue
        assert name in defaults, "%s: %s is in argument_specs but not in defaults/main.yml" % (role, name)
        assert spec.get("default") == defaults[name], (
            "%s: %s defaults differ: argument_specs %r, defaults/main.yml %r"
            % (role, name, spec.get("default"), defaults[name]))


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = _load(ROOT / "roles" / role / "defaults" / "main.yml")
    assert all(name.startswith(role + "_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_double_underscored(role):
    for vars_file in (ROOT / "roles" / role / "vars").glob("*.yml"):
        names = _load(vars_file)
        bad = [n for n in names if not n.startswith("__%s_" % role)]
        assert not bad, "%s: %s" % (vars_file.relative_to(ROOT), bad)
