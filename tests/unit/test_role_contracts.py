"""Every role's meta/argument_specs.yml and defaults/main.yml tell the same story.

House style: argument specs carry the types and defaults; defaults/main.yml holds the same
values. A variable in one and not the other, or two different defaults, is a defect users meet
as a surprise, so it fails here.
"""
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
# The shared llmfleet_* defaults: a role without tasks whose one entry point is not `main`.
SHARED = "fleet_defaults"
PREFIX = {SHARED: "llmfleet_"}


def _load(path):
    return yaml.safe_load(path.read_text()) or {}


def _entry(role):
    entries = _load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    return entries["shared" if role == SHARED else "main"]


@pytest.mark.parametrize("role", ROLES + [SHARED])
def test_role_has_argument_specs(role):
    for name, spec in _entry(role)["options"].items():
        assert spec.get("description"), "%s: %s has no description" % (role, name)
        assert "type" in spec, "%s: %s has no type" % (role, name)
        if spec["type"] == "list":
            assert "elements" in spec, "%s: list %s has no elements" % (role, name)


@pytest.mark.parametrize("role", ROLES + [SHARED])
def test_defaults_match_argument_specs(role):
    defaults = _load(ROOT / "roles" / role / "defaults" / "main.yml")
    options = _entry(role)["options"]
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


@pytest.mark.parametrize("role", ROLES + [SHARED])
def test_public_variables_carry_the_role_prefix(role):
    defaults = _load(ROOT / "roles" / role / "defaults" / "main.yml")
    prefix = PREFIX.get(role, role + "_")
    assert all(name.startswith(prefix) for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_depends_on_the_shared_defaults(role):
    deps = _load(ROOT / "roles" / role / "meta" / "main.yml").get("dependencies") or []
    assert {"role": "llmfleet.deepseek.%s" % SHARED} in deps, deps


def test_the_shared_defaults_role_has_no_tasks_and_no_main_entry_point():
    # An entry point `main` would add an argument check task to every role that depends on it.
    assert not (ROOT / "roles" / SHARED / "tasks").exists()
    assert set(_load(ROOT / "roles" / SHARED / "meta" / "argument_specs.yml")["argument_specs"]) == {"shared"}


def test_a_shared_setting_is_never_given_a_second_default():
    shared = sorted(_load(ROOT / "roles" / SHARED / "defaults" / "main.yml"), key=len, reverse=True)
    pattern = re.compile(r"\b(%s)\s*\|\s*default\(" % "|".join(shared))
    found = []
    for path in sorted(list((ROOT / "roles").rglob("*.yml")) + list((ROOT / "roles").rglob("*.j2"))
                       + list((ROOT / "playbooks").rglob("*.yml")) + list((ROOT / "playbooks").rglob("*.j2"))):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # hostvars of another host hold no role defaults: a default there is needed.
            if pattern.search(line) and not re.search(r"hostvars\[[^]]+\]\.(%s)\s*\|" % "|".join(shared), line):
                found.append("%s:%d: %s" % (path.relative_to(ROOT), number, line.strip()))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_double_underscored(role):
    for vars_file in (ROOT / "roles" / role / "vars").glob("*.yml"):
        names = _load(vars_file)
        bad = [n for n in names if not n.startswith("__%s_" % role)]
        assert not bad, "%s: %s" % (vars_file.relative_to(ROOT), bad)
