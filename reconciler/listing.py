"""The account's listing: the dialects a secrets list may speak, and the proof it was read whole.

The rules, and where they refuse wrongly, are in the README ("How the listing is trusted").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import takewhile
from urllib.parse import urljoin, urlsplit

from reconciler.answers import Answer
from reconciler.errors import IncompleteListingError, ServerError
from reconciler.models import ListingNote, RemoteSecret
from reconciler.text import plural

log = logging.getLogger("reconciler.listing")

FLAG = "--assume-complete-listing"
# Asked for in every size parameter; a server that allows less answers with its own maximum.
WINDOW = 100
SIZE_PARAMS = ("limit", "page_size")
PAGING_PARAMS = frozenset({*SIZE_PARAMS, "offset", "skip", "page", "cursor"})
# Window sizes servers use as a default or a maximum: an answer of exactly this many, whatever paging
# was asked for, looks like a cap.
ROUND_WINDOWS = frozenset({10, 20, 25, 50, 100, 200, 250, 500, 1000})
# Fewer secrets than this in an answer that ignores paging are taken as the whole account.
FEW = 10
# A listing that changes under us starts again, this many times at most.
ATTEMPTS = 3
# A server that keeps answering new secrets is cut off after this many requests in one reading.
MAX_REQUESTS = 1_000
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Query:
    """One list request: query parameters, or a `next` link (absolute, already checked)."""

    params: tuple[tuple[str, int | str], ...] = ()
    link: str | None = None
    # Asked with the first question on a guess (Reader's `expect`): its failure decides nothing.
    ahead: bool = False


# Stands for the answer to a question asked ahead that failed (a server may refuse a page past its
# last); the page is asked again in its turn if the listing needs it.
UNANSWERED = Answer(shape="unanswered")


@dataclass(frozen=True)
class Listing:
    """Every secret of the account, with how they were read and what proved that nothing was missed."""

    secrets: tuple[RemoteSecret, ...]
    dialect: str
    proof: str
    requests: int
    assumed: bool = False
    # Pages read once (`once`): every secret listed was there, but one missing proves nothing.
    whole: bool = True

    def note(self) -> ListingNote:
        return ListingNote(self.dialect, self.proof, len(self.secrets), self.requests, self.assumed)

    def describe(self) -> str:
        read = f"{plural(len(self.secrets), 'secret')} in {plural(self.requests, 'request')}"
        return f"{read} ({self.dialect}): {self.proof}"


class Unprovable(Exception):
    """The answers do not prove the listing whole; `seen` is what they held."""

    def __init__(self, reason: str, seen: Sequence[RemoteSecret], dialect: str, requests: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seen = tuple(seen)
        self.dialect = dialect
        self.requests = requests

    def seen_text(self) -> str:
        return (
            f"the listing is not proven to hold every secret: {self.reason}. "
            f"Seen: {plural(len(self.seen), 'secret')} "
            f"in {plural(self.requests, 'request')} ({self.dialect})"
        )

    def error(self) -> IncompleteListingError:
        return IncompleteListingError(
            f"listing secrets: {self.seen_text()}. A plan made from part of the account would create "
            "again every secret it missed, so reconciler stops here and nothing was written. If you "
            f"know the account holds no other secret, pass {FLAG}"
        )


class _Changed(Exception):
    """The answers contradict each other: the account changed while it was listed, or the server
    pages inconsistently. The listing starts again."""


Stage = Callable[[Sequence[Answer]], list[Query] | Listing]


class Reader:
    """Decides, from the answers alone, what to ask next and whether the listing is proven whole:
    pages with metadata read to the last and again, windows by offset or skip that overlap by one, a
    cursor or link followed to its end, or one answer to everything that does not look capped.

    `start()` gives the first questions; `feed(answers)` takes their answers, in the order asked, and
    gives the next questions or the Listing. It raises Unprovable when the answers cannot prove it.

    `once`: pages are read once, not twice; the Listing then says it is not proven whole. Enough to
    read back secrets just written, not to conclude that one is missing.

    `expect`: how many secrets the account is thought to hold (the state's, or the plan's before a
    read-back). When they fill more than one window, the next pages are asked with the first question.
    """

    def __init__(self, list_url: str, batch: int = 4, *, once: bool = False, expect: int = 0) -> None:
        self.list_url = list_url
        # How many requests may be asked at once where the next ones can be guessed.
        self.batch = max(1, batch)
        self.once = once
        # Questions asked with the first. A server that pages by number answers them, a round trip
        # sooner; any other ignores `page`, and those answers are dropped (at most batch - 1).
        self.ahead = min(self.batch, math.ceil(expect / WINDOW)) if expect > WINDOW else 1
        self.sizes = True
        self.attempt = 1
        self.requests = 0
        self._begin()

    def _begin(self) -> None:
        self.stage: Stage = self._first
        self.asked = 0
        self.first = Answer()
        self.dialect = "not known yet"
        self.secrets: list[RemoteSecret] = []
        self.seen: set[str] = set()
        # Windows by offset.
        self.window = 0
        self.windows = 0
        self.offsets: list[int] = []
        # Pages; the first page of each reading sets the page size and the server's count.
        self.metadata = False
        self.numbers: list[int] = []
        self.previous: tuple[str, ...] | None = None
        self.passes = 0
        self.page_size = 0
        self.first_total: int | None = None
        self.short = False
        self.pages_read = 0
        # Cursors and links.
        self.tokens: set[str] = set()

    # -- the protocol -------------------------------------------------------------------------------

    def start(self) -> list[Query]:
        ahead = (Query(self._query(page=number).params, ahead=True) for number in range(2, self.ahead + 1))
        return [self._query(), *ahead]

    def feed(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        self.requests += len(answers)
        self.asked += len(answers)
        try:
            if self.asked > MAX_REQUESTS:
                raise self._unprovable(
                    f"the listing did not end after {MAX_REQUESTS} requests; the server keeps answering"
                )
            return self.stage(answers)
        except _Changed as changed:
            if self.attempt >= ATTEMPTS:
                raise self._unprovable(f"{changed} (the listing was started {ATTEMPTS} times)") from None
            log.info("listing secrets again: %s", changed)
            self.attempt += 1
            self._begin()
            return self.start()

    # -- the first answer decides how to go on -----------------------------------------------------

    def _first(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        # The answers to pages asked ahead follow the first; only pages with metadata read them.
        answer = answers[0]
        if answer.refused:
            names = ", ".join(sorted(answer.refused))
            if not self.sizes:
                raise ServerError(f"listing secrets: the server refused {names} although no size was sent")
            # The server allows less than we asked for: take its default window instead.
            log.info("the server refused %s=%d; listing with its own window", names, WINDOW)
            self.sizes = False
            return self.start()
        self.first = answer
        if answer.paged:
            self.metadata = True
            self.dialect = f"page/page_size with pagination metadata, {answer.shape}"
            # Pages asked ahead are taken up to the first that failed or was refused: it is asked
            # again in its turn, if the listing reaches it.
            taken = takewhile(lambda a: a is not UNANSWERED and not a.refused, answers[1:])
            pages = [answer, *taken]
            self.numbers = list(range(1, len(pages) + 1))
            return self._pages(pages)
        if answer.chain is not None:
            self.dialect = f"{answer.chain}, {answer.shape}"
            return self._chain([answer])
        self.dialect = f"one answer, {answer.shape}"
        if not answer.items:
            if answer.has_next or answer.total:
                raise self._unprovable("the server answered no secrets but says that there are some")
            return self._done("the server answered no secrets and says nothing of more")
        self._take(answer.items, "the first answer held one secret twice")
        # Overlap by one secret, so a window that does not start where the last ended shows a change.
        # One secret cannot overlap: the next window then starts after it.
        offset = len(answer.items) - 1 or 1
        self.stage = self._offset_probe
        return [self._query(offset=offset, skip=offset)]

    def _offset_probe(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        (answer,) = answers
        first = self.first
        if answer.refused or answer.ids == first.ids:
            # offset and skip are ignored: try page, else it is one answer to everything.
            self.stage = self._page_probe
            return [self._query(page=2)]
        self._same_shape(answer)
        self.dialect = f"limit with offset or skip, {first.shape}"
        self.window = len(first.items)
        self.windows = 1
        if len(first.items) == 1:
            if not answer.items:
                return self._done("the window after the only secret is empty")
            raise _Changed("secrets appeared after the first answer held only one")
        if self._window(answer, len(first.items) - 1):
            return self._done(self._windows_proof())
        return self._next_windows(short=len(answer.items) < self.window)

    def _page_probe(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        (answer,) = answers
        if answer.refused or answer.ids == self.first.ids:
            return self._whole()
        self._same_shape(answer)
        # The server pages by number and says nothing of how many there are.
        self.dialect = f"page/page_size without metadata, {self.first.shape}"
        self.secrets, self.seen = [], set()
        self.numbers = [1, 2]
        return self._pages([self.first, answer])

    # -- windows by offset or skip -------------------------------------------------------------------

    def _window(self, answer: Answer, offset: int) -> bool:
        """Take one window; True when it brought nothing new (the listing is then whole)."""
        self._same_shape(answer)
        if not answer.items or answer.ids[0] != self.secrets[offset].secret_id:
            raise _Changed(
                f"the window at offset {offset} did not start with the secret the previous one ended "
                "with (the account changed while it was listed)"
            )
        new = answer.items[1:]
        self._take(new, f"the window at offset {offset} repeated secrets already listed")
        self.window = max(self.window, len(answer.items))
        self.windows += 1
        return not new

    def _next_windows(self, *, short: bool) -> list[Query]:
        # After a full window the next ones are guessed and asked at once; after a short one only the
        # window that should bring nothing new.
        end = len(self.secrets) - 1
        count = 1 if short else self.batch
        self.offsets = [end + i * (self.window - 1) for i in range(count)]
        self.stage = self._windows
        return [self._query(offset=o, skip=o) for o in self.offsets]

    def _windows(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        short = False
        for offset, answer in zip(self.offsets, answers, strict=True):
            if offset != len(self.secrets) - 1:
                break  # guessed past a window that came back short
            if self._window(answer, offset):
                return self._done(self._windows_proof())
            short = len(answer.items) < self.window
        return self._next_windows(short=short)

    def _windows_proof(self) -> str:
        return (
            f"{self.windows} windows of up to {self.window}, each starting with the secret the previous "
            "one ended with; the last brought nothing new"
        )

    # -- pages ---------------------------------------------------------------------------------------

    def _pages(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        ended = False
        for number, answer in zip(self.numbers, answers, strict=True):
            ended = self._page(number, answer)
            if ended:
                break
        if ended:
            return self._end_pass()
        start = self.numbers[-1] + 1
        count = self.batch
        if self.metadata and self.first_total is not None and self.page_size:
            count = max(1, math.ceil(self.first_total / self.page_size) - start + 1)
        self.numbers = list(range(start, start + count))
        self.stage = self._pages
        return [self._query(page=n) for n in self.numbers]

    def _page(self, number: int, answer: Answer) -> bool:
        """Take one page; True when it is the last (without metadata: when it is empty)."""
        self._same_shape(answer)
        if number == 1:
            self.page_size = len(answer.items)
            self.first_total = answer.total
            self.short = False
            self.pages_read = 0
        elif answer.total != self.first_total:
            raise _Changed(f"the server's count went from {self.first_total} to {answer.total} while listed")
        if not self.metadata:
            if not answer.items:
                return True
            if self.short:
                raise _Changed(f"page {number} follows a shorter page (the account changed while listed)")
            self.short = len(answer.items) < self.page_size
            self._take(answer.items, f"page {number} repeated secrets already listed")
            self.pages_read = number
            return False
        read = len(self.secrets) + len(answer.items)
        last = answer.has_next is False or (
            answer.has_next is None and self.first_total is not None and read >= self.first_total
        )
        if not last and not answer.items:
            raise _Changed(f"page {number} is empty although the server said more pages follow")
        if not last and len(answer.items) < self.page_size:
            raise _Changed(f"page {number} is shorter than page 1 although the server said more follow")
        self._take(
            answer.items,
            f"page {number} repeated secrets already listed although the server said more pages follow",
        )
        self.pages_read = number
        return last

    def _end_pass(self) -> list[Query] | Listing:
        total = self.first_total
        self._counted(total)
        agrees = "; the server's count agrees" if total is not None else ""
        self.passes += 1
        if self.metadata and self.passes == 1 and self.pages_read == 1:
            # One answer: nothing can have changed between two requests.
            said = "the server's count agrees" if total is not None else "the server says no page follows"
            return self._done(f"one page; {said}")
        if self.once:
            listing = self._done(f"read once, page by page{agrees}; not proven whole")
            return replace(listing, whole=False)
        ids = tuple(s.secret_id for s in self.secrets)
        if ids == self.previous:
            return self._done(f"read twice, page by page, with the same {len(ids)} secrets{agrees}")
        if self.previous is not None:
            if self.attempt >= ATTEMPTS:
                raise self._unprovable(
                    f"the account changed between two readings of its pages, {ATTEMPTS} times in a row"
                )
            self.attempt += 1
        # Pages can shift while they are read (a delete moves a secret onto a page already read), and
        # nothing in one reading shows it: the same pages are read again and must hold the same secrets.
        self.previous = ids
        self.secrets, self.seen = [], set()
        # Without metadata, the empty page that ended the reading is read again too.
        count = self.pages_read + (0 if self.metadata else 1)
        self.numbers = list(range(1, count + 1))
        self.asked = 0
        self.stage = self._pages
        return [self._query(page=n) for n in self.numbers]

    # -- cursors and links ---------------------------------------------------------------------------

    def _chain(self, answers: Sequence[Answer]) -> list[Query] | Listing:
        (answer,) = answers
        self._same_shape(answer)
        self._take(answer.items, "the next cursor led back to secrets already listed")
        token = answer.cursor if answer.cursor is not None else answer.link
        if token is None:
            self._counted(self.first.total)
            what = "cursor" if self.first.chain == "cursor" else "link"
            through = plural(self.asked, "answer")
            return self._done(f"followed the server's {what}s through {through} to one that names no next")
        if token in self.tokens:
            raise self._unprovable("the server's next cursor repeats an earlier one: its listing never ends")
        self.tokens.add(token)
        self.stage = self._chain
        if answer.cursor is not None:
            return [self._query(cursor=token)]
        return [Query(link=self._follow(token))]

    def _follow(self, link: str) -> str:
        """The absolute URL of a `next` link, refused unless it stays on the secrets list of our origin:
        the API key goes with every request."""
        url = urljoin(self.list_url, link)
        if _origin(self.list_url) != _origin(url):
            raise ServerError(
                "listing secrets: the server's next link leads to another origin than --api-url; it was "
                "not followed (the API key would go with it)"
            )
        if urlsplit(url).path.rstrip("/") != urlsplit(self.list_url).path.rstrip("/"):
            raise ServerError(
                "listing secrets: the server's next link leads outside the secrets list; it was not followed"
            )
        return url

    # -- one answer to everything --------------------------------------------------------------------

    def _whole(self) -> Listing:
        first = self.first
        count = len(first.items)
        self.dialect = f"one answer whatever is asked, {first.shape}"
        if first.has_next or (first.total is not None and first.total != count):
            raise self._unprovable(
                f"the server ignored limit, offset, skip and page, answered {count} secrets to each "
                "request, and says that there are more"
            )
        if count >= FEW and count in ROUND_WINDOWS:
            raise self._unprovable(
                f"the server ignored limit, offset, skip and page and answered the same {count} secrets "
                f"to each request; {count} is a round window size, which is what a cap looks like"
            )
        why = f"fewer than {FEW}" if count < FEW else "not a round window size"
        return self._done(
            f"the server ignored every paging parameter and answered the same {count} to each request; "
            f"nothing suggests a cap ({count} is {why})"
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _query(self, **position: int | str) -> Query:
        sizes = [(name, WINDOW) for name in SIZE_PARAMS] if self.sizes else []
        params: list[tuple[str, int | str]] = [*sizes, *position.items()]
        return Query(tuple(params))

    def _same_shape(self, answer: Answer) -> None:
        if answer.refused:
            raise _Changed(f"the server refused {', '.join(sorted(answer.refused))} after accepting it")
        if (answer.shape, answer.paged) != (self.first.shape, self.first.paged):
            raise _Changed("the server changed the shape of its answers while listed")

    def _take(self, items: Iterable[RemoteSecret], repeated: str) -> None:
        for secret in items:
            if secret.secret_id in self.seen:
                raise _Changed(repeated)
            self.seen.add(secret.secret_id)
            self.secrets.append(secret)

    def _counted(self, total: int | None) -> None:
        if total is not None and len(self.secrets) != total:
            raise _Changed(f"the listing returned {len(self.secrets)} secrets but the server counts {total}")

    def _done(self, proof: str) -> Listing:
        return Listing(tuple(self.secrets), self.dialect, proof, self.requests)

    def _unprovable(self, reason: str) -> Unprovable:
        return Unprovable(reason, self.secrets, self.dialect, self.requests)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range
        return scheme, "", -1
