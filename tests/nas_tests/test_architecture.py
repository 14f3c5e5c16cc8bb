"""The import rules of docs/architecture.md, checked by reading every module's imports.

The table in the document is the one source: each row names a unit (a package such as
``nas.runner`` or a top-level module such as ``nas.config``) and the units it may import.
Function-level (lazy) imports count too: a cycle hidden behind a lazy import is still a cycle.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
_ROW = re.compile(r"^\|\s*`(nas(?:\.[a-z_]+)?)`\s*\|[^|]*\|(?P<may>[^|]*)\|(?P<ray>[^|]*)\|")


def _rules() -> tuple[dict[str, set[str]], set[str]]:
    allowed: dict[str, set[str]] = {}
    ray_modules: set[str] = set()
    for line in DOC.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            allowed[m.group(1)] = set(re.findall(r"`(nas(?:\.[a-z_]+)?)`", m.group("may")))
            ray_modules |= set(re.findall(r"`(nas(?:\.[a-z_]+)+)`", m.group("ray")))
    return allowed, ray_modules


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, lazy ones included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            if mod == "nas":  # `from nas import registry` imports the module nas.registry
                out += [(node.lineno, f"nas.{a.name}") for a in node.names
                        if (ROOT / "nas" / f"{a.name}.py").exists()
                        or (ROOT / "nas" / a.name).is_dir()]
    return out


def _modules() -> list[Path]:
    return sorted((ROOT / "nas").rglob("*.py"))


def test_every_unit_has_a_row_in_the_document() -> None:
    allowed, _ = _rules()
    units = {_unit(_module_name(p)) for p in _modules()}
    assert units - set(allowed) == set(), "units missing from docs/architecture.md"
    assert set(allowed) - units == set(), "rows in docs/architecture.md for units that do not exist"


def test_imports_follow_the_document() -> None:
    allowed, _ = _rules()
    bad = []
    for path in _modules():
        unit = _unit(_module_name(path))
        for line, mod in _imports(path):
            if mod.split(".")[0] != "nas" or mod == "nas":
                continue
            target = _unit(mod)
            if target != unit and target not in allowed.get(unit, set()):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {unit} imports {target}")
    assert bad == []


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
            if mod.split(".")[0] == "nas" and mod != "nas" and _unit(mod) != unit:
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
