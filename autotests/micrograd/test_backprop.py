"""Hidden tests, group `backprop`: the student's backward() over `_backward` closures known to be right.

Every graph here is made of plain Values whose `_backward` closures are the harness's own (they pass
`local derivative * node.grad` to each child and log the call), so only the order, the seed and the
accumulation of the student's backward() are on trial: an operation bug cannot cost points here.
"""
from collections import Counter

import pytest

from inputs import random_dag
from grader.testing import Feedback, all_close, close

pytestmark = [pytest.mark.group("backprop"), pytest.mark.covers("Value.backward")]


def reachable(nodes):
    seen, stack = set(), [len(nodes) - 1]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(j for j, _ in nodes[i]["children"])
    return seen


def diagnose(nodes, got, want, calls):
    """Why the gradients differ, from the log of which `_backward` ran when."""
    root = len(nodes) - 1
    if not close(got["grads"][root], want["grads"][root]):
        raise Feedback("backward_seed", expected=want["grads"][root], got=got["grads"][root])
    inner = [i for i in reachable(nodes) if nodes[i]["children"]]
    count = Counter(got["calls"])
    if any(count[i] == 0 for i in inner):
        raise Feedback("backward_skips_nodes", missing=sum(count[i] == 0 for i in inner), total=len(inner))
    if any(count[i] > calls for i in inner):
        raise Feedback("backward_repeats_nodes", times=max(count[i] for i in inner) // calls)
    first_call = {}
    for position, i in enumerate(got["calls"]):
        first_call.setdefault(i, position)
    for parent in inner:
        for child, _ in nodes[parent]["children"]:
            if child in first_call and first_call[child] < first_call[parent]:
                raise Feedback("backward_wrong_order")
    node = next(i for i in range(len(nodes)) if not close(got["grads"][i], want["grads"][i]))
    raise Feedback("backward_wrong", node=node, expected=want["grads"][node], got=got["grads"][node])


def check_backward(student, reference, nodes, pregrads=(), calls=1):
    args = {"nodes": nodes, "pregrads": [list(p) for p in pregrads], "calls": calls}
    got, want = student.call_beside(reference, "dag", **args)
    if not all_close(got["grads"], want["grads"]):
        diagnose(nodes, got, want, calls)


def chain(length, rng):
    nodes = [{"data": 0.5, "children": []}]
    for i in range(1, length):
        nodes.append({"data": 0.5, "children": [[i - 1, round(rng.choice([-1, 1]) * rng.uniform(0.95, 1.05), 4)]]})
    return nodes


def test_backward_sets_the_output_gradient_to_one(student, reference):
    check_backward(student, reference, [{"data": 2.0, "children": []}, {"data": 6.0, "children": [[0, 3.0]]}])


def test_backward_on_a_single_value(student, reference):
    check_backward(student, reference, [{"data": 2.0, "children": []}])


def test_backward_through_a_chain_of_300_nodes(student, reference, rng):
    check_backward(student, reference, chain(300, rng))


def test_backward_on_a_diamond(student, reference):
    # x feeds a and b, both feed the output: x's gradient is the sum over both paths.
    nodes = [
        {"data": 1.0, "children": []},
        {"data": 2.0, "children": [[0, 2.0]]},
        {"data": 3.0, "children": [[0, -1.5]]},
        {"data": 4.0, "children": [[1, 0.5], [2, 4.0]]},
    ]
    check_backward(student, reference, nodes)


def test_backward_with_paths_of_unequal_length(student, reference):
    # x reaches the output directly and through three intermediate nodes.
    nodes = [
        {"data": 1.0, "children": []},
        {"data": 1.0, "children": [[0, 1.5]]},
        {"data": 1.0, "children": [[1, -2.0]]},
        {"data": 1.0, "children": [[2, 0.5]]},
        {"data": 1.0, "children": [[3, 3.0], [0, 0.25]]},
    ]
    check_backward(student, reference, nodes)


def test_backward_with_a_value_used_twice_by_one_operation(student, reference):
    # Like y = x * x: one child, two contributions.
    nodes = [{"data": 1.5, "children": []}, {"data": 2.25, "children": [[0, 1.5], [0, 1.5]]},
             {"data": 0.0, "children": [[1, -2.0], [0, 1.0]]}]
    check_backward(student, reference, nodes)


def test_backward_adds_to_gradients_already_held(student, reference):
    nodes = [{"data": 1.0, "children": []}, {"data": 2.0, "children": []},
             {"data": 3.0, "children": [[0, 2.0], [1, -1.0]]}]
    check_backward(student, reference, nodes, pregrads=[(0, 0.5), (1, -0.25)])


def test_a_second_backward_call_accumulates(student, reference):
    """backward() never zeroes gradients: calling it twice adds up, as in the course and in PyTorch."""
    nodes = [{"data": 1.0, "children": []}, {"data": 2.0, "children": [[0, 2.0]]},
             {"data": 3.0, "children": [[1, 1.5], [0, -0.5]]}]
    check_backward(student, reference, nodes, calls=2)


@pytest.mark.parametrize("graph", range(4))
def test_backward_on_random_graphs_with_shared_nodes(student, reference, rng, graph):
    check_backward(student, reference, random_dag(rng, size=10 + 5 * graph))
