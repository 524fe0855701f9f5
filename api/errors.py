"""RFC 9457 problem details for every error: domain errors, validation, routing, and the unexpected."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain import errors as e
from infra import metrics
from infra.knowledge import load_problem_catalogue

log = logging.getLogger("madoguchi.api")

PROBLEM = "application/problem+json"

STATUS_OF: list[tuple[type[e.DomainError], int]] = [
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.InvalidState, 409),
    (e.Conflict, 409),
    (e.PreconditionFailed, 412),
    (e.PreconditionRequired, 428),
    (e.ValidationFailed, 422),
    (e.MalformedRequest, 400),
    (e.Gone, 410),
    (e.QuotaExceeded, 413),
    (e.RateLimited, 429),
    (e.Unavailable, 503),
]

# Titles are per status; `code` is the stable machine-readable member front ends switch on.
TITLES: dict[int, tuple[str, str]] = {
    400: ("リクエストが正しくありません", "Bad request"),
    401: ("認証が必要です", "Authentication required"),
    403: ("この操作は許可されていません", "Forbidden"),
    404: ("見つかりません", "Not found"),
    405: ("このメソッドは使えません", "Method not allowed"),
    406: ("この形式では応答できません", "Not acceptable"),
    409: ("現在の状態ではこの操作はできません", "Conflict"),
    410: ("すでに利用できなくなっています", "Gone"),
    412: ("ほかの更新が先に行われました", "Precondition failed"),
    413: ("リクエストが大きすぎます", "Content too large"),
    415: ("この形式のデータは受け付けられません", "Unsupported media type"),
    422: ("入力内容に誤りがあります", "Unprocessable content"),
    428: ("If-Match ヘッダーが必要です", "Precondition required"),
    429: ("しばらく時間をおいてから再度お試しください", "Too many requests"),
    431: ("リクエストヘッダーが大きすぎます", "Request header fields too large"),
    500: ("サーバーで問題が発生しました", "Internal server error"),
    503: ("ただいまご利用いただけません", "Service unavailable"),
}

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    431: "request_header_fields_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


class BodyTooLarge(StarletteHTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it instead of turning it into a 400."""

    def __init__(self) -> None:
        super().__init__(413)


def prefers_english(accept_language: str | None) -> bool:
    """Japanese unless the caller ranks English above it (RFC 9110 §12.5.4 q-values)."""
    best_lang, best_q = "ja", -1.0
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        lang, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        primary = lang.strip().lower().split("-")[0]
        if primary in ("ja", "en") and q > best_q:
            best_lang, best_q = primary, q
    return best_lang == "en"


