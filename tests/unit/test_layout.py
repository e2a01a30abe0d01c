# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The layout's rules (docs/design.md, Layers: who may import whom), read from the code with ``ast``, so that a comment, a
docstring or a string that merely names a module is no import, and a relative or dynamic import is one.

Each rule is a function returning its violations as "path:line: what" strings; the tests below run the
rules on the repository, and on a planted violation each, so a rule that can no longer fail fails too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.vic.containers.plugins.module_utils import _version

REPO = Path(__file__).resolve().parents[2]
COLLECTION = "ansible_collections.vic.containers"
# Trees that are not the collection's source: build output, caches, the tests' scratch space.
SKIPPED = {".build", ".git", ".ansible", ".benchmarks", ".pytest_cache", ".ruff_cache", "__pycache__", "output"}

# module_utils files that may import ansible.*: the argument-spec helpers and the module runner.
ANSIBLE_ALLOWED = {"vsphere_args.py", "_module.py", "docker_args.py", "registry_args.py"}
# The top-level packages of the pyvmomi distribution.
PYVMOMI = {"pyVmomi", "pyVim", "vsanapiutils", "vsanmgmtObjects"}
PERSONA_MAY_IMPORT = tuple(COLLECTION + "." + name for name in (
    "services.persona", "services.portlayer", "services.imagec",
    "plugins.module_utils._errors", "plugins.module_utils._version"))
HTTP_ERROR = range(400, 600)
# What the tether ISO carries (services/tether/ but its builder) may import: the standard library, asyncssh,
# dnspython (the embedded DNS server's wire format) and itself: nothing else of the collection is on the ISO.
TETHER_MAY_IMPORT = {"asyncssh", "cryptography", "dns"}  # the ISO carries python3-cryptography and python3-dnspython
TETHER_BUILDER = "iso"


def _python_files(*tops):
    for top in tops:
        for folder, subfolders, names in os.walk(REPO / top):
            # Pruned, not filtered: .build links the repository into itself.
            subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED)
            yield from (Path(folder, name) for name in sorted(names) if name.endswith(".py"))


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([COLLECTION] + parts)


