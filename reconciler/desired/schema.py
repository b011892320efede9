"""The desired-state file's JSON Schema: a fast hand mirror of it, the validator fallback, its messages.

A hand-written check mirrors the schema exactly (tests prove that on random documents) so that valid
files never pay for jsonschema; only what fails it is run through the validator, and the validator's
findings are turned into our own messages (its text quotes values).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.desired.located import (
    Issues,
    Map,
    key_position,
    kind_of,
    node_at,
    path_text,
    position_at,
    short,
)
from reconciler.desired_policy import MAX_AGE_HINT, schema_accepts
from reconciler.models import BOOLEAN_FIELDS, OPTIONAL_FIELDS
from reconciler.yaml_tree import PathKey

if TYPE_CHECKING:
    import jsonschema

SCHEMA_FILE = Path(__file__).parent.parent / "data" / "desired-state.schema.json"
FORMAT_VERSION = 1
MAX_NAME_CHARS = 1024

_ABSENT = object()


@cache
def json_schema() -> Mapping[str, Any]:
    """The JSON Schema of format v1 (the file editors use too)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def is_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_NAME_CHARS


def _is_bool(value: object) -> bool:
    return value is True or value is False


def _secret_value_ok(value: object) -> bool:
    if isinstance(value, str):
        return True
    if not isinstance(value, dict) or len(value) != 1:
        return False
    target = value.get("from_env", _ABSENT)
    if target is not _ABSENT:
        # The schema's pattern is matched with re.search, as jsonschema does.
        return isinstance(target, str) and _ENV_PATTERN.search(target) is not None
    target = value.get("from_file", _ABSENT)
    return isinstance(target, str) and len(target) >= 1


def _names_ok(value: object) -> bool:
    return isinstance(value, list) and all(is_name(v) for v in value) and len(set(value)) == len(value)


def _null_or_name(value: object) -> bool:
    return value is None or is_name(value)


def _null_or_bool(value: object) -> bool:
    return value is None or _is_bool(value)


_ENTRY_RULES: dict[str, Callable[[object], bool]] = {
    "secret_name": is_name,
    "secret_value": _secret_value_ok,
    # The fields of a secret an entry may state: null ("must be empty") or a value of their type.
    **{name: _null_or_bool if name in BOOLEAN_FIELDS else _null_or_name for name in OPTIONAL_FIELDS},
    "previous_names": _names_ok,
    "protect": _is_bool,
    "secret_id": lambda v: isinstance(v, str) and UUID_PATTERN.search(v) is not None,
    "max_age": schema_accepts,
}


def _entry_conforms(entry: object) -> bool:
    if not isinstance(entry, dict) or "secret_name" not in entry or "secret_value" not in entry:
        return False
    rules = _ENTRY_RULES
    for key, item in entry.items():
        rule = rules.get(key)
        if rule is None or not rule(item):
            return False
    return True


def _prune_ok(value: object) -> bool:
    if _is_bool(value):
        return True
    if not isinstance(value, dict) or list(value) != ["match"]:
        return False
    match = value["match"]
    return isinstance(match, list) and len(match) >= 1 and all(is_name(m) for m in match)


def _tool_credential_ok(value: object) -> bool:
    if not isinstance(value, dict) or set(value) != {"pattern", "args"}:
        return False
    args = value["args"]
    return is_name(value["pattern"]) and isinstance(args, list) and all(is_name(a) for a in args)


_TOP_RULES: dict[str, Callable[[object], bool]] = {
    "version": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v == FORMAT_VERSION,
    "allow_plaintext": _is_bool,
    "prune": _prune_ok,
    "workflows": lambda v: isinstance(v, list) and all(isinstance(w, str) and len(w) >= 1 for w in v),
    "tool_credentials": lambda v: isinstance(v, list) and all(_tool_credential_ok(e) for e in v),
    "max_age": schema_accepts,
    "secrets": lambda v: v is None or isinstance(v, list),
}


def _top_conforms(root: Mapping[str, object]) -> bool:
    """The top level without looking into `secrets` entries."""
    if "version" not in root:
        return False
    for key, item in root.items():
        rule = _TOP_RULES.get(key)
        if rule is None or not rule(item):
            return False
    return True


