"""The table of secret fields and the types it describes."""

from __future__ import annotations

import dataclasses

from reconciler.models import ANSWERED_FIELDS, SECRET_FIELDS, RemoteSecret, SecretValue


def test_remote_secret_holds_the_answered_fields_of_the_table_in_its_order_and_defaults() -> None:
    # The answer parser builds a RemoteSecret from the table positionally.
    attributes = dataclasses.fields(RemoteSecret)
    assert [a.name for a in attributes] == [f.name for f in ANSWERED_FIELDS]
    for attribute, field in zip(attributes, ANSWERED_FIELDS, strict=True):
        if not field.required:
            assert attribute.default == field.default, field.name
        # A sensitive field never reaches a repr, a log line or an exception.
        assert attribute.repr is not field.sensitive, field.name


def test_every_field_has_a_json_type_and_a_default_of_that_type() -> None:
    kinds = {"string": str, "boolean": bool}
    for field in SECRET_FIELDS:
        assert field.json_type in kinds, field.name
        assert field.default is None or isinstance(field.default, kinds[field.json_type]), field.name
        assert not (field.required and field.default is not None), field.name


def test_a_remote_secret_repr_shows_no_sensitive_field() -> None:
    remote = RemoteSecret("id-1", "gh", display="ghp_****CANARY")
    assert "CANARY" not in repr(remote) and "CANARY" not in repr(SecretValue("CANARY"))
