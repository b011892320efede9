"""The catalogue of credentialed tools, the name rule for credential arguments, and tool families."""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from reconciler import yaml_tree
from reconciler.errors import ReconcilerError

# Generated from the iointel package by tools/tool_catalogue/ (see its README); never edited by hand.
CATALOGUE_FILE = Path(__file__).parent.parent / "data" / "tool-credentials.yaml"

# The name rule: an argument holds a credential when one of its whole segments (split at "_" or
# any other non-alphanumeric character, and at camelCase humps) is one of these, so that
# `sender_passkey` and `client_secret` are credentials while `max_tokens`, `keyword`, `passage`
# and `tokenizer` are not.
_CREDENTIAL_SEGMENTS = frozenset(
    {"pass", "passkey", "password", "passwd", "passphrase", "secret", "token", "credential", "credentials"}
    | {"apikey"}
)
# "key" alone is too common (`sort_key`, `primary_key`): it counts only as the whole name (Google
# Maps' `key`) or after one of these segments.
_KEY_QUALIFIERS = frozenset({"api", "access", "private", "secret", "consumer", "auth", "signing"})
# An argument named like a URL holds a credential only when the URL carries a password.
_URL_SEGMENTS = frozenset({"url", "uri", "dsn"})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# io.net accepts a trailing * in tool_name for these families only.
IO_FAMILY = re.compile(r"agno__[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*__\*")


def _segments(arg: str) -> list[str]:
    return [s for s in _NOT_ALNUM.split(_HUMP.sub("_", arg).lower()) if s]


def is_credential_name(arg: str) -> bool:
    """The name rule: whether an argument's name says it holds a credential, whatever the tool."""
    segments = _segments(arg)
    if segments == ["key"] or any(s in _CREDENTIAL_SEGMENTS for s in segments):
        return True
    return any(a in _KEY_QUALIFIERS and b == "key" for a, b in itertools.pairwise(segments))


def is_url_name(arg: str) -> bool:
    """Whether the argument is a URL (`db_url`): a credential only when the URL carries a password."""
    segments = _segments(arg)
    return bool(segments) and segments[-1] in _URL_SEGMENTS


def carries_password(value: str) -> bool:
    """Whether `value` is a URL with a password in it (postgresql://user:pw@host/db)."""
    if "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return False


@dataclass(frozen=True)
class Family:
    """One catalogue entry: a tool name glob and the arguments that take a credential."""

    pattern: str
    args: tuple[str, ...]
    # Arguments that are credential files, or paths to one (Google's creds, token_path).
    files: tuple[str, ...] = ()
    # The SDK class behind the tools; the SDK reads its fields from <CLASS>_<FIELD> variables.
    sdk_class: str = ""


@dataclass(frozen=True)
class Catalogue:
    """Tool name globs and the arguments that take a credential; the first matching glob decides."""

    families: tuple[Family, ...] = ()

    def family_of(self, tool: str) -> Family | None:
        return next((f for f in self.families if fnmatch.fnmatchcase(tool, f.pattern)), None)

    def args_for(self, tool: str) -> tuple[str, ...] | None:
        """The credential arguments of `tool`: () when it takes none, None when the tool is unknown."""
        found = self.family_of(tool)
        return found.args if found is not None else None

    def pattern_for(self, tool: str) -> str | None:
        found = self.family_of(tool)
        return found.pattern if found is not None else None

    def is_file(self, tool: str, arg: str) -> bool:
        found = self.family_of(tool)
        return found is not None and arg in found.files

    def env_prefix(self, tool: str) -> str:
        """What the SDK prefixes this tool's variables with: its class (Github -> GITHUB_ACCESS_TOKEN)."""
        found = self.family_of(tool)
        return found.sdk_class if found is not None and found.sdk_class else family(tool)


def catalogue(extra: Sequence[tuple[str, Sequence[str]]] = ()) -> Catalogue:
    """The built-in catalogue with `extra` entries (a desired state's tool_credentials) consulted first."""
    return Catalogue((*(Family(pattern, tuple(args)) for pattern, args in extra), *_builtin_families()))


@cache
def _builtin_families() -> tuple[Family, ...]:
    document = yaml_tree.read_yaml(CATALOGUE_FILE)
    families = document.root.get("families") if document.root and document.root.kind == "map" else None
    if families is None or families.kind != "seq":
        raise ReconcilerError(f"{CATALOGUE_FILE} has no 'families' list; reinstall reconciler")
    result: list[Family] = []
    for item in families.items:
        data = item.to_python() if item.kind == "map" else None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("pattern"), str)
            or not all(isinstance(data.get(key, []), list) for key in ("args", "files"))
        ):
            raise ReconcilerError(
                f"{CATALOGUE_FILE}:{item.line}: expected {{pattern, args}}; reinstall reconciler"
            )
        result.append(
            Family(
                data["pattern"],
                tuple(str(arg) for arg in data.get("args", [])),
                tuple(str(arg) for arg in data.get("files", [])),
                str(data.get("class") or ""),
            )
        )
    return tuple(result)


def binds(tool_name: str, tool: str) -> bool:
    """Whether a secret's tool_name applies to `tool`: equal, or a trailing-* wildcard covering it."""
    if tool_name.endswith("*"):
        return tool.startswith(tool_name[:-1])
    return tool_name == tool


def is_credential_arg(arg: str, known: tuple[str, ...] | None) -> bool:
    return (known is not None and arg in known) or is_credential_name(arg)


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


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "secret"


def short_tool(tool: str) -> str:
    return re.sub(r"^agno_+", "", tool)
