"""The rooms guard of `make lint`: no module of reconciler/ over 500 lines, no function over 60."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MODULE_LIMIT = 500
FUNCTION_LIMIT = 60

# No module is excused: the limits are the point. The parameter stays for the checker's own tests.
EXCLUDED: frozenset[str] = frozenset()

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, Function]]:
    """Every function and method with its dotted name, nested ones included (also under an `if`)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, Function):
            yield prefix + node.name, node
        inner = f"{prefix}{node.name}." if isinstance(node, Function | ast.ClassDef) else prefix
        yield from _functions(node, inner)


def offences(package: Path, excluded: frozenset[str] = EXCLUDED) -> Iterator[str]:
    """One line per offence, `path:line name N lines > limit`, paths as written from the package's parent."""
    for path in sorted(package.rglob("*.py")):
        shown = path.relative_to(package.parent).as_posix()
        if shown in excluded:
            continue
        text = path.read_text(encoding="utf-8")
        length = len(text.splitlines())
        if length > MODULE_LIMIT:
            yield f"{shown}:1 module {length} lines > {MODULE_LIMIT}"
        for name, node in _functions(ast.parse(text, filename=shown)):
            # A decorator is part of what a reader has to take in, so the count starts at the first one.
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > FUNCTION_LIMIT:
                yield f"{shown}:{first} {name} {length} lines > {FUNCTION_LIMIT}"


def main(argv: list[str]) -> int:
    package = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "reconciler"
    found = list(offences(package))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
