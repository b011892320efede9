"""Reading one workflow file: the tools its agents use and the credentials written into it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reconciler.models import SecretValue
from reconciler.text import quoted
from reconciler.workflows.catalogue import Catalogue, carries_password, is_credential_arg, is_url_name
from reconciler.workflows.findings import Finding, Kind, Severity
from reconciler.yaml_tree import YamlDocument, YamlNode, read_yaml

# A credential argument whose value is one of these is passed "by other means", not written inline:
# ${NAME} or $NAME (an environment reference) or a {{ template }}.
_REFERENCE = re.compile(r"\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*$|\{\{.*\}\}", re.DOTALL)
# How to_yaml writes an agent's model key without store_creds=True (pydantic's SecretStr).
_MASKED_KEY = re.compile(r"\*+")


class How(StrEnum):
    """How a workflow passes a credential argument itself."""

    # Written in plain text: an inline credential.
    LITERAL = "literal"
    # ${NAME}, $NAME, a {{ template }} or a structured value: a secret fills it.
    REFERENCE = "reference"
    # Passed without a credential in the file: a path to a credential file, a URL without a password.
    OUTSIDE = "outside"


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
    # (argument, how) for each credential argument given a value.
    passed: tuple[tuple[str, How], ...] = ()

    def passes(self, arg: str) -> How | None:
        return next((how for name, how in self.passed if name == arg), None)


@dataclass(frozen=True, eq=False)
class InlineCredential:
    """A credential written into a workflow file. The value stays inside a SecretValue."""

    file: str
    line: int
    col: int
    # "" for an agent's own model key (form "agent").
    tool: str
    arg: str
    agent: str
    # "args" ([tool, {arg: value}]), "fn_self" (serialized tool state) or "agent" (its api_key).
    form: str
    value: SecretValue = field(repr=False)
    # Where it is written: the arguments or agent mapping, or the fn_self string.
    holder: YamlNode = field(repr=False)
    # The [tool, {args}] sequence holding the mapping (form "args").
    pair: YamlNode | None = field(default=None, repr=False)
    # The value's own node, or None inside a fn_self string.
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
    return scan_document(read_yaml(path), tools)


def scan_document(document: YamlDocument, tools: Catalogue) -> WorkflowScan:
    """The tools and inline credentials of a workflow document: agents at the top and inside tasks,
    swarms' members included; a warning (in `notes`) for each part that is not understood."""
    return _Scanner(document, tools).run()


