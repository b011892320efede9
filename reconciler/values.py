"""Value references of the desired-state file (${VAR}, from_env, from_file) and their resolution."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from reconciler.errors import LiteralValueError, ValueRefError
from reconciler.fsutil import NotRegularFile, read_regular
from reconciler.models import SecretValue
from reconciler.text import plural, shown

# The API's limits on a secret value, in characters.
MIN_VALUE_CHARS = 4
MAX_VALUE_CHARS = 1024
# A value of at most MAX_VALUE_CHARS characters is at most 4 bytes each in UTF-8, plus "\r\n".
_MAX_FILE_BYTES = MAX_VALUE_CHARS * 4 + 2

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Scanned left to right: "$${" is an escaped literal "${", "${NAME}" a reference, any other "${" an error.
# (As with Terraform's rule, a literal "$" directly before a reference cannot be written.)
_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")
# The common shape of a whole value, `${NAME}` alone: read without the general scan.
_ONE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FORMS = "${NAME} in a string, {from_env: NAME} or {from_file: PATH}"
_MAPPING_KEYS = ("from_env", "from_file")
# Shown in place of the literal text around references: that text is part of the value.
_ELIDED = "…"


@dataclass(frozen=True)
class EnvVar:
    """One ${NAME} inside a template string."""

    name: str


@dataclass(frozen=True)
class Template:
    """A string value: literal text (kept out of repr, it is part of the value) and ${NAME} references."""

    parts: tuple[str | EnvVar, ...] = field(repr=False)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, EnvVar))

    @cached_property
    def is_literal(self) -> bool:
        # Cached: a file is checked, resolved and described entry by entry, each asking again.
        return not any(isinstance(p, EnvVar) for p in self.parts)


@dataclass(frozen=True)
class FromEnv:
    """{from_env: NAME}: the whole value is one environment variable."""

    name: str


@dataclass(frozen=True)
class FromFile:
    """{from_file: PATH}: the value is a file's text, PATH relative to the desired-state file."""

    path: str


Reference = Template | FromEnv | FromFile


def parse(ref: object) -> Reference:
    """Parse a `secret_value` as written in the file (or return one parsed already); raises
    ValueRefError when it is malformed."""
    if isinstance(ref, Template | FromEnv | FromFile):
        return ref
    if isinstance(ref, str):
        return _parse_template(ref)
    if isinstance(ref, Mapping):
        return _parse_mapping(ref)
    raise ValueRefError(f"must be a string with {_FORMS}, not {_kind(ref)}")


def check(ref: object, *, allow_plaintext: bool) -> Reference:
    """Parse `ref` and refuse a literal value unless plaintext is allowed; resolves nothing."""
    reference = parse(ref)
    if isinstance(reference, Template) and reference.is_literal and not allow_plaintext:
        raise LiteralValueError(
            "is a literal value and secrets must not be committed: reference it instead with "
            f"{_FORMS} (or set allow_plaintext: true at the top of the file, for demos and tests only)"
        )
    return reference


def resolve(ref: object, *, base_dir: Path, environ: Mapping[str, str], allow_plaintext: bool) -> SecretValue:
    """Resolve a `secret_value` into a SecretValue of 4..1024 characters, or raise ValueRefError."""
    reference = check(ref, allow_plaintext=allow_plaintext)
    if isinstance(reference, Template):
        text = _resolve_template(reference, environ)
    elif isinstance(reference, FromEnv):
        found = environ.get(reference.name)
        if found is None:
            raise ValueRefError(f"environment variable {reference.name} is not set; export it first")
        text = found
    else:
        text = _read_file(reference.path, base_dir)
    _check_length(reference, len(text))
    try:
        if not text.isascii():
            text.encode("utf-8")
    except UnicodeEncodeError:
        # Python carries undecodable environment bytes as lone surrogates; no API can store those.
        raise ValueRefError(
            "the value is not valid UTF-8 text (its source holds bytes that are not UTF-8); fix it"
        ) from None
    return SecretValue(text)


def describe(ref: object) -> str:
    """A printable description of where a value comes from, e.g. "${GITHUB_TOKEN}"; never the value."""
    try:
        reference = parse(ref)
    except ValueRefError:
        return "(invalid reference)"
    if isinstance(reference, FromEnv):
        return f"from_env: {reference.name}"
    if isinstance(reference, FromFile):
        return f"from_file: {shown(reference.path)}"
    if reference.is_literal:
        return "(literal)"
    described: list[str] = []
    for part in reference.parts:
        if isinstance(part, EnvVar):
            described.append(f"${{{part.name}}}")
        elif not described or described[-1] != _ELIDED:
            described.append(_ELIDED)
    return "".join(described)


