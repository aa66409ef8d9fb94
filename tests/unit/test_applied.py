"""vigil.applied.SeqSet: the identity of what a finding or counter has absorbed.

GIVEN intervals added in any order, THEN membership is exactly their union (until the bound), the
bound only ever adds members (never forgets one: it can skip, never double-count), and the
encoding round-trips; a corrupt stored set is refused, not trusted.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.applied import MAX_INTERVALS, AppliedSetError, SeqSet

intervals = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])), max_size=60
)


@given(intervals, st.randoms())
def test_membership_is_the_union_whatever_the_order(ivs: list[tuple[int, int]], rnd) -> None:
    shuffled = list(ivs)
    rnd.shuffle(shuffled)
    s = SeqSet(shuffled)
    union = {n for lo, hi in ivs for n in range(lo, hi + 1)}
    members = {n for n in range(0, 430) if s.contains(n)}
    assert union <= members  # never forgets
    if len(SeqSet(sorted(ivs)).intervals) <= MAX_INTERVALS and len(s) < MAX_INTERVALS:
        assert members == union  # exact below the bound
    assert len(s) <= MAX_INTERVALS
    assert SeqSet.parse(s.dump()) == s


def test_adjacent_batches_coalesce_into_one_interval() -> None:
    s = SeqSet()
    for k in range(100):  # an agent's consecutive batches, in any order
        lo = (k * 37 % 100) * 10
        s.add(lo, lo + 9)
    assert s.intervals == ((0, 999),)


def test_covers_and_intersects() -> None:
    s = SeqSet([(10, 20), (30, 40)])
    assert s.covers(12, 18) and not s.covers(15, 35)
    assert s.intersects(19, 29) and not s.intersects(21, 29)


@pytest.mark.parametrize("text", ["1-", "z-1", "-", "a-b-c", "x" * 3000])
def test_a_corrupt_stored_set_is_refused(text: str) -> None:
    with pytest.raises(AppliedSetError):
        SeqSet.parse(text)