def conforms(document: object) -> bool:
    """True when `document` (plain data) satisfies the schema; the fast equivalent of jsonschema."""
    if not isinstance(document, dict) or not _top_conforms(document):
        return False
    secrets = document.get("secrets")
    return secrets is None or all(_entry_conforms(e) for e in secrets)


def _defs() -> dict[str, Any]:
    return {"$schema": json_schema()["$schema"], "$defs": json_schema()["$defs"]}


@cache
def _validators() -> tuple[jsonschema.Draft202012Validator, jsonschema.Draft202012Validator]:
    # Only a file that fails the fast check pays for importing jsonschema (a tenth of a second).
    import jsonschema

    top = jsonschema.Draft202012Validator(dict(json_schema()))
    entry = jsonschema.Draft202012Validator({**_defs(), "$ref": "#/$defs/secret"})
    return top, entry


def _schema_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    entry = json_schema()["$defs"]["secret"]["properties"]
    env = entry["secret_value"]["anyOf"][1]["properties"]["from_env"]["pattern"]
    return re.compile(env), re.compile(entry["secret_id"]["pattern"])


_PATTERNS = _schema_patterns()
_ENV_PATTERN: re.Pattern[str] = _PATTERNS[0]
UUID_PATTERN: re.Pattern[str] = _PATTERNS[1]


def validate(root: Map, issues: Issues) -> None:
    if conforms(root):
        return
    secrets = root.get("secrets")
    if not _top_conforms(root):
        # Entries are checked one by one below; the top level is checked without them.
        shallow = {**root, "secrets": []} if isinstance(secrets, list) else dict(root)
        for error in _validators()[0].iter_errors(shallow):
            _report_schema_error(error, (), root, issues)
    if isinstance(secrets, list):
        for index, entry in enumerate(secrets):
            if not _entry_conforms(entry):
                for error in _validators()[1].iter_errors(entry):
                    _report_schema_error(error, ("secrets", index), root, issues)


_TYPE_WORDS = {
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
    "integer": "a whole number",
    "number": "a number",
}
_REQUIRED_HINTS = {
    "version": "start the file with 'version: 1'",
    "secret_name": "every secret needs a name",
    "secret_value": "every secret needs a value reference such as ${NAME}",
    "match": "write prune: {match: [GLOB, ...]}",
    "pattern": "write {pattern: GLOB, args: [ARG, ...]}",
    "args": "write {pattern: GLOB, args: [ARG, ...]}; [] means the tools need no credential",
}
_TYPE_HINTS = {
    "tool_name": "one tool name; a trailing * such as agno__github__* covers a family",
    "prune": "true, false or {match: [GLOB, ...]}",
}


def _report_schema_error(
    error: jsonschema.ValidationError, prefix: tuple[PathKey, ...], root: Map, issues: Issues
) -> None:
    path = (*prefix, *error.absolute_path)
    if len(path) >= 3 and path[0] == "secrets" and path[2] == "secret_value":
        # Never a jsonschema message under secret_value: it would quote the value. values.check
        # reports what is wrong there in its own words.
        return
    if issues.is_silenced(path):
        return
    instance = error.instance
    validator = error.validator
    if validator == "additionalProperties" and isinstance(instance, dict):
        rule = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(rule.get("properties", {}))
        node = node_at(root, path)
        for key in instance:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(allowed)}"
            line, col = key_position(node, key)
            issues.add(line, col, path_text([*path, key]), f"unknown key; {hint}")
        return
    if validator == "required" and isinstance(instance, dict):
        line, col = position_at(root, path)
        for key in _as_list(error.validator_value):
            if key not in instance:
                hint = _REQUIRED_HINTS.get(key, "it is required")
                issues.add(line, col, path_text([*path, key]), f"missing; {hint}")
        return
    if validator == "anyOf":
        _report_any_of(error, prefix, root, issues)
        return
    line, col = position_at(root, path)
    issues.add(line, col, path_text(path), _schema_message(error, path))


