"""Public reference lists the front ends render: the category tree and the intake code lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ContainerDep
from api.errors import problem_type
from api.schemas.common import ProblemTypeOut, problem_responses
from api.schemas.consultations import (
    CategoryGroupOut,
    CategoryOut,
    CodeItemOut,
    IntakeOptionsOut,
    PlatformBrief,
)
from api.schemas.text import SingleLine
from domain.errors import NotFound
from infra.knowledge import load_problem_catalogue

router = APIRouter(tags=["reference"])


def _category(c) -> CategoryOut:
    return CategoryOut(
        code=c.code,
        label_ja=c.label_ja,
        label_en=c.label_en,
        nature=c.nature,
        description_ja=c.description_ja,
    )


@router.get(
    "/v1/categories",
    operation_id="categories_list",
    response_model=list[CategoryGroupOut],
    summary="The two-level taxonomy: illegal (rights infringement, other illegal), harmful, other",
)
async def list_categories(container: ContainerDep) -> list[CategoryGroupOut]:
    return [
        CategoryGroupOut(**_category(group).model_dump(), children=[_category(leaf) for leaf in leaves])
        for group, leaves in container.consultations.knowledge.category_tree()
    ]


@router.get(
    "/v1/intake-options",
    operation_id="intake_options",
    response_model=IntakeOptionsOut,
    summary="Code lists for the intake form and the current terms version",
)
async def intake_options(container: ContainerDep) -> IntakeOptionsOut:
    k = container.consultations.knowledge

    def items(name: str) -> list[CodeItemOut]:
        return [CodeItemOut(code=i.code, label_ja=i.label_ja, label_en=i.label_en) for i in k.code_list(name)]

    return IntakeOptionsOut(
        terms_version=container.consultations.policy.terms_version,
        relations=items("relations"),
        desired_outcomes=items("desired_outcomes"),
        channels=items("channels"),
        platforms=[PlatformBrief(code=p.code, name_ja=p.name_ja, name_en=p.name_en) for p in k.platforms],
    )


def _problem_type(code: str) -> ProblemTypeOut:
    entry = load_problem_catalogue()[code]
    return ProblemTypeOut(
        code=code,
        type=problem_type(code),
        status=entry.status,
        title_ja=entry.title_ja,
        title_en=entry.title_en,
        meaning=entry.meaning,
    )


@router.get(
    "/v1/problems",
    operation_id="problems_list",
    response_model=list[ProblemTypeOut],
    summary="Every error code the API answers with, its status and what it means",
    description="The catalogue behind every problem's `code` and `type`. Front ends switch on `code`; the "
    "titles may be shown to people.",
)
async def list_problem_types() -> list[ProblemTypeOut]:
    return [_problem_type(code) for code in sorted(load_problem_catalogue())]


@router.get(
    "/v1/problems/{code}",
    operation_id="problems_get",
    response_model=ProblemTypeOut,
    responses=problem_responses(404),
    summary="One error code: what a problem's `type` URI resolves to",
)
async def get_problem_type(code: Annotated[str, Path(max_length=64), SingleLine()]) -> ProblemTypeOut:
    if code not in load_problem_catalogue():
        raise NotFound()
    return _problem_type(code)
