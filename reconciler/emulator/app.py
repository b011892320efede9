"""The emulator's HTTP surface: io.net's five secrets operations, their validation and list styles."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from reconciler.emulator.config import EmulatorConfig, PatchNull
from reconciler.emulator.errors import EmulatorHttpError
from reconciler.emulator.middleware import (
    ECHO_STATUSES,
    USER_SCOPE_KEY,
    EmulatorMiddleware,
    EmulatorState,
    account_id,
)
from reconciler.emulator.store import Store, wall_clock_us

SECRETS_PATH = "/api/v1/secrets/"
DEFAULT_PAGE_SIZE = 50
DEFAULT_LIMIT = 10
# Where tests and bench/ have always looked them up: the app is the emulator's public face.
__all__ = ["ECHO_STATUSES", "EmulatorState", "account_id", "create_app", "state_of"]

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]
Value = Annotated[str, StringConstraints(strict=True, min_length=4, max_length=1024)]


class SecretCreate(BaseModel):
    # Strict: io.net's service rejects a number where a string is expected, so must we.
    model_config = ConfigDict(strict=True)

    secret_name: Name
    secret_value: Value
    tool_name: Name | None = None
    tool_arg: Name | None = None
    is_default_for_tool: bool | None = None


class SecretUpdate(BaseModel):
    model_config = ConfigDict(strict=True)

    secret_name: Name | None = None
    secret_value: Value | None = None
    tool_name: Name | None = None
    tool_arg: Name | None = None
    is_default_for_tool: bool | None = None


def _user(request: Request) -> str:
    user_id: str = request.scope[USER_SCOPE_KEY]
    return user_id


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # pydantic adds `input` and `ctx` to each error; they would echo the submitted secret value.
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmulatorHttpError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


def create_app(config: EmulatorConfig, *, clock: Callable[[], int] = wall_clock_us) -> FastAPI:
    """The emulator as an ASGI app; its store opens here, so it also works without lifespan events."""
    offset_us = round(config.clock_offset_s * 1_000_000)
    store = Store(
        config.db_path,
        quota_bytes=config.quota_bytes,
        unique_names=config.duplicate_names == "reject",
        clock=(lambda: clock() + offset_us) if offset_us else clock,
    )
    state = EmulatorState(config=config, store=store)
    app = FastAPI(
        title="IO Intelligence secrets (reconciler emulator)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.emulator = state
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(EmulatorHttpError, _refused)
    app.add_middleware(EmulatorMiddleware, state=state)
    _add_secrets(app, state)
    if config.inspect:
        _add_inspection(app, state)
    return app


def _add_secrets(app: FastAPI, state: EmulatorState) -> None:
    """io.net's five secrets operations."""
    store = state.store

    @app.get(SECRETS_PATH)
    async def list_secrets(
        request: Request,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        return _list(state, _user(request), page, page_size, limit, offset, cursor)

    @app.post(SECRETS_PATH)
    async def create_secret(request: Request, body: SecretCreate) -> Response:
        secret = store.create(
            _user(request),
            secret_name=body.secret_name,
            secret_value=body.secret_value,
            tool_name=body.tool_name,
            tool_arg=body.tool_arg,
            is_default_for_tool=bool(body.is_default_for_tool),
        )
        return JSONResponse(state.secret_info(secret))

    @app.get(SECRETS_PATH + "{secret_id}")
    async def get_secret(request: Request, secret_id: uuid.UUID) -> Response:
        return JSONResponse(state.secret_info(store.get(_user(request), str(secret_id))))

    @app.patch(SECRETS_PATH + "{secret_id}")
    async def update_secret(
        request: Request, secret_id: uuid.UUID, body: SecretUpdate | None = None
    ) -> Response:
        changes = _changes(body, state.config.patch_null) if body is not None else {}
        store.update(_user(request), str(secret_id), changes)
        return JSONResponse({"message": "Secret updated successfully"})

    @app.delete(SECRETS_PATH + "{secret_id}")
    async def delete_secret(request: Request, secret_id: uuid.UUID) -> Response:
        store.delete(_user(request), str(secret_id))
        return JSONResponse({"message": "Secret deleted successfully"})


def _list(
    state: EmulatorState,
    user_id: str,
    page: int,
    page_size: int | None,
    limit: int | None,
    offset: int,
    cursor: str | None,
) -> Response:
    """One answer to GET /api/v1/secrets/ in the configured list style."""
    config = state.config
    store = state.store
    style = config.list_style
    if config.cap is not None or style in ("envelope", "array"):
        # Every paging parameter ignored: the first `cap` secrets, or all of them.
        found = store.page(user_id, 0, config.cap) if config.cap is not None else store.all(user_id)
        data = [state.secret_info(s) for s in found]
        return JSONResponse(data if style == "array" else {"data": data})
    if style == "paged":
        return _paged(state, user_id, page, page_size, limit)
    size = min(limit or config.default_limit or DEFAULT_LIMIT, config.max_limit)
    if style == "offset":
        found = store.page(user_id, offset, size)
        return JSONResponse({"data": [state.secret_info(s) for s in found]})
    if cursor is not None and not (cursor.startswith("c") and cursor[1:].isdigit()):
        return _query_error("cursor", "Invalid cursor", "value_error")
    # One more than asked tells whether a next cursor is due; keyed by creation order, it does
    # not shift when secrets are created or deleted meanwhile.
    found = store.after(user_id, int(cursor[1:]) if cursor else 0, size + 1)
    more = len(found) > size
    data = [state.secret_info(s) for s in found[:size]]
    return JSONResponse({"data": data, "next_cursor": f"c{found[size - 1].seq}" if more else None})


def _changes(body: SecretUpdate, patch_null: PatchNull) -> dict[str, str | bool | None]:
    """The fields a PATCH body changes; what a null does depends on --patch-null."""
    changes: dict[str, str | bool | None] = {}
    for name in sorted(body.model_fields_set):
        value = getattr(body, name)
        if value is not None:
            changes[name] = value
        elif name in ("secret_name", "secret_value"):
            # A secret always has a name and a value: null cannot clear them, in either mode.
            continue
        elif patch_null == "clear":
            changes[name] = False if name == "is_default_for_tool" else None
    return changes


def _add_inspection(app: FastAPI, state: EmulatorState) -> None:
    """The --inspect routes: the request log, and a reset between tests."""

    @app.get("/_emulator/requests")
    async def inspect_requests() -> Response:
        return JSONResponse(list(state.request_log))

    @app.post("/_emulator/reset")
    async def inspect_reset() -> Response:
        state.reset()
        return JSONResponse({"message": "Emulator reset"})


def _query_error(name: str, msg: str, kind: str) -> JSONResponse:
    """A 422 in FastAPI's shape, for checks that depend on the configuration."""
    return JSONResponse({"detail": [{"loc": ["query", name], "msg": msg, "type": kind}]}, status_code=422)


def _paged(
    state: EmulatorState, user_id: str, page: int, page_size: int | None, limit: int | None
) -> Response:
    """`{data, pagination}`: `limit`, when given, is the page size instead of `page_size`."""
    config = state.config
    for name, asked in (("page_size", page_size), ("limit", limit)):
        if asked is not None and asked > config.max_limit:
            message = f"Input should be less than or equal to {config.max_limit}"
            return _query_error(name, message, "less_than_equal")
    size = limit or page_size or config.default_limit or DEFAULT_PAGE_SIZE
    total = state.store.count(user_id)
    offset = (page - 1) * size
    secrets = state.store.page(user_id, offset, size) if offset < total else []
    total_pages = math.ceil(total / size)
    pagination = {
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": total_pages,
        "has_next": page < total_pages,
        "has_previous": page > 1,
    }
    return JSONResponse({"data": [state.secret_info(s) for s in secrets], "pagination": pagination})


def state_of(app: FastAPI) -> EmulatorState:
    """The state behind an app made by create_app (for the command's shutdown and for tests)."""
    state: EmulatorState = app.state.emulator
    return state
