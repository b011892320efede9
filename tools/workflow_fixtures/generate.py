"""Write the test fixtures of iointel workflow files with the SDK's own serializer, `Workflow.to_yaml`.

The files under tests/fixtures/workflows/sdk/ are what iointel really writes, so that `workflows
check` and `extract` are tested against the real format rather than our description of it. Each
carries a fake credential (the `FAKE` strings below; none is real) and a header naming the iointel
version that wrote it. Below the header is to_yaml's output byte for byte, but for fn_self's object
id (id(self)), pinned so that a rerun writes the same files.

iointel is not a dependency of reconciler: run this in a throwaway virtual environment, outside the
repository, and commit what it writes:

    python3 -m venv /tmp/iointel-venv
    /tmp/iointel-venv/bin/pip install iointel==1.7.2
    /tmp/iointel-venv/bin/python tools/workflow_fixtures/generate.py

iointel 1.7.2 pins pydantic-ai 1.0.9 but not all of its dependencies, and later releases of two of
them break it: pin "opentelemetry-api<1.38" "opentelemetry-sdk<1.38" (1.0.9 imports
`opentelemetry._events`) and "griffe<2" (1.0.9 passes griffe an option 2.x refuses) if the
resolver picks newer ones.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "workflows" / "sdk"
MODEL = "meta-llama/Llama-3.3-70B-Instruct"
# A model key the agents are built with; to_yaml writes it only with store_creds=True.
AGENT_KEY = "io-v2-FAKEagentKEY0000000000000000000000000001"

# One fake credential per tool class, each unique so that a test can tell where it went.
# ruff: noqa: S105
GITHUB_TOKEN = "ghp_FAKEsdkGITHUB000000000000000000000001"
LINEAR_KEY = "lin_api_FAKEsdkLINEAR00000000000000000002"
CRAWLER_KEY = "fc-FAKEsdkCRAWLER0000000000000000003"
WEATHER_KEY = "FAKEsdkOPENWEATHER00000000000000004"
EMAIL_PASSKEY = "FAKE sdk email passkey 0005"
RETRIEVAL_KEY = "re-FAKEsdkRETRIEVAL000000000000000006"


def _agent(name: str, instructions: str, tools: list[Any]) -> Any:
    from iointel import Agent

    return Agent(name=name, instructions=instructions, model=MODEL, api_key=AGENT_KEY, tools=tools)


def github() -> tuple[Any, dict[str, Any]]:
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.github import Github

    gh = Github(access_token=GITHUB_TOKEN)
    reader = _agent(
        "issue-reader", "Read the open issues and summarise them.", [gh.list_issues, gh.get_issue]
    )
    return Workflow(objective="Summarise this week's issues.", client_mode=False, agents=[reader]), {
        "workflow_name": "github-issue-digest"
    }


def linear() -> tuple[Any, dict[str, Any]]:
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.linear import Linear

    lin = Linear(api_token=LINEAR_KEY)
    triager = _agent("triager", "Triage new Linear issues.", [lin.get_issue_details, lin.update_issue])
    return Workflow(objective="Triage the inbox.", client_mode=False, agents=[triager]), {
        "workflow_name": "linear-triage"
    }


def crawler() -> tuple[Any, dict[str, Any]]:
    from iointel import Workflow
    from iointel.src.agent_methods.tools.firecrawl import Crawler

    crawl = Crawler(api_key=CRAWLER_KEY, timeout=30)
    scraper = _agent("scraper", "Scrape the changelog page.", [crawl.scrape_url])
    return Workflow(objective="https://example.com/changelog", client_mode=False, agents=[scraper]), {
        "workflow_name": "changelog-scrape"
    }


def weather() -> tuple[Any, dict[str, Any]]:
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.openweather import OpenWeather

    ow = OpenWeather(api_key=WEATHER_KEY, units="metric")
    forecaster = _agent(
        "forecaster", "Give the weather for the city asked.", [ow.get_current_weather, ow.get_forecast]
    )
    return Workflow(objective="Weather in Lisbon", client_mode=False, agents=[forecaster]), {
        "workflow_name": "weather-report"
    }


def email() -> tuple[Any, dict[str, Any]]:
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.email import Email

    mail = Email(
        receiver_email="team@example.com",
        sender_name="Release Bot",
        sender_email="bot@example.com",
        sender_passkey=EMAIL_PASSKEY,
    )
    mailer = _agent("mailer", "Email the release notes to the team.", [mail.email_user])
    return Workflow(objective="Send the release notes.", client_mode=False, agents=[mailer]), {
        "workflow_name": "release-mail"
    }


def multi_agent() -> tuple[Any, dict[str, Any]]:
    """Top-level agents, task-level agents, and a tool whose class holds no credential."""
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.calculator import Calculator
    from iointel.src.agent_methods.tools.agno.github import Github
    from iointel.src.agent_methods.tools.agno.linear import Linear
    from iointel.src.agent_methods.tools.retrieval_engine import RetrievalEngine

    gh = Github(access_token=GITHUB_TOKEN)
    lin = Linear(api_token=LINEAR_KEY)
    rag = RetrievalEngine(base_url="https://rag.example.com", api_key=RETRIEVAL_KEY)
    calc = Calculator()
    planner = _agent("planner", "Plan the release.", [gh.list_issues, calc.add])
    writer = _agent("writer", "Write the notes.", [rag.rag_search])
    workflow = Workflow(objective="Prepare the release.", client_mode=False, agents=[planner, writer])
    workflow.custom(
        name="file-issues",
        objective="File follow-up issues.",
        agents=[_agent("filer", "File the issues in Linear.", [lin.create_issue])],
    )
    workflow.custom(name="summarise", objective="Summarise the plan.")
    return workflow, {"workflow_name": "release-train"}


def store_creds() -> tuple[Any, dict[str, Any]]:
    """store_creds=True: the agent's model key is written in plain text too."""
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.github import Github

    gh = Github(access_token=GITHUB_TOKEN)
    bot = _agent("triage-bot", "Label new issues.", [gh.list_issues, gh.label_issue])
    return Workflow(objective="Label the new issues.", client_mode=False, agents=[bot]), {
        "workflow_name": "labeller",
        "store_creds": True,
    }


