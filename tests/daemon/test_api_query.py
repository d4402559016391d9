"""RFC 8040 §4.8's query parameters (``mcastproxy.api.query``): ``content`` and ``depth``
read strictly, and the depth applied to a tree, level by level as §4.8.2 counts them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from multidict import MultiDict

from mcastproxy.api.errors import ApiError
from mcastproxy.api.query import (
    MAX_DEPTH,
    NODES_PER_SLICE,
    UNBOUNDED,
    Query,
    depth_slices,
    pruned,
    read_query,
)

TREE: dict[str, Any] = {"a:top": {
    "leaf": 1,
    "box": {"inner": {"deep": True}, "n": 2},
    "list": [{"key": "k1", "sub": {"x": 1}}, {"key": "k2"}],
    "leaf-list": [1, 2, 3],
}}


def cut(depth: int, tree: dict[str, Any] = TREE) -> dict[str, Any]:
    return asyncio.run(pruned(tree, depth))


def test_the_defaults_are_all_and_unbounded() -> None:
    assert read_query(MultiDict()) == Query("all", UNBOUNDED)
    assert read_query(MultiDict(depth="unbounded", content="all")) == Query()
    assert read_query(MultiDict(content="config")).state is False
    assert read_query(MultiDict(content="nonconfig")).config is False
    assert read_query(MultiDict(depth="1")).depth == 1
    assert read_query(MultiDict(depth=str(MAX_DEPTH))).depth == MAX_DEPTH


@pytest.mark.parametrize("value", [
    "0", "-1", "-0", "00", "01", "+3", " 3", "3 ", "1.5", "1e3", "0x10", "", "65536",
    "99999999999999999999999999", "unbounded2", "Unbounded", "٣", "３", "1_0", "nan", "∞",
    "3\x00", "3\n",
])
def test_a_forged_depth_is_refused(value: str) -> None:
    with pytest.raises(ApiError) as refused:
        read_query(MultiDict(depth=value))
    assert refused.value.status == 400
    (error,) = refused.value.body()["ietf-restconf:errors"]["error"]
    assert (error["error-type"], error["error-tag"]) == ("protocol", "invalid-value")
    assert "depth" in error["error-message"]
    assert len(error["error-message"]) < 200  # a huge value is not echoed whole


@pytest.mark.parametrize("query", [
    MultiDict(content="Config"), MultiDict(content=""), MultiDict(content="config,nonconfig"),
    MultiDict([("depth", "2"), ("depth", "3")]),
    MultiDict([("content", "config"), ("content", "config")]),
    MultiDict(fields="type"), MultiDict(filter="x"), MultiDict({"x" * 5000: "1"}),
])
def test_a_forged_parameter_is_refused(query: MultiDict[str]) -> None:
    with pytest.raises(ApiError) as refused:
        read_query(query)
    assert refused.value.status == 400
    assert len(refused.value.text()) < 1000


def test_depth_one_is_the_node_alone() -> None:
    assert cut(1) == {"a:top": {}}


def test_each_level_adds_the_children_of_the_last() -> None:
    assert cut(2) == {"a:top": {"leaf": 1, "box": {}, "list": [{}, {}],
                                "leaf-list": [1, 2, 3]}}
    assert cut(3) == {"a:top": {"leaf": 1, "box": {"inner": {}, "n": 2},
                                "list": [{"key": "k1", "sub": {}}, {"key": "k2"}],
                                "leaf-list": [1, 2, 3]}}
    assert cut(4) == TREE
    assert cut(MAX_DEPTH) == TREE
    assert cut(UNBOUNDED) is TREE


def test_the_tree_given_is_not_changed() -> None:
    before = repr(TREE)
    cut(2)
    assert repr(TREE) == before


def test_a_large_tree_is_cut_a_slice_at_a_time() -> None:
    tree = {"a:top": {"list": [{"key": str(i), "sub": {"x": i}} for i in range(5000)]}}
    slices = depth_slices(tree, 3)
    turns = 0
    while True:
        try:
            next(slices)
            turns += 1
        except StopIteration as done:
            result = done.value
            break
    assert turns >= 5000 // NODES_PER_SLICE
    assert result["a:top"]["list"][4999] == {"key": "4999", "sub": {}}
