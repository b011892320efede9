"""The tool catalogue: the name rule, the generated file (rebuilt offline), and the wheel reader."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import pytest

from reconciler import workflows
from reconciler.workflows.catalogue import CATALOGUE_FILE, carries_password, is_credential_name
from tools.tool_catalogue import build, read_wheel

ROOT = Path(__file__).resolve().parents[1]

# --- the name rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg",
    [
        "sender_passkey",
        "api_token",
        "client_secret",
        "password",
        "db_password",
        "api_key",
        "apiKey",
        "x-api-key",
        "key",
        "access_key",
        "bearer_token",
        "consumer_key",
        "credentials_path",
        "pass",
        "AccessToken",
    ],
)
def test_the_name_rule_flags_credential_segments(arg: str) -> None:
    assert is_credential_name(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "max_tokens",
        "keyword",
        "sort_key",
        "primary_key",
        "passage",
        "tokenizer",
        "keys",
        "bypass",
        "secretary",
        "db_url",
        "account_id",
        "monkey",
    ],
)
def test_the_name_rule_leaves_ordinary_arguments_alone(arg: str) -> None:
    assert not is_credential_name(arg)


@pytest.mark.parametrize(
    ("value", "carries"),
    [
        ("postgresql://app:s3cret@db.example.com:5432/app", True),
        ("mysql+pymysql://root:pw@localhost/x", True),
        ("postgresql://app@db.example.com/app", False),
        ("sqlite:///local.db", False),
        ("https://api.example.com/v1", False),
        ("not a url @ all", False),
    ],
)
def test_a_url_is_a_credential_only_with_a_password(value: str, carries: bool) -> None:
    assert carries_password(value) is carries


# --- the generated catalogue --------------------------------------------------------------------


def generated() -> build.Catalogue:
    inventory, overrides, source = build.load(build.DEFAULT_VERSION)
    return build.build(inventory, overrides, source=source)


def test_the_catalogue_is_exactly_what_the_generator_makes_from_the_committed_inventory() -> None:
    assert CATALOGUE_FILE.read_bytes() == generated().text.encode("utf-8")


def test_the_inventory_names_its_wheel_and_read_every_module() -> None:
    inventory = json.loads((ROOT / "tools" / "tool_catalogue" / "iointel-1.7.2.json").read_text())
    assert inventory["version"] == "1.7.2"
    assert inventory["wheel"] == "iointel-1.7.2-py3-none-any.whl"
    assert re.fullmatch(r"[0-9a-f]{64}", inventory["sha256"])
    assert inventory["unreadable"] == []
    assert inventory["modules_read"] > 80


def test_the_docs_print_the_generators_count() -> None:
    result = generated()
    assert result.credentialed_tools > 200
    docs = (ROOT / "docs" / "workflows.md").read_text()
    assert f"{result.credentialed_tools} credentialed tools" in docs
    assert f"of the {result.tools_registered} tools iointel 1.7.2 registers" in docs


# Every family of the catalogue before it was generated, with its arguments: none may be lost.
PREVIOUS = {
    "agno__github__*": ["access_token"],
    "agno__linear__*": ["api_token"],
    "agno__firecrawl__*": ["api_key"],
    "agno__slack__*": ["token"],
    "agno__jira__*": ["token", "password"],
    "agno__confluence__*": ["api_key", "password"],
    "agno__todoist__*": ["api_token"],
    "agno__trello__*": ["api_key", "api_secret", "token"],
    "agno__discord__*": ["bot_token"],
    "agno__telegram__*": ["token"],
    "agno__whatsapp__*": ["access_token"],
    "agno__webex__*": ["access_token"],
    "agno__x__*": ["bearer_token", "consumer_key", "consumer_secret", "access_token", "access_token_secret"],
    "agno__twilio__*": ["account_sid", "auth_token", "api_key", "api_secret"],
    "agno__reddit__*": ["client_id", "client_secret", "username", "password"],
    "agno__zoom__*": ["client_id", "client_secret"],
    "agno__zendesk__*": ["username", "password"],
    "agno__tavily__*": ["api_key"],
    "agno__serpapi__*": ["api_key"],
    "agno__google_maps__*": ["key"],
    "agno__api__*": ["api_key", "password"],
    "agno__sql__*": ["password"],
    "agno__resend__*": ["api_key"],
    "agno__clickup__*": ["api_key"],
    "agno_exa_*": ["api_key"],
    "agno_elevenlabs_*": ["api_key"],
    "Crawler-*": ["api_key"],
    "Wolfram-query": ["api_key"],
    "agentql_*": ["api_key"],
}


def test_every_family_of_the_previous_catalogue_is_kept_with_its_arguments() -> None:
    families = {f.pattern: f for f in workflows.catalogue().families}
    for pattern, args in PREVIOUS.items():
        assert pattern in families, pattern
        assert set(args) <= set(families[pattern].args), pattern
    # The argument a suggestion fills first stays the one it was.
    assert all(families[p].args[0] == args[0] for p, args in PREVIOUS.items() if p != "agno__zoom__*")


@pytest.mark.parametrize(
    ("tool", "arg"),
    [
        ("agno__e2b__run_python_code", "api_key"),
        ("agno__openai__generate_image", "api_key"),
        ("agno__dalle__create_image", "api_key"),
        ("agno__fal__generate_media", "api_key"),
        ("agno__financial_datasets__get_income_statements", "api_key"),
        ("agno__giphy__search_gifs", "api_key"),
        ("agno__jinareader__read_url", "api_key"),
        ("agno__lumalab__generate_video", "api_key"),
        ("agno__mem0__add_memory", "api_key"),
        ("agno__modelslab__generate_media", "api_key"),
        ("agno__scrapegraph__smartscraper", "api_key"),
        ("agno__zep__add_zep_message", "api_key"),
        ("agno__browserbase__navigate_to", "api_key"),
        ("agno__cartesia__text_to_speech", "api_key"),
        ("agno__desivocal__text_to_speech", "api_key"),
        ("get_current_weather", "api_key"),
        ("geocode_location", "api_key"),
        ("retrieval-engine-rag-search", "api_key"),
        ("email_user", "sender_passkey"),
        ("agno__google_sheets__read_sheet", "creds"),
        ("agno__google_bigquery__run_sql_query", "credentials"),
        ("google_calendar_list_events", "token_path"),
        ("agno__gmail__send_email", "creds_"),
        ("agno__zoom__schedule_meeting", "account_id"),
        ("agno__sql__run_sql_query", "db_url"),
    ],
)
def test_the_credentialed_tools_of_iointel_1_7_2_are_in_the_catalogue(tool: str, arg: str) -> None:
    args = workflows.catalogue().args_for(tool)
    assert args is not None and arg in args


def test_tools_without_a_family_prefix_are_single_tools() -> None:
    tools = workflows.catalogue()
    assert tools.pattern_for("get_current_weather") == "get_current_weather"
    assert tools.pattern_for("email_user") == "email_user"
    # Tools needing no credential are not in the catalogue at all.
    assert tools.args_for("calculator_add") is None
    assert tools.args_for("get_current_stock_price") is None


def test_a_stale_override_is_refused() -> None:
    inventory, overrides, source = build.load(build.DEFAULT_VERSION)
    stale = copy.deepcopy(overrides)
    stale["classes"]["Zoom"]["add"].append("no_such_field")
    with pytest.raises(build.CatalogueError, match="'Zoom' has no field 'no_such_field'"):
        build.build(inventory, stale, source=source)
    unknown = copy.deepcopy(overrides)
    unknown["confirmed"].append("agno__nothing__*")
    with pytest.raises(build.CatalogueError, match="confirmed family"):
        build.build(inventory, unknown, source=source)


def test_a_family_glob_never_takes_in_a_tool_that_needs_no_credential() -> None:
    inventory = {
        "package": "iointel",
        "version": "0",
        "sha256": "0" * 64,
        "tools_registered": 3,
        "classes": [
            {"module": "m", "class": "A", "fields": [{"name": "api_key", "annotation": "str"}],
             "tools": ["agno__shared__a", "a-one", "a-two"]},
            {"module": "m", "class": "B", "fields": [], "tools": ["agno__shared__b", "a-three"]},
        ],
        "functions": [],
    }  # fmt: skip
    text = build.build(inventory, {}, source="x.json").text
    assert '"agno__shared__a",' in text and "agno__shared__*" not in text
    # "a-" is shared with B's a-three: no prefix glob either.
    assert '"a-one",' in text and '"a-two",' in text and "a-*" not in text


# --- the wheel reader ---------------------------------------------------------------------------

WHEEL_FILES = {
    "iointel/src/agent_methods/tools/__init__.py": "from .x import y\n",
    "iointel/src/agent_methods/tools/agno/common.py": """
