"""The state key and what it signs: value fingerprints, field digests, and the binding to one account."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.endpoint import canonical
from reconciler.models import FieldValue, SecretValue

STATE_KEY_ENV = "RECONCILER_STATE_KEY"


@dataclass(frozen=True)
class StateKey:
    """The HMAC key for fingerprints, where it came from, and a public id that names it."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"reconciler key id v1", hashlib.sha256).hexdigest()[:16]

    def digest(self, text: str) -> str:
        # surrogatepass: a value holding undecodable bytes from the environment still fingerprints.
        return hmac.new(self.secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def fingerprint(self, value: SecretValue) -> str:
        return self.digest("value:" + value.reveal())


def state_key(environ: Mapping[str, str], api_key: str) -> StateKey:
    """RECONCILER_STATE_KEY when set; otherwise a key derived from the API key.

    The derived key needs no extra secret in CI, and a leaked state file alone cannot be used to
    guess values. Rotating the API key changes it: the state is then kept for the same account (told
    by its user_id, see `check_account`), but its value fingerprints cannot be read any more.
    """
    explicit = environ.get(STATE_KEY_ENV, "")
    if explicit:
        return StateKey(explicit.encode(), STATE_KEY_ENV)
    derived = hmac.new(api_key.encode(), b"reconciler state key v1", hashlib.sha256).digest()
    return StateKey(derived, "derived from the API key")


def fields_digest(key: StateKey, fields: Mapping[str, FieldValue]) -> str:
    return key.digest("fields:" + json.dumps(dict(fields), sort_keys=True))


@dataclass(frozen=True)
class Account:
    """Which account a state belongs to: the canonical API URL, and keyed digests of the account's
    user_id (empty while no secret has shown it) and of the API key that last wrote the state.

    `user_tag` ("salt:digest") tells the account by its user_id without the state key, so a state
    written under a key that is gone (a rotated API key) can still be matched to its account.
    """

    api_url: str
    user: str
    api_key: str
    user_tag: str = ""


def user_digest(key: StateKey, user_id: str) -> str:
    return key.digest("user_id:" + user_id)


def user_tag(salt: str, user_id: str) -> str:
    return salt + ":" + hmac.new(salt.encode(), b"user_id:" + user_id.encode(), hashlib.sha256).hexdigest()


def tag_matches(tag: str, user_id: str) -> bool:
    salt, _, _digest = tag.partition(":")
    return bool(salt) and hmac.compare_digest(user_tag(salt, user_id), tag)


def bind(
    key: StateKey, api_url: str, api_key: str, user_ids: Iterable[str], previous: Account | None = None
) -> Account:
    """The binding to record for this run; an account that shows no user_id keeps the one known."""
    users = sorted({u for u in user_ids if u})
    same_url = previous is not None and previous.api_url == canonical(api_url)
    known = previous if same_url else None
    if users:
        salt = known.user_tag.partition(":")[0] if known is not None and known.user_tag else ""
        user, tag = user_digest(key, users[0]), user_tag(salt or secrets.token_hex(16), users[0])
    else:
        user, tag = (known.user, known.user_tag) if known is not None else ("", "")
    return Account(canonical(api_url), user, key.digest("api_key:" + api_key), tag)
