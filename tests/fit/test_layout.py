"""The fit's modules import each other in one direction, at the top of each module."""

import ast
from pathlib import Path

from xrfdask.fit import api

ROOT = Path(api.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node) -> list[str]:
    """Modules an import statement names (``from package import module``: the module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        modules = [f"{node.module}.{alias.name}" for alias in node.names]
        return [m for m in modules if (ROOT.parent.parent / m.replace(".", "/")).exists()] or [
            node.module
        ]
    return []


def fit_modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(ROOT.rglob("*.py"))}


def test_no_xrfdask_import_inside_a_function():
    """Imports hidden in functions were how model, refit and the solvers imported in a circle."""
    hidden = []
    for name, tree in fit_modules().items():
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    hidden += [(name, m) for m in imported(node) if m.startswith("xrfdask")]
    assert not hidden


def test_fit_modules_import_without_a_cycle():
    graph = {
        name: {m for node in tree.body for m in imported(node) if m.startswith("xrfdask.fit.")}
        for name, tree in fit_modules().items()
    }
    assert {"xrfdask.fit.pymcalib", "xrfdask.fit.engines", "xrfdask.fit.engines.pymca"} <= set(
        graph
    )
    done, path = set(), []

    def visit(name):
        assert name not in path, " -> ".join([*path, name])
        if name in done or name not in graph:
            return
        path.append(name)
        for dep in graph[name]:
            visit(dep)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)
