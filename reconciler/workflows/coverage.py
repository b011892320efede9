"""`workflows check`: coverage of a desired state's workflows, unused secrets and inline credentials."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from reconciler import desired, values
from reconciler.errors import DesiredFileError
from reconciler.models import DesiredSecret, DesiredState, Location
from reconciler.text import quoted, shown, unique
from reconciler.workflows.catalogue import IO_FAMILY, Catalogue, binds, catalogue, family, short_tool, slug
from reconciler.workflows.files import Walk, repository_root
from reconciler.workflows.findings import (
    Finding,
    Kind,
    Severity,
    WorkflowReport,
    flow_scalar,
    order,
)
from reconciler.workflows.scan import How, InlineCredential, ToolUse, WorkflowScan, scan

MAX_VALUE_CHARS = values.MAX_VALUE_CHARS
# Where the SDK reads an agent's model key from when the workflow leaves it out (get_api_key()).
AGENT_KEY_ENV = "IO_API_KEY (or OPENAI_API_KEY)"

# Coverage of a desired state's workflows.


def check(state: DesiredState, *, unused_as_errors: bool = False) -> WorkflowReport:
    """Check the workflows the desired state lists (`workflows:` globs, relative to its file).

    Errors: tools that need a credential no secret covers, credentials written into a workflow, and
    workflow files that cannot be read. Warnings: secrets no workflow uses (errors with
    `unused_as_errors`), two default secrets for one tool and argument, globs that match no file,
    and workflow files (or parts of them) that are not understood.
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
        uncovered=order(_uncovered(uses, state, tools)),
        unused=order(_unused(uses, state, tools, severity)),
        inline=order(inline),
        conflicts=order(_two_defaults(uses, state)),
        problems=order(problems),
        files=tuple(str(path) for path in paths),
        tool_uses=len(uses),
    )


def _expand(state: DesiredState) -> tuple[list[Path], list[Finding]]:
    """The files the globs name, each once; a glob that matches nothing is a warning, one that leaves
    the repository or walks too far an error."""
    base = Path(state.path).parent
    walk = Walk(base, repository_root(base))
    paths: list[Path] = []
    seen: set[Path] = set()
    problems: list[Finding] = []

    def problem(index: int, message: str, severity: Severity) -> None:
        where = desired.locate(Path(state.path), ("workflows", index)) or Location(state.path, 1, 1)
        problems.append(Finding(where.file, where.line, where.col, message, Kind.PROBLEM, severity))

    for index, pattern in enumerate(state.workflows):
        matched = walk.match(pattern)
        if matched.refused:
            problem(index, f"workflows glob {shown(pattern)} {matched.refused}", Severity.ERROR)
            continue
        for reason in matched.skipped:
            problem(index, f"workflows glob {shown(pattern)}: {reason}", Severity.ERROR)
        if not matched.files and not matched.skipped:
            message = f"workflows glob {shown(pattern)} matches no file (relative to {base}/)"
            problem(index, message, Severity.WARNING)
        for path in matched.files:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, problems


def _tool_name(secret: DesiredSecret) -> str | None:
    value = secret.fields.get("tool_name")
    return value if isinstance(value, str) else None


def line_of(secret: DesiredSecret) -> str:
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
        wanted = " or ".join(map(shown, args))
        message = (
            f"tool {shown(use.tool)} (agent {quoted(use.agent)}) needs a credential in {wanted} "
            f"and no secret covers it: {_near_miss(use, args, bound)}"
        )
        secret_arg = next((a for a in args if not tools.is_file(use.tool, a)), None)
        if secret_arg is None:
            # A credential file can be larger than any secret: propose none rather than one that fails.
            message += (
                f"; the credential is a file: pass its path in the workflow, or bind a secret holding it "
                f"if it is at most {MAX_VALUE_CHARS:,} characters (a larger file cannot be an io.net secret)"
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
                suggestion=_suggestion(use.tool, secret_arg, tools, state) if secret_arg else "",
            )
        )
    return findings


def _covered(use: ToolUse, args: tuple[str, ...], bound: Sequence[DesiredSecret]) -> bool:
    # Several arguments of one tool are alternatives (a token or a password): one covered is enough.
    for arg in args:
        how = use.passes(arg)
        if how is How.LITERAL or how is How.OUTSIDE:
            # Written inline: reported as such instead. Outside: the workflow passes it itself (a
            # credential file's path, a database URL without a password), no secret is needed.
            return True
        for secret in bound:
            if secret.fields.get("tool_arg") != arg:
                continue
            if secret.fields.get("is_default_for_tool") is True or how is How.REFERENCE:
                return True
    return False


