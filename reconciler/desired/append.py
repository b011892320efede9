"""New entries appended to a desired-state file, keeping everything already written byte for byte."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler import values
from reconciler.desired.schema import FORMAT_VERSION, is_name
from reconciler.errors import DesiredFileError, LiteralValueError, Problem, ReconcilerError, ValueRefError
from reconciler.fsutil import replace_text
from reconciler.text import quoted
from reconciler.yaml_edit import append_items, plain_data
from reconciler.yaml_tree import YamlDocument, YamlNode, read_yaml


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


def _entry_data(entry: Mapping[str, object], file: str) -> dict[str, object]:
    data = plain_data(entry)
    assert isinstance(data, dict)
    name = data.get("secret_name")
    if not is_name(name):
        raise ReconcilerError(f"cannot add an entry without a valid secret_name to {file}")
    assert isinstance(name, str)
    try:
        values.check(data.get("secret_value"), allow_plaintext=False)
    except LiteralValueError:
        raise LiteralValueError(
            f"secret {quoted(name)}: secret_value must be a reference such as ${{NAME}}, "
            f"{{from_env: NAME}} or {{from_file: PATH}}; a literal value is never written into {file}"
        ) from None
    except ValueRefError as exc:
        raise ValueRefError(f"secret {quoted(name)}: secret_value {exc.message}") from None
    return data


def _appended_text(document: YamlDocument, entries: list[dict[str, object]]) -> str:
    if not entries:
        return document.text
    root = document.root
    if root is None:
        expected: dict[str, object] = {"version": FORMAT_VERSION, "secrets": entries}
        return append_items(document, "secrets", entries, expected, head=[f"version: {FORMAT_VERSION}"])
    if root.kind != "map":
        message = "is not a desired-state file; no secrets added"
        raise DesiredFileError([Problem(document.file, root.line, root.col, "(file)", message)])
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
    return append_items(document, "secrets", entries, expected)


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