def problem(
    request: Request,
    status: int,
    code: str | None = None,
    *,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    code = code or DEFAULT_CODES.get(status, "internal_error")
    entry = load_problem_catalogue().get(code)
    ja, en = (
        (entry.title_ja, entry.title_en)
        if entry
        else TITLES.get(status, TITLES[500 if status >= 500 else 400])
    )
    body: dict[str, object] = {
        "type": problem_type(code),
        "title": en if prefers_english(request.headers.get("accept-language")) else ja,
        "status": status,
        "code": code,
        # The path as requested, percent-encoded; the query string is left out (it can carry what a person typed).
        "instance": quote(request.url.path, safe="/"),
        "request_id": request.scope.get("state", {}).get("request_id", ""),
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def problem_type(code: str) -> str:
    """The problem type URI: resolves (against the API's base) to the code's catalogue entry."""
    return f"/v1/problems/{code}"


def status_for(exc: e.DomainError) -> int:
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 400


async def on_domain_error(request: Request, exc: e.DomainError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if exc.code == "invalid_token" else "Bearer"
        )
        if exc.code == "step_up_required":
            # RFC 9470 §3: the token is fine, the authentication behind it is too old for this action.
            headers["WWW-Authenticate"] = (
                'Bearer error="insufficient_user_authentication", '
                'error_description="A fresh proof of identity is required", '
                f"max_age={exc.extra.get('max_age', 0)}"
            )
    if isinstance(exc, e.RateLimited | e.Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 429:
        metrics.RATE_LIMITED.labels(metrics.code_label(exc.code)).inc()
    extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | bool | list)}
    return problem(request, status, exc.code, detail=exc.detail, headers=headers, **extra)


# Fixed texts per error type, Japanese and English: pydantic's own messages can quote parts of the input
# (e-mail checks do).
VALIDATION_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("必須項目です", "Field required"),
    "extra_forbidden": ("この項目は使えません", "Unknown field"),
    "string_too_short": ("短すぎます", "Too short"),
    "string_too_long": ("長すぎます", "Too long"),
    "too_short": ("項目が足りません", "Too few items"),
    "too_long": ("項目が多すぎます", "Too many items"),
    "string_pattern_mismatch": ("形式が正しくありません", "Wrong format"),
    "value_error": ("値が正しくありません", "Invalid value"),
    "enum": ("選べる値ではありません", "Not one of the allowed values"),
    "literal_error": ("選べる値ではありません", "Not one of the allowed values"),
    "json_invalid": ("JSON の形式が正しくありません", "Malformed JSON"),
    "bool_type": ("true か false で指定してください", "true or false"),
    "int_type": ("整数で指定してください", "A whole number"),
    "date_type": ("日付は 2026-12-04 の形で書いてください", "A date written as 2026-12-04"),
    "datetime_type": (
        "日時は 2026-12-04T17:30:00+09:00 の形で書いてください",
        "A time written as 2026-12-04T17:30:00+09:00",
    ),
    "timezone_aware": ("タイムゾーンの指定が必要です", "A time zone is required"),
    "bad_character": ("制御文字は使えません", "Control characters are not allowed here"),
}
INVALID_VALUE = VALIDATION_MESSAGES["value_error"]


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # Location and type with a fixed text: pydantic's `input`, `ctx` and `msg` can echo what was sent.
    errors = []
    english = prefers_english(request.headers.get("accept-language"))
    for err in exc.errors()[:20]:
        kind = str(err.get("type", ""))
        loc = [str(p) for p in err.get("loc", ())]
        if kind == "extra_forbidden" and loc:
            loc[-1] = "*"  # the unknown key is the caller's own text
        ja, en = VALIDATION_MESSAGES.get(kind, INVALID_VALUE)
        errors.append({"loc": loc, "type": kind, "msg": en if english else ja})
    return problem(request, 422, "validation_failed", errors=errors)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if exc.status_code == 405:
        # Starlette names only the first route whose path matched; RFC 9110 §15.5.6 wants all of them.
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return problem(request, exc.status_code, headers=headers or None)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at this path."""
    table = getattr(app.state, "methods_by_route", None)
    if table is None:
        from fastapi.routing import iter_route_contexts

        table = [
            (ctx.path_regex, frozenset(ctx.methods or ()))
            for ctx in iter_route_contexts(app.routes)
            if getattr(ctx, "methods", None) and getattr(ctx, "path_regex", None) is not None
        ]
        app.state.methods_by_route = table
    methods: set[str] = set()
    for regex, route_methods in table:
        if regex.match(path):
            methods |= route_methods
    return sorted(methods)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if _database_unreachable(exc):
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        # Said once per refused request, so an exhausted pool is seen, not guessed: no URL, no SQL, no values.
        log.warning(
            "database unavailable",
            extra={
                "error_type": type(exc).__name__,
                "cause": "pool_timeout" if isinstance(exc, PoolTimeout) else "unreachable",
                "request_id": request.scope.get("state", {}).get("request_id"),
            },
        )
        return problem(request, 503, "database_unavailable", headers={"Retry-After": "5"})
    # Only the type: messages of driver errors can quote SQL and its parameters.
    log.error(
        "unhandled error",
        extra={
            "error_type": type(exc).__name__,
            "request_id": request.scope.get("state", {}).get("request_id"),
        },
    )
    return problem(request, 500, "internal_error")


def _database_unreachable(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, OSError)
    return isinstance(exc, OSError) and exc.errno is not None


def install(app: FastAPI) -> None:
    # Starlette types a handler as taking any Exception; each of these takes the class it is registered for.
    app.add_exception_handler(e.DomainError, on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
