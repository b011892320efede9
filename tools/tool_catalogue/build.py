"""Step (b) of the tool catalogue: inventory + name rule + overrides -> reconciler/data/tool-credentials.yaml.

Offline and deterministic: the same inventory and overrides give the same bytes, which a test checks.
A class is credentialed when the name rule (reconciler.workflows.catalogue.is_credential_name) or
overrides.yaml flags one of its fields. Its tools are grouped into families:

- `agno__<family>__<name>` tools into `agno__<family>__*`, the wildcard io.net accepts;
- other tools of one class sharing a prefix no other tool has (`Crawler-`, `retrieval-engine-`)
  into `<prefix>*`;
- the rest stay single tools (`get_current_weather`, `email_user`): coverage needs a secret each.

    python tools/tool_catalogue/build.py                  # from iointel-1.7.2.json
    python tools/tool_catalogue/build.py --version 1.8.0  # after read_wheel.py --version 1.8.0
    python tools/tool_catalogue/build.py --check          # exit 1 when the committed file differs
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import yaml_tree
from reconciler.workflows.catalogue import CATALOGUE_FILE, is_credential_name

HERE = Path(__file__).parent
DEFAULT_VERSION = "1.7.2"
OVERRIDES = HERE / "overrides.yaml"
_AGNO_FAMILY = re.compile(r"agno__([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)__")
_SEPARATORS = "-_."
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CatalogueError(Exception):
    """The inventory and the overrides do not make a catalogue (a stale override, overlapping globs)."""


@dataclass
class _Family:
    pattern: str
    args: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    tools: set[str] = field(default_factory=set)
    # class name -> how many of the family's tools it registers
    classes: dict[str, int] = field(default_factory=dict)
    confirmed: bool = False


@dataclass(frozen=True)
class Catalogue:
    """The generated file's text, and the figures docs/workflows.md quotes."""

    text: str
    credentialed_tools: int
    families: int
    tools_registered: int


def build(inventory: Mapping[str, Any], overrides: Mapping[str, Any], *, source: str) -> Catalogue:
    classes = list(inventory["classes"])
    per_class = overrides.get("classes") or {}
    _check_overrides(classes, per_class)
    all_tools = [(t, c["class"]) for c in classes for t in c["tools"]] + [
        (t, "") for f in inventory["functions"] for t in f["tools"]
    ]
    credential_args: dict[str, tuple[list[str], list[str]]] = {}
    for cls in classes:
        extra = per_class.get(cls["class"]) or {}
        names = [f["name"] for f in cls["fields"]]
        args = [n for n in names if is_credential_name(n) or n in (extra.get("add") or ())]
        if not args:
            continue
        first = extra.get("first")
        if first:
            args.remove(first)
            args.insert(0, first)
        credential_args[cls["class"]] = (args, [n for n in names if n in (extra.get("files") or ())])
    plain_tools = [t for t, c in all_tools if c not in credential_args]
    families: dict[str, _Family] = {}
    for cls in classes:
        if cls["class"] not in credential_args:
            continue
        args, files = credential_args[cls["class"]]
        for tool, pattern in _patterns(cls, all_tools, plain_tools).items():
            fam = families.setdefault(pattern, _Family(pattern))
            fam.args.extend(a for a in args if a not in fam.args)
            fam.files.extend(a for a in files if a not in fam.files)
            fam.tools.add(tool)
            fam.classes[cls["class"]] = fam.classes.get(cls["class"], 0) + 1
    for kept in overrides.get("keep") or ():
        families.setdefault(kept["pattern"], _Family(kept["pattern"], list(kept["args"])))
    for pattern in overrides.get("confirmed") or ():
        if pattern not in families:
            raise CatalogueError(f"overrides.yaml: confirmed family {pattern!r} is not in the catalogue")
        families[pattern].confirmed = True
    _check_overlaps(families, all_tools)
    ordered = sorted(families.values(), key=lambda f: (f.pattern.lower(), f.pattern))
    credentialed = len({t for f in ordered for t in f.tools})
    text = _render(ordered, inventory, source, credentialed)
    return Catalogue(text, credentialed, len(ordered), len({t for t, _c in all_tools}))


def _check_overrides(classes: Sequence[Mapping[str, Any]], per_class: Mapping[str, Any]) -> None:
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for cls in classes:
        by_name.setdefault(cls["class"], []).append(cls)
    for name, extra in per_class.items():
        found = by_name.get(name, [])
        if len(found) != 1:
            raise CatalogueError(
                f"overrides.yaml: class {name!r} is registered by {len(found)} modules, not 1"
            )
        fields = {f["name"] for f in found[0]["fields"]}
        named = [
            *(extra.get("add") or ()),
            *(extra.get("files") or ()),
            *([extra["first"]] if extra.get("first") else []),
        ]
        stale = [n for n in named if n not in fields]
        if stale:
            raise CatalogueError(f"overrides.yaml: class {name!r} has no field {', '.join(map(repr, stale))}")