def _near_miss(use: ToolUse, args: tuple[str, ...], bound: Sequence[DesiredSecret]) -> str:
    for secret in bound:
        arg = secret.fields.get("tool_arg")
        if arg in args:
            if "is_default_for_tool" in secret.fields:
                default = f"has is_default_for_tool: {flow_scalar(secret.fields['is_default_for_tool'])}"
            else:
                default = "does not set is_default_for_tool"
            owner, arg_text = f"secret {quoted(secret.secret_name)} ({line_of(secret)})", shown(str(arg))
            return (
                f"{owner} binds it with tool_arg {arg_text} but {default}; "
                f"set is_default_for_tool: true, or pass {arg_text} in the workflow"
            )
    for secret in bound:
        if "tool_arg" not in secret.fields:
            owner = f"secret {quoted(secret.secret_name)} ({line_of(secret)})"
            return f"{owner} binds it but does not state tool_arg"
        arg = secret.fields["tool_arg"]
        return (
            f"secret {quoted(secret.secret_name)} ({line_of(secret)}) binds it with tool_arg "
            f"{flow_scalar(arg)}, which this tool does not take"
        )
    passed = [arg for arg in args if use.passes(arg) is How.REFERENCE]
    if passed:
        arg_text = shown(passed[0])
        return f"it passes {arg_text} by reference, but no secret binds this tool with tool_arg {arg_text}"
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
            owner = f"secret {quoted(secret.secret_name)}"
            message = f"{owner} is bound to {shown(tool_name)}, which no workflow uses"
        elif isinstance(arg, str) and not any(_takes(use, arg, tools) for use in matching):
            taken = sorted({a for use in matching for a in tools.args_for(use.tool) or ()})
            they_take = f" (they take {', '.join(map(shown, taken))})" if taken else ""
            message = (
                f"secret {quoted(secret.secret_name)} fills tool_arg {shown(arg)}, which no workflow "
                f"tool matching {shown(tool_name)} takes{they_take}"
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
    extract = f"`reconciler workflows extract {credential.file} --into {desired_path}`"
    if credential.form == "agent":
        message = (
            f"the model API key of agent {quoted(credential.agent)} (api_key) is written into the "
            f"workflow; leave it out and the SDK reads it from {AGENT_KEY_ENV}: remove it with {extract}"
        )
    else:
        where = " in its serialized state (fn_self)" if credential.form == "fn_self" else ""
        message = (
            f"credential {shown(credential.arg)} of tool {shown(credential.tool)} "
            f"(agent {quoted(credential.agent)}) is written into the workflow{where}; "
        )
        if too_long(credential):
            message += (
                f"it is over {MAX_VALUE_CHARS:,} characters, more than an io.net secret holds, so it "
                "cannot become one: keep the file outside the workflow and pass its path"
            )
        else:
            message += f"move it out with {extract}"
    return Finding(
        credential.file,
        credential.line,
        credential.col,
        message,
        Kind.INLINE,
        tool=credential.tool,
        arg=credential.arg,
    )


def too_long(credential: InlineCredential) -> bool:
    """Whether the value is longer than an io.net secret can be (a credential file, typically)."""
    return len(credential.value.reveal()) > MAX_VALUE_CHARS


def _two_defaults(uses: Sequence[ToolUse], state: DesiredState) -> list[Finding]:
    """A warning for each set of default secrets that fill the same argument of a tool in use."""
    defaults = [
        s
        for s in state.secrets
        if s.fields.get("is_default_for_tool") is True
        and _tool_name(s) is not None
        and isinstance(s.fields.get("tool_arg"), str)
    ]
    findings: list[Finding] = []
    seen: set[tuple[str, ...]] = set()
    for use in uses:
        by_arg: dict[str, list[DesiredSecret]] = {}
        for secret in defaults:
            if binds(str(_tool_name(secret)), use.tool):
                by_arg.setdefault(str(secret.fields["tool_arg"]), []).append(secret)
        for arg, group in by_arg.items():
            key = (arg, *(s.secret_name for s in group))
            if len(group) < 2 or key in seen:
                continue
            seen.add(key)
            names = ", ".join(f"{quoted(s.secret_name)} ({line_of(s)})" for s in group)
            where = group[-1].location or Location(state.path, 1, 1)
            message = (
                f"secrets {names} are each the default for {shown(arg)} of tool {shown(use.tool)} "
                f"({use.file}:{use.line}); io.net fills it from only one of them: keep one default, "
                "or narrow a tool_name"
            )
            findings.append(
                Finding(
                    where.file,
                    where.line,
                    where.col,
                    message,
                    Kind.CONFLICT,
                    Severity.WARNING,
                    tool=use.tool,
                    arg=arg,
                )
            )
    return findings


def _suggestion(tool: str, arg: str, tools: Catalogue, state: DesiredState) -> str:
    pattern = tools.pattern_for(tool)
    tool_name = pattern if pattern is not None and IO_FAMILY.fullmatch(pattern) else tool
    base = slug(f"{family(tool)}-{arg}") if tool_name != tool else slug(f"{short_tool(tool)}-{arg}")
    name = unique(base, {s.secret_name for s in state.secrets}, "-")
    env = unique(values.suggested_env_name(f"{tools.env_prefix(tool)}_{arg}"), env_names(state.secrets), "_")
    return (
        f"{{secret_name: {flow_scalar(name)}, secret_value: {flow_scalar('${' + env + '}')}, "
        f"tool_name: {flow_scalar(tool_name)}, tool_arg: {flow_scalar(arg)}, is_default_for_tool: true}}"
    )


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|^from_env: ([A-Za-z_][A-Za-z0-9_]*)$")


def env_names(secrets: Iterable[DesiredSecret]) -> set[str]:
    names: set[str] = set()
    for secret in secrets:
        for match in _ENV_REFERENCE.finditer(secret.value_ref):
            names.add(match.group(1) or match.group(2))
    return names
