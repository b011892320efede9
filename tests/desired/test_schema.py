"""The JSON Schema of the desired-state file, its fast mirror, and the problems it reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired
from reconciler.desired.schema import SCHEMA_FILE, conforms, json_schema
from reconciler.errors import DesiredFileError
from reconciler.models import BOOLEAN_FIELDS, OPTIONAL_FIELDS
from tests.support.desired_files import EXAMPLE, load_never_crashes, located, only, problems, write

# --- problems the schema finds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "col", "phrase"),
    [
        ("version: 2\nsecrets: [{bogus: 1}]\n", 1, 10, "version 2 is not supported"),
        ("version: '1'\n", 1, 10, "must be the number 1, not text"),
        ("version: true\n", 1, 10, "must be the number 1, not a boolean"),
        ("secrets: []\n", 1, 1, "missing; start the file with 'version: 1'"),
    ],
)
def test_wrong_version(text: str, line: int, col: int, phrase: str, tmp_path: Path) -> None:
    problem = only(problems(write(tmp_path, text)))
    assert (problem.line, problem.col, problem.key) == (line, col, "version")
    assert phrase in problem.message


def test_unknown_keys_with_suggestions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        prunee: true
        secrets:
          - secret_name: a
            secret_value: ${A}
            tool_nmae: "agno__github__*"
            colour: blue
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [(2, 1, "prunee"), (6, 5, "secrets[0].tool_nmae"), (7, 5, "secrets[0].colour")]
    assert found[0].message == "unknown key; did you mean 'prune'?"
    assert found[1].message == "unknown key; did you mean 'tool_name'?"
    assert found[2].message.startswith("unknown key; expected one of: secret_name, secret_value, tool_name")


def test_wrong_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        allow_plaintext: "sure"
        workflows: flows/*.yaml
        prune: sometimes
        secrets:
          - secret_name: 12
            secret_value: ${A}
            tool_name: [agno__github__a, agno__github__b]
            tool_arg: 7
            is_default_for_tool: yes
            previous_names: old-name
            protect: 1
          - just-a-string
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (2, 18, "allow_plaintext"),
        (3, 12, "workflows"),
        (4, 8, "prune"),
        (6, 18, "secrets[0].secret_name"),
        (8, 16, "secrets[0].tool_name"),
        (9, 15, "secrets[0].tool_arg"),
        (10, 26, "secrets[0].is_default_for_tool"),
        (11, 21, "secrets[0].previous_names"),
        (12, 14, "secrets[0].protect"),
        (13, 5, "secrets[1]"),
    ]
    messages = [p.message for p in found]
    assert messages[0] == "must be true or false, not text"
    assert messages[1] == "must be a list, not text"
    assert messages[2] == "must be true, false or {match: [GLOB, ...]}, not text"
    assert messages[3] == "must be text, not a number; quote it if it is meant as text"
    assert "one tool name" in messages[4] and "not a list" in messages[4]
    assert messages[5] == "must be text or null, not a number; quote it if it is meant as text"
    assert messages[6] == "must be true, false or null, not text (YAML 1.2 reads yes/no/on/off as text)"
    assert messages[7] == "must be a list, not text"
    assert messages[8] == "must be true or false, not a number"
    assert messages[9] == "must be a mapping, not text"


def test_prune_mapping_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nprune: {match: [], mach: x}\n")
    found = problems(path)
    assert located(found) == [(2, 16, "prune.match"), (2, 20, "prune.mach")]
    assert found[0].message == "must list at least 1 item"
    assert found[1].message == "unknown key; did you mean 'match'?"
    found = problems(write(tmp_path, "version: 1\nprune: {}\n"))
    assert located(found) == [(2, 8, "prune.match")]
    assert "missing" in found[0].message


def test_missing_required_entry_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - tool_name: x
          - secret_name: only-name
        """,
    )
    found = problems(path)
    assert located(found) == [
        (3, 5, "secrets[0].secret_name"),
        (3, 5, "secrets[0].secret_value"),
        (4, 5, "secrets[1].secret_value"),
    ]
    assert found[0].message == "missing; every secret needs a name"
    assert found[2].message == "missing; every secret needs a value reference such as ${NAME}"


