"""Validates response bodies against the vendored io.net OpenAPI document."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

SPEC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "io-intelligence-secrets.openapi.yaml"
SECRET_INFO_FIELDS = frozenset(
    {
        "secret_id",
        "user_id",
        "secret_name",
        "display",
        "tool_name",
        "tool_arg",
        "is_default_for_tool",
        "created_at",
        "updated_at",
    }
)
# Statuses the emulator answers that the document does not list; their bodies are {"detail": str}.
UNDOCUMENTED_ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
}


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for `schema` whose `#/components/...` references resolve into the document."""
    root = {**schema, "components": spec()["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def component(name: str) -> Draft202012Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The documented JSON schema of a response, None when the document lists the status without a body.

    Raises AssertionError when the document does not list `status` for the operation at all.
    """
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which the contract does not list"
    content = responses[str(status)].get("content")
    if content is None:
        return None
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Assert that `body` is what the contract documents for `method path` answering `status`.

    `path` is the template, e.g. /api/v1/secrets/{secret_id}. Statuses listed without a body
    (401, 404, 413) must carry FastAPI's {"detail": "<string>"}.
    """
    schema = response_schema(method, path, status)
    validator(schema if schema is not None else UNDOCUMENTED_ERROR).validate(body)


def validate_undocumented_error(body: Any) -> None:
    """For statuses beyond the contract (409, 429, 500, 503): a {"detail": "<string>"} body."""
    validator(UNDOCUMENTED_ERROR).validate(body)
