"""RFC 4605 §4.1 / RFC 9776 §3.2 merging, case by case and against a direct evaluation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcastproxy.membership.state import FilterMode
from mcastproxy.upstream.merge import MergedGroup, merge

IN, EX = FilterMode.INCLUDE, FilterMode.EXCLUDE
a, b, c, d = (bytes((10, 0, 0, i)) for i in range(1, 5))


def test_cases_of_rfc_9776_section_3_2() -> None:
    assert merge([]) == (IN, frozenset())
    assert merge([(IN, frozenset({a, b})), (IN, frozenset({b, c}))]) == (IN, {a, b, c})
    # "the interface state is EXCLUDE with the intersection of the EXCLUDE source lists
    # minus the sources of the INCLUDE lists"
    assert merge([(EX, frozenset({a, b, c})), (EX, frozenset({b, c, d}))]) == (EX, {b, c})
    assert merge([(EX, frozenset({a, b})), (IN, frozenset({b}))]) == (EX, {a})
    assert merge([(EX, frozenset()), (IN, frozenset({a}))]) == (EX, frozenset())
    assert merge([(EX, frozenset({a})), (EX, frozenset())]) == (EX, frozenset())


states = st.tuples(
    st.sampled_from([IN, EX]), st.frozensets(st.sampled_from([a, b, c, d]), max_size=4)
)


def reference(parts: list[tuple[FilterMode, frozenset[bytes]]]) -> tuple[FilterMode, set[bytes]]:
    includes = [s for m, s in parts if m is IN]
    excludes = [s for m, s in parts if m is EX]
    union_in = set().union(*includes)
    if excludes:
        return EX, set.intersection(*map(set, excludes)) - union_in
    return IN, union_in


@settings(max_examples=300, deadline=None)
@given(st.lists(states, max_size=8), st.data())
def test_incremental_merge_equals_direct_evaluation(
    parts: list[tuple[FilterMode, frozenset[bytes]]], data: st.DataObject
) -> None:
    merged = MergedGroup()
    for mode, sources in parts:
        merged.add(mode, sources)
    assert merged.state() == reference(parts)
    mode, wanted = reference(parts)
    for s in (a, b, c, d):
        assert merged.wants(s) == ((s in wanted) if mode is IN else (s not in wanted))
    # Remove a random subset, in a random order: the state follows.
    keep = list(parts)
    for part in data.draw(st.permutations(parts)):
        if data.draw(st.booleans()):
            merged.remove(*part)
            keep.remove(part)
            assert merged.state() == reference(keep)
    assert merged.empty == (not any(m is EX or s for m, s in keep))


def test_merges_without_sources_share_their_state() -> None:
    # Most groups are joined in any-source mode: their merges hold no set of their own.
    one, two = MergedGroup(), MergedGroup()
    one.add(EX, frozenset())
    two.add(EX, frozenset())
    assert one.state() is two.state()
    assert one.state() == (EX, frozenset())
    one.remove(EX, frozenset())
    assert one.state() is MergedGroup().state()
    assert one.empty
    # Sources added to one merge, then taken back, leave every other merge as it was.
    one.add(IN, frozenset({a}))
    one.add(EX, frozenset({b, c}))
    assert one.state() == (EX, {b, c})
    fresh = MergedGroup()
    assert fresh.state() == (IN, frozenset())
    assert not fresh.wants(a)
    assert not fresh.wants(b)
    one.remove(IN, frozenset({a}))
    one.remove(EX, frozenset({b, c}))
    assert one.empty
    assert one.state() == (IN, frozenset())
