"""Saved plans: write a plan with fingerprints instead of values, read it back, check it is still true."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.errors import PlanError, UsageError
from reconciler.models import (
    COMPARABLE_FIELDS,
    Action,
    Change,
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
    desired_path: Path
    desired_digest: str
    key_id: str
    api_url: str
    changes: tuple[Mapping[str, Any], ...]
    drift: tuple[Mapping[str, Any], ...]
    # The HMAC the file was signed with, and the content it covers.
    signature: str = ""
    signed: str = ""


def is_plan_file(path: Path) -> bool:
    """A saved plan is JSON naming its kind; a desired-state file never is."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and KIND.encode() in head


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


def write(
    path: Path,
    plan: Plan,
    desired: DesiredState,
    key: StateKey,
    api_url: str,
) -> str:
    """Save `plan` atomically; values appear only as keyed fingerprints. Returns the plan id."""
    plan_id = str(uuid.uuid4())
    payload = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "plan_id": plan_id,
        "desired": {"path": desired.path, "digest": desired.digest},
        "state_key_id": key.key_id,
        "api_url": api_url,
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # Insertion order, not sorted: `kind` must come first so the file is recognised by its head.
            json.dump(payload, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return plan_id


def read(path: Path) -> SavedPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the saved plan ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"{path}: not a reconciler plan file")
    if data.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{path}: plan format_version {data.get('format_version')!r} is not supported "
            f"(this reconciler reads {FORMAT_VERSION!r}); plan again"
        )
    try:
        desired = data["desired"]
        return SavedPlan(
            path=path,
            plan_id=str(data["plan_id"]),
            # The desired file is found relative to the plan when it was saved relative to the cwd.
            desired_path=Path(desired["path"]),
            desired_digest=str(desired["digest"]),
            key_id=str(data["state_key_id"]),
            api_url=str(data["api_url"]),
            changes=tuple(data["changes"]),
            drift=tuple(data.get("drift", ())),
            signature=str(data.get("signature", "")),
            signed=_signed_text(data),
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path}: the plan file is incomplete ({exc}); plan again") from exc


def rebuild(
    saved: SavedPlan,
    desired: DesiredState,
    remote: tuple[RemoteSecret, ...],
    key: StateKey,
) -> Plan:
    """The saved plan as a Plan with values re-resolved, refused unless everything it assumed holds."""
    if key.key_id != saved.key_id:
        raise PlanError(
            f"{saved.path}: the plan was made under another state key (key id {saved.key_id}, now "
            f"{key.key_id}); values cannot be checked against it. Plan again with the same key"
        )
    if not hmac.compare_digest(key.digest(saved.signed), saved.signature):
        raise PlanError(
            f"{saved.path}: the plan file was changed after it was written (its signature does not "
            "match); plan again and review the new plan"
        )
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
        precondition = item.get("precondition")
        if action is Action.CREATE:
            if name in names:
                stale.append(f"{name} (now exists remotely)")
        elif current is None:
            stale.append(f"{name} (no longer exists remotely)")
        elif precondition != _remote_json(current):
            stale.append(f"{name} (changed remotely since the plan)")
        patch: dict[str, PatchValue] = {}
        for field, value in dict(item["patch"]).items():
            if isinstance(value, dict) and "fingerprint" in value:
                want = wanted.get(name)
                if want is None or want.value is None or key.fingerprint(want.value) != value["fingerprint"]:
                    changed_values.append(name)
                    continue
                patch[field] = want.value
            else:
                patch[field] = value
        fields = tuple(
            FieldChange(f["field"], None, None, sensitive=True)
            if f.get("sensitive")
            else FieldChange(f["field"], f.get("before"), f.get("after"))
            for f in item.get("fields", [])
        )
        changes.append(
            Change(
                action=action,
                secret_name=name,
                secret_id=secret_id,
                fields=fields,
                patch=MappingProxyType(patch),
                reasons=tuple(item.get("reasons", ())),
                remote=current,
                phase=int(item.get("phase", 0)),
                previous_name=item.get("previous_name"),
            )
        )
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
