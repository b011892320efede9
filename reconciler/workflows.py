"""io.net workflow YAML: the tools it uses, credentials written into it, and coverage by the desired state."""

from __future__ import annotations

import difflib
import fnmatch
import glob
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from reconciler import desired, values
from reconciler.desired import RemoveKeys, ReplaceScalar, ReplaceWithItem, YamlDocument, YamlEdit, YamlNode
from reconciler.errors import DesiredFileError, Problem, ReconcilerError
from reconciler.models import DesiredSecret, DesiredState, Location, SecretValue

CATALOGUE_FILE = Path(__file__).parent / "data" / "tool-credentials.yaml"
SENSITIVE = "(sensitive)"

# A credential argument whose value is one of these is passed "by other means", not written inline:
# ${NAME} or $NAME (an environment reference) or a {{ template }}.
_REFERENCE = re.compile(r"\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*$|\{\{.*\}\}", re.DOTALL)
# Argument names that hold a credential whatever the tool (the catalogue lists the known ones).
_CREDENTIAL_NAME = re.compile(
    r"(?:^|_)(?:token|api_?key|apikey|secret|password|passwd|private_key|access_key|secret_key)$",
    re.IGNORECASE,
)
# io.net accepts a trailing * in tool_name for these families only.
_IO_FAMILY = re.compile(r"agno__[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*__\*")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")
# A value shorter than this is not searched for in the rest of a file after extraction: it would
# match ordinary text. (io.net refuses values under 4 characters anyway.)
_LEFTOVER_MIN_CHARS = 8
_MASK_MIN_CHARS = 4


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Kind(StrEnum):
    UNCOVERED = "uncovered"
    UNUSED = "unused"
    INLINE = "inline"
    # A workflow file that cannot be read, or a glob that matches no file.
    PROBLEM = "problem"
    # Extraction: a credential moved out, or its value still found elsewhere in a file.
    MOVED = "moved"
    LEFTOVER = "leftover"


@dataclass(frozen=True)
class Finding:
    """One located finding about a workflow file or a secret. Never holds a credential value."""

    file: str
    line: int
    col: int
    message: str
    kind: Kind
    severity: Severity = Severity.ERROR
    tool: str = ""
    arg: str = ""
    # For an uncovered tool: the desired-state entry to add, as one line of YAML.
    suggestion: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"
        return f"{text}; suggested entry: {self.suggestion}" if self.suggestion else text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": str(self.severity),
            "kind": str(self.kind),
            "message": self.message,
            "tool": self.tool,
            "arg": self.arg,
            "suggestion": self.suggestion,
        }


def _order(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.file, f.line, f.col, f.message)))


@dataclass(frozen=True)
class WorkflowReport:
    """What `check` found: tools no secret covers, secrets no workflow uses, credentials written inline."""

    uncovered: tuple[Finding, ...] = ()
    unused: tuple[Finding, ...] = ()
    inline: tuple[Finding, ...] = ()
    # Workflow files that cannot be read (errors) and globs that match no file (warnings).
    problems: tuple[Finding, ...] = ()
    files: tuple[str, ...] = ()
    tool_uses: int = 0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return _order((*self.problems, *self.uncovered, *self.inline, *self.unused))

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)


def format_findings(report: WorkflowReport) -> list[str]:
    """One line per finding, `FILE:LINE:COL: severity: message`, in file order."""
    return [str(finding) for finding in report.findings]


# ---------------------------------------------------------------------------------------------
# The catalogue of credentialed tools.


@dataclass(frozen=True)
class Catalogue:
    """Tool name globs and the arguments that take a credential; the first matching glob decides."""

    families: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def args_for(self, tool: str) -> tuple[str, ...] | None:
        """The credential arguments of `tool`: () when it takes none, None when the tool is unknown."""
        for pattern, args in self.families:
            if fnmatch.fnmatchcase(tool, pattern):
                return args
        return None

    def pattern_for(self, tool: str) -> str | None:
        for pattern, _args in self.families:
            if fnmatch.fnmatchcase(tool, pattern):
                return pattern
        return None


def catalogue(extra: Sequence[tuple[str, Sequence[str]]] = ()) -> Catalogue:
    """The built-in catalogue with `extra` entries (a desired state's tool_credentials) consulted first."""
    return Catalogue((*((pattern, tuple(args)) for pattern, args in extra), *_builtin_families()))


