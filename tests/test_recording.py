"""recording: what the state keeps of creates that did not succeed (pure, over a journal in memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import recording, state
from reconciler.changes import create_of
from reconciler.models import ApplyReport, DesiredSecret, Outcome, PendingCreate, SecretValue, Status

SENT_AT = "2026-01-01T00:00:00Z"


def _after(outcome: Outcome) -> PendingCreate | None:
    journal = state.Journal(
        state.State(Path("state.json"), state.state_key({state.STATE_KEY_ENV: "k1"}, api_key="unused"))
    )
    journal.pending_create(PendingCreate("gh", "fp", "fd", SENT_AT))
    recording.settle_creates(journal, ApplyReport(outcomes=(outcome,)))
    return journal.pending.get("gh")


CREATE = create_of(DesiredSecret("gh", value=SecretValue("value-of-gh-0001")))


def test_a_create_whose_answer_was_lost_is_held_in_doubt() -> None:
    kept = _after(Outcome(CREATE, Status.FAILED, "no answer", in_doubt=True))
    assert kept is not None and kept.in_doubt and kept.sent_at != SENT_AT


def test_a_create_answered_but_not_checked_is_kept_to_be_looked_for_and_not_held() -> None:
    # The server answered 500 and the listing that would tell whether it landed failed.
    assert _after(Outcome(CREATE, Status.FAILED, "HTTP 500", unsettled=True)) == PendingCreate(
        "gh", "fp", "fd", SENT_AT
    )


@pytest.mark.parametrize("status", [Status.FAILED, Status.SKIPPED])
def test_a_create_refused_or_never_sent_leaves_nothing_to_look_for(status: Status) -> None:
    assert _after(Outcome(CREATE, status, "HTTP 422")) is None
