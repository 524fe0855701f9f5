"""The router tries routes in the order api/main.py includes them (most requested first, for speed): no route
may take another's requests. For every operation, a path built from its template reaches that operation
first, whatever the order."""

from __future__ import annotations

import re

from api.main import api_routes, create_app

SAMPLE = "00000000-0000-4000-8000-000000000000"  # fits every path parameter: ids, codes, names


def _sample_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", SAMPLE, template)


def test_every_operation_is_the_first_route_its_own_path_reaches(settings) -> None:  # type: ignore[no-untyped-def]
    routes = [c.original_route for c in api_routes(create_app(settings))]
    taken = []
    for route in routes:
        path = _sample_path(route.path)
        for method in route.methods:
            first = next(r for r in routes if method in r.methods and r.path_regex.match(path))
            if first is not route:
                taken.append(f"{method} {route.path} is reached by {first.path} first")
    assert not taken, taken


def test_the_most_requested_routes_are_tried_first(settings) -> None:  # type: ignore[no-untyped-def]
    """Each route tried before the match costs about 20 Python calls of the request (FastAPI 0.165 keeps the
    included routers nested and tries their routes one by one): the LINE webhook, `GET /v1/me` and a
    consultation's read come within the first few dozen."""
    paths = [c.original_route.path for c in api_routes(create_app(settings))]
    for path in ("/v1/line/webhook", "/v1/me", "/v1/consultations/{consultation_id}", "/v1/consultations"):
        assert paths.index(path) < 40, (path, paths.index(path))