@cache
def _builtin_families() -> tuple[tuple[str, tuple[str, ...]], ...]:
    document = desired.read_yaml(CATALOGUE_FILE)
    families = document.root.get("families") if document.root and document.root.kind == "map" else None
    if families is None or families.kind != "seq":
        raise ReconcilerError(f"{CATALOGUE_FILE} has no 'families' list; reinstall reconciler")
    result: list[tuple[str, tuple[str, ...]]] = []
    for item in families.items:
        pattern = item.get("pattern") if item.kind == "map" else None
        args = item.get("args") if item.kind == "map" else None
        if pattern is None or not isinstance(pattern.scalar, str) or args is None or args.kind != "seq":
            raise ReconcilerError(
                f"{CATALOGUE_FILE}:{item.line}: expected {{pattern, args}}; reinstall reconciler"
            )
        result.append((pattern.scalar, tuple(str(arg.scalar) for arg in args.items)))
    return tuple(result)


def binds(tool_name: str, tool: str) -> bool:
    """Whether a secret's tool_name applies to `tool`: equal, or a trailing-* wildcard covering it."""
    if tool_name.endswith("*"):
        return tool.startswith(tool_name[:-1])
    return tool_name == tool


def _is_credential_arg(arg: str, known: tuple[str, ...] | None) -> bool:
    return (known is not None and arg in known) or _CREDENTIAL_NAME.search(arg) is not None


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
            if not _is_credential_arg(arg, known):
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
            if not _is_credential_arg(arg, known):
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
# Coverage of a desired state's workflows.


def check(state: DesiredState, *, unused_as_errors: bool = False) -> WorkflowReport:
    """Check the workflows the desired state lists (`workflows:` globs, relative to its file).

    Errors: tools that need a credential no secret covers, credentials written into a workflow, and
    workflow files that cannot be read. Warnings: secrets no workflow uses (errors with
    `unused_as_errors`) and globs that match no file.
    """
    if not state.workflows:
        return WorkflowReport()
    tools = catalogue(state.tool_credentials)
    paths, problems = _expand(state)
    scans: list[WorkflowScan] = []
    for path in paths:
        try:
            scans.append(scan(path, tools))
        except DesiredFileError as exc:
            problems.extend(
                Finding(p.file, p.line, p.col, f"cannot be checked: {p.message}", Kind.PROBLEM)
                for p in exc.problems
            )
    for result in scans:
        problems.extend(result.notes)
    uses = [use for result in scans for use in result.uses]
    inline = [_inline_finding(c, state.path) for result in scans for c in result.inline]
    severity = Severity.ERROR if unused_as_errors else Severity.WARNING
    return WorkflowReport(
        uncovered=_order(_uncovered(uses, state, tools)),
        unused=_order(_unused(uses, state, tools, severity)),
        inline=_order(inline),
        problems=_order(problems),
        files=tuple(str(path) for path in paths),
        tool_uses=len(uses),
    )


def _expand(state: DesiredState) -> tuple[list[Path], list[Finding]]:
    base = Path(state.path).parent
    paths: list[Path] = []
    seen: set[Path] = set()
    problems: list[Finding] = []
    for index, pattern in enumerate(state.workflows):
        matches = [base / m for m in sorted(glob.glob(pattern, root_dir=base, recursive=True))]
        files = [m for m in matches if m.is_file()]
        if not files:
            where = desired.locate(Path(state.path), ("workflows", index)) or Location(state.path, 1, 1)
            problems.append(
                Finding(
                    where.file,
                    where.line,
                    where.col,
                    f"workflows glob {_shown(pattern)} matches no file (relative to {base}/)",
                    Kind.PROBLEM,
                    Severity.WARNING,
                )
            )
        for path in files:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, problems


def _tool_name(secret: DesiredSecret) -> str | None:
    value = secret.fields.get("tool_name")
    return value if isinstance(value, str) else None


def _line_of(secret: DesiredSecret) -> str:
    """Where the entry is, as FILE:LINE (the message it goes into is located in a workflow file)."""
    return str(secret.location).rsplit(":", 1)[0] if secret.location is not None else "?"


def _uncovered(uses: Sequence[ToolUse], state: DesiredState, tools: Catalogue) -> list[Finding]:
    findings: list[Finding] = []
    for use in uses:
        args = tools.args_for(use.tool)
        if not args:
            continue
        bound = [s for s in state.secrets if (name := _tool_name(s)) is not None and binds(name, use.tool)]
        if _covered(use, args, bound):
            continue
        wanted = " or ".join(map(_shown, args))
        message = (
            f"tool {_shown(use.tool)} (agent {_quoted(use.agent)}) needs a credential in {wanted} "
            f"and no secret covers it: {_near_miss(use, args, bound)}"
        )
        findings.append(
            Finding(
                use.file,
                use.line,
                use.col,
                message,
                Kind.UNCOVERED,
                tool=use.tool,
                arg=args[0],
                suggestion=_suggestion(use.tool, args[0], tools, state),
            )
        )
    return findings


