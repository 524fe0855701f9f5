"""Public reference lists the front ends render: the category tree and the intake code lists."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep
from api.schemas.consultations import (
    CategoryGroupOut,
    CategoryOut,
    CodeItemOut,
    IntakeOptionsOut,
    PlatformBrief,
)

router = APIRouter(tags=["reference"])


def _category(c) -> CategoryOut:  # type: ignore[no-untyped-def]
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
async def list_categories(c: ContainerDep) -> list[CategoryGroupOut]:
    return [
        CategoryGroupOut(**_category(group).model_dump(), children=[_category(leaf) for leaf in leaves])
        for group, leaves in c.consultations.knowledge.category_tree()
    ]


@router.get(
    "/v1/intake-options",
    operation_id="intake_options",
    response_model=IntakeOptionsOut,
    summary="Code lists for the intake form and the current terms version",
)
async def intake_options(c: ContainerDep) -> IntakeOptionsOut:
    k = c.consultations.knowledge

    def items(name: str) -> list[CodeItemOut]:
        return [CodeItemOut(code=i.code, label_ja=i.label_ja, label_en=i.label_en) for i in k.code_list(name)]

    return IntakeOptionsOut(
        terms_version=c.consultations.policy.terms_version,
        relations=items("relations"),
        desired_outcomes=items("desired_outcomes"),
        channels=items("channels"),
        platforms=[PlatformBrief(code=p.code, name_ja=p.name_ja, name_en=p.name_en) for p in k.platforms],
    )