def test_name_limits(tmp_path: Path) -> None:
    long_name = "n" * 1025
    path = write(
        tmp_path,
        f"""
        version: 1
        secrets:
          - secret_name: ""
            secret_value: ${{A}}
            tool_arg: ""
          - secret_name: {long_name}
            secret_value: ${{A}}
            previous_names: [ok, ok]
            secret_id: not-a-uuid
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (3, 18, "secrets[0].secret_name"),
        (5, 15, "secrets[0].tool_arg"),
        (6, 18, "secrets[1].secret_name"),
        (8, 21, "secrets[1].previous_names"),
        (9, 16, "secrets[1].secret_id"),
    ]
    assert [p.message for p in found] == [
        "is empty",
        "is empty",
        "is 1025 characters long; the API accepts at most 1024",
        "lists 'ok' more than once",
        "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c",
    ]


# --- the schema --------------------------------------------------------------------------------


def test_schema_is_draft_2020_12_and_every_property_is_described() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, "$")
    # The random documents below compare the fast check with jsonschema over every key of the schema.
    assert set(schema["properties"]) == {"version", *TOP_OPTIONAL}
    assert set(schema["$defs"]["secret"]["properties"]) == {"secret_name", "secret_value", *ENTRY_OPTIONAL}


def test_each_secret_field_an_entry_may_state_is_in_the_schema_as_the_fields_table_has_it() -> None:
    properties = json_schema()["$defs"]["secret"]["properties"]
    for name in OPTIONAL_FIELDS:
        rule = {k: v for k, v in properties[name].items() if k != "description"}
        if name in BOOLEAN_FIELDS:
            assert rule == {"type": ["boolean", "null"]}, name
        else:
            assert rule == {"type": ["string", "null"], "minLength": 1, "maxLength": 1024}, name


def test_example_satisfies_the_schema() -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(EXAMPLE.read_bytes())
    jsonschema.Draft202012Validator(json_schema()).validate(data)


# Documents for comparing the fast conformance check with jsonschema: valid ones, then up to two
# mutations each (a key dropped, or set to an odd or borderline value), so both verdicts are common.
UUID = "0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c"
names = st.one_of(st.text(min_size=1, max_size=4), st.just("x" * 1024))
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from([1.0, 0.5, "", "x" * 1025, "1", "A\n", f"{UUID}\n", f"x{UUID}", "yes", UUID.upper()]),
    st.sampled_from(["30d", "0d", "30d\n", "1w", "99999h", "100000h", "7 d", "30"]),
    st.lists(st.sampled_from(["a", "a", "", 1, None]), max_size=3),
    st.sampled_from(
        [
            {},
            {"match": []},
            {"match": ["a"]},
            {"from_env": "1A"},
            {"from_env": "A_1"},
            {"from_file": ""},
            {"from_file": "p", "from_env": "A"},
            {"x": 1},
            {"from_env": "A\n"},
        ]
    ),
    st.text(max_size=3),
)
valid_values = st.one_of(
    st.text(max_size=5),
    st.fixed_dictionaries({"from_env": st.sampled_from(["A_1", "_B", "c"])}),
    st.fixed_dictionaries({"from_file": st.text(min_size=1, max_size=4)}),
)
ENTRY_OPTIONAL = {
    **{
        name: st.one_of(st.none(), st.booleans() if name in BOOLEAN_FIELDS else names)
        for name in OPTIONAL_FIELDS
    },
    "previous_names": st.lists(names, unique=True, max_size=2),
    "protect": st.booleans(),
    "secret_id": st.sampled_from([UUID, UUID.upper()]),
    "max_age": st.sampled_from(["12h", "90d", "4w"]),
}
valid_entries = st.fixed_dictionaries(
    {"secret_name": names, "secret_value": valid_values}, optional=ENTRY_OPTIONAL
)
TOP_OPTIONAL = {
    "allow_plaintext": st.booleans(),
    "prune": st.one_of(
        st.booleans(), st.fixed_dictionaries({"match": st.lists(names, min_size=1, max_size=2)})
    ),
    "workflows": st.lists(st.text(min_size=1, max_size=3), max_size=2),
    "tool_credentials": st.lists(
        st.fixed_dictionaries({"pattern": names, "args": st.lists(names, max_size=2)}), max_size=2
    ),
    "max_age": st.sampled_from(["1h", "30d"]),
    "secrets": st.one_of(st.none(), st.lists(valid_entries, max_size=3)),
}
valid_documents = st.fixed_dictionaries({"version": st.just(1)}, optional=TOP_OPTIONAL)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> object:
    document: dict[str, object] = draw(valid_documents)
    for _ in range(draw(st.integers(0, 2))):
        target: dict[str, object] = document
        keys: tuple[str, ...] = ("version", *TOP_OPTIONAL, "secretz")
        entries = document.get("secrets")
        if isinstance(entries, list) and entries and draw(st.booleans()):
            entry = draw(st.sampled_from(entries))
            if isinstance(entry, dict):
                target, keys = entry, ("secret_name", "secret_value", *ENTRY_OPTIONAL, "tool_nmae")
        key = draw(st.sampled_from(keys))
        if key in target and draw(st.integers(0, 3)) == 0:
            del target[key]
        else:
            target[key] = draw(odd)
    return document


documents = st.one_of(odd, near_valid_documents())


@settings(max_examples=400, deadline=None)
@given(document=documents)
def test_fast_conformance_check_agrees_with_jsonschema(document: object) -> None:
    assert conforms(document) == jsonschema.Draft202012Validator(json_schema()).is_valid(document)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents)
def test_any_document_shape_loads_or_reports(document: object, tmp_path: Path) -> None:
    load_never_crashes(tmp_path / "shape.yaml", json.dumps(document).encode())


# --- tool_credentials in the desired-state file ---------------------------------------------------


def test_tool_credentials_are_loaded_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        tool_credentials:
          - {pattern: "my_crm_*", args: [api_key, password]}
          - {pattern: agno__github__list_issues, args: []}
        """,
        "s.yaml",
    )
    state = desired.load(path)
    assert state.tool_credentials == (
        ("my_crm_*", ("api_key", "password")),
        ("agno__github__list_issues", ()),
    )