def _covered(use: ToolUse, args: tuple[str, ...], bound: Sequence[DesiredSecret]) -> bool:
    # Several arguments of one tool are alternatives (a token or a password): one covered is enough.
    for arg in args:
        how = use.passes(arg)
        if how == "literal":
            # Reported as an inline credential instead.
            return True
        for secret in bound:
            if secret.fields.get("tool_arg") != arg:
                continue
            if secret.fields.get("is_default_for_tool") is True or how == "reference":
                return True
    return False


def _near_miss(use: ToolUse, args: tuple[str, ...], bound: Sequence[DesiredSecret]) -> str:
    for secret in bound:
        arg = secret.fields.get("tool_arg")
        if arg in args:
            if "is_default_for_tool" in secret.fields:
                default = f"has is_default_for_tool: {_yaml(secret.fields['is_default_for_tool'])}"
            else:
                default = "does not set is_default_for_tool"
            owner, shown = f"secret {_quoted(secret.secret_name)} ({_line_of(secret)})", _shown(str(arg))
            return (
                f"{owner} binds it with tool_arg {shown} but {default}; "
                f"set is_default_for_tool: true, or pass {shown} in the workflow"
            )
    for secret in bound:
        if "tool_arg" not in secret.fields:
            owner = f"secret {_quoted(secret.secret_name)} ({_line_of(secret)})"
            return f"{owner} binds it but does not state tool_arg"
        arg = secret.fields["tool_arg"]
        return (
            f"secret {_quoted(secret.secret_name)} ({_line_of(secret)}) binds it with tool_arg "
            f"{_yaml(arg)}, which this tool does not take"
        )
    passed = [arg for arg in args if use.passes(arg) == "reference"]
    if passed:
        shown = _shown(passed[0])
        return f"it passes {shown} by reference, but no secret binds this tool with tool_arg {shown}"
    return "no secret binds this tool"


def _unused(
    uses: Sequence[ToolUse], state: DesiredState, tools: Catalogue, severity: Severity
) -> list[Finding]:
    findings: list[Finding] = []
    for secret in state.secrets:
        tool_name = _tool_name(secret)
        if tool_name is None:
            # Bound to no tool (or the binding is not managed here): nothing to match it against.
            continue
        matching = [use for use in uses if binds(tool_name, use.tool)]
        arg = secret.fields.get("tool_arg")
        if not matching:
            owner = f"secret {_quoted(secret.secret_name)}"
            message = f"{owner} is bound to {_shown(tool_name)}, which no workflow uses"
        elif isinstance(arg, str) and not any(_takes(use, arg, tools) for use in matching):
            taken = sorted({a for use in matching for a in tools.args_for(use.tool) or ()})
            they_take = f" (they take {', '.join(map(_shown, taken))})" if taken else ""
            message = (
                f"secret {_quoted(secret.secret_name)} fills tool_arg {_shown(arg)}, which no workflow "
                f"tool matching {_shown(tool_name)} takes{they_take}"
            )
        else:
            continue
        where = secret.location or Location(state.path, 1, 1)
        findings.append(
            Finding(
                where.file,
                where.line,
                where.col,
                message,
                Kind.UNUSED,
                severity,
                tool=tool_name,
                arg=arg if isinstance(arg, str) else "",
            )
        )
    return findings


def _takes(use: ToolUse, arg: str, tools: Catalogue) -> bool:
    known = tools.args_for(use.tool)
    # A tool outside the catalogue may take any argument.
    return known is None or arg in known or use.passes(arg) is not None


def _inline_finding(credential: InlineCredential, desired_path: str) -> Finding:
    where = " in its serialized state (fn_self)" if credential.form == "fn_self" else ""
    message = (
        f"credential {_shown(credential.arg)} of tool {_shown(credential.tool)} "
        f"(agent {_quoted(credential.agent)}) is written into the workflow{where}; move it out with "
        f"`reconciler workflows extract {credential.file} --into {desired_path}`"
    )
    return Finding(
        credential.file,
        credential.line,
        credential.col,
        message,
        Kind.INLINE,
        tool=credential.tool,
        arg=credential.arg,
    )


