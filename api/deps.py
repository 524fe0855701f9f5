"""Dependencies: the container, the current actor, role and scope guards, client address."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2

from domain.actors import Actor, Role
from domain.errors import Forbidden, Unauthenticated, ValidationFailed
from domain.models import User
from domain.policy import ADMINS, SERVICE_SCOPES, ensure_person, ensure_role, ensure_scope
from infra.container import Container

oauth2 = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl="/v1/auth/token", scopes={}),
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/v1/auth/token",
            scopes=SERVICE_SCOPES,
        ),
    ),
    scheme_name="OAuth2",
    description="People sign in with the password grant; the LINE bot, the chatbot front end and integrations "
    "use client credentials.",
    auto_error=False,
)


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` in the threadpool.
async def container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(container)]


_KNOWN_QUERY: dict[int, frozenset[str]] = {}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


async def known_query_only(request: Request) -> None:
    """A GET with a query parameter the route does not declare is refused (422), not silently ignored: a
    misspelt filter (`?unassigned=true`) would otherwise answer an unfiltered list that looks filtered.
    The name is given back only when it is a plain identifier, never arbitrary caller text."""
    if request.method != "GET" or not request.query_params or not request.url.path.startswith("/v1/"):
        return  # probes (/healthz, /readyz) may carry a load balancer's cache-buster
    route = request.scope.get("route")
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = frozenset(_query_names(getattr(route, "dependant", None)))
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        names = list(dict.fromkeys(n if _SAFE_NAME.match(n) else "*" for n in unknown))
        raise ValidationFailed("unknown_query_parameter", field=names[0], fields=names)


def _query_names(dependant) -> set[str]:
    """The query parameters a route and its dependencies declare (by the name callers use)."""
    if dependant is None:
        return set()
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def client_address(request: Request) -> str | None:  # a helper the routes call, not a dependency
    # uvicorn rewrites request.client from X-Forwarded-For only for MADOGUCHI_TRUSTED_PROXIES.
    return request.client.host if request.client else None


# Every authenticated route resolves its actor through ONE dependency node per parameter (the guard, `Person`,
# ...), each taking the token straight from `oauth2`: FastAPI walks a dependency's whole sub-tree on every
# request, even when the value is cached, and each node parses the request's parameters again. The chain
# guard → current_actor → authenticated → oauth2, walked once for the guard and again for `Person`, was 11
# nodes and 18 % of a consultation read's CPU (py-spy, tests/bench/profile_reads.py); it is 7 now. The token
# is still checked and the session still looked up once per request (`_signed_in`).
AuthorizationHeader = Annotated[str | None, Depends(oauth2)]


async def _signed_in(request: Request, authorization: str | None) -> Actor:
    """The request's live actor, before the staff second-factor rule; resolved once per request, however many
    guards and parameters ask for it. The memo holds the header it was resolved from and answers only that
    header: nothing put in the request's state before (a middleware, a lifespan's state) stands in for a
    checked token."""
    resolved: tuple[str, Actor] | None = getattr(request.state, "signed_in", None)
    if resolved is not None and resolved[0] == authorization:
        return resolved[1]
    container: Container = (
        request.app.state.container
    )  # not a dependency: this runs on every authenticated request
    if not authorization:
        raise Unauthenticated("missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("invalid_token")
    actor, issued_at = container.tokens.decode_access(token.strip(), now=container.clock.now())
    actor, user = await container.accounts.resolve(actor, issued_at)
    request.state.user = user
    request.state.signed_in = (authorization, actor)
    # The request line names the caller's role, never who (api/middleware.py).
    request.state.actor_role = actor.role.value if actor.role is not None else actor.client.value
    return actor


def _past_second_factor(request: Request, actor: Actor) -> Actor:
    """Staff must have proven their second factor when the configuration requires it."""
    if actor.is_staff and request.app.state.settings.staff_mfa_required and not actor.mfa:
        raise Forbidden("mfa_enrolment_required")
    return actor


def _a_person(actor: Actor) -> Actor:
    ensure_person(actor)
    return actor


async def authenticated(request: Request, authorization: AuthorizationHeader) -> Actor:
    """A live actor, before the staff second-factor rule: only for the routes a staff member needs to reach
    that rule's end (their own account, TOTP enrolment, logout)."""
    return await _signed_in(request, authorization)


PreMfaActor = Annotated[Actor, Depends(authenticated)]


async def current_actor(request: Request, authorization: AuthorizationHeader) -> Actor:
    """A live actor; staff must have proven their second factor when the configuration requires it."""
    return _past_second_factor(request, await _signed_in(request, authorization))


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def person(request: Request, authorization: AuthorizationHeader) -> Actor:
    return _a_person(_past_second_factor(request, await _signed_in(request, authorization)))


Person = Annotated[Actor, Depends(person)]


async def person_pre_mfa(request: Request, authorization: AuthorizationHeader) -> Actor:
    return _a_person(await _signed_in(request, authorization))


PersonPreMfa = Annotated[Actor, Depends(person_pre_mfa)]


async def signed_in_user(request: Request, authorization: AuthorizationHeader) -> User:
    """The account loaded with the session check of this very request: no second query."""
    _a_person(await _signed_in(request, authorization))
    user: User = request.state.user
    return user


SignedInUser = Annotated[User, Depends(signed_in_user)]


class RoleGuard:
    """The route's guard, from the same role sets the use cases check (domain/policy.py): a service client is
    refused as `person_required`, a person whose role is not in the set as `role_not_allowed`. The spec lists
    the set as the operation's `x-roles` (api/main.py reads `roles` off the dependency)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request, authorization: AuthorizationHeader) -> Actor:
        return self.admit(_past_second_factor(request, await _signed_in(request, authorization)))

    def admit(self, actor: Actor) -> Actor:
        ensure_role(_a_person(actor), self.roles)
        return actor


class PreMfaRoleGuard(RoleGuard):
    """The same guard for the routes a staff member needs before their second factor (TOTP enrolment)."""

    async def __call__(self, request: Request, authorization: AuthorizationHeader) -> Actor:
        return self.admit(await _signed_in(request, authorization))


def require(roles: frozenset[Role], *, before_mfa: bool = False) -> Any:
    """`dependencies=[require(policy.CASEWORKERS)]` on a route, or `Annotated[Actor, require(...)]`."""
    return Depends(PreMfaRoleGuard(roles) if before_mfa else RoleGuard(roles))


Admin = Annotated[Actor, require(ADMINS)]


def public_with_scope(scope: str) -> Any:
    """A public route that a service client may also call with its token: the token, when sent, must be
    valid and carry `scope` (403 insufficient_scope otherwise). Returns the actor, or None when anonymous."""

    async def guard(request: Request, authorization: AuthorizationHeader) -> Actor | None:
        if not authorization:
            return None
        actor = await _signed_in(request, authorization)
        ensure_scope(actor, scope)
        return actor

    return Depends(guard)


def public_security(scope: str) -> dict[str, Any]:
    """The operation's security in the spec: anonymous, or a service client with `scope`."""
    return {"security": [{}, {"OAuth2": [scope]}]}
