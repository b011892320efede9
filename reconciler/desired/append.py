"""New entries appended to a desired-state file, keeping everything already written byte for byte."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler import values
from reconciler.desired.schema import FORMAT_VERSION, is_name
from reconciler.errors import DesiredFileError, Problem, ReconcilerError
from reconciler.fsutil import replace_text
from reconciler.text import quoted
from reconciler.yaml_edit import line_start, next_line, same_data
from reconciler.yaml_tree import YamlDocument, YamlNode, is_merge_key, parse_yaml, read_yaml


def append_secrets(path: Path, entries: Sequence[Mapping[str, object]], *, dry_run: bool = False) -> str:
    """Append `entries` to the `secrets:` list of the desired-state file at `path`; return the new text.

    A missing file is created with `version: 1`. Everything already in the file (comments, order,
    quoting, indentation) is kept byte for byte. Each entry's `secret_value` must be a reference
    such as "${GITHUB_TOKEN}": a literal value is refused, so no value is ever written. A name already
    in the file is refused too. The file is replaced atomically unless `dry_run`.
    """
    path = Path(path)
    file = str(path)
    plain = [_entry_data(entry, file) for entry in entries]
    document = read_yaml(path) if path.exists() else YamlDocument(file, "", None)
    new_text = _appended_text(document, plain)
    if not dry_run and plain:
        replace_text(path, new_text)
    return new_text


def _plain_data(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v) for v in value]
    return value


def _entry_data(entry: Mapping[str, object], file: str) -> dict[str, object]:
    data = _plain_data(entry)
    assert isinstance(data, dict)
    name = data.get("secret_name")
    if not is_name(name):
        raise ReconcilerError(f"cannot add an entry without a valid secret_name to {file}")
    assert isinstance(name, str)
    try:
        values.check(data.get("secret_value"), allow_plaintext=False)
    except values.LiteralValueError:
        raise values.LiteralValueError(
            f"secret {quoted(name)}: secret_value must be a reference such as ${{NAME}}, "
            f"{{from_env: NAME}} or {{from_file: PATH}}; a literal value is never written into {file}"
        ) from None
    except values.ValueRefError as exc:
        raise values.ValueRefError(f"secret {quoted(name)}: secret_value {exc.message}") from None
    return data


def _appended_text(document: YamlDocument, entries: list[dict[str, object]]) -> str:
    text = document.text
    if not entries:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    root = document.root
    if root is None:
        prefix = text if not text or text.endswith("\n") else text + newline
        new = prefix + f"version: {FORMAT_VERSION}{newline}secrets:{newline}"
        new += _render_items(entries, 2, 2, newline, separate=False)
        expected: dict[object, object] = {"version": FORMAT_VERSION, "secrets": entries}
        return _checked(document, new, expected)
    if root.kind != "map":
        raise DesiredFileError(
            [
                Problem(
                    document.file,
                    root.line,
                    root.col,
                    "(file)",
                    "is not a desired-state file; no secrets added",
                )
            ]
        )
    secrets = root.get("secrets")
    if secrets is not None and not (
        secrets.kind == "seq" or (secrets.kind == "scalar" and secrets.scalar is None)
    ):
        raise DesiredFileError(
            [Problem(document.file, secrets.line, secrets.col, "secrets", "must be a list; no secrets added")]
        )
    existing = secrets.items if secrets is not None else ()
    _refuse_duplicates(document, existing, entries)
    data = root.to_python()
    assert isinstance(data, dict)
    expected = {**data, "secrets": [*(item.to_python() for item in existing), *entries]}
    spliced = _splice_entries(document, root, secrets, entries, newline)
    if spliced is not None:
        try:
            return _checked(document, spliced, expected)
        except DesiredFileError:
            pass
    return _checked(document, _roundtrip_append(document, entries), expected)


def _refuse_duplicates(
    document: YamlDocument, existing: Sequence[YamlNode], entries: list[dict[str, object]]
) -> None:
    listed: dict[object, YamlNode] = {}
    for item in existing:
        node = item.get("secret_name") if item.kind == "map" else None
        if node is not None:
            listed.setdefault(node.scalar, node)
    added: set[object] = set()
    for entry in entries:
        name = entry["secret_name"]
        where = listed.get(name)
        if where is not None:
            message = f"{quoted(str(name))} is already listed; choose another name for the new entry"
            raise DesiredFileError([Problem(document.file, where.line, where.col, "secret_name", message)])
        if name in added:
            raise ReconcilerError(f"two new entries for {document.file} are named {quoted(str(name))}")
        added.add(name)


def _checked(document: YamlDocument, new: str, expected: dict[object, object]) -> str:
    try:
        root = parse_yaml(new, document.file).root
    except DesiredFileError:
        root = None
    if root is None or not same_data(root.to_python(), _plain_data(expected)):
        raise DesiredFileError(
            [
                Problem(
                    document.file,
                    1,
                    1,
                    "secrets",
                    "cannot add entries to this file's layout; add them by hand",
                )
            ]
        )
    return new


def _splice_entries(
    document: YamlDocument,
    root: YamlNode,
    secrets: YamlNode | None,
    entries: list[dict[str, object]],
    newline: str,
) -> str | None:
    """The text with entries inserted after the last secret; None for layouts left to the round trip."""
    text = document.text
    if root.style == "flow" or root.alias:
        return None
    if secrets is None or secrets.alias:
        if any(is_merge_key(key) for key, _ in root.pairs):
            return None
        indent = root.col - 1
        prefix = text if text.endswith("\n") else text + newline
        block = " " * indent + "secrets:" + newline
        return prefix + block + _render_items(entries, indent + 2, 2, newline, separate=False)
    key = next((k for k, v in root.pairs if v is secrets), None)
    if key is None:
        return None
    if secrets.kind == "scalar" or (secrets.style == "flow" and not secrets.items):
        # `secrets:`, `secrets: null` or `secrets: []`: the value goes, the list follows the line.
        after = next_line(text, secrets.end)
        head = text[: secrets.start] + text[secrets.end : after]
        if not head.endswith("\n"):
            head += newline
        items = _render_items(entries, key.col - 1 + 2, 2, newline, separate=False)
        return head + items + text[after:]
    if secrets.style == "flow":
        return None
    dash = secrets.col - 1
    first = secrets.items[0]
    gap = first.col - secrets.col if first.line == secrets.line and first.col > secrets.col else 2
    separate = False
    if len(secrets.items) > 1:
        second_line = line_start(text, secrets.items[1].start)
        previous_line = text[line_start(text, max(second_line - 1, 0)) : second_line]
        separate = not previous_line.strip()
    position = next_line(text, secrets.end)
    # Comment lines indented under the last entry belong to it: the new entries go after them.
    scan = position
    while scan < len(text):
        line_end = next_line(text, scan + 1)
        line = text[scan:line_end]
        stripped = line.strip()
        if stripped.startswith("#") and len(line) - len(line.lstrip(" ")) > dash:
            position = scan = line_end
        elif not stripped:
            scan = line_end
        else:
            break
    head = text[:position]
    if not head.endswith("\n"):
        head += newline
    return head + _render_items(entries, dash, gap, newline, separate=separate) + text[position:]


def _dumper() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    # An explicit null reads as "must be empty" in this format; it is written out, not left blank.
    yaml.representer.add_representer(
        type(None), lambda rep, _data: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _render_items(
    entries: list[dict[str, object]], dash: int, gap: int, newline: str, *, separate: bool
) -> str:
    yaml = _dumper()
    out: list[str] = []
    for entry in entries:
        buffer = io.StringIO()
        yaml.dump(_commented(entry), buffer)
        lines = buffer.getvalue().splitlines()
        if separate:
            out.append(newline)
        out.append(" " * dash + "-" + " " * (gap - 1) + lines[0] + newline)
        out.extend(" " * (dash + gap) + line + newline for line in lines[1:])
    return "".join(out)


def _commented(value: object, depth: int = 0) -> object:
    # Entries are block mappings; what nests inside them is written in flow style, as in
    # `secret_value: {from_env: NAME}` and `previous_names: [old-name]`.
    if isinstance(value, dict):
        mapping = CommentedMap((k, _commented(v, depth + 1)) for k, v in value.items())
        if depth:
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_commented(v, depth + 1) for v in value)
        if depth:
            sequence.fa.set_flow_style()
        return sequence
    if isinstance(value, str) and "*" in value:
        # A tool_name wildcard reads at a glance as one when it is quoted.
        return DoubleQuotedScalarString(value)
    return value


def _roundtrip_append(document: YamlDocument, entries: list[dict[str, object]]) -> str:
    yaml = _dumper()
    yaml.preserve_quotes = True
    try:
        data = yaml.load(document.text)
    except (YAMLError, ValueError) as exc:
        raise DesiredFileError(
            [Problem(document.file, 1, 1, "(yaml)", "cannot be read as YAML text")]
        ) from exc
    if not isinstance(data, CommentedMap):
        raise DesiredFileError([Problem(document.file, 1, 1, "(file)", "is not a desired-state file")])
    secrets = data.get("secrets")
    if not isinstance(secrets, CommentedSeq):
        secrets = CommentedSeq()
        data["secrets"] = secrets
    for entry in entries:
        secrets.append(_commented(entry))
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