def family(tool: str) -> str:
    """The tool's family as the SDK names its environment variables: agno__github__x -> github."""
    for pattern in (
        r"agno__([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)__",
        r"agno_([A-Za-z0-9]+)_",
        r"([A-Za-z0-9]+)[-_]",
    ):
        match = re.match(pattern, tool)
        if match:
            return match.group(1)
    return tool


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "secret"


def _suggestion(tool: str, arg: str, tools: Catalogue, state: DesiredState) -> str:
    pattern = tools.pattern_for(tool)
    tool_name = pattern if pattern is not None and _IO_FAMILY.fullmatch(pattern) else tool
    base = _slug(f"{family(tool)}-{arg}") if tool_name != tool else _slug(f"{_short_tool(tool)}-{arg}")
    name = _unique(base, {s.secret_name for s in state.secrets}, "-")
    env = _unique(values.suggested_env_name(f"{family(tool)}_{arg}"), _env_names(state.secrets), "_")
    return (
        f"{{secret_name: {_yaml(name)}, secret_value: {_yaml('${' + env + '}')}, "
        f"tool_name: {_yaml(tool_name)}, tool_arg: {_yaml(arg)}, is_default_for_tool: true}}"
    )


def _short_tool(tool: str) -> str:
    return re.sub(r"^agno_+", "", tool)


def _unique(base: str, taken: set[str], joiner: str) -> str:
    candidate = base
    number = 2
    while candidate in taken:
        candidate = f"{base}{joiner}{number}"
        number += 1
    return candidate


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|^from_env: ([A-Za-z_][A-Za-z0-9_]*)$")


def _env_names(secrets: Iterable[DesiredSecret]) -> set[str]:
    names: set[str] = set()
    for secret in secrets:
        for match in _ENV_REFERENCE.finditer(secret.value_ref):
            names.add(match.group(1) or match.group(2))
    return names


def _yaml(value: object) -> str:
    """A scalar as YAML flow text: plain when that reads back the same, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN_WORD.fullmatch(text) and text not in ("null", "true", "false", "~") and not text[0].isdigit():
        return text
    return json.dumps(text, ensure_ascii=False)


def _shown(text: str) -> str:
    return text if text.isprintable() else repr(text)


def _quoted(text: str) -> str:
    return f"'{text}'" if text.isprintable() else repr(text)


# ---------------------------------------------------------------------------------------------
# Extraction: inline credentials out of workflow files, into the desired state as references.


@dataclass(frozen=True)
class FileChange:
    """A file's text before and after. `before` may hold credentials: it is never printed."""

    path: str
    before: str = field(repr=False)
    after: str = field(repr=False)


@dataclass(frozen=True)
class EnvVar:
    """An environment variable the new entries reference, and the secrets and places it stands for."""

    name: str
    secrets: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    """Everything `workflows extract` would do; `apply_extraction` writes it."""

    desired_path: str
    workflows: tuple[FileChange, ...] = ()
    desired_change: FileChange | None = None
    entries: tuple[Mapping[str, object], ...] = ()
    env: tuple[EnvVar, ...] = ()
    moved: tuple[Finding, ...] = ()
    leftovers: tuple[Finding, ...] = ()
    # The changes as a unified diff, every extracted value masked.
    diff: str = ""
    files_read: int = 0


def plan_extraction(workflow_paths: Sequence[Path], into: Path) -> Extraction:
    """Plan moving every inline credential of `workflow_paths` into the desired-state file `into`.

    Reads only. Each credential becomes an entry bound to its exact tool (`is_default_for_tool:
    true`, the value a `${NAME}` reference) and is removed from its workflow. Raises DesiredFileError
    with every located conflict (two values for one tool argument, an existing default) or file
    that cannot be read or edited; then nothing is to be written.
    """
    into = Path(into)
    state = desired.load(into, resolve=False) if into.exists() else DesiredState(path=str(into))
    tools = catalogue(state.tool_credentials)
    problems: list[Problem] = []
    scans: list[WorkflowScan] = []
    seen: set[Path] = set()
    for path in workflow_paths:
        key = Path(path).resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            scans.append(scan(Path(path), tools))
        except DesiredFileError as exc:
            problems.extend(exc.problems)
    credentials = [c for result in scans for c in result.inline]
    entries, env, moved, conflicts = _new_entries(credentials, state)
    problems.extend(conflicts)
    changes: list[FileChange] = []
    for result in scans:
        mine = [c for c in credentials if c.file == result.document.file]
        if not mine:
            continue
        try:
            after = desired.edit_yaml(result.document, _edits(mine))
        except DesiredFileError as exc:
            problems.extend(exc.problems)
            continue
        changes.append(FileChange(result.document.file, result.document.text, after))
    if problems:
        raise DesiredFileError(problems)
    desired_change: FileChange | None = None
    if entries:
        before = into.read_text(encoding="utf-8") if into.exists() else ""
        desired_change = FileChange(str(into), before, desired.append_secrets(into, entries, dry_run=True))
    all_changes = [*changes, *([desired_change] if desired_change else [])]
    return Extraction(
        desired_path=str(into),
        workflows=tuple(changes),
        desired_change=desired_change,
        entries=tuple(entries),
        env=tuple(env),
        moved=tuple(moved),
        leftovers=tuple(_leftovers(credentials, all_changes)),
        diff=_masked_diff(credentials, scans, changes, desired_change),
        files_read=len(scans),
    )


