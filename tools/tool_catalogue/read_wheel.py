"""Step (a) of the tool catalogue: read an iointel wheel statically into a JSON inventory of its tools.

Every module the SDK's own tool discovery imports (`iointel/src/agent_methods/tools/**/*.py`, not
`__init__.py`) is parsed with `ast`, never imported: importing would need each tool's own SDK, and a
module that fails to import would silently drop its tools. For each registered tool the inventory
records its name and, for a tool that is a method, the pydantic fields of its class (the tool's
state: what `[tool, {args}]` and `fn_self` carry). A module or a registration that cannot be read
statically is listed under `unreadable`, never skipped in silence.

    python tools/tool_catalogue/read_wheel.py                    # iointel 1.7.2, from PyPI
    python tools/tool_catalogue/read_wheel.py --version 1.8.0
    python tools/tool_catalogue/read_wheel.py --wheel path/to/iointel-1.7.2-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PACKAGE = "iointel"
DEFAULT_VERSION = "1.7.2"
HERE = Path(__file__).parent
# Where the SDK's discover_all_tools() looks (iointel/src/utilities/tooling.py).
TOOLS_ROOT = "iointel/src/agent_methods/tools"
# The decorators that put a tool into TOOLS_REGISTRY: register_tool(name) and the agno wrapper
# wrap_tool(name, agno_method), which calls register_tool(name=name).
REGISTERING = ("register_tool", "wrap_tool")
# Bases that add no field of their own: pydantic's BaseModel, and make_base(AgnoToolkit), whose
# BaseAgnoTool holds only the private `_tool`.
FIELDLESS_BASES = ("BaseModel", "make_base")


@dataclass
class _Class:
    node: ast.ClassDef
    fields: list[dict[str, str]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)


@dataclass
class _Module:
    name: str
    tree: ast.Module
    classes: dict[str, _Class] = field(default_factory=dict)
    # local name -> (module, name), for `from x import Name` of classes defined elsewhere in the wheel
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)


class Inventory:
    """What one wheel registers, read statically."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.modules: dict[str, _Module] = {}
        self.unreadable: list[dict[str, object]] = []
        # (module, function name, tool names) of tools that are module-level functions
        self.functions: list[tuple[str, str, list[str]]] = []

    def read(self) -> dict[str, object]:
        with zipfile.ZipFile(self.wheel) as archive:
            names = sorted(
                n
                for n in archive.namelist()
                if n.startswith(TOOLS_ROOT + "/") and n.endswith(".py") and not n.endswith("/__init__.py")
            )
            for name in names:
                self._parse(".".join(PurePosixPath(name).with_suffix("").parts), archive.read(name))
        for parsed in self.modules.values():
            self._collect(parsed)
        classes: list[dict[str, object]] = []
        owners: dict[str, list[str]] = {}
        for parsed in self.modules.values():
            for cls in parsed.classes.values():
                if not cls.tools:
                    continue
                classes.append(
                    {
                        "module": parsed.name,
                        "class": cls.node.name,
                        "fields": self._fields(parsed, cls.node, set()),
                        "tools": cls.tools,
                    }
                )
                for tool in cls.tools:
                    owners.setdefault(tool, []).append(f"{parsed.name}:{cls.node.name}")
        for module, function, tools in self.functions:
            for tool in tools:
                owners.setdefault(tool, []).append(f"{module}:{function}")
        # One name registered twice: at import time the second module to load fails entirely
        # ("already registered with a different function"); which one depends on the import order.
        twice = {tool: where for tool, where in sorted(owners.items()) if len(where) > 1}
        return {
            "package": PACKAGE,
            "version": _version_of(self.wheel),
            "wheel": self.wheel.name,
            "sha256": hashlib.sha256(self.wheel.read_bytes()).hexdigest(),
            "tools_root": TOOLS_ROOT,
            "modules_read": len(self.modules),
            "tools_registered": len(owners),
            "registered_twice": twice,
            "unreadable": self.unreadable,
            "classes": classes,
            "functions": [{"module": m, "function": f, "tools": t} for m, f, t in self.functions],
        }

    def _unreadable(self, module: str, line: int, reason: str) -> None:
        self.unreadable.append({"module": module, "line": line, "reason": reason})

    def _parse(self, module: str, source: bytes) -> None:
        try:
            tree = ast.parse(source, filename=module)
        except (SyntaxError, ValueError) as exc:
            self._unreadable(module, getattr(exc, "lineno", 0) or 0, str(exc))
            return
        parsed = _Module(module, tree)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                parsed.classes[node.name] = _Class(node)
            elif isinstance(node, ast.ImportFrom):
                source_module = _absolute(module, node.module, node.level)
                for alias in node.names:
                    parsed.imports[alias.asname or alias.name] = (source_module, alias.name)
        self.modules[module] = parsed

    def _collect(self, parsed: _Module) -> None:
        """The tools each class and module function registers; any other registration is unreadable."""
        seen: set[int] = set()
        for node in parsed.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                seen.add(id(node))
                names = self._registered(parsed, node, node.name)
                if names:
                    self.functions.append((parsed.name, node.name, names))
            elif isinstance(node, ast.ClassDef):
                cls = parsed.classes[node.name]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        seen.add(id(item))
                        cls.tools.extend(self._registered(parsed, item, f"{node.name}.{item.name}"))
        decorators = {
            id(d)
            for n in ast.walk(parsed.tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            for d in n.decorator_list
        }
        own = {id(n) for d in _registering_definitions(parsed.tree) for n in ast.walk(d)}
        for walked in ast.walk(parsed.tree):
            if (
                isinstance(walked, ast.FunctionDef | ast.AsyncFunctionDef)
                and id(walked) not in seen
                and any(_decorator_name(d) in REGISTERING for d in walked.decorator_list)
            ):
                reason = f"tool {walked.name!r} is registered outside a module-level class or function"
                self._unreadable(parsed.name, walked.lineno, reason)
            if (
                isinstance(walked, ast.Call)
                and isinstance(walked.func, ast.Name | ast.Attribute)
                and _decorator_name(walked.func) in REGISTERING
                and id(walked) not in decorators
                and id(walked) not in own
            ):
                self._unreadable(
                    parsed.name, walked.lineno, "register_tool/wrap_tool called outside a decorator"
                )

    def _registered(
        self, module: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str
    ) -> list[str]:
        names: list[str] = []
        for decorator in node.decorator_list:
            kind = _decorator_name(decorator)
            if kind not in REGISTERING:
                continue
            if isinstance(decorator, ast.Call):
                name = _name_argument(decorator)
                if name is None and kind == "register_tool" and not decorator.args and not decorator.keywords:
                    name = _computed_name(qualname)
                if name is None:
                    reason = f"the tool name of {qualname!r} is not a string literal"
                    self._unreadable(module.name, decorator.lineno, reason)
                    continue
            else:
                name = _computed_name(qualname)
            names.append(name)
        return names

    def _fields(self, module: _Module, node: ast.ClassDef, visiting: set[str]) -> list[dict[str, str]]:
        """The class's pydantic fields, its bases' first (pydantic's order)."""
        fields: list[dict[str, str]] = []
        key = f"{module.name}:{node.name}"
        visiting = visiting | {key}
        for base in node.bases:
            fields.extend(self._base_fields(module, node, base, visiting))
        own = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
                annotation = ast.unparse(item.annotation)
                if name.startswith("_") or annotation.startswith(("ClassVar", "typing.ClassVar")):
                    continue
                own.append({"name": name, "annotation": annotation})
            elif (
                isinstance(item, ast.Assign)
                and isinstance(item.value, ast.Call)
                and _decorator_name(item.value.func) == "Field"
            ):
                for target in item.targets:
                    if isinstance(target, ast.Name) and not target.id.startswith("_"):
                        # pydantic refuses a Field without an annotation: the class (and its tools)
                        # fails to build when the module is imported.
                        own.append({"name": target.id, "annotation": ""})
        names = {f["name"] for f in own}
        return [f for f in fields if f["name"] not in names] + own

    def _base_fields(
        self, module: _Module, node: ast.ClassDef, base: ast.expr, visiting: set[str]
    ) -> list[dict[str, str]]:
        base_name = _decorator_name(base)
        if base_name in FIELDLESS_BASES:
            return []
        if isinstance(base, ast.Name):
            if base.id in module.classes and f"{module.name}:{base.id}" not in visiting:
                return self._fields(module, module.classes[base.id].node, visiting)
            origin = module.imports.get(base.id)
            if origin is not None and origin[0] in self.modules:
                other = self.modules[origin[0]]
                if origin[1] in other.classes and f"{other.name}:{origin[1]}" not in visiting:
                    return self._fields(other, other.classes[origin[1]].node, visiting)
        reason = f"class {node.name!r}: the fields of base {ast.unparse(base)!r} cannot be read"
        self._unreadable(module.name, node.lineno, reason)
        return []


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _decorator_name(node.func)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _name_argument(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "name":
            value = keyword.value
            return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    if call.args:
        first = call.args[0]
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return None


def _computed_name(qualname: str) -> str:
    # iointel's compute_fn_name: the function's __qualname__ with everything else scrubbed to "-".
    return re.sub(r"[^a-zA-Z0-9_-]", "-", qualname)


def _absolute(module: str, target: str | None, level: int) -> str:
    if level == 0:
        return target or ""
    parts = module.split(".")[:-level]
    return ".".join([*parts, *([target] if target else [])])


def _registering_definitions(tree: ast.Module) -> list[ast.FunctionDef]:
    """The decorators' own definitions (agno/common.py's wrap_tool calls register_tool inside)."""
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in REGISTERING]


def _version_of(wheel: Path) -> str:
    # iointel-1.7.2-py3-none-any.whl
    return wheel.name.split("-")[1]


def download(version: str, into: Path) -> Path:
    """The wheel of `version`, fetched with pip (no dependencies, nothing installed)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"{PACKAGE}=={version}",
            "-d",
            str(into),
        ],
        check=True,
    )
    (wheel,) = into.glob(f"{PACKAGE}-{version}-*.whl")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", default=DEFAULT_VERSION, help=f"iointel release (default {DEFAULT_VERSION})"
    )
    parser.add_argument("--wheel", type=Path, help="read this wheel instead of downloading one")
    parser.add_argument("--out", type=Path, help="default: tools/tool_catalogue/iointel-VERSION.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or download(args.version, Path(scratch))
        reader = Inventory(wheel)
        inventory = reader.read()
    out = args.out or HERE / f"{PACKAGE}-{inventory['version']}.json"
    out.write_text(json.dumps(inventory, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    unreadable = reader.unreadable
    print(
        f"{out}: {inventory['tools_registered']} tools in {inventory['modules_read']} modules, "
        f"{len(unreadable)} unreadable"
    )
    for entry in unreadable:
        print(f"  unreadable: {entry['module']}:{entry['line']}: {entry['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
