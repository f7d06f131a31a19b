"""Packages depend one way: sw ← hw ← sim ← export ← boards ← lowbit (the CLI, flows and API).

Every ``import`` and ``from … import`` in every module is read with ``ast`` (those inside
functions included) and mapped to its package; an import from a package further up the chain is
a back edge and fails the test. ``lowbit.errors`` imports nothing from lowbit and may be
imported from anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORDER = ["sw", "hw", "sim", "export", "boards", "lowbit"]
FOLDERS = {"sw": "sw", "hw": "hw", "sim": "sim", "export": "export", "boards": "boards",
           "lowbit": "lowbit"}
LEAF = "lowbit.errors"


def package_of(module: str) -> str | None:
    """``lowbit.hw.mvtu`` → ``hw``; ``lowbit.errors`` → the leaf; other lowbit names → lowbit."""
    if module == LEAF or module.startswith(LEAF + "."):
        return LEAF
    parts = module.split(".")
    if parts[0] != "lowbit":
        return None
    if len(parts) > 1 and parts[1] in ORDER[:-1]:
        return parts[1]
    return "lowbit"


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every lowbit import in the file (relative ones resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = ["lowbit"] if package == "lowbit" else ["lowbit", package]
    if path.name != "__init__.py":
        here = here + [path.stem]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level] if path.name != "__init__.py" \
                    else here[:len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names]
    return [(line, m) for line, m in found if m and m.split(".")[0] == "lowbit"]


def back_edges(files: dict[Path, str]) -> list[str]:
    """Every import from a package above the importing one, as ``path:line: a -> b``."""
    bad, seen = [], set()
    for path, package in files.items():
        for line, module in imports_of(path, package):
            if (path, line) in seen:
                continue
            target = package_of(module)
            if target in (None, LEAF) or target == package:
                continue
            if module == "lowbit" and package != "lowbit":
                target = "lowbit"  # ``import lowbit`` (the API) from below
            if ORDER.index(target) > ORDER.index(package):
                seen.add((path, line))
                bad.append(f"{path.relative_to(REPO)}:{line}: {package} imports {module} "
                           f"({target})")
    return bad


def package_files() -> dict[Path, str]:
    files = {}
    for package, folder in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            files[path] = package
    return files


def test_no_package_imports_one_above_it():
    files = package_files()
    assert len(files) > 40
    assert back_edges(files) == []


def test_errors_module_imports_nothing_from_lowbit():
    assert imports_of(REPO / "lowbit" / "errors.py", "lowbit") == []


@pytest.mark.parametrize("source", [
    "from lowbit.sim.perf import analyze\n",  # at the top
    "def f():\n    from lowbit.sim import timing\n",  # inside a function
    "from ..sim import perf\n",  # relative
    "import lowbit\n",  # the API from below
])
def test_the_check_finds_a_back_edge(tmp_path, source):
    """The same check on a hw module that imports sim (or the API) fails."""
    (tmp_path / "hw").mkdir()
    bad = tmp_path / "hw" / "unit.py"
    bad.write_text(source)
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        edges = back_edges({bad: "hw"})
    finally:
        REPO = saved
    assert len(edges) == 1 and "hw imports lowbit" in edges[0]