def suggested_env_name(secret_name: str) -> str:
    """An environment variable name derived from a secret's name: "github-token" -> "GITHUB_TOKEN"."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", secret_name).strip("_").upper()
    if not name:
        return "SECRET_VALUE"
    return name if ENV_NAME.fullmatch(name) else f"_{name}"


def _parse_template(text: str) -> Template:
    if "$" not in text:
        return Template((text,) if text else ())
    whole = _ONE_REFERENCE.fullmatch(text)
    if whole is not None:
        return Template((EnvVar(whole.group(1)),))
    parts: list[str | EnvVar] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        if match.group(0) == "$${":
            literal.append("${")
        elif match.group(1) is not None:
            _flush(literal, parts)
            parts.append(EnvVar(match.group(1)))
        else:
            # The offset is safe to show, the surrounding text is not: it may be part of a literal value.
            raise ValueRefError(
                f"has a '${{' at character {match.start() + 1} that does not start a reference "
                "like ${NAME} (letters, digits, _); write '$${' for a literal '${'"
            )
    literal.append(text[pos:])
    _flush(literal, parts)
    return Template(tuple(parts))


def _flush(literal: list[str], parts: list[str | EnvVar]) -> None:
    joined = "".join(literal)
    literal.clear()
    if joined:
        parts.append(joined)


def _parse_mapping(ref: Mapping[object, object]) -> FromEnv | FromFile:
    keys = list(ref)
    unknown = [k for k in keys if k not in _MAPPING_KEYS]
    if unknown:
        # Unknown keys are not echoed (they sit under secret_value); only a known name is suggested.
        hint = ""
        first = unknown[0]
        if isinstance(first, str):
            close = difflib.get_close_matches(first, _MAPPING_KEYS, n=1)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        raise ValueRefError(
            f"has an unknown key{hint}; a mapping value must be {{from_env: NAME}} or {{from_file: PATH}}"
        )
    if len(keys) != 1:
        raise ValueRefError("must have exactly one of from_env or from_file")
    key = keys[0]
    target = ref[key]
    if key == "from_env":
        if not isinstance(target, str) or not ENV_NAME.fullmatch(target):
            raise ValueRefError("from_env must be an environment variable name (letters, digits, _)")
        return FromEnv(target)
    if not isinstance(target, str) or not target:
        raise ValueRefError("from_file must be a non-empty path")
    return FromFile(target)


def _resolve_template(template: Template, environ: Mapping[str, str]) -> str:
    try:
        return "".join(environ[p.name] if isinstance(p, EnvVar) else p for p in template.parts)
    except KeyError:
        pass
    missing = sorted({name for name in template.variables if name not in environ})
    if missing:
        listed = ", ".join(missing)
        if len(missing) == 1:
            raise ValueRefError(f"environment variable {listed} is not set; export it first")
        raise ValueRefError(f"environment variables {listed} are not set; export them first")
    return "".join(environ[p.name] if isinstance(p, EnvVar) else p for p in template.parts)


def _read_file(path_text: str, base_dir: Path) -> str:
    path = Path(path_text).expanduser()
    full = path if path.is_absolute() else base_dir / path
    written, where = shown(path_text), shown(str(full))
    try:
        # Capped, and never a FIFO or a device: `/dev/stdin` or a pipe would wait forever.
        data = read_regular(full, _MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ValueRefError(f"file {written} not found (looked for {where})") from None
    except IsADirectoryError:
        raise ValueRefError(f"file {written} is a directory ({where}); from_file needs a file") from None
    except PermissionError:
        raise ValueRefError(f"file {written} cannot be read: permission denied ({where})") from None
    except NotRegularFile:
        raise ValueRefError(
            f"file {written} is not a regular file (a FIFO, a device or a socket: {where}); "
            "from_file reads a file's text"
        ) from None
    except OSError as exc:
        raise ValueRefError(
            f"file {written} cannot be read: {exc.strerror or type(exc).__name__} ({where})"
        ) from None
    except ValueError:
        # open() refuses a path with a NUL character before the system sees it.
        raise ValueRefError(f"file {written} is not a valid path") from None
    if len(data) > _MAX_FILE_BYTES:
        raise ValueRefError(
            f"file {written} is larger than the API's limit of {MAX_VALUE_CHARS} characters ({where})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueRefError(f"file {written} is not UTF-8 text ({where})") from None
    # Exactly one trailing line ending: files written by editors and `echo` end with one.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _check_length(reference: Reference, length: int) -> None:
    if MIN_VALUE_CHARS <= length <= MAX_VALUE_CHARS:
        return
    source = ""
    if isinstance(reference, FromEnv):
        source = f" (from environment variable {reference.name})"
    elif isinstance(reference, FromFile):
        source = f" (from file {shown(reference.path)})"
    elif reference.variables:
        source = f" (from {', '.join(dict.fromkeys(reference.variables))})"
    if length == 0:
        raise ValueRefError(
            f"resolves to an empty value{source}; "
            f"the API needs {MIN_VALUE_CHARS} to {MAX_VALUE_CHARS} characters"
        )
    raise ValueRefError(
        f"resolves to a value {plural(length, 'character')} long{source}; "
        f"the API accepts {MIN_VALUE_CHARS} to {MAX_VALUE_CHARS} characters"
    )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