def apply_extraction(extraction: Extraction) -> None:
    """Write the planned files, the desired-state file first: should a later write fail, no value
    is lost, it is still in its workflow."""
    if extraction.desired_change is not None:
        desired.write_atomic(Path(extraction.desired_change.path), extraction.desired_change.after)
    for change in extraction.workflows:
        desired.write_atomic(Path(change.path), change.after)


def _new_entries(
    credentials: Sequence[InlineCredential], state: DesiredState
) -> tuple[list[dict[str, object]], list[EnvVar], list[Finding], list[Problem]]:
    names = {s.secret_name for s in state.secrets}
    env_taken = _env_names(state.secrets)
    defaults = {
        (s.fields.get("tool_name"), s.fields.get("tool_arg")): s
        for s in state.secrets
        if s.fields.get("is_default_for_tool") is True
    }
    groups: dict[tuple[str, str], list[InlineCredential]] = {}
    for credential in credentials:
        groups.setdefault((credential.tool, credential.arg), []).append(credential)
    entries: list[dict[str, object]] = []
    problems: list[Problem] = []
    moved: list[Finding] = []
    # (family, arg, value) -> env var name, so that one value pasted into several tools is one variable.
    env_for: list[tuple[str, str, SecretValue, str]] = []
    env_uses: dict[str, tuple[list[str], list[str]]] = {}
    for (tool, arg), group in groups.items():
        first = group[0]
        existing = defaults.get((tool, arg))
        if existing is not None:
            problems.extend(
                Problem(
                    c.file,
                    c.line,
                    c.col,
                    arg,
                    f"secret {_quoted(existing.secret_name)} ({_line_of(existing)}) is "
                    f"already the default for {_shown(tool)} {_shown(arg)}; remove this inline value by hand",
                )
                for c in group
            )
            continue
        differing = [c for c in group if c.value != first.value]
        if differing:
            problems.extend(
                Problem(
                    c.file,
                    c.line,
                    c.col,
                    arg,
                    f"differs from the value at {first.file}:{first.line} for the same tool and argument; "
                    f"only one secret can be the default for {_shown(tool)} {_shown(arg)}: "
                    "make them agree first",
                )
                for c in differing
            )
            continue
        tool_family = family(tool)
        env = next((e for f, a, v, e in env_for if f == tool_family and a == arg and v == first.value), None)
        if env is None:
            env = _unique(values.suggested_env_name(f"{tool_family}_{arg}"), env_taken, "_")
            env_taken.add(env)
            env_for.append((tool_family, arg, first.value, env))
        name = _unique(_slug(f"{_short_tool(tool)}-{arg}"), names, "-")
        names.add(name)
        entries.append(
            {
                "secret_name": name,
                "secret_value": "${" + env + "}",
                "tool_name": tool,
                "tool_arg": arg,
                "is_default_for_tool": True,
            }
        )
        secrets_of, sources_of = env_uses.setdefault(env, ([], []))
        secrets_of.append(name)
        for c in group:
            sources_of.append(f"{c.file}:{c.line}:{c.col}")
            moved.append(
                Finding(
                    c.file,
                    c.line,
                    c.col,
                    f"moved credential {_shown(arg)} of tool {_shown(tool)} to secret {_quoted(name)} "
                    f"(${{{env}}})",
                    Kind.MOVED,
                    Severity.WARNING,
                    tool=tool,
                    arg=arg,
                )
            )
    env_vars = [EnvVar(name, tuple(s), tuple(src)) for name, (s, src) in env_uses.items()]
    return entries, env_vars, moved, problems


