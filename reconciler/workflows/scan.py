"""Reading one workflow file: the tools its agents use and the credentials written into it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import desired
from reconciler.desired import YamlDocument, YamlNode
from reconciler.models import SecretValue
from reconciler.workflows.catalogue import Catalogue, is_credential_arg
from reconciler.workflows.findings import Finding, Kind, Severity

# A credential argument whose value is one of these is passed "by other means", not written inline:
# ${NAME} or $NAME (an environment reference) or a {{ template }}.
_REFERENCE = re.compile(r"\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*$|\{\{.*\}\}", re.DOTALL)

# ---------------------------------------------------------------------------------------------
# Reading a workflow file.


@dataclass(frozen=True)
class ToolUse:
    """One tool an agent lists, and the credential arguments the workflow passes it itself."""

    file: str
    line: int
    col: int
    tool: str
    agent: str
    # (argument, "literal" or "reference") for each credential argument given a value.
    passed: tuple[tuple[str, str], ...] = ()

    def passes(self, arg: str) -> str | None:
        return next((how for name, how in self.passed if name == arg), None)


@dataclass(frozen=True, eq=False)
class InlineCredential:
    """A credential written into a workflow file. The value stays inside a SecretValue."""

    file: str
    line: int
    col: int
    tool: str
    arg: str
    agent: str
    # "args" ([tool, {arg: value}]) or "fn_self" (serialized tool state).
    form: str
    value: SecretValue = field(repr=False)
    # Where it is written: the arguments mapping, or the fn_self node.
    holder: YamlNode = field(repr=False)
    # The [tool, {args}] sequence holding the mapping (form "args").
    pair: YamlNode | None = field(default=None, repr=False)
    # The value's own node (form "args"), or None inside a fn_self string.
    value_node: YamlNode | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WorkflowScan:
    """One workflow file read: its tools and its inline credentials."""

    document: YamlDocument = field(repr=False)
    uses: tuple[ToolUse, ...] = ()
    inline: tuple[InlineCredential, ...] = ()
    notes: tuple[Finding, ...] = ()


def scan(path: Path, tools: Catalogue) -> WorkflowScan:
    """Read one workflow file; DesiredFileError when it cannot be read as YAML."""
    return scan_document(desired.read_yaml(path), tools)


def scan_document(document: YamlDocument, tools: Catalogue) -> WorkflowScan:
    """The tools and inline credentials of a workflow document: agents at the top and inside tasks."""
    return _Scanner(document, tools).run()


class _Scanner:
    def __init__(self, document: YamlDocument, tools: Catalogue) -> None:
        self.document = document
        self.file = document.file
        self.tools = tools
        self.uses: list[ToolUse] = []
        self.inline: list[InlineCredential] = []
        self.seen_inline: set[tuple[int, str, str]] = set()

    def run(self) -> WorkflowScan:
        root = self.document.root
        if root is None or root.kind != "map":
            line, col = (root.line, root.col) if root is not None else (1, 1)
            note = Finding(
                self.file,
                line,
                col,
                "is not an io.net workflow (a mapping with agents or tasks); nothing checked",
                Kind.PROBLEM,
                Severity.WARNING,
            )
            return WorkflowScan(self.document, notes=(note,))
        agents: list[YamlNode] = []
        top = root.get("agents")
        if top is not None and top.kind == "seq":
            agents.extend(top.items)
        tasks = root.get("tasks")
        for task in tasks.items if tasks is not None and tasks.kind == "seq" else ():
            inner = task.get("agents") if task.kind == "map" else None
            if inner is not None and inner.kind == "seq":
                agents.extend(inner.items)
        for agent in agents:
            if agent.kind == "map":
                self.agent(agent)
        unique = {(u.line, u.col, u.tool): u for u in self.uses}
        return WorkflowScan(self.document, tuple(unique.values()), tuple(self.inline))

    def agent(self, agent: YamlNode) -> None:
        name_node = agent.get("name")
        name = (
            str(name_node.scalar) if name_node is not None and name_node.scalar is not None else "(unnamed)"
        )
        tools = agent.get("tools")
        for item in tools.items if tools is not None and tools.kind == "seq" else ():
            self.tool(item, name)

    def tool(self, item: YamlNode, agent: str) -> None:
        passed: list[tuple[str, str]] = []
        if item.kind == "scalar":
            if not isinstance(item.scalar, str) or not item.scalar:
                return
            tool = item.scalar
        elif item.kind == "seq":
            head = item.items[0] if item.items else None
            if head is None or head.kind != "scalar" or not isinstance(head.scalar, str):
                return
            tool = head.scalar
            args = item.items[1] if len(item.items) > 1 else None
            if args is not None and args.kind == "map":
                passed = self.arguments(tool, agent, args, "args", pair=item)
        elif item.kind == "map":
            name = item.get("name")
            if name is None or not isinstance(name.scalar, str) or not name.scalar:
                return
            tool = name.scalar
            state = item.get("fn_self")
            if state is not None and state.kind == "map":
                passed = self.arguments(tool, agent, state, "fn_self")
            elif state is not None and state.kind == "scalar" and isinstance(state.scalar, str):
                passed = self.serialized(tool, agent, state)
        else:
            return
        self.uses.append(ToolUse(self.file, item.line, item.col, tool, agent, tuple(passed)))

    def arguments(
        self, tool: str, agent: str, mapping: YamlNode, form: str, pair: YamlNode | None = None
    ) -> list[tuple[str, str]]:
        known = self.tools.args_for(tool)
        passed: list[tuple[str, str]] = []
        # Through an alias, the text to edit is the anchored node's.
        mapping = mapping.origin if mapping.origin is not None else mapping
        for key, value in mapping.entries():
            if key.kind != "scalar" or not isinstance(key.scalar, str):
                continue
            arg = key.scalar
            if not is_credential_arg(arg, known):
                continue
            how, literal = self.classify(value)
            if how is None:
                continue
            passed.append((arg, how))
            if literal is not None and (id(mapping), arg, tool) not in self.seen_inline:
                self.seen_inline.add((id(mapping), arg, tool))
                self.inline.append(
                    InlineCredential(
                        self.file,
                        key.line,
                        key.col,
                        tool,
                        arg,
                        agent,
                        form,
                        SecretValue(literal),
                        mapping,
                        pair,
                        value,
                    )
                )
        return passed

    def classify(self, node: YamlNode) -> tuple[str | None, str | None]:
        """("literal", text), ("reference", None), or (None, None) when no value is given."""
        if node.kind != "scalar":
            # A structured value ({from_env: ...} and the like) is not a pasted credential.
            return "reference", None
        scalar = node.scalar
        if scalar is None or isinstance(scalar, bool):
            return None, None
        if isinstance(scalar, str):
            return _classify_text(scalar)
        # A number is a literal as written (0123 stays 0123).
        return "literal", self.document.text[node.start : node.end]

    def serialized(self, tool: str, agent: str, node: YamlNode) -> list[tuple[str, str]]:
        node = node.origin if node.origin is not None else node
        assert isinstance(node.scalar, str)
        try:
            state = json.loads(node.scalar)
        except ValueError:
            return []
        if not isinstance(state, dict):
            return []
        known = self.tools.args_for(tool)
        passed: list[tuple[str, str]] = []
        for arg, value in state.items():
            if not is_credential_arg(arg, known):
                continue
            if isinstance(value, str):
                how, literal = _classify_text(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                how, literal = "literal", json.dumps(value)
            elif isinstance(value, dict | list):
                how, literal = "reference", None
            else:
                continue
            if how is None:
                continue
            passed.append((arg, how))
            if literal is not None and (id(node), arg, tool) not in self.seen_inline:
                self.seen_inline.add((id(node), arg, tool))
                line, col = self.position_in_scalar(node, arg)
                self.inline.append(
                    InlineCredential(
                        self.file, line, col, tool, arg, agent, "fn_self", SecretValue(literal), node
                    )
                )
        return passed

    def position_in_scalar(self, node: YamlNode, key: str) -> tuple[int, int]:
        """Where `"key"` sits inside a one-line fn_self string, else the string's own position."""
        source = self.document.text[node.start : node.end]
        for needle in (json.dumps(key), json.dumps(key).replace('"', '\\"')):
            at = source.find(needle)
            if at >= 0 and "\n" not in source[:at]:
                return node.line, node.col + at
        return node.line, node.col


def _classify_text(text: str) -> tuple[str | None, str | None]:
    if not text.strip():
        return None, None
    if _REFERENCE.search(text):
        return "reference", None
    return "literal", text


# ---------------------------------------------------------------------------------------------