class _Scanner:
    def __init__(self, document: YamlDocument, tools: Catalogue) -> None:
        self.document = document
        self.file = document.file
        self.tools = tools
        self.uses: list[ToolUse] = []
        self.inline: list[InlineCredential] = []
        self.notes: list[Finding] = []
        self.seen_inline: set[tuple[int, str, str]] = set()
        self.agents_read = 0

    def note(self, node: YamlNode | None, message: str) -> None:
        line, col = (node.line, node.col) if node is not None else (1, 1)
        self.notes.append(Finding(self.file, line, col, message, Kind.PROBLEM, Severity.WARNING))

    def run(self) -> WorkflowScan:
        root = self.document.root
        if root is None or root.kind != "map":
            self.note(root, "is not an io.net workflow (a mapping with agents or tasks); nothing checked")
            return WorkflowScan(self.document, notes=tuple(self.notes))
        top, tasks, steps = root.get("agents"), root.get("tasks"), root.get("workflow")
        self.agents(top)
        # `tasks` is what Workflow.to_yaml writes; `workflow` is the upload form of iointel's README.
        for container in (tasks, steps):
            for task in container.items if container is not None and container.kind == "seq" else ():
                if task.kind == "map":
                    self.agents(task.get("agents"))
        if top is None and tasks is None and steps is None:
            self.note(root, "has no `agents` or `tasks`: not an io.net workflow; nothing checked")
        elif steps is not None and top is None and tasks is None and not self.agents_read:
            self.note(
                next(key for key, value in root.entries() if value is steps),
                "is in the `workflow:` form of iointel's README (a list of task types), which names no "
                "agents or tools; nothing checked",
            )
        unique = {(u.line, u.col, u.tool): u for u in self.uses}
        return WorkflowScan(self.document, tuple(unique.values()), tuple(self.inline), tuple(self.notes))

    def agents(self, node: YamlNode | None) -> None:
        """A list of agents, or a swarm: {members: [...]} (the form WorkflowDefinition accepts)."""
        if node is None or (node.kind == "scalar" and node.scalar is None):
            return
        members = node.get("members") if node.kind == "map" else None
        if node.kind == "seq":
            for item in node.items:
                self.agent_entry(item)
        elif members is not None and members.kind == "seq":
            for item in members.items:
                self.agent_entry(item)
        else:
            self.note(node, "`agents` is neither a list of agents nor a swarm ({members: [...]}); not read")

    def agent_entry(self, item: YamlNode) -> None:
        head = item.items[0] if item.kind == "seq" and len(item.items) == 2 else None
        if item.kind == "map":
            self.agent(item)
        elif head is not None and head.scalar == "members" and item.items[1].kind == "seq":
            # A swarm inside a task, as to_yaml writes it: ["members", [agent, ...]].
            for member in item.items[1].items:
                self.agent_entry(member)
        else:
            self.note(item, "an agent here is not a mapping (name, tools, ...); not read")

    def agent(self, agent: YamlNode) -> None:
        self.agents_read += 1
        name_node = agent.get("name")
        name = (
            str(name_node.scalar) if name_node is not None and name_node.scalar is not None else "(unnamed)"
        )
        self.model_key(agent, name)
        tools = agent.get("tools")
        if tools is not None and tools.kind == "seq":
            for item in tools.items:
                self.tool(item, name)
        elif tools is not None and not (tools.kind == "scalar" and tools.scalar is None):
            self.note(tools, f"`tools` of agent {quoted(name)} is not a list; not read")

    def model_key(self, agent: YamlNode, name: str) -> None:
        """The agent's own model key: to_yaml(store_creds=True) writes it in plain text."""
        holder = agent.origin if agent.origin is not None else agent
        for key, value in holder.entries():
            if key.scalar != "api_key" or value.kind != "scalar":
                continue
            how, literal = self.classify("", "api_key", value)
            if how is not How.LITERAL or literal is None or _MASKED_KEY.fullmatch(literal):
                continue
            if (id(holder), "api_key", "") not in self.seen_inline:
                self.seen_inline.add((id(holder), "api_key", ""))
                self.inline.append(
                    InlineCredential(
                        self.file,
                        key.line,
                        key.col,
                        "",
                        "api_key",
                        name,
                        "agent",
                        SecretValue(literal),
                        holder,
                        value_node=value,
                    )
                )

    def tool(self, item: YamlNode, agent: str) -> None:
        tool = _tool_name(item)
        if tool is None:
            self.note(
                item,
                f"a tool of agent {quoted(agent)} is not a tool name, a [name, {{args}}] pair or a "
                "serialized tool (a mapping with name); not checked",
            )
            return
        passed: list[tuple[str, How]] = []
        if item.kind == "seq":
            args = item.items[1] if len(item.items) > 1 else None
            if args is not None and args.kind == "map":
                passed = self.arguments(tool, agent, args, "args", pair=item)
        elif item.kind == "map":
            state = item.get("fn_self")
            if state is not None and state.kind == "map":
                passed = self.arguments(tool, agent, state, "fn_self")
            elif state is not None and state.kind == "seq" and len(state.items) >= 2:
                # What to_yaml writes: [module:Class, '<the tool's state as JSON>', id(self)].
                passed = self.serialized(tool, agent, state.items[1])
            elif state is not None:
                passed = self.serialized(tool, agent, state)
        self.uses.append(ToolUse(self.file, item.line, item.col, tool, agent, tuple(passed)))

    def arguments(
        self, tool: str, agent: str, mapping: YamlNode, form: str, pair: YamlNode | None = None
    ) -> list[tuple[str, How]]:
        passed: list[tuple[str, How]] = []
        # Through an alias, the text to edit is the anchored node's.
        mapping = mapping.origin if mapping.origin is not None else mapping
        for key, value in mapping.entries():
            if key.kind != "scalar" or not isinstance(key.scalar, str):
                continue
            arg = key.scalar
            how, literal = self.classify(tool, arg, value)
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

    def classify(self, tool: str, arg: str, node: YamlNode) -> tuple[How | None, str | None]:
        """How a YAML value passes argument `arg` (None: it is no credential argument, or not given)."""
        if node.kind != "scalar":
            # A structured value ({from_env: ...} and the like) is not a pasted credential.
            return (How.REFERENCE, None) if self.is_credential(tool, arg) else (None, None)
        scalar = node.scalar
        if scalar is None or isinstance(scalar, bool):
            return None, None
        # A number is a literal as written (0123 stays 0123).
        text = scalar if isinstance(scalar, str) else self.document.text[node.start : node.end]
        return self.classify_text(tool, arg, text)

    def classify_text(self, tool: str, arg: str, text: str) -> tuple[How | None, str | None]:
        if not self.is_credential(tool, arg):
            # A password in a URL is a credential whatever the argument is called.
            return (How.LITERAL, text) if carries_password(text) else (None, None)
        if not text.strip():
            return None, None
        if _REFERENCE.search(text):
            return How.REFERENCE, None
        if is_url_name(arg) and not carries_password(text):
            return How.OUTSIDE, None
        if self.tools.is_file(tool, arg) and _is_path(text):
            return How.OUTSIDE, None
        return How.LITERAL, text

    def is_credential(self, tool: str, arg: str) -> bool:
        return is_credential_arg(arg, self.tools.args_for(tool)) if tool else arg == "api_key"

    def serialized(self, tool: str, agent: str, node: YamlNode) -> list[tuple[str, How]]:
        node = node.origin if node.origin is not None else node
        if node.kind != "scalar" or not isinstance(node.scalar, str):
            return []
        try:
            state = json.loads(node.scalar)
        except ValueError:
            return []
        if not isinstance(state, dict):
            return []
        passed: list[tuple[str, How]] = []
        for arg, value in state.items():
            how: How | None
            if isinstance(value, str):
                how, literal = self.classify_text(tool, arg, value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                how, literal = self.classify_text(tool, arg, json.dumps(value))
            elif isinstance(value, dict | list) and self.is_credential(tool, arg):
                how, literal = How.REFERENCE, None
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
        """Where `"key"` sits inside a fn_self string (folded over lines or not), else the string's own."""
        source = self.document.text[node.start : node.end]
        for needle in (json.dumps(key), json.dumps(key).replace('"', '\\"')):
            at = source.find(needle)
            if at < 0:
                continue
            newlines = source.count("\n", 0, at)
            if not newlines:
                return node.line, node.col + at
            return node.line + newlines, at - source.rfind("\n", 0, at)
        return node.line, node.col


def _tool_name(item: YamlNode) -> str | None:
    """A tool entry's name: `name`, [name, {args}], or a serialized tool {name: ..., fn_self: ...}."""
    if item.kind == "seq":
        item = item.items[0] if item.items else item
    elif item.kind == "map":
        found = item.get("name")
        if found is None:
            return None
        item = found
    return item.scalar if item.kind == "scalar" and isinstance(item.scalar, str) and item.scalar else None


def _is_path(text: str) -> bool:
    """Whether a credential-file argument holds a path to the file rather than the file itself."""
    return "\n" not in text and not text.lstrip().startswith(("{", "[", "-----BEGIN"))
