"""A request body takes only the JSON type its contract names. FastAPI validates a body as the Python objects
its JSON parsed into, where pydantic's lax mode would take 0 for 1970-01-01, 1 or "yes" for true and "12" for
12 (found by the fuzz test: a clock started from a damage date of 0). Every field of every request body is
walked here; tests/api/test_requests.py shows one such refusal through the API. A boolean query parameter
takes only `true` or `false`: every one the contract lists is called here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import api.main  # noqa: F401  (imports every route module, so every request body model exists)
from api.schemas.common import Input
from domain.actors import Role
from tests.api.test_openapi_contract import CONTRACT

# JSON values of another type that lax parsing would turn into the field's type.
NOT_OF_THE_TYPE: dict[tuple[str, str | None], list[Any]] = {
    ("boolean", None): [1, 0, "true", "yes"],
    ("integer", None): ["12", 12.0, True],
    ("string", "date"): [0, 20261204, True, "20261204", "0.5"],
    ("string", "date-time"): [0, 1764836400, True, "1764836400", "0.5"],
}


def body_models(base: type[BaseModel] = Input) -> Iterator[type[BaseModel]]:
    for model in base.__subclasses__():
        yield model
        yield from body_models(model)


def typed_fields() -> Iterator[tuple[str, TypeAdapter[Any], tuple[str, str | None]]]:
    for model in sorted(set(body_models()), key=lambda m: (m.__module__, m.__name__)):
        for name, field in model.model_fields.items():
            annotation = (
                Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            )
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            schema = adapter.json_schema()
            for variant in schema.get("anyOf", [schema]):
                key = (variant.get("type"), variant.get("format"))
                if key in NOT_OF_THE_TYPE:
                    yield f"{model.__name__}.{name}", adapter, key  # type: ignore[misc]


FIELDS = list(typed_fields())


def test_the_walk_finds_the_typed_fields_of_request_bodies() -> None:
    found = {name for name, _, _ in FIELDS}
    assert {"ClockFactsIn.damage_known_on", "DeskCreate.emergency", "SampleIn.size", "StatusIn.at"} <= found
    assert {key for _, _, key in FIELDS} == set(NOT_OF_THE_TYPE)


@pytest.mark.parametrize(("field", "adapter", "json_type"), FIELDS, ids=[f[0] for f in FIELDS])
def test_a_body_field_refuses_a_value_of_another_json_type(field, adapter, json_type) -> None:  # type: ignore[no-untyped-def]
    for value in NOT_OF_THE_TYPE[json_type]:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def _path_value(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())  # validated before it is looked up: a 404 after the query passed
    assert schema.get("type") == "string", parameter
    return "x"  # a name checked by the route itself, after the query


def boolean_query_parameters() -> list[tuple[str, str]]:
    """(URL, name) of every boolean query parameter of a GET in the committed contract, the URL's path
    parameters filled with values that pass their own validation."""
    found = []
    for path, operations in json.loads(CONTRACT.read_text(encoding="utf-8"))["paths"].items():
        parameters = operations.get("get", {}).get("parameters", [])
        flags = [
            p["name"]
            for p in parameters
            if p["in"] == "query"
            and "boolean" in {v.get("type") for v in p.get("schema", {}).get("anyOf", [p.get("schema", {})])}
        ]
        url = path
        for parameter in parameters if flags else []:
            if parameter["in"] == "path":
                url = url.replace("{" + parameter["name"] + "}", _path_value(parameter))
        found += [(url, name) for name in flags]
    return found


async def test_a_boolean_query_parameter_takes_true_or_false_only(client: httpx.AsyncClient, people) -> None:  # type: ignore[no-untyped-def]
    parameters = boolean_query_parameters()
    names = {(url.split("/")[2], name) for url, name in parameters}
    assert {("consultations", "urgent"), ("desks", "emergency"), ("statistics", "suppress")} <= names
    supervisor = await people.create(Role.supervisor)
    for url, name in parameters:
        for value in ("true", "false"):
            answer = await client.get(url, params={name: value}, headers=supervisor.headers)
            assert answer.status_code != 422, (url, name, value, answer.text)
        for value in ("1", "0", "yes", "no", "on", "off", "t", "f", "y", "n", "TRUE", ""):
            refused = await client.get(url, params={name: value}, headers=supervisor.headers)
            assert refused.status_code == 422, (url, name, value, refused.text)
            problem = refused.json()
            assert problem["code"] == "validation_failed"
            assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["query", name], "bool_type")], (
                problem
            )
