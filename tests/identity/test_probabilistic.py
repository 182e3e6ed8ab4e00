"""The Splink wrapper on a handful of hand-made profiles."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from orchestration.identity.probabilistic import (
    LINK_COLUMNS,
    LinkSettings,
    find_probabilistic_links,
)

_CITIES = [("Shanghai", "200"), ("Beijing", "100"), ("Chengdu", "610"), ("Wuhan", "430")]
_FIRST = ["james", "mary", "john", "linda", "david", "susan", "paul", "karen", "mark", "nancy"]
_LAST = ["smith", "wang", "garcia", "lee", "brown", "chen", "lopez", "kim", "nguyen", "khan"]


def _profile(
    key: str, first: str, last: str, birth: dt.date, city: int, suffix: int, room: int
) -> dict:
    name, prefix = _CITIES[city]
    return {
        "node_key": key,
        "first_name_normalized": first,
        "last_name_normalized": last,
        "birth_date": birth,
        "postcode": f"{prefix}{suffix:03d}",
        "city": name,
        "address_line": f"Room {room}, {suffix} Renmin Road",
    }


def _population() -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 strangers on each side (for u estimation), plus the cases under test."""
    left, right = [], []
    for i in range(60):
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=97 * i)
        left.append(
            _profile(
                f"account_id:S{i}", _FIRST[i % 10], _LAST[(i * 3) % 10], birth, i % 4, i, 100 + i
            )
        )
        birth_r = dt.date(1961, 6, 1) + dt.timedelta(days=89 * i)
        right.append(
            _profile(
                f"member_card_id:S{i}",
                _FIRST[(i + 5) % 10],
                _LAST[(i * 7) % 10],
                birth_r,
                (i + 1) % 4,
                i + 60,
                300 + i,
            )
        )
    # the same person: shortened first name on the card, everything else equal
    left.append(
        _profile("account_id:SAME", "christopher", "zhou", dt.date(1988, 3, 14), 0, 412, 1203)
    )
    right.append(
        _profile("member_card_id:SAME", "christophe", "zhou", dt.date(1988, 3, 14), 0, 412, 1203)
    )
    # a household: same surname, address and postcode, different person
    left.append(_profile("account_id:HOUSE", "emily", "zhao", dt.date(1979, 7, 2), 1, 77, 905))
    right.append(
        _profile("member_card_id:HOUSE", "robert", "zhao", dt.date(1981, 11, 23), 1, 77, 905)
    )
    return pd.DataFrame(left), pd.DataFrame(right)


def test_find_probabilistic_links_links_same_person_not_household() -> None:
    left, right = _population()
    links = find_probabilistic_links(left, right, LinkSettings(match_threshold=0.99))
    assert list(links.columns) == list(LINK_COLUMNS)
    pairs = set(zip(links.left_node_key, links.right_node_key, strict=True))
    assert ("account_id:SAME", "member_card_id:SAME") in pairs
    assert not any("HOUSE" in left_key or "HOUSE" in right_key for left_key, right_key in pairs)
    assert (links.match_probability >= 0.99).all()


def test_find_probabilistic_links_is_one_to_one_and_reproducible() -> None:
    left, right = _population()
    # a second card for the same person: only the best match may be kept
    twin = right[right.node_key == "member_card_id:SAME"].assign(
        node_key="member_card_id:SAME2", address_line=None
    )
    right = pd.concat([right, twin], ignore_index=True)
    first = find_probabilistic_links(left, right)
    second = find_probabilistic_links(left, right)
    pd.testing.assert_frame_equal(first, second)
    assert first.left_node_key.is_unique and first.right_node_key.is_unique


def test_find_probabilistic_links_without_candidates_is_empty() -> None:
    left, right = _population()
    assert find_probabilistic_links(left.iloc[0:0], right).empty
    assert list(find_probabilistic_links(left, right.iloc[0:0]).columns) == list(LINK_COLUMNS)


def _one_sided_birth_date_case(**card_overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An account without birth date and a card of the same name and postcode."""
    left, right = _population()
    account = _profile("account_id:NOBIRTH", "wei", "liang", dt.date(1990, 1, 1), 2, 55, 1707)
    account["birth_date"] = None
    account["address_line"] = None
    card = _profile("member_card_id:NOBIRTH", "wei", "liang", dt.date(1990, 5, 5), 2, 55, 1707)
    card.update(card_overrides)
    left = pd.concat([left, pd.DataFrame([account])], ignore_index=True)
    right = pd.concat([right, pd.DataFrame([card])], ignore_index=True)
    return left, right


def test_links_without_birth_date_need_the_same_full_name_and_place() -> None:
    links = find_probabilistic_links(*_one_sided_birth_date_case())
    assert ("account_id:NOBIRTH", "member_card_id:NOBIRTH") in set(
        zip(links.left_node_key, links.right_node_key, strict=True)
    )
    # a different first name at the same place is a household member, not the same person
    links = find_probabilistic_links(*_one_sided_birth_date_case(first_name_normalized="ming"))
    assert "account_id:NOBIRTH" not in set(links.left_node_key)
    # both addresses known and different: not enough without a birth date
    left, right = _one_sided_birth_date_case(address_line="Room 12, 9 Jiefang Road")
    left.loc[left.node_key == "account_id:NOBIRTH", "address_line"] = "Room 1707, 55 Renmin Road"
    assert "account_id:NOBIRTH" not in set(find_probabilistic_links(left, right).left_node_key)


def test_links_without_birth_date_refuse_a_name_that_is_not_unique_there() -> None:
    left, right = _one_sided_birth_date_case()
    # another card holder of the same name in the same postcode, already linked elsewhere and so
    # not a candidate, still makes the match a guess: the peer counts come from all profiles
    right["name_postcode_peers"] = [
        2 if k == "member_card_id:NOBIRTH" else 1 for k in right.node_key
    ]
    right["name_address_peers"] = right["name_postcode_peers"]
    left["name_postcode_peers"] = 1
    left["name_address_peers"] = 1
    links = find_probabilistic_links(left, right)
    assert "account_id:NOBIRTH" not in set(links.left_node_key)


def test_links_tied_between_two_candidates_link_neither() -> None:
    left, right = _population()
    twin = right[right.node_key == "member_card_id:SAME"].assign(node_key="member_card_id:SAME2")
    links = find_probabilistic_links(left, pd.concat([right, twin], ignore_index=True))
    assert "account_id:SAME" not in set(links.left_node_key)
