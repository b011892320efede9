"""Saved plans: write a plan with fingerprints instead of values, read it back, check it is still true."""

from __future__ import annotations

import hmac
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from reconciler.endpoint import canonical, shown
from reconciler.errors import PlanError, UsageError
from reconciler.fsutil import atomic_write, read_regular
from reconciler.models import (
    COMPARABLE_FIELDS,
    Action,
    Change,
    DesiredSecret,
    DesiredState,
    DriftItem,
    FieldChange,
    PatchValue,
    Plan,
    RemoteSecret,
    SecretValue,
    Verdict,
)
from reconciler.state import StateKey

KIND = "reconciler-plan"
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class SavedPlan:
    """A plan file as read: what to do, and what must still hold for it to be done."""

    path: Path
    plan_id: str
    # Within the plan's own directory, never above it (checked when read).
    desired_path: Path
    desired_digest: str
    key_id: str
    # In canonical form (endpoint.canonical).
    api_url: str
    changes: tuple[Mapping[str, Any], ...]
    drift: tuple[Mapping[str, Any], ...]
    # The plan was made from a listing nothing proved whole (--assume-complete-listing); applying it
    # reads the account under the same assumption.
    assume_complete_listing: bool = False
    # The HMAC the file was signed with, and the content it covers.
    signature: str = ""
    signed: str = ""


def detect(path: Path) -> SavedPlan | None:
    """The saved plan at `path`, or None when it is not one (a desired-state file).

    Decided by the parsed `kind`, not by searching the text: a JSON desired-state file may well
    mention "reconciler-plan" in a name.
    """
    try:
        # A FIFO or a device is no plan, and is not opened as one (the desired loader refuses it).
        raw = read_regular(path)
    except OSError:
        return None
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        return None
    return _parse(path, data)


def _signed_text(payload: Mapping[str, Any]) -> str:
    """The canonical text a plan's signature covers: everything in it but the signature."""
    return "plan:" + json.dumps({k: v for k, v in payload.items() if k != "signature"}, sort_keys=True)


def _remote_json(remote: RemoteSecret | None) -> dict[str, Any] | None:
    if remote is None:
        return None
    return {
        "updated_at": remote.updated_at,
        "fields": {name: remote.field_value(name) for name in COMPARABLE_FIELDS},
    }


def _patch_json(patch: Mapping[str, PatchValue], key: StateKey) -> dict[str, Any]:
    return {
        name: {"fingerprint": key.fingerprint(value)} if isinstance(value, SecretValue) else value
        for name, value in patch.items()
    }


def _field_json(fc: FieldChange) -> dict[str, Any]:
    if fc.sensitive:
        return {"field": fc.field, "sensitive": True}
    return {"field": fc.field, "before": fc.before, "after": fc.after}


def desired_path_for(out: Path, desired: Path) -> str:
    """The desired file's path as a plan saved at `out` records it: relative to the plan, and never
    leaving the plan's directory. Checked before planning, so a bad --out costs no request."""
    if os.path.abspath(out) == os.path.abspath(desired) or _same_file(out, desired):
        raise UsageError(
            f"--out {out} is the desired-state file itself; save the plan beside it (e.g. plan.json)"
        )
    relative = os.path.relpath(os.path.abspath(desired), os.path.abspath(out.parent))
    if relative.split(os.sep)[0] == os.pardir:
        raise UsageError(
            f"--out {out}: save the plan in the directory of {desired} or above it; a plan reads "
            "its desired-state file relative to itself, never from outside its own directory"
        )
    return Path(relative).as_posix()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _listing_json(plan: Plan) -> dict[str, Any]:
    note = plan.listing
    if note is None:
        return {"assume_complete": False}
    return {
        "assume_complete": note.assumed,
        "dialect": note.dialect,
        "proof": note.proof,
        "secrets": note.secrets,
    }