def test_tool_credentials_problems_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        tool_credentials:
          - {pattern: "", args: [api_key]}
          - {pattern: x, arg: [api_key]}
          - {pattern: y, args: api_key}
        """,
        "s.yaml",
    )
    with pytest.raises(DesiredFileError) as caught:
        desired.load(path)
    shown = [(p.line, p.key, p.message) for p in caught.value.problems]
    assert (3, "tool_credentials[0].pattern", "is empty") in shown
    assert (
        4,
        "tool_credentials[1].args",
        "missing; write {pattern: GLOB, args: [ARG, ...]}; [] means the tools need no credential",
    ) in shown
    assert (4, "tool_credentials[1].arg", "unknown key; did you mean 'args'?") in shown
    assert (5, "tool_credentials[2].args", "must be a list, not text") in shown


tool_credential_values = st.one_of(
    st.fixed_dictionaries(
        {
            "pattern": st.sampled_from(["a*", "", "x" * 1025, 1]),
            "args": st.lists(st.sampled_from(["k", "", 2])),
        }
    ),
    st.fixed_dictionaries({"pattern": st.just("a")}),
    st.sampled_from([None, "x", {"pattern": "a", "args": [], "extra": 1}, {"pattern": "a", "args": "k"}]),
)


@settings(max_examples=200, deadline=None)
@given(items=st.one_of(st.lists(tool_credential_values, max_size=3), st.sampled_from([None, "x", {}])))
def test_fast_check_of_tool_credentials_agrees_with_jsonschema(items: object) -> None:
    document = {"version": 1, "tool_credentials": items}
    validator = jsonschema.Draft202012Validator(json_schema())
    assert conforms(document) == validator.is_valid(document)


def test_schema_file_and_link_stay_valid_json() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert "tool_credentials" in schema["properties"]
