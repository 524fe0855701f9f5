"""The chain check itself, on links built in memory: each way a stored chain can be wrong names its first
broken link."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from domain.custody import GENESIS, Head, Link, Stamp, link_hash, verify_chain

CID = uuid.UUID("3b0f6a52-9d7e-4c1a-8f21-7d6c5b4a3e21")
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def chain(n: int) -> list[Link]:
    links, prev = [], GENESIS
    for seq in range(1, n + 1):
        link = Link(CID, seq, T0 + timedelta(seconds=seq), "evidence.viewed", "evidence", f"e{seq}",
                    "consultant", uuid.UUID(int=seq), "staff", {"件": seq}, prev)  # fmt: skip
        link = replace(link, hash=link_hash(prev, link))
        links.append(link)
        prev = link.hash
    return links


def head(links: list[Link]) -> Head:
    return Head(CID, links[-1].seq, links[-1].hash, T0)


def test_an_intact_chain_holds() -> None:
    links = chain(5)
    assert verify_chain(CID, links, head(links)) is None
    assert verify_chain(CID, [], None) is None


def test_each_kind_of_damage_names_its_first_link() -> None:
    links = chain(5)
    h = head(links)
    cases = {
        "edited": ([*links[:2], replace(links[2], object_id="x"), *links[3:]], (3, "hash_mismatch")),
        "time moved": ([*links[:1], replace(links[1], at=T0), *links[2:]], (2, "hash_mismatch")),
        "deleted": ([*links[:2], *links[3:]], (3, "missing_link")),
        "duplicated": ([*links[:3], links[2], *links[3:]], (3, "duplicate_seq")),
        "swapped": (
            [links[0], replace(links[2], seq=2), replace(links[1], seq=3), *links[3:]],
            (2, "prev_hash_mismatch"),
        ),
        "foreign": ([*links[:4], replace(links[4], consultation_id=uuid.uuid4())], (5, "foreign_link")),
        "tail cut": (links[:3], (4, "truncated")),
    }
    for name, (stored, expected) in cases.items():
        found = verify_chain(CID, stored, h)
        assert found is not None and (found.seq, found.reason) == expected, name
    found = verify_chain(CID, links, None)
    assert found is not None and found.reason == "head_missing"
    found = verify_chain(CID, links, Head(CID, 4, links[3].hash, T0))
    assert found is not None and (found.seq, found.reason) == (5, "beyond_head")


def test_a_stamp_remembers_a_longer_chain() -> None:
    links = chain(5)
    stamp = Stamp(CID, 5, links[4].hash, b"token", T0, "http://tsa.invalid")
    rewound = links[:3]
    found = verify_chain(CID, rewound, head(rewound), [stamp])
    assert found is not None and (found.seq, found.reason) == (5, "stamped_link_missing")
    assert verify_chain(CID, links, head(links), [stamp]) is None