def write(
    path: Path,
    plan: Plan,
    desired: DesiredState,
    key: StateKey,
    api_url: str,
) -> str:
    """Save `plan` atomically; values appear only as keyed fingerprints. Returns the plan id."""
    relative = desired_path_for(path, Path(desired.path))
    plan_id = str(uuid.uuid4())
    payload = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "plan_id": plan_id,
        "desired": {"path": relative, "digest": desired.digest},
        "state_key_id": key.key_id,
        "api_url": canonical(api_url),
        "listing": _listing_json(plan),
        "summary": plan.summary(),
        "changes": [
            {
                "action": change.action.value,
                "secret_name": change.secret_name,
                "secret_id": change.secret_id,
                "previous_name": change.previous_name,
                "phase": change.phase,
                "fields": [_field_json(fc) for fc in change.fields],
                "patch": _patch_json(change.patch, key),
                "reasons": list(change.reasons),
                "precondition": _remote_json(change.remote),
            }
            for change in plan.actionable
        ],
        "drift": [
            {
                "secret_name": d.secret_name,
                "secret_id": d.secret_id,
                "verdict": d.verdict.value,
                "detail": d.detail,
            }
            for d in plan.drift
        ],
    }
    # Signed with the state key: an edit to the reviewed plan (a field, a precondition) is refused.
    payload["signature"] = key.digest(_signed_text(payload))
    # Insertion order, not sorted: `kind` comes first, so a reader sees at once what the file is.
    data = (json.dumps(payload, indent=1) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write the plan ({exc.strerror}); nothing was saved") from None
    return plan_id


def _parse(path: Path, data: dict[str, Any]) -> SavedPlan:
    if data.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{path}: plan format_version {str(data.get('format_version'))[:20]!r} is not supported "
            f"(this reconciler reads {FORMAT_VERSION!r}); plan again"
        )
    try:
        desired = data["desired"]
        relative = desired["path"]
        changes, drift = data["changes"], data.get("drift", [])
        listing = data.get("listing", {})
        if not isinstance(relative, str) or not isinstance(changes, list) or not isinstance(drift, list):
            raise TypeError("a field has the wrong type")
        if not isinstance(listing, dict):
            raise TypeError("a field has the wrong type")
        return SavedPlan(
            path=path,
            plan_id=str(data["plan_id"]),
            desired_path=path.parent / _inside(path, relative),
            desired_digest=str(desired["digest"]),
            key_id=str(data["state_key_id"]),
            api_url=str(data["api_url"]),
            changes=tuple(changes),
            drift=tuple(drift),
            assume_complete_listing=listing.get("assume_complete") is True,
            signature=str(data.get("signature", "")),
            signed=_signed_text(data),
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path}: the plan file is incomplete ({type(exc).__name__}); plan again") from None


def _inside(path: Path, relative: str) -> Path:
    """The plan's desired path, refused unless it stays within the plan's own directory."""
    parts = PurePosixPath(relative).parts
    if not relative or relative.startswith(("/", "\\")) or os.path.isabs(relative) or ".." in parts:
        raise UsageError(
            f"{path}: the plan's desired-state path {relative[:200]!r} leaves the plan's directory "
            "(absolute, or with '..'); refused, nothing was read or sent"
        )
    return Path(*parts)


def verify(saved: SavedPlan, key: StateKey, api_url: str) -> None:
    """Offline, before any request or file operation: the plan was signed under this state key, for
    the configured API URL, and its desired file stays within the plan's directory.

    The configured URL is never replaced by the plan's: a plan names the account it was made for,
    and a plan that names another is refused, so no plan file can send the API key elsewhere.
    """
    if key.key_id != saved.key_id:
        raise PlanError(
            f"{saved.path}: the plan was made under another state key (key id {saved.key_id[:32]!r}, "
            f"now {key.key_id}); values cannot be checked against it. Plan again with the same key"
        )
    if not hmac.compare_digest(key.digest(saved.signed), saved.signature):
        raise PlanError(
            f"{saved.path}: the plan file was changed after it was written (its signature does not "
            "match); plan again and review the new plan. Nothing was sent"
        )
    configured = canonical(api_url)
    if saved.api_url != configured:
        raise PlanError(
            f"{saved.path}: the plan was made for {shown(saved.api_url)}, but the configured API URL is "
            f"{shown(configured)} (--api-url, else RECONCILER_API_URL, else the default); point it at "
            "the plan's account, or plan again against this one. Nothing was sent"
        )
    if not saved.desired_path.resolve().is_relative_to(saved.path.parent.resolve()):
        raise PlanError(
            f"{saved.path}: the plan's desired-state file {saved.desired_path} resolves outside the "
            "plan's directory (through a symbolic link); refused, nothing was sent"
        )


