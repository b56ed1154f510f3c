"""The layering of docs' ARCHITECTURE: who may import whom, and no import cycle.

Every module under clvtools/ is parsed with ``ast``; every import counts, at the top of a module
or inside a function, relative or absolute (an import inside a function still ties the two
modules together: it only hides the tie from a reader).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import clvtools

ROOT = Path(clvtools.__file__).parent

#: Ground modules: numpy/pandas (and jsonschema, pydantic) only, and each other.
GROUND = ("clvtools.errors", "clvtools.units", "clvtools.encoding", "clvtools.schemas",
          "clvtools.config", "clvtools.model_io", "clvtools._version")
#: What the model packages never import: they take arrays and frames.
ABOVE_MODELS = ("clvtools.data", "clvtools.pipeline", "clvtools.cli", "clvtools.report",
                "clvtools.scale", "clvtools.api")
MODEL_PACKAGES = ("clvtools.btyd", "clvtools.survival")
#: The layers above the models, lowest first: each imports only from the layers below it
#: (and the ground); the package's own __init__ and the lifetimes-compatible helpers aside.
LAYERS = (
    ("clvtools.data", "clvtools.targeting", "clvtools.forecast"),
    ("clvtools.pipeline",),
    ("clvtools.report",),
    # Spark adapters: the pipeline's scoring mapped over partitions, files through the manifest
    ("clvtools.scale",),
    ("clvtools.api",),
    ("clvtools.cli",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _within(module: str, packages) -> bool:
    if isinstance(packages, str):
        packages = (packages,)
    return any(module == p or module.startswith(p + ".") for p in packages)


def _resolve(name: str, known) -> str | None:
    """The known module that importing ``name`` runs: itself, or its longest known prefix
    (``clvtools.btyd.BetaGeoFitter`` -> ``clvtools.btyd``); None outside clvtools."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in known:
            return candidate
    return None


def imports_in(source: str, module: str, is_package: bool, known) -> set[str]:
    """The modules of ``known`` that ``module`` imports, anywhere in its source."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = package.split(".")
                base = ".".join(up[:len(up) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            # ``from pkg import sub`` imports the submodule pkg.sub where there is one
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {m for m in (_resolve(n, known) for n in names) if m and m != module}
    return found


def import_graph() -> dict[str, set[str]]:
    return {name: imports_in(path.read_text(encoding="utf-8"), name,
                             path.name == "__init__.py", MODULES)
            for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def _violations(graph, importers, forbidden, allowed=()):
    return sorted(f"{m} imports {t}" for m, targets in graph.items() if _within(m, importers)
                  for t in targets if _within(t, forbidden) and not _within(t, allowed))


def test_models_do_not_import_data_pipeline_or_front_ends(graph):
    assert _violations(graph, MODEL_PACKAGES, ABOVE_MODELS) == []


def test_data_and_targeting_import_only_the_ground(graph):
    """data/ is the only package that speaks SQL; targeting/ takes frames: neither knows the
    models, the pipeline or anything above."""
    assert _violations(graph, "clvtools.data", "clvtools",
                       allowed=GROUND + ("clvtools.data",)) == []
    assert _violations(graph, "clvtools.targeting", "clvtools",
                       allowed=GROUND + ("clvtools.targeting",)) == []


def test_forecast_imports_only_the_models_and_the_ground(graph):
    """forecast/ sums and intervals over per-customer arrays: it may read the fitted models
    (btyd, survival), never data/, the pipeline or anything above."""
    assert _violations(graph, "clvtools.forecast", "clvtools",
                       allowed=GROUND + MODEL_PACKAGES + ("clvtools.forecast",)) == []


def test_the_cli_speaks_only_to_the_api_and_the_settings(graph):
    assert _violations(graph, "clvtools.cli", "clvtools",
                       allowed=GROUND + ("clvtools.api", "clvtools.cli")) == []


@pytest.mark.parametrize("level", range(len(LAYERS)))
def test_no_layer_imports_a_layer_above_it(graph, level):
    above = tuple(p for layer in LAYERS[level + 1:] for p in layer)
    assert _violations(graph, LAYERS[level], above) == []


def test_btyd_and_survival_do_not_import_each_other(graph):
    assert _violations(graph, "clvtools.btyd", "clvtools.survival") == []
    assert _violations(graph, "clvtools.survival", "clvtools.btyd") == []


def test_ground_modules_import_only_ground_modules(graph):
    assert _violations(graph, GROUND, "clvtools", allowed=GROUND) == []


def test_no_import_cycle(graph):
    assert cycles(graph) == []


# ---- the checker itself ---------------------------------------------------------------------
KNOWN = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d"}


def test_imports_are_found_everywhere_and_resolved():
    source = (
        "import pkg.a\n"
        "from . import d\n"                      # a sibling submodule
        "from .. import b as bee\n"              # the parent package's submodule
        "from ..a import thing\n"                # a name in a module
        "from pkg.sub import helper\n"           # a name in a package: the package itself
        "import numpy\n"
        "def f():\n"
        "    from ..b import late\n"             # function-level
        "if False:\n"
        "    import pkg.sub.d\n"
    )
    assert imports_in(source, "pkg.sub.c", False, KNOWN) == {"pkg.a", "pkg.sub.d", "pkg.b",
                                                             "pkg.sub"}
    assert imports_in("from . import c\nfrom .d import x\n", "pkg.sub", True, KNOWN) == {
        "pkg.sub.c", "pkg.sub.d"}


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"d"}, "d": {"c", "a"}}) == [["c", "d"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
