"""The route guards as the spec shows them (x-roles) agree with the authorization matrix: every role an
operation's guard leaves out is refused (403) in the matrix, and the spec says who may call it."""

from __future__ import annotations

from domain.actors import Role
from tests.api.test_authorization_matrix import MATRIX


def test_every_guarded_operation_lists_its_roles_and_the_matrix_refuses_the_others(app) -> None:  # type: ignore[no-untyped-def]
    spec = app.openapi()
    guarded = 0
    for row in MATRIX:
        operation = spec["paths"][row.path][row.method.lower()]
        roles = operation.get("x-roles")
        if roles is None:
            continue
        guarded += 1
        assert roles and set(roles) <= {r.value for r in Role}, row.path
        assert f"Roles: {', '.join(f'`{r}`' for r in roles)}" in operation["description"]
        codes = operation["responses"]["403"]["content"]["application/problem+json"]["schema"]["allOf"][1]
        assert {"role_not_allowed", "person_required"} <= set(codes["properties"]["code"]["enum"])
        outside = [r.value for r in Role if r.value not in roles]
        refused = {actor: row.expected[actor] for actor in outside + ["service"]}
        if "consulter" in outside:
            refused["owner"] = row.expected["owner"]
        assert set(refused.values()) == {403} or not refused, (row.method, row.path, refused)
    assert guarded >= 85  # every route that is not public, the account's own or LINE's


def test_the_guards_name_the_policy_role_sets(app) -> None:  # type: ignore[no-untyped-def]
    from domain import policy

    named = {
        frozenset(policy.roles_of(v))
        for k, v in vars(policy).items()
        if k.isupper() and isinstance(v, frozenset) and v and all(isinstance(r, Role) for r in v)
    }
    for item in app.openapi()["paths"].values():
        for operation in item.values():
            if "x-roles" in operation:
                assert frozenset(operation["x-roles"]) in named, operation["operationId"]
