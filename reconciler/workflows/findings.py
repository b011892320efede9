"""Findings about workflow files and the report `workflows check` returns; the wording helpers they share."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Kind(StrEnum):
    UNCOVERED = "uncovered"
    UNUSED = "unused"
    INLINE = "inline"
    # Two default secrets filling the same argument of one tool.
    CONFLICT = "conflict"
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


def order(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.file, f.line, f.col, f.message)))


@dataclass(frozen=True)
class WorkflowReport:
    """What `check` found: tools no secret covers, secrets no workflow uses, credentials written inline."""

    uncovered: tuple[Finding, ...] = ()
    unused: tuple[Finding, ...] = ()
    inline: tuple[Finding, ...] = ()
    conflicts: tuple[Finding, ...] = ()
    # Workflow files that cannot be read (errors) and globs that match no file (warnings).
    problems: tuple[Finding, ...] = ()
    files: tuple[str, ...] = ()
    tool_uses: int = 0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return order((*self.problems, *self.uncovered, *self.inline, *self.unused, *self.conflicts))

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)


def format_findings(report: WorkflowReport) -> list[str]:
    """One line per finding, `FILE:LINE:COL: severity: message`, in file order."""
    return [str(finding) for finding in report.findings]


def flow_scalar(value: object) -> str:
    """A scalar as YAML flow text: plain when that reads back the same, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN_WORD.fullmatch(text) and text not in ("null", "true", "false", "~") and not text[0].isdigit():
        return text
    return json.dumps(text, ensure_ascii=False)
