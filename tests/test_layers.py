"""The package's shape, kept: imports point down the layers below, never up or sideways, and never in a cycle.

Every ``import`` in ``hadpo/`` counts, inside functions too (a lazy import is still a dependency). The shapes world
sits above the stages it plugs into, so the real path (data, models, judge, mining, train, eval) never imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hadpo"

#: Bottom to top. A module may import its own package and anything in a lower layer, nothing else.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hadpo.errors",),
    ("hadpo.io", "hadpo.paths", "hadpo.plugins", "hadpo.manifest", "hadpo.runlock", "hadpo.progress"),
    ("hadpo.config", "hadpo.rerun", "hadpo.display"),
    ("hadpo.overrides", "hadpo.specs"),
    ("hadpo.distributed",),
    ("hadpo.models",),
    ("hadpo.data", "hadpo.judge"),
    ("hadpo.eval", "hadpo.eval.pope", "hadpo.eval.shr"),  # stages 03, 04 (and the pieces mining reuses)
    # stages 05-07, which reuse POPE's answering and SHR's judging
    ("hadpo.eval.chair", "hadpo.eval.amber", "hadpo.eval.mmhal"),
    ("hadpo.train",),  # stage 02
    ("hadpo.report",),  # stage 08, the dashboard: reads every stage's files
    ("hadpo.mining",),  # stage 01: shows its pairs with the report's highlighting and thumbnails
    ("hadpo.world",),  # stage 00 and the embedded default: plugs into everything below, imported by none of it
    ("hadpo.notebooks",),
    ("hadpo.pipeline",),
    ("hadpo.sync", "hadpo.cli"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The kit modules ``path`` imports (``from a.b import c`` names ``a.b.c`` when that is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hadpo"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hadpo"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
    return out


def _package(module: str) -> str:
    """The layer entry a module belongs to (the longest matching prefix)."""
    entries = [e for layer in LAYERS for e in layer if module == e or module.startswith(e + ".")]
    if not entries:
        raise AssertionError(f"{module} is in no layer of {Path(__file__).name}: add it")
    return max(entries, key=len)


def _layer(entry: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items() if name != "hadpo"}


def test_imports_only_point_down() -> None:
    wrong = []
    for module, targets in _graph().items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if there != here and _layer(there) >= _layer(here):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt in graph and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("real", ["hadpo.data", "hadpo.models", "hadpo.judge", "hadpo.mining", "hadpo.train",
                                  "hadpo.eval"])
def test_the_real_path_never_imports_the_world(real: str) -> None:
    leaks = [f"{m} -> {t}" for m, targets in _graph().items() if m.startswith(real)
             for t in targets if t.startswith("hadpo.world")]
    assert not leaks, leaks


def test_the_training_config_has_no_shapes_world_field() -> None:
    from hadpo.train.config import TrainConfig
    from hadpo.world.config import ShapesSftOptions

    assert not set(ShapesSftOptions.field_names()) & set(TrainConfig.field_names())
    assert not any("not part of HA-DPO" in text for text in TrainConfig.help().values())


def test_the_checker_sees_a_bad_edge(tmp_path: Path) -> None:
    """The rule has teeth: an upward edge is found (a guard against a checker that finds nothing)."""
    source = "from hadpo.world.generate import generate_world\n"
    imports = _imports(_write(tmp_path / "m.py", source), _modules())
    assert _package(next(iter(imports))) == "hadpo.world"
    assert _layer("hadpo.world") > _layer(_package("hadpo.train.trainer"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