def _edits(credentials: Sequence[InlineCredential]) -> list[YamlEdit]:
    by_holder: dict[int, list[InlineCredential]] = {}
    for credential in credentials:
        by_holder.setdefault(id(credential.holder), []).append(credential)
    edits: list[YamlEdit] = []
    for group in by_holder.values():
        holder = group[0].holder
        args = tuple(dict.fromkeys(c.arg for c in group))
        if holder.kind == "scalar":
            assert isinstance(holder.scalar, str)
            edits.append(ReplaceScalar(holder, _without_keys(holder.scalar, set(args))))
            continue
        pair = group[0].pair
        own_keys = {key.scalar for key, _ in holder.pairs}
        alone = pair is not None and all(c.pair is pair for c in group) and not pair.alias
        if (
            alone
            and pair is not None
            and len(pair.items) == 2
            and pair.items[1] is holder
            and own_keys <= set(args)
        ):
            # Nothing else is passed to the tool: [tool, {}] becomes plain `tool`.
            edits.append(ReplaceWithItem(pair, 0))
        else:
            edits.append(RemoveKeys(holder, args))
    return edits


def _without_keys(text: str, keys: set[str]) -> str:
    """A JSON object's text without `keys`, written the way the original was when that can be told."""
    data = json.loads(text)
    kept = {k: v for k, v in data.items() if k not in keys}
    for separators in ((", ", ": "), (",", ":")):
        for ascii_only in (True, False):
            if json.dumps(data, separators=separators, ensure_ascii=ascii_only) == text:
                return json.dumps(kept, separators=separators, ensure_ascii=ascii_only)
    return json.dumps(kept)


def _leftovers(credentials: Sequence[InlineCredential], changes: Sequence[FileChange]) -> list[Finding]:
    findings: list[Finding] = []
    for credential in credentials:
        value = credential.value.reveal()
        if len(value) < _LEFTOVER_MIN_CHARS:
            continue
        for change in changes:
            at = change.after.find(value)
            while at >= 0:
                line = change.after.count("\n", 0, at) + 1
                col = at - (change.after.rfind("\n", 0, at) + 1) + 1
                findings.append(
                    Finding(
                        change.path,
                        line,
                        col,
                        f"the value of {_shown(credential.arg)} moved out of "
                        f"{credential.file}:{credential.line} is also written here; "
                        "remove it by hand (and rotate it: it is in git history)",
                        Kind.LEFTOVER,
                        tool=credential.tool,
                        arg=credential.arg,
                    )
                )
                at = change.after.find(value, at + len(value))
    return _dedupe(findings)


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _masked_diff(
    credentials: Sequence[InlineCredential],
    scans: Sequence[WorkflowScan],
    changes: Sequence[FileChange],
    desired_change: FileChange | None,
) -> str:
    pieces: list[str] = []
    for change in changes:
        document = next(s.document for s in scans if s.document.file == change.path)
        mine = [c for c in credentials if c.file == change.path]
        before = _mask(document.text, mine)
        pieces.extend(_diff(change.path, before, change.after, context=3))
    if desired_change is not None:
        # No context: the lines around could be literal values of an allow_plaintext file.
        pieces.extend(_diff(desired_change.path, desired_change.before, desired_change.after, context=0))
    text = "".join(pieces)
    for credential in credentials:
        value = credential.value.reveal()
        if len(value) >= _MASK_MIN_CHARS:
            text = text.replace(value, SENSITIVE)
    return text


def _mask(text: str, credentials: Sequence[InlineCredential]) -> str:
    """The text with every credential value's characters replaced, for showing a diff."""
    spans: list[tuple[int, int]] = []
    for credential in credentials:
        value = credential.value.reveal()
        if credential.value_node is not None:
            spans.append((credential.value_node.start, credential.value_node.end))
            continue
        holder = credential.holder
        source = text[holder.start : holder.end]
        for needle in {value, json.dumps(value)[1:-1], json.dumps(value)[1:-1].replace("\\", "\\\\")}:
            at = source.find(needle) if needle else -1
            while at >= 0:
                spans.append((holder.start + at, holder.start + at + len(needle)))
                at = source.find(needle, at + len(needle))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    masked = text
    for start, end in reversed(merged):
        masked = masked[:start] + SENSITIVE + masked[end:]
    return masked


def _diff(path: str, before: str, after: str, *, context: int) -> list[str]:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=context,
    )
    return [line if line.endswith("\n") else line + "\n" for line in lines]