def register_tool(name=None): ...
def wrap_tool(name, agno_method):
    def wrapper(func):
        return register_tool(name=name)(func)
    return wrapper
def make_base(cls): ...
""",
    "iointel/src/agent_methods/tools/agno/thing.py": """
from typing import ClassVar, Optional
from pydantic import Field
from .common import make_base, wrap_tool
NAME = "computed"
class Thing(make_base(Agno)):
    api_key: Optional[str] = Field(default=None, frozen=True)
    _tool: object
    limit: ClassVar[int] = 3
    @wrap_tool("agno__thing__do", Agno.do)
    def do(self): ...
    @wrap_tool(NAME, Agno.other)
    def other(self): ...
""",
    "iointel/src/agent_methods/tools/plain.py": """
from pydantic import BaseModel
from iointel.src.utilities.decorators import register_tool
@register_tool
def ping(): ...
class Svc(BaseModel):
    token: str
    @register_tool
    def query(self): ...
    @register_tool("svc-search")
    async def search(self): ...
class Sub(Svc):
    region: str = "eu"
    @register_tool(name="sub-run")
    def run(self): ...
class Foreign(SomewhereElse):
    @register_tool
    def go(self): ...
def factory():
    @register_tool
    def hidden(): ...
register_tool(name="side")(ping)
""",
    "iointel/src/agent_methods/tools/broken.py": "def (:\n",
    "iointel/src/other/outside.py": "@register_tool\ndef not_a_tool(): ...\n",
}


def test_the_wheel_reader_finds_every_registration_and_lists_what_it_cannot_read(tmp_path: Path) -> None:
    wheel = tmp_path / "iointel-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in WHEEL_FILES.items():
            archive.writestr(name, text)
    inventory = read_wheel.Inventory(wheel).read()
    assert inventory["version"] == "9.9.9"
    classes = {c["class"]: c for c in inventory["classes"]}  # type: ignore[attr-defined]
    assert classes["Thing"]["tools"] == ["agno__thing__do"]
    assert [f["name"] for f in classes["Thing"]["fields"]] == ["api_key"]
    assert classes["Svc"]["tools"] == ["Svc-query", "svc-search"]
    assert classes["Sub"]["tools"] == ["sub-run"]
    # Fields are inherited within the wheel, the base's first.
    assert [f["name"] for f in classes["Sub"]["fields"]] == ["token", "region"]
    assert inventory["functions"] == [{"module": "iointel.src.agent_methods.tools.plain", "function": "ping",
                                       "tools": ["ping"]}]  # fmt: skip
    reasons = sorted((u["module"].rsplit(".", 1)[1], u["reason"]) for u in inventory["unreadable"])  # type: ignore[attr-defined]
    assert [module for module, _reason in reasons] == ["broken", "plain", "plain", "plain", "thing"]
    text = " | ".join(reason for _module, reason in reasons)
    assert "'Thing.other' is not a string literal" in text
    assert "fields of base 'SomewhereElse' cannot be read" in text
    assert "'hidden' is registered outside a module-level class or function" in text
    assert "called outside a decorator" in text
    assert inventory["tools_registered"] == 6
