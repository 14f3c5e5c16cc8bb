"""The import rules of docs/architecture.md, checked by reading every module's imports.

The table in the document is the one source: each row names a unit (a package such as
``nas.runner``, a top-level module such as ``nas.config``, or one of the plug-in packages
``predictors`` and ``search_spaces``) and the units it may import.  Function-level (lazy)
imports count too: a cycle hidden behind a lazy import is still a cycle.

Besides the table, no module imports a private (``_``-prefixed) module or name of another
package: what a package offers the others is public in its ``__init__`` or in a module without
a leading underscore.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("nas", "predictors", "search_spaces")
_UNIT = r"(?:nas(?:\.[a-z_]+)?|predictors|search_spaces)"
_ROW = re.compile(rf"^\|\s*`({_UNIT})`\s*\|[^|]*\|(?P<may>[^|]*)\|(?P<ray>[^|]*)\|")


def _rules() -> tuple[dict[str, set[str]], set[str]]:
    allowed: dict[str, set[str]] = {}
    ray_modules: set[str] = set()
    for line in DOC.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            allowed[m.group(1)] = set(re.findall(rf"`({_UNIT})`", m.group("may")))
            ray_modules |= set(re.findall(r"`((?:nas|predictors|search_spaces)(?:\.[a-z_]+)+)`",
                                          m.group("ray")))
    return allowed, ray_modules


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def _unit(module: str) -> str:
    """``nas`` is split into units one level down; the plug-in packages are one unit each."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "nas" else parts[0]


def _import_statements(path: Path, root: Path = ROOT) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names taken from it) for every import in the file, lazy ones
    included; ``import a.b`` takes no names."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod, [a.name for a in node.names if a.name != "*"]))
    return out


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, lazy ones included."""
    out: list[tuple[int, str]] = []
    for line, mod, names in _import_statements(path, root):
        out.append((line, mod))
        # `from nas import registry` imports the module nas.registry
        out += [(line, f"{mod}.{n}") for n in names
                if root.joinpath(*mod.split("."), f"{n}.py").exists()
                or root.joinpath(*mod.split("."), n).is_dir()]
    return out


def _modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> list[Path]:
    return sorted(p for pkg in packages for p in (root / pkg).rglob("*.py"))


def rule_violations(allowed: Mapping[str, set[str]], root: Path = ROOT,
                    packages: Sequence[str] = PACKAGES) -> list[str]:
    """Every import of another unit that the importer's row does not allow."""
    bad = []
    for path in _modules(root, packages):
        unit = _unit(_module_name(path, root))
        for line, mod in _imports(path, root):
            if mod.split(".")[0] not in packages or mod in packages:
                continue  # third-party, or the bare root package (`import nas`)
            target = _unit(mod)
            if target != unit and target not in allowed.get(unit, set()):
                bad.append(f"{path.relative_to(root)}:{line}: {unit} imports {target}")
    return bad


def _owner(target: str, root: Path) -> str | None:
    """The package that a private module or name belongs to: the package holding the first
    ``_``-prefixed part of the dotted path (None: nothing private; dunders are public)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            owner = parts[:i]
            while owner and not root.joinpath(*owner, "__init__.py").exists():
                owner = owner[:-1]  # a private name in a module: the module's package owns it
            return ".".join(owner)
    return None


def private_import_violations(root: Path = ROOT,
                              packages: Sequence[str] = PACKAGES) -> list[str]:
    """Every import of a private module or name from outside the package that owns it."""
    bad = []
    for path in _modules(root, packages):
        importer = _module_name(path, root)
        for line, mod, names in _import_statements(path, root):
            if mod.split(".")[0] not in packages:
                continue
            private_module = _owner(mod, root) is not None
            for target in [mod] if private_module else [f"{mod}.{n}" for n in names]:
                owner = _owner(target, root)
                if owner is not None and importer != owner \
                        and not importer.startswith(owner + "."):
                    bad.append(f"{path.relative_to(root)}:{line}: {importer} imports {target}")
    return bad


def test_every_unit_has_a_row_in_the_document() -> None:
    allowed, _ = _rules()
    units = {_unit(_module_name(p)) for p in _modules()}
    assert units - set(allowed) == set(), "units missing from docs/architecture.md"
    assert set(allowed) - units == set(), "rows in docs/architecture.md for units that do not exist"


def test_imports_follow_the_document() -> None:
    allowed, _ = _rules()
    assert rule_violations(allowed) == []


def test_no_module_imports_a_private_part_of_another_package() -> None:
    assert private_import_violations() == []


def _tree(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_report_planted_violations(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "nas/__init__.py": "",
        "nas/_checks.py": "",
        "nas/calibration.py": "from nas._checks import Checker\n",  # nas's own: allowed
        "nas/runner/__init__.py": "from nas.runner._signals import Terminated\n",  # own: allowed
        "nas/runner/_signals.py": "def _handler(): ...\n",
        "nas/runner/_study.py": "from ._signals import _handler\n",  # own, relative: allowed
        "nas/cli/__init__.py": "from nas.runner._signals import Terminated\n",
        "nas/cli/_run.py": "def run():\n    from nas.runner import _signals\n",
        "nas/cli/_bench.py": "from ..runner._signals import _handler\n",
        "nas/cli/_help.py": "import nas.runner._signals as signals\n",
        "nas/cli/_plot.py": "from nas.runner import _handler, Terminated\n",
        "nas/bench/__init__.py": "from predictors._forecast import take_rows\n",
        "predictors/__init__.py": "from predictors._forecast import take_rows\n",
        "predictors/_forecast.py": "",
        "predictors/pfn/__init__.py": "from nas._checks import Checker\nimport nas.__main__\n",
    })
    assert sorted(private_import_violations(tmp_path)) == sorted([
        "nas/cli/__init__.py:1: nas.cli imports nas.runner._signals",
        "nas/cli/_run.py:2: nas.cli._run imports nas.runner._signals",
        "nas/cli/_bench.py:1: nas.cli._bench imports nas.runner._signals",
        "nas/cli/_help.py:1: nas.cli._help imports nas.runner._signals",
        "nas/cli/_plot.py:1: nas.cli._plot imports nas.runner._handler",
        "nas/bench/__init__.py:1: nas.bench imports predictors._forecast",
        "predictors/pfn/__init__.py:1: predictors.pfn imports nas._checks",
    ])
    allowed = {"nas.calibration": {"nas._checks"}, "nas.cli": {"nas.runner"},
               "predictors": {"nas._checks"}}
    assert sorted(rule_violations(allowed, tmp_path)) == [
        "nas/bench/__init__.py:1: nas.bench imports predictors",
        "predictors/pfn/__init__.py:2: predictors imports nas.__main__",
    ]


def test_ray_is_imported_only_where_the_document_says() -> None:
    _, ray_modules = _rules()
    assert ray_modules, "the document names the Ray modules"
    users = {_module_name(p) for p in _modules()
             if any(mod.split(".")[0] == "ray" for _, mod in _imports(p))}
    assert users == ray_modules


def test_the_units_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        unit = _unit(_module_name(path))
        deps = graph.setdefault(unit, set())
        for _, mod in _imports(path):
            if mod.split(".")[0] in PACKAGES and mod not in PACKAGES and _unit(mod) != unit:
                deps.add(_unit(mod))
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state and (cycle := visit(v)):
                return cycle
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state:
            cycle = visit(u)
            assert cycle is None, " -> ".join(cycle)