def rebuild(
    saved: SavedPlan,
    desired: DesiredState,
    remote: tuple[RemoteSecret, ...],
    key: StateKey,
    *,
    forgotten: frozenset[str] = frozenset(),
    protected: frozenset[str] = frozenset(),
) -> Plan:
    """The saved plan (already `verify`-ed) as a Plan with values re-resolved, refused unless everything
    it assumed holds: in the account, in the desired file and in the state (`forgotten` and
    `protected` are the ids it now keeps from deletion)."""
    if desired.digest != saved.desired_digest:
        raise PlanError(
            f"{saved.path}: {desired.path} changed since the plan was made; plan again and review it"
        )
    wanted = {s.secret_name: s for s in desired.secrets}
    by_id = {s.secret_id: s for s in remote}
    names = {s.secret_name for s in remote}
    stale: list[str] = []
    changed_values: list[str] = []
    changes: list[Change] = []
    for item in saved.changes:
        action = Action(item["action"])
        name = str(item["secret_name"])
        secret_id = item.get("secret_id")
        current = by_id.get(secret_id) if secret_id else None
        reason = _stale(item, action, name, current, names, forgotten, protected)
        if reason is not None:
            stale.append(f"{name} ({reason})")
        taken = _name_taken(item, current, remote)
        if taken is not None:
            stale.append(f"{name} ({taken})")
        patch = _patch(item["patch"], wanted.get(name), key)
        if patch is None:
            changed_values.append(name)
            patch = {}
        changes.append(_change(item, action, name, current, patch))
    problems = []
    if changed_values:
        problems.append(
            "the value of "
            + ", ".join(sorted(set(changed_values)))
            + " no longer matches the plan's fingerprint"
        )
    if stale:
        problems.append("stale plan: " + ", ".join(stale))
    if problems:
        raise PlanError(
            f"{saved.path}: refusing to apply, nothing was written: " + "; ".join(problems) + ". Plan again"
        )
    drift = tuple(
        DriftItem(str(d["secret_name"]), d.get("secret_id"), Verdict(d["verdict"]), str(d["detail"]))
        for d in saved.drift
    )
    return Plan(changes=tuple(changes), drift=drift)


def _stale(
    item: Mapping[str, Any],
    action: Action,
    name: str,
    current: RemoteSecret | None,
    names: set[str],
    forgotten: frozenset[str],
    protected: frozenset[str],
) -> str | None:
    """Why a saved change no longer holds in the account or the state, or None when it does."""
    secret_id = item.get("secret_id")
    if action is Action.CREATE:
        return "now exists remotely" if name in names else None
    if current is None:
        return "no longer exists remotely"
    if item.get("precondition") != _remote_json(current):
        return "changed remotely since the plan"
    if action is Action.DELETE and secret_id in forgotten:
        return "forgotten since the plan: reconciler no longer manages it"
    if action is Action.DELETE and secret_id in protected:
        return "protected since the plan"
    return None


def _name_taken(
    item: Mapping[str, Any], current: RemoteSecret | None, remote: tuple[RemoteSecret, ...]
) -> str | None:
    """Why a saved rename no longer holds: another secret took the new name (renaming now would leave
    two secrets with one name)."""
    new_name = item["patch"].get("secret_name") if isinstance(item.get("patch"), dict) else None
    if current is None or not isinstance(new_name, str) or new_name == current.secret_name:
        return None
    secret_id = item.get("secret_id")
    holders = sorted(s.secret_id for s in remote if s.secret_name == new_name and s.secret_id != secret_id)
    if not holders:
        return None
    taken = f"another secret, {', '.join(holders)}, took the name since the plan"
    return f"renamed from {current.secret_name}: {taken}"


def _patch(
    saved: Mapping[str, Any], want: DesiredSecret | None, key: StateKey
) -> dict[str, PatchValue] | None:
    """The saved patch with each fingerprinted value replaced by the file's value; None when a value
    in the file no longer matches its fingerprint."""
    patch: dict[str, PatchValue] = {}
    for field, value in dict(saved).items():
        if isinstance(value, dict) and "fingerprint" in value:
            if want is None or want.value is None or key.fingerprint(want.value) != value["fingerprint"]:
                return None
            patch[field] = want.value
        else:
            patch[field] = value
    return patch


def _change(
    item: Mapping[str, Any],
    action: Action,
    name: str,
    current: RemoteSecret | None,
    patch: dict[str, PatchValue],
) -> Change:
    """A saved change as a Change again, against the secret as the account holds it now."""
    fields = tuple(
        FieldChange(f["field"], None, None, sensitive=True)
        if f.get("sensitive")
        else FieldChange(f["field"], f.get("before"), f.get("after"))
        for f in item.get("fields", [])
    )
    return Change(
        action=action,
        secret_name=name,
        secret_id=item.get("secret_id"),
        fields=fields,
        patch=MappingProxyType(patch),
        reasons=tuple(item.get("reasons", ())),
        remote=current,
        phase=int(item.get("phase", 0)),
        previous_name=item.get("previous_name"),
    )
