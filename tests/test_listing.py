"""The listing's decisions from literal answers (pure): which dialect, what to ask next, which proof,
and when nothing proves the listing whole."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.answers import Answer, read_answer, refused_params
from reconciler.errors import ServerError
from reconciler.listing import UNANSWERED, Listing, Query, Reader, Unprovable

LIST_URL = "https://api.example.com/api/v1/secrets/"
SIZES = (("limit", 100), ("page_size", 100))


def item(n: int) -> dict[str, Any]:
    return {"secret_id": f"id-{n}", "secret_name": f"s{n}"}


def items(*numbers: int) -> list[dict[str, Any]]:
    return [item(n) for n in numbers]


def data(*numbers: int, **extra: Any) -> Answer:
    return read_answer({"data": items(*numbers), **extra})


def page(numbers: range | list[int], total: int, has_next: bool) -> Answer:
    return read_answer({"data": items(*numbers), "pagination": {"total": total, "has_next": has_next}})


def asks(step: list[Query] | Listing) -> list[dict[str, Any]]:
    assert isinstance(step, list), step
    return [dict(q.params) for q in step]


def done(step: list[Query] | Listing) -> Listing:
    assert isinstance(step, Listing), step
    return step


def ids(listing: Listing) -> list[str]:
    return [s.secret_id for s in listing.secrets]


def test_the_first_request_asks_for_100_in_every_size_parameter() -> None:
    assert asks(Reader(LIST_URL).start()) == [dict(SIZES)]


def test_one_page_with_a_count_that_agrees_is_the_whole_account() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    listing = done(reader.feed([page(range(3), total=3, has_next=False)]))
    assert ids(listing) == ["id-0", "id-1", "id-2"]
    assert listing.dialect.startswith("page/page_size with pagination metadata")
    assert listing.proof == "one page; the server's count agrees" and listing.requests == 1


def test_pages_are_asked_at_once_when_counted_then_read_again_and_must_agree() -> None:
    reader = Reader(LIST_URL, batch=4)
    reader.start()
    assert asks(reader.feed([page(range(100), 250, True)])) == [
        {**dict(SIZES), "page": 2},
        {**dict(SIZES), "page": 3},
    ]
    second = reader.feed([page(range(100, 200), 250, True), page(range(200, 250), 250, False)])
    assert [q["page"] for q in asks(second)] == [1, 2, 3]
    listing = done(
        reader.feed(
            [page(range(100), 250, True), page(range(100, 200), 250, True), page(range(200, 250), 250, False)]
        )
    )
    assert len(listing.secrets) == 250 and listing.requests == 6
    assert listing.proof == "read twice, page by page, with the same 250 secrets; the server's count agrees"


def test_an_account_expected_to_fill_several_pages_has_them_asked_with_the_first_question() -> None:
    reader = Reader(LIST_URL, batch=4, expect=250)
    assert asks(reader.start()) == [dict(SIZES), {**dict(SIZES), "page": 2}, {**dict(SIZES), "page": 3}]
    first = [page(range(100), 250, True), page(range(100, 200), 250, True), page(range(200, 250), 250, False)]
    # One round less: the second reading is asked at once after the first answers.
    assert [q["page"] for q in asks(reader.feed(first))] == [1, 2, 3]
    listing = done(reader.feed(first))
    assert len(listing.secrets) == 250 and listing.requests == 6
    assert listing.proof == "read twice, page by page, with the same 250 secrets; the server's count agrees"


@pytest.mark.parametrize(
    ("expect", "batch", "asked"), [(0, 4, 1), (100, 4, 1), (101, 4, 2), (5_000, 4, 4), (5_000, 1, 1)]
)
def test_pages_asked_ahead_are_those_the_expected_secrets_fill_within_the_batch(
    expect: int, batch: int, asked: int
) -> None:
    assert len(Reader(LIST_URL, batch=batch, expect=expect).start()) == asked


def test_an_account_smaller_than_expected_ends_at_the_page_that_says_it_is_the_last() -> None:
    reader = Reader(LIST_URL, batch=4, expect=300)
    reader.start()
    answers = [page(range(100), 150, True), page(range(100, 150), 150, False), page([], 150, False)]
    # The page past the last is dropped; the second reading asks for the two there are.
    assert [q["page"] for q in asks(reader.feed(answers))] == [1, 2]
    listing = done(reader.feed(answers[:2]))
    assert len(listing.secrets) == 150 and listing.requests == 5


def test_an_account_larger_than_expected_is_read_to_its_last_page() -> None:
    reader = Reader(LIST_URL, batch=4, expect=150)
    reader.start()
    second = reader.feed([page(range(100), 350, True), page(range(100, 200), 350, True)])
    assert [q["page"] for q in asks(second)] == [3, 4]
    again = reader.feed([page(range(200, 300), 350, True), page(range(300, 350), 350, False)])
    assert [q["page"] for q in asks(again)] == [1, 2, 3, 4]


def test_pages_asked_ahead_of_a_server_that_ignores_them_are_dropped() -> None:
    reader = Reader(LIST_URL, batch=3, expect=250)
    reader.start()
    # Windows by offset: `page` is ignored, so each question asked ahead answers the first window.
    probe = reader.feed([data(*range(100)), data(*range(100)), data(*range(100))])
    assert asks(probe) == [{**dict(SIZES), "offset": 99, "skip": 99}]
    listing = done(reader.feed([data(99)]))
    assert ids(listing) == [f"id-{n}" for n in range(100)]
    assert listing.dialect.startswith("limit with offset or skip") and listing.requests == 4


def test_a_page_asked_ahead_that_failed_is_asked_again_in_its_turn() -> None:
    reader = Reader(LIST_URL, batch=4, expect=300)
    assert [q.ahead for q in reader.start()] == [False, True, True]
    again = reader.feed([page(range(100), 250, True), UNANSWERED, page(range(200, 250), 250, False)])
    # Nothing after the failed page is taken: pages 2 and 3 are asked in order, as without a guess.
    assert [q["page"] for q in asks(again)] == [2, 3]
    assert isinstance(again, list) and not any(q.ahead for q in again)


def test_a_page_asked_ahead_past_the_last_may_fail_without_harm() -> None:
    reader = Reader(LIST_URL, batch=4, expect=300, once=True)
    reader.start()
    listing = done(reader.feed([page(range(100), 150, True), page(range(100, 150), 150, False), UNANSWERED]))
    assert len(listing.secrets) == 150 and listing.requests == 3


def test_pages_read_once_are_a_listing_that_says_it_is_not_proven_whole() -> None:
    reader = Reader(LIST_URL, batch=4, once=True)
    reader.start()
    reader.feed([page(range(100), 250, True)])
    listing = done(reader.feed([page(range(100, 200), 250, True), page(range(200, 250), 250, False)]))
    assert len(listing.secrets) == 250 and listing.requests == 3 and not listing.whole
    assert listing.proof == "read once, page by page; the server's count agrees; not proven whole"


def test_reading_once_changes_nothing_where_one_reading_is_the_proof() -> None:
    reader = Reader(LIST_URL, once=True)
    reader.start()
    assert asks(reader.feed([data(0, 1, 2)])) == [{**dict(SIZES), "offset": 2, "skip": 2}]
    assert done(reader.feed([data(2)])).whole


def test_pages_that_differ_between_two_readings_are_read_again() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    reader.feed([page(range(2), 3, True)])
    reader.feed([page([2], 3, False)])
    # A delete of id-0 and a create of id-9: the count stays 3, id-2 slid onto page 1.
    third = reader.feed([page([1, 2], 3, True), page([9], 3, False)])
    assert [q["page"] for q in asks(third)] == [1, 2]
    listing = done(reader.feed([page([1, 2], 3, True), page([9], 3, False)]))
    assert ids(listing) == ["id-1", "id-2", "id-9"]


def test_a_listing_shorter_than_the_count_starts_again_and_is_refused_the_third_time() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    for _ in range(2):
        assert asks(reader.feed([page([0], total=3, has_next=False)])) == [dict(SIZES)]
    with pytest.raises(Unprovable, match="returned 1 secrets but the server counts 3"):
        reader.feed([page([0], total=3, has_next=False)])


def test_windows_overlap_by_one_and_end_with_one_that_brings_nothing_new() -> None:
    reader = Reader(LIST_URL, batch=2)
    reader.start()
    assert asks(reader.feed([data(*range(100))])) == [{**dict(SIZES), "offset": 99, "skip": 99}]
    assert asks(reader.feed([data(*range(99, 199))])) == [
        {**dict(SIZES), "offset": 198, "skip": 198},
        {**dict(SIZES), "offset": 297, "skip": 297},
    ]
    # The first guessed window is short: the second, guessed past it, is not used.
    assert asks(reader.feed([data(*range(198, 250)), data()])) == [
        {**dict(SIZES), "offset": 249, "skip": 249}
    ]
    listing = done(reader.feed([data(249)]))
    assert ids(listing) == [f"id-{n}" for n in range(250)]
    assert listing.dialect == "limit with offset or skip, {data}"
    assert "the last brought nothing new" in listing.proof


def test_a_window_that_does_not_start_where_the_last_ended_starts_the_listing_again() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    reader.feed([data(*range(10))])
    # id-3 was deleted meanwhile: the window at offset 9 starts with id-10, and id-9 could be missed.
    assert asks(reader.feed([data(10, 11)])) == [dict(SIZES)]


def test_one_secret_cannot_overlap_so_the_next_window_starts_after_it() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    assert asks(reader.feed([data(0)])) == [{**dict(SIZES), "offset": 1, "skip": 1}]
    assert done(reader.feed([data()])).proof == "the window after the only secret is empty"


@pytest.mark.parametrize("count", [1, 9, 11, 19, 21, 99, 101, 301])
def test_one_answer_to_every_request_is_trusted_when_nothing_suggests_a_cap(count: int) -> None:
    reader = Reader(LIST_URL)
    reader.start()
    everything = data(*range(count))
    assert asks(reader.feed([everything]))[0]["offset"] == max(1, count - 1)
    assert asks(reader.feed([everything])) == [{**dict(SIZES), "page": 2}]
    listing = done(reader.feed([everything]))
    assert len(listing.secrets) == count and "nothing suggests a cap" in listing.proof
    assert listing.dialect == "one answer whatever is asked, {data}"


@pytest.mark.parametrize("count", [10, 20, 25, 50, 100, 200, 250, 500, 1000])
def test_one_answer_of_a_round_window_size_to_every_request_looks_like_a_cap(count: int) -> None:
    reader = Reader(LIST_URL)
    reader.start()
    everything = read_answer(items(*range(count)))
    reader.feed([everything])
    reader.feed([everything])
    with pytest.raises(Unprovable, match=f"{count} is a round window size") as info:
        reader.feed([everything])
    assert len(info.value.seen) == count and info.value.dialect == "one answer whatever is asked, bare array"


def test_one_answer_that_says_there_are_more_is_refused_whatever_its_size() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    first = data(*range(7), total=30)
    reader.feed([first])
    reader.feed([first])
    with pytest.raises(Unprovable, match="says that there are more"):
        reader.feed([first])


def test_a_server_paging_by_number_without_metadata_is_read_to_an_empty_page_twice() -> None:
    reader = Reader(LIST_URL, batch=2)
    reader.start()
    reader.feed([data(0, 1)])
    # offset ignored (page 1 again), page honoured.
    assert asks(reader.feed([data(0, 1)])) == [{**dict(SIZES), "page": 2}]
    assert [q["page"] for q in asks(reader.feed([data(2)]))] == [3, 4]
    again = reader.feed([data(), data()])
    assert [q["page"] for q in asks(again)] == [1, 2, 3]
    listing = done(reader.feed([data(0, 1), data(2), data()]))
    assert ids(listing) == ["id-0", "id-1", "id-2"]
    assert listing.dialect == "page/page_size without metadata, {data}"


def test_a_refused_size_is_asked_again_once_without_sizes() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    assert asks(reader.feed([Answer(refused=frozenset({"page_size"}))])) == [{}]
    assert asks(reader.feed([data(0, 1)])) == [{"offset": 1, "skip": 1}]
    with pytest.raises(ServerError, match="although no size was sent"):
        retry = Reader(LIST_URL)
        retry.feed([Answer(refused=frozenset({"limit"}))])
        retry.feed([Answer(refused=frozenset({"limit"}))])


def test_a_cursor_is_followed_to_the_answer_that_names_no_next_one() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    assert asks(reader.feed([data(0, 1, next_cursor="c2")])) == [{**dict(SIZES), "cursor": "c2"}]
    listing = done(reader.feed([data(2, next_cursor=None)]))
    assert ids(listing) == ["id-0", "id-1", "id-2"] and listing.dialect == "cursor, {data}"
    assert listing.proof == "followed the server's cursors through 2 answers to one that names no next"


def test_a_cursor_that_comes_back_is_refused() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    reader.feed([data(0, next_cursor="c1")])
    with pytest.raises(Unprovable, match="repeats an earlier one"):
        reader.feed([data(1, next_cursor="c1")])


def test_a_next_link_is_followed_on_the_same_origin_only() -> None:
    reader = Reader(LIST_URL)
    reader.start()
    (query,) = reader.feed([data(0, next="/api/v1/secrets/?after=id-0")])  # type: ignore[misc]
    assert query.link == "https://api.example.com/api/v1/secrets/?after=id-0"
    assert done(reader.feed([data(1, next=None)])).dialect == "next link, {data}"
    for link in (
        "https://evil.example.com/api/v1/secrets/?after=1",
        "http://api.example.com/api/v1/secrets/",
        "https://api.example.com:8443/api/v1/secrets/",
        "//evil.example.com/api/v1/secrets/",
        "/api/v1/other/",
    ):
        elsewhere = Reader(LIST_URL)
        with pytest.raises(ServerError, match="next link leads"):
            elsewhere.feed([data(0, next=link)])


def test_a_server_that_never_stops_answering_new_secrets_is_cut_off() -> None:
    reader = Reader(LIST_URL, batch=1)
    reader.start()
    n = 0
    with pytest.raises(Unprovable, match="did not end after 1000 requests"):
        while True:
            reader.feed([read_answer({"data": [item(n)], "pagination": {"has_next": True}})])
            n += 1


def test_read_answer_takes_the_metadata_each_dialect_gives() -> None:
    paged = read_answer({"data": [], "pagination": {"total": 0, "has_next": False}})
    assert (paged.paged, paged.total, paged.has_next, paged.chain) == (True, 0, False, None)
    counted = read_answer({"data": [], "count": 5, "has_more": True})
    assert (counted.paged, counted.total, counted.has_next) == (False, 5, True)
    assert read_answer({"data": [], "next_cursor": None}).chain == "cursor"
    assert read_answer({"data": [], "next": "abc"}).cursor == "abc"
    assert read_answer({"data": [], "next": "?page=2"}).link == "?page=2"
    with pytest.raises(ServerError, match="expected a list"):
        read_answer({"items": []})


def test_refused_params_are_the_query_parameters_a_422_names() -> None:
    body = {"detail": [{"loc": ["query", "page_size"], "msg": "x"}, {"loc": ["body", "limit"]}, "odd"]}
    assert refused_params(body) == {"page_size"}
    assert refused_params({"detail": "Not found"}) == frozenset()


@pytest.mark.parametrize("command", ["plan", "apply", "drift", "import"])
def test_every_command_that_lists_the_account_offers_the_one_way_past_a_refusal(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli import main

    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "--assume-complete-listing" in capsys.readouterr().out