def _report_any_of(
    error: jsonschema.ValidationError, prefix: tuple[PathKey, ...], root: Map, issues: Issues
) -> None:
    """An anyOf (prune): report the branch of the value's own type in detail, else what is expected."""
    path = (*prefix, *error.absolute_path)
    instance = error.instance
    branches = [b for b in _as_list(error.validator_value) if isinstance(b, Mapping)]
    matching = [i for i, branch in enumerate(branches) if _json_type_matches(branch.get("type"), instance)]
    if len(matching) == 1:
        for sub in error.context or ():
            if sub.relative_schema_path and sub.relative_schema_path[0] == matching[0]:
                _report_schema_error(sub, prefix, root, issues)
        return
    line, col = position_at(root, path)
    expected = _TYPE_HINTS.get(str(path[-1]) if path else "", "a different kind of value")
    issues.add(line, col, path_text(path), f"must be {expected}, not {kind_of(instance)}")


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _json_type_matches(expected: object, instance: object) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    return any(_json_type(instance) == name for name in names)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _schema_message(error: jsonschema.ValidationError, path: tuple[PathKey, ...]) -> str:
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    explain = _MESSAGES.get(str(error.validator))
    if explain is None:
        return f"breaks the schema's '{error.validator}' rule"
    return explain(error.validator_value, error.instance, field, path)


def _type_message(value: object, instance: object, field: str, path: tuple[PathKey, ...]) -> str:
    names = value if isinstance(value, list) else [value]
    words: list[str] = []
    for name in names:
        words.extend(["true", "false"] if name == "boolean" else [_TYPE_WORDS.get(str(name), str(name))])
    hint = _TYPE_HINTS.get(field) if isinstance(path[-1], str) else None
    message = f"must be {_either(words)}{f' ({hint})' if hint else ''}, not {kind_of(instance)}"
    if "string" in names and isinstance(instance, bool | int | float):
        message += "; quote it if it is meant as text"
    if "boolean" in names and isinstance(instance, str) and instance.lower() in _YAML11_BOOLEANS:
        message += " (YAML 1.2 reads yes/no/on/off as text)"
    return message


def _const_message(value: object, instance: object, field: str, _path: tuple[PathKey, ...]) -> str:
    if field != "version":
        return f"must be {short(value)}"
    if isinstance(instance, int | float) and not isinstance(instance, bool):
        return f"version {short(instance)} is not supported; this reconciler reads version {FORMAT_VERSION}"
    return f"must be the number {FORMAT_VERSION}, not {kind_of(instance)}"


def _min_length_message(value: object, instance: object, _field: str, _path: tuple[PathKey, ...]) -> str:
    if isinstance(instance, str) and not instance:
        return "is empty"
    return f"must be at least {value} characters long"


def _max_length_message(value: object, instance: object, _field: str, _path: tuple[PathKey, ...]) -> str:
    length = len(instance) if isinstance(instance, str) else 0
    return f"is {length} characters long; the API accepts at most {value}"


def _min_items_message(value: object, _instance: object, _field: str, _path: tuple[PathKey, ...]) -> str:
    return f"must list at least {value} item{'s' if value != 1 else ''}"


def _unique_message(_value: object, instance: object, _field: str, _path: tuple[PathKey, ...]) -> str:
    seen: set[str] = set()
    for item in instance if isinstance(instance, list) else ():
        if isinstance(item, str):
            if item in seen:
                return f"lists {short(item)} more than once"
            seen.add(item)
    return "lists an item more than once"


def _pattern_message(_value: object, instance: object, field: str, _path: tuple[PathKey, ...]) -> str:
    if field == "secret_id":
        return "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c"
    if field == "max_age":
        return f"must be {MAX_AGE_HINT}, not {short(instance)}"
    return "does not have the expected form"


_MESSAGES: dict[str, Callable[[object, object, str, tuple[PathKey, ...]], str]] = {
    "type": _type_message,
    "const": _const_message,
    "minLength": _min_length_message,
    "maxLength": _max_length_message,
    "minItems": _min_items_message,
    "uniqueItems": _unique_message,
    "pattern": _pattern_message,
}


_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


def _either(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b or c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def future_version(root: Map) -> bool:
    version = root.get("version")
    return isinstance(version, int | float) and not isinstance(version, bool) and version != FORMAT_VERSION