class _Swarm:
    """A group of agents as agent_or_swarm() recognises one (an object with `members`): iointel 1.7.2
    has no swarm class of its own (create_swarm raises NotImplementedError)."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members


def swarm() -> tuple[Any, dict[str, Any]]:
    """A swarm in a task. to_yaml writes it as a ["members", [agents]] pair inside the task's agents
    list (a swarm among the top-level agents makes to_yaml raise a ValidationError instead)."""
    from iointel import Workflow
    from iointel.src.agent_methods.tools.agno.github import Github
    from iointel.src.agent_methods.tools.firecrawl import Crawler

    gh = Github(access_token=GITHUB_TOKEN)
    crawl = Crawler(api_key=CRAWLER_KEY, timeout=30)
    lead = _agent("lead", "Split the research.", [])
    workflow = Workflow(objective="Research the competitors.", client_mode=False, agents=[lead])
    members = [
        _agent("code-reader", "Read their repositories.", [gh.search_repositories]),
        _agent("site-reader", "Read their sites.", [crawl.scrape_url]),
    ]
    workflow.custom(name="research", objective="Research in parallel.", agents=[_Swarm(members)])
    return workflow, {"workflow_name": "research-swarm"}


FIXTURES: dict[str, Callable[[], tuple[Any, dict[str, Any]]]] = {
    "github.yaml": github,
    "linear.yaml": linear,
    "crawler.yaml": crawler,
    "weather.yaml": weather,
    "email.yaml": email,
    "multi-agent.yaml": multi_agent,
    "store-creds.yaml": store_creds,
    "swarm.yaml": swarm,
}


def _stable(text: str) -> str:
    """to_yaml's output with what changes from run to run pinned: fn_self's third item is id(self)."""
    return re.sub(r"(?m)^(\s*- )(\d{6,})$", r"\g<1>1000000001", text)


def main() -> int:
    warnings.simplefilter("ignore")
    from importlib.metadata import version

    release = version("iointel")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in FIXTURES.items():
        workflow, options = build()
        text = _stable(workflow.to_yaml(**options))
        call = ", ".join(f"{k}={v!r}" for k, v in options.items())
        header = (
            f"# Written by iointel {release} Workflow.to_yaml({call})\n"
            "# with tools/workflow_fixtures/generate.py; every credential in it is fake. Do not edit by\n"
            "# hand: rerun the script. Only fn_self's object id (the third item) is pinned to 1000000001.\n"
        )
        (OUT / name).write_text(header + text, encoding="utf-8")
        print(f"{OUT / name}: {len(text.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
