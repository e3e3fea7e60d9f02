"""The package's import graph, read from the source with ast: no import cycles, and the layers import only
downwards. A cycle is what makes a module's import order matter and pushes imports into function bodies
(tui/data.py and tui/verb_calls.py once imported each other that way), so function-local imports count here;
imports under `if TYPE_CHECKING:` never run and do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import contree_tui

PACKAGE = Path(contree_tui.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of every node inside an `if TYPE_CHECKING:` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names `node` imports: `from a import b` is `a.b` (a module or a name in `a`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join([*here, base] if base else here)
    return [f"{base}.{alias.name}" for alias in node.names]


def imports() -> dict[str, set[str]]:
    """Module -> every dotted name it imports at run time, the package's resolved to its modules (`from a
    import b` is module `a.b` or a name in module `a`). Edges to the importer's own ancestor packages are left
    out: Python initialises those before the importer, whatever it names."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            for target in imported_names(node, name, path.name == "__init__.py"):
                if target.split(".")[0] != PACKAGE.name:
                    found[name].add(target)
                    continue
                while target and target not in files:  # `from a import name`: the module is `a`
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    found[name].add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time."""
    return {name: {t for t in targets if t.split(".")[0] == PACKAGE.name} for name, targets in imports().items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_find_cycle_sees_a_cycle_through_a_function_local_import() -> None:
    # the shape tui/data.py <-> tui/verb_calls.py had: one import at the top, the other inside a function
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_local_imports_and_skips_type_checking_ones() -> None:
    graph = import_graph()
    # verb_calls.py imports BackendError at its top; tui/__init__.py imports the app inside run_tui()
    assert "contree_tui.tui.backend_error" in graph["contree_tui.tui.verb_calls"]
    assert "contree_tui.tui.app" in graph["contree_tui.tui"]
    # engine/sandbox/native.py names launch.py only for type hints
    assert "contree_tui.engine.sandbox.launch" not in graph["contree_tui.engine.sandbox.native"]


# Who may import whom: client/ is the library both faces use; cli/ (the headless commands) and tui/ (Textual)
# are the two faces over it; main.py picks one; the engine is reached over the wire only (its socket, and the
# paths of contree_tui/paths.py). cli/ may start the engine itself (`engine serve`, engine_commands.py).
# pipeline/ (Serial/Parallel/Exec on snapshots) sits on client/ and under both faces: it runs headless.
FORBIDDEN = {
    "contree_tui.client": ("contree_tui.cli", "contree_tui.tui", "contree_tui.main", "contree_tui.engine",
                           "contree_tui.pipeline", "textual"),
    "contree_tui.pipeline": ("contree_tui.cli", "contree_tui.tui", "contree_tui.main", "contree_tui.engine",
                             "textual"),
    "contree_tui.cli": ("contree_tui.tui", "contree_tui.main", "textual"),
    "contree_tui.tui": ("contree_tui.cli", "contree_tui.main", "contree_tui.engine"),
    "contree_tui.engine": ("contree_tui.client", "contree_tui.cli", "contree_tui.tui", "contree_tui.main",
                           "textual"),
}
# `python -m contree_tui.cli` runs the whole program (the TUI with no command), as before cli/ was a package:
# an entry point nothing imports, like contree_tui/__main__.py.
ENTRY_POINTS = {"contree_tui.cli.__main__"}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer_violations(found: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(found.items()):
        if module in ENTRY_POINTS:
            continue
        for layer, forbidden in FORBIDDEN.items():
            if within(module, layer):
                bad += [f"{module} imports {t}" for t in sorted(targets) if any(within(t, f) for f in forbidden)]
    return bad


def test_each_layer_imports_only_what_it_may() -> None:
    assert layer_violations(imports()) == []


def test_layer_violations_are_seen() -> None:
    found = {"contree_tui.client.x": {"contree_tui.cli.render"}, "contree_tui.cli.y": {"textual.app"},
             "contree_tui.tui.z": {"contree_tui.cli.commands"}, "contree_tui.cli.__main__": {"contree_tui.main"},
             "contree_tui.pipeline.p": {"contree_tui.tui.app", "contree_tui.client.connection"}}
    assert layer_violations(found) == ["contree_tui.cli.y imports textual.app",
                                       "contree_tui.client.x imports contree_tui.cli.render",
                                       "contree_tui.pipeline.p imports contree_tui.tui.app",
                                       "contree_tui.tui.z imports contree_tui.cli.commands"]


def test_the_headless_commands_are_in_cli_and_the_library_holds_none() -> None:
    # client/ is what both faces use: the CLI's commands, renderings and parser live in cli/
    modules = set(import_graph())
    assert {"contree_tui.cli.commands", "contree_tui.cli.render", "contree_tui.cli.parser"} <= modules
    assert not {"contree_tui.client.commands", "contree_tui.client.render", "contree_tui.client.bootstrap_command"} \
        & modules