def _patterns(
    cls: Mapping[str, Any], all_tools: Sequence[tuple[str, str]], plain_tools: Sequence[str]
) -> dict[str, str]:
    """tool -> the catalogue pattern it goes under."""
    others = [t for t, c in all_tools if c != cls["class"]]
    result: dict[str, str] = {}
    loose: list[str] = []
    for tool in cls["tools"]:
        match = _AGNO_FAMILY.match(tool)
        glob = f"agno__{match.group(1)}__*" if match else None
        # A glob that would take in a tool needing no credential is no family. (A tool of another
        # credentialed class may share it: iointel 1.7.2's ClickUp registers agno__cartesia__list_voices.)
        if glob and not any(fnmatch.fnmatchcase(t, glob) for t in plain_tools):
            result[tool] = glob
        else:
            loose.append(tool)
    prefix = _common_prefix(loose)
    if len(loose) > 1 and prefix and not any(o.startswith(prefix) for o in others):
        result.update((tool, prefix + "*") for tool in loose)
    else:
        result.update((tool, tool) for tool in loose)
    return result


def _common_prefix(tools: Sequence[str]) -> str:
    if not tools:
        return ""
    prefix = tools[0]
    for tool in tools[1:]:
        while not tool.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind(s) for s in _SEPARATORS)
    return prefix[: cut + 1] if cut >= 2 else ""


def _check_overlaps(families: Mapping[str, _Family], all_tools: Sequence[tuple[str, str]]) -> None:
    for tool, _cls in all_tools:
        matching = [p for p in families if fnmatch.fnmatchcase(tool, p)]
        if len(matching) > 1:
            raise CatalogueError(f"tool {tool!r} matches several families: {', '.join(matching)}")


def _render(families: Sequence[_Family], inventory: Mapping[str, Any], source: str, credentialed: int) -> str:
    header = [
        "# The credentialed tools of io.net's agents and workflows, and the tool arguments that take a",
        f"# credential. GENERATED by tools/tool_catalogue/build.py from {source}",
        f"# ({inventory['package']} {inventory['version']}, wheel sha256 {inventory['sha256']}),",
        "# the name rule and tools/tool_catalogue/overrides.yaml: do not edit, rerun it.",
        f"# {credentialed} credentialed tools of the {inventory['tools_registered']} it registers, "
        f"in {len(families)} entries.",
        "# `pattern` is matched like a shell glob against tool names, the first match deciding; `args` are",
        "# alternatives (one covered is enough); `files` are credential files or paths to one; `class` is",
        "# the SDK class, whose fields the SDK also reads from <CLASS>_<FIELD> environment variables;",
        "# `confirmed` means a real client binds secrets this way. A desired-state file can add families",
        "# or override one with its own top-level `tool_credentials:` list (its entries come first).",
        "families:",
    ]
    width_pattern = max(len(json.dumps(f.pattern)) for f in families) + 1
    width_class = max(len(_main_class(f)) for f in families) + 1
    lines = []
    for fam in families:
        parts = [
            f"pattern: {json.dumps(fam.pattern) + ',':<{width_pattern}}",
            f"class: {_main_class(fam) + ',':<{width_class}}",
            f"args: {_flow(fam.args)}",
        ]
        if fam.files:
            parts.append(f", files: {_flow(fam.files)}")
        if fam.confirmed:
            parts.append(", confirmed: true")
        lines.append(("  - {" + " ".join(parts[:3]) + "".join(parts[3:]) + "}").replace(" ,", ","))
    return "\n".join([*header, *lines]) + "\n"


def _main_class(fam: _Family) -> str:
    # The class registering most of the family's tools; ties go to the name, for a stable file.
    return min(fam.classes.items(), key=lambda item: (-item[1], item[0]))[0] if fam.classes else '""'


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(i if _PLAIN.fullmatch(i) else json.dumps(i) for i in items) + "]"


def load(version: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    source = f"iointel-{version}.json"
    inventory = json.loads((HERE / source).read_text(encoding="utf-8"))
    overrides = yaml_tree.read_yaml(OVERRIDES).root
    data = overrides.to_python() if overrides is not None else {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{OVERRIDES}: expected a mapping")
    return inventory, data, f"tools/tool_catalogue/{source}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", default=DEFAULT_VERSION, help=f"iointel release (default {DEFAULT_VERSION})"
    )
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    args = parser.parse_args(argv)
    inventory, overrides, source = load(args.version)
    try:
        result = build(inventory, overrides, source=source)
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = f"{result.credentialed_tools} credentialed tools in {result.families} entries"
    if args.check:
        same = CATALOGUE_FILE.read_text(encoding="utf-8") == result.text
        verdict = "up to date" if same else "differs: rerun tools/tool_catalogue/build.py"
        print(f"{CATALOGUE_FILE}: {verdict} ({figures})")
        return 0 if same else 1
    CATALOGUE_FILE.write_text(result.text, encoding="utf-8")
    print(f"{CATALOGUE_FILE}: {figures}, of {result.tools_registered} tools registered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
