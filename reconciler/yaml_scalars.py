"""What a YAML scalar's text stands for (the YAML 1.2 core schema), and the tags strict readers accept."""

from __future__ import annotations

import re
from collections.abc import Callable

YAML_TAG = "tag:yaml.org,2002:"

Scalar = str | int | float | bool | None

_PLAIN_CONSTANTS: dict[str, Scalar] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
# YAML 1.2 core schema numbers; anything else plain is a string (so `yes`, `on`, dates stay text).
_INT_DEC = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_NUMBER_START = frozenset("+-.0123456789")


def untagged_scalar(text: str, style: str | None) -> Scalar:
    """An untagged scalar's value: its text as written when quoted or a block, else read as plain."""
    return text if style else plain_scalar(text)


def is_merge(text: str, style: str | None) -> bool:
    """Whether an untagged mapping key, as written, is the merge key: `<<` written plain."""
    return not style and text == "<<"


def plain_scalar(text: str) -> Scalar:
    """A plain (unquoted, untagged) scalar's value under the YAML 1.2 core schema."""
    if text in _PLAIN_CONSTANTS:
        return _PLAIN_CONSTANTS[text]
    if text[0] not in _NUMBER_START:
        return text
    try:
        if _INT_DEC.fullmatch(text):
            return int(text, 10)
        if _INT_OCT.fullmatch(text):
            return int(text[2:], 8)
        if _INT_HEX.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:
        # More digits than Python converts (sys.get_int_max_str_digits): no field takes such a
        # number, and as text the length rules report it.
        return text
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text[0] == "-" else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


def tagged_scalar(tag: str, text: str) -> tuple[Scalar, str | None]:
    """A scalar with an explicit tag: its value, or an error message."""
    if tag == "!" or tag == YAML_TAG + "str":
        return text, None
    plain = plain_scalar(text)
    expected: dict[str, Callable[[object], bool]] = {
        "null": lambda v: v is None,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    short = tag.removeprefix(YAML_TAG)
    if tag.startswith(YAML_TAG) and short in expected:
        if not expected[short](plain):
            return text, f"is not a valid !!{short}"
        if short == "float" and isinstance(plain, int):
            return float(plain), None
        return plain, None
    return text, f"has the tag {_short_tag(tag)}, which is not supported; remove it"


def _short_tag(tag: str) -> str:
    shown = f"!!{tag.removeprefix(YAML_TAG)}" if tag.startswith(YAML_TAG) else tag
    return shown if len(shown) <= 40 else shown[:37] + "..."


def collection_tag_problem(tag: str, kind: str) -> str | None:
    """Why a mapping's or a sequence's explicit tag is not accepted (None when it is)."""
    if tag in ("!", YAML_TAG + kind):
        return None
    return f"has the tag {_short_tag(tag)}, which is not supported; remove it"