def _within(name, *prefixes):
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def imports(path, source=None):
    """(line, dotted name) of each module ``path`` imports, relative imports resolved. ``from a import b``
    gives ``a.b``: b may be a module, and a rule about a covers it either way."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, base + "." + alias.name if alias.name != "*" else base
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.lineno, node.args[0].value


def _called(call):
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _where(path, line, text):
    return "%s:%d: %s" % (path.relative_to(REPO), line, text)


# -- the rules -------------------------------------------------------------------------------------


def ansible_outside_its_files(path, source=None):
    """services/** and plugins/module_utils/** but the argument-spec helpers and _module: no ansible.*"""
    if path.parent == REPO / "plugins" / "module_utils" and path.name in ANSIBLE_ALLOWED:
        return []
    return [_where(path, line, "imports %s" % name) for line, name in imports(path, source)
            if _within(name, "ansible")]


def persona_reaching_past_its_layer(path, source=None):
    """The persona: the port layer, imagec, _errors, _version, itself, the stdlib, third parties but pyvmomi."""
    found = []
    for line, name in imports(path, source):
        top = name.split(".")[0]
        if top == "ansible_collections":
            allowed = _within(name, *PERSONA_MAY_IMPORT)
        else:
            allowed = top not in PYVMOMI
        if not allowed:
            found.append(_where(path, line, "imports %s" % name))
    return found


def tether_reaching_off_the_iso(path, source=None):
    """services/tether/ (protocol, agent) but the ISO builder: stdlib, TETHER_MAY_IMPORT and services.tether only."""
    found = []
    for line, name in imports(path, source):
        top = name.split(".")[0]
        if top == "ansible_collections":
            allowed = _within(name, COLLECTION + ".services.tether")
        else:
            allowed = top in sys.stdlib_module_names or top in TETHER_MAY_IMPORT
        if not allowed:
            found.append(_where(path, line, "imports %s, which the tether ISO does not carry" % name))
    return found


def module_importing_services(path, source=None):
    return [_where(path, line, "imports %s" % name) for line, name in imports(path, source)
            if _within(name, COLLECTION + ".services")]


def importing_the_appliance(path, source=None):
    return [_where(path, line, "imports %s" % name) for line, name in imports(path, source)
            if _within(name, COLLECTION + ".appliance")]


def unresolved(path, source=None):
    """Imports of the collection that name no module and no name in one (a stale path after a move)."""
    found = []
    for line, name in imports(path, source):
        if not _within(name, COLLECTION) or name == COLLECTION:
            continue
        if _module_exists(name) or _has_attribute(*name.rpartition(".")[::2]):
            continue
        found.append(_where(path, line, "imports %s, which does not exist" % name))
    return found


def _module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent is a module, not a package, or does not exist
        return False


def _has_attribute(module, attribute):
    return _module_exists(module) and hasattr(importlib.import_module(module), attribute)


def version_written_out(path, version, source=None):
    """Lines that spell the product version; ``version_added`` (when a module came) is history, not it."""
    text = path.read_text() if source is None else source
    spelled = re.compile(r"(?<![\d.])%s(?![\d.])" % re.escape(version))
    return [_where(path, number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if spelled.search(line) and not line.strip().startswith("version_added:")]


def _error_kinds():
    """The domain error classes (_errors.py), whose HTTP statuses only the persona's table gives."""
    tree = ast.parse((REPO / "plugins" / "module_utils" / "_errors.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def http_statuses(path, source=None):
    """An HTTP error status given to a class (``status = 401``) or paired with an error kind in a table."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    kinds = _error_kinds()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else \
                    [statement.target] if isinstance(statement, ast.AnnAssign) else []
                if _is_status(statement.value if targets else None) and any(
                        "status" in getattr(target, "id", "").lower() for target in targets):
                    found.append(_where(path, statement.lineno, "class %s: %s" % (node.name, ast.unparse(statement))))
        elif isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 2 and _is_status(node.elts[1]) \
                and getattr(node.elts[0], "id", getattr(node.elts[0], "attr", None)) in kinds:
            found.append(_where(path, node.lineno, "table entry %s" % ast.unparse(node)))
        elif isinstance(node, ast.Dict):
            found.extend(_where(path, key.lineno, "table entry %s: %s" % (ast.unparse(key), ast.unparse(value)))
                         for key, value in zip(node.keys, node.values)
                         if key is not None and _is_status(value)
                         and getattr(key, "id", getattr(key, "attr", None)) in kinds)
    return found


def _is_status(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value in HTTP_ERROR


# -- the repository --------------------------------------------------------------------------------


def test_no_ansible_in_the_services_or_the_engine():
    files = list(_python_files("services", "plugins/module_utils"))
    assert files
    assert [v for path in files for v in ansible_outside_its_files(path)] == []


def test_the_persona_imports_only_the_port_layer_imagec_errors_and_version():
    files = list(_python_files("services/persona"))
    assert files
    assert [v for path in files for v in persona_reaching_past_its_layer(path)] == []


def test_the_tether_imports_only_what_its_iso_carries():
    tether = REPO / "services" / "tether"
    files = [f for f in _python_files("services/tether") if tether / TETHER_BUILDER not in f.parents]
    assert files, "services/tether has no Python file"
    assert [v for f in files for v in tether_reaching_off_the_iso(f)] == []


def test_modules_never_import_the_services():
    files = list(_python_files("plugins/modules"))
    assert files
    assert [v for path in files for v in module_importing_services(path)] == []


def test_nothing_imports_the_appliance():
    assert [v for path in _python_files(".") for v in importing_the_appliance(path)] == []


def test_every_import_of_the_collection_resolves():
    # Benchmarks and scripts included: no test imports them, so a stale path there shows only here.
    assert [v for path in _python_files(".") for v in unresolved(path)] == []


def test_galaxy_says_the_version_module_utils_gives():
    assert yaml.safe_load((REPO / "galaxy.yml").read_text())["version"] == _version.VERSION


def test_no_other_python_file_writes_the_version_out():
    own = REPO / "plugins" / "module_utils" / "_version.py"
    assert [v for path in _python_files(".") if path != own for v in version_written_out(path, _version.VERSION)] \
        == []


def test_the_http_status_table_is_in_the_persona_errors():
    # Found there, the table also shows that http_statuses still recognises one.
    assert http_statuses(REPO / "services" / "persona" / "errors.py")


def test_no_http_status_outside_the_persona_errors():
    table = REPO / "services" / "persona" / "errors.py"
    assert [v for path in _python_files("services", "plugins/module_utils") if path != table
            for v in http_statuses(path)] == []


# -- each rule catches what it is for ------------------------------------------------------------------


def _planted(relative):
    return REPO / relative


@pytest.mark.parametrize("relative, source, rule", [
    ("services/portlayer/planted.py", "import ansible\n", ansible_outside_its_files),
    ("services/persona/planted.py", "from ansible.module_utils.basic import AnsibleModule\n",
     ansible_outside_its_files),
    ("plugins/module_utils/vsphere/planted.py", "def f():\n    from ansible.module_utils import six\n",
     ansible_outside_its_files),
    ("plugins/module_utils/vch/planted.py", "import importlib\nimportlib.import_module('ansible.errors')\n",
     ansible_outside_its_files),
    ("services/persona/routes/planted.py", "from pyVmomi import vim\n", persona_reaching_past_its_layer),
    ("services/persona/routes/planted.py", "import pyVim.connect\n", persona_reaching_past_its_layer),
    ("services/persona/routes/planted.py",
     "from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc\n",
     persona_reaching_past_its_layer),
    ("services/persona/routes/planted.py", "from ....plugins.module_utils.vch import actions\n",
     persona_reaching_past_its_layer),
    ("services/persona/planted.py", "from ...services.endpoint import wiring\n", persona_reaching_past_its_layer),
    ("plugins/modules/planted.py", "from ansible_collections.vic.containers.services.persona import app\n",
     module_importing_services),
    ("plugins/modules/planted.py", "from ...services import endpoint\n", module_importing_services),
    ("tests/unit/planted.py", "import ansible_collections.vic.containers.appliance.x\n", importing_the_appliance),
    ("benchmarks/planted.py", "from ansible_collections.vic.containers.plugins.module_utils import _vch as engine\n",
     unresolved),
    ("benchmarks/planted.py", "from ansible_collections.vic.containers.services.persona.app import gone\n", unresolved),
    ("services/imagec/planted.py", "class Refused(Exception):\n    status = 401\n", http_statuses),
    ("plugins/module_utils/planted.py", "from ._errors import NotFound\nCODES = {NotFound: 404}\n", http_statuses),
    ("services/portlayer/planted.py", "TABLE = ((errors.Conflict, 409),)\n", http_statuses),
    ("services/tether/agent/planted.py", "import aiohttp\n", tether_reaching_off_the_iso),
    ("services/tether/agent/planted.py", "from ansible_collections.vic.containers.plugins.module_utils import _errors\n",
     tether_reaching_off_the_iso),
    ("services/tether/planted.py", "from ..portlayer.attach import sessions\n", tether_reaching_off_the_iso),
])
def test_each_rule_catches_a_planted_violation(relative, source, rule):
    assert len(rule(_planted(relative), source=source)) == 1


@pytest.mark.parametrize("relative, source, rule", [
    ("plugins/module_utils/vsphere_args.py", "from ansible.module_utils.basic import env_fallback\n",
     ansible_outside_its_files),
    ("services/portlayer/planted.py", "import ansible_collections.vic.containers.services.imagec\n"
     "# import ansible\nDOC = 'from ansible import x'\n", ansible_outside_its_files),
    ("services/persona/routes/planted.py",
     "import asyncio\nfrom aiohttp import web\nfrom ...portlayer import events\nfrom .. import query\n"
     "from ansible_collections.vic.containers.plugins.module_utils._errors import NotFound\n",
     persona_reaching_past_its_layer),
    ("services/portlayer/planted.py", "class Answer:\n    status = 200\nMAX = {'size': 404}\n", http_statuses),
    ("services/tether/agent/planted.py", "import ctypes\nimport asyncssh\nfrom .. import protocol\n"
     "from ansible_collections.vic.containers.services.tether.agent import x\n", tether_reaching_off_the_iso),
    ("benchmarks/planted.py", "from ansible_collections.vic.containers.plugins.module_utils.vch import engine\n"
     "from ansible_collections.vic.containers.services.persona.app import make_app\n", unresolved),
])
def test_the_rules_let_pass_what_is_allowed(relative, source, rule):
    assert rule(_planted(relative), source=source) == []


def test_the_version_rule_sees_the_version_and_not_version_added():
    source = 'DOC = """\nversion_added: %s\n"""\nVERSION = "%s"\nOTHER = "1%s.2"\nTAG = "v%s"\n' \
        % ((_version.VERSION,) * 4)
    assert version_written_out(_planted("services/planted.py"), _version.VERSION, source=source) \
        == ['services/planted.py:4: VERSION = "%s"' % _version.VERSION, 'services/planted.py:6: TAG = "v%s"'
            % _version.VERSION]


def test_test_modules_have_unique_names():
    # pytest imports test modules by their base name (rootdir, no packages): two of one name in
    # different folders fail to collect, and only when both are collected in one run.
    names = [path.name for path in _python_files("tests") if path.name.startswith("test_")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
