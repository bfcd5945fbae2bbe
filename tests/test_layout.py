"""The package's rooms and the one direction imports run between them.

Each folder of etl/ is a room on a floor; a module imports only from its own room or from rooms on
lower floors, so reading never depends on writing and the pure core never on I/O. A new module
goes into the room whose floor fits what it imports; a new room needs a floor here."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "etl"

# Lowest first. Rooms on one floor do not import each other.
FLOORS: list[set[str]] = [
    {"errors"},  # the one error root
    {"settings", "files", "duck", "model", "pgtypes"},  # shared values and helpers
    {"specfile", "sqlite"},  # the spec file; everything that knows SQLite
    {"core"},  # pure: Spec x Catalog -> mapping -> Plan, and the plan in words
    {"postgres"},  # the target: connection, catalog, DDL, etl's own tables
    {"run"},  # the DuckDB session: observe, validate, load, sync, verify, apply, rollback
    {"init"},  # writing a spec from a database (and a Prisma schema)
    {"pipeline"},  # check -> observe -> plan -> apply, for the CLI and the tests
    {"cli"},  # the only place that prints, prompts and exits
    {"__main__"},
]
# What the core may import of etl: values, and DuckDB's quoting (text in, text out).
CORE_MAY_IMPORT = (
    "etl.core.",
    "etl.specfile.",
    "etl.sqlite.convert.",
    "etl.sqlite.translate.",
    "etl.sqlite.triggers.",
    "etl.model.",
    "etl.pgtypes.",
    "etl.settings.",
    "etl.errors.",
    "etl.duck.quote_ident",
    "etl.duck.quote_literal",
)
# psycopg.sql composes statements without a connection; the rest of these open files or databases.
IO_MODULES = {"duckdb", "psycopg", "sqlite3", "os", "subprocess", "socket", "pathlib", "shutil"}


def room_of(module: str) -> str:
    """`etl.run.executor` -> `run`; `etl.errors` -> `errors`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor_of(room: str) -> int:
    for level, rooms in enumerate(FLOORS):
        if room in rooms:
            return level
    raise AssertionError(f"etl/{room} is on no floor: add it to FLOORS in {Path(__file__).name}")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything the file imports (`from a.b import c` -> `a.b.c`), lazy
    imports and TYPE_CHECKING ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: relative import; etl's imports are absolute"
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_a_module_imports_only_its_own_room_and_lower_floors(path):
    here = room_of(dotted(path))
    for line, module in imports(path):
        if not module.startswith("etl."):
            continue
        there = room_of(module)
        if there == here or module == "etl.__version__":
            continue
        assert floor_of(there) < floor_of(here), (
            f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}: etl/{here} may import only lower floors"
        )


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_opens_no_database_and_reads_no_environment(path):
    for line, name in imports(path):
        top = name.split(".")[0]
        if name == "psycopg.sql":
            continue
        assert top not in IO_MODULES, f"etl/core/{path.name}:{line} imports {name}: the core is pure"
        assert top != "etl" or name.startswith(CORE_MAY_IMPORT), (
            f"etl/core/{path.name}:{line} imports {name}: the core imports values and pure functions only"
        )


def test_every_room_says_what_it_holds():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(PACKAGE.parent)} has no docstring saying what the room holds"
