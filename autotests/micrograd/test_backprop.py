"""Hidden tests, group `backprop`: the student's backward() over `_backward` closures known to be right.

Every graph here is made of plain Values whose `_backward` closures are the harness's own (they pass
`local derivative * node.grad` to each child and log the call), so only the order, the seed and the
accumulation of the student's backward() are on trial: an operation bug cannot cost points here.
"""
import diagnosis
import pytest
from inputs import random_dag

from grader.testing import Feedback

pytestmark = [pytest.mark.group("backprop"), pytest.mark.covers("Value.backward")]


def check_backward(student, reference, nodes, pregrads=(), calls=1):
    args = {"nodes": nodes, "pregrads": [list(p) for p in pregrads], "calls": calls}
    got, want = student.call_beside(reference, "dag", **args)
    found = diagnosis.backward(nodes, got["grads"], want["grads"], got["calls"], calls)
    if found is not None:
        raise Feedback(found["id"], **found["params"])


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


# h is computed from x and used by both a and b. Its `_backward` must run exactly once, after a and b have both
# passed their gradient to it: without a visited set (iterative or recursive), or recursing along every path,
# it runs twice; in preorder (depth-first, a node before what it was computed from is done) it runs before its
# second parent has contributed, whichever parent is explored first.
SHARED_INTERIOR = [
    {"data": 0.5, "children": []},                     # 0: x
    {"data": 1.0, "children": [[0, 2.0]]},             # 1: h = f(x), shared
    {"data": 2.0, "children": [[1, 1.5]]},             # 2: a = g(h)
    {"data": 3.0, "children": [[1, -0.5]]},            # 3: b = k(h)
    {"data": 4.0, "children": [[2, 1.25], [3, 3.0]]},  # 4: out = m(a, b)
]

# h reaches the output directly, through d, and through two more nodes (c, then b). Breadth-first order runs h's
# `_backward` one level below the output, before the long path has passed anything to it; preorder runs it
# before b or before d, whichever child of the output it explores first (whatever order the sets hold).
UNEQUAL_PATHS_TO_AN_INTERIOR_NODE = [
    {"data": 0.5, "children": []},                                 # 0: x
    {"data": 1.0, "children": [[0, 2.0]]},                         # 1: h = f(x)
    {"data": 1.5, "children": [[1, -1.5]]},                        # 2: b = g(h)
    {"data": 2.0, "children": [[2, 0.5]]},                         # 3: c = k(b)
    {"data": 2.5, "children": [[1, 1.25]]},                        # 4: d = l(h)
    {"data": 3.0, "children": [[3, 3.0], [1, 0.75], [4, -0.5]]},  # 5: out = m(c, h, d)
]


def test_backward_visits_a_shared_node_once(student, reference):
    check_backward(student, reference, SHARED_INTERIOR)


def test_backward_waits_for_every_path_to_an_interior_node(student, reference):
    check_backward(student, reference, UNEQUAL_PATHS_TO_AN_INTERIOR_NODE)


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


# Every trap at once, in one graph: a shared interior node, unequal paths to an interior node, a value used twice
# by one operation, a leaf feeding nodes at three depths.
TRAPS = [
    {"data": 0.5, "children": []},                                # 0: x
    {"data": -1.0, "children": []},                               # 1: y
    {"data": 1.0, "children": [[0, 2.0], [1, -0.5]]},             # 2: h = f(x, y), shared by 3, 4 and 7
    {"data": 1.5, "children": [[2, 1.5], [2, 1.5]]},              # 3: like h * h
    {"data": 2.0, "children": [[2, -0.75], [0, 1.25]]},           # 4
    {"data": 2.5, "children": [[4, 0.5]]},                        # 5
    {"data": 3.0, "children": [[5, -2.0], [3, 0.25]]},           # 6
    {"data": 3.5, "children": [[6, 1.5], [2, 0.4], [0, -1.0]]},   # 7: the output
]


def test_backward_on_graphs_with_shared_nodes(student, reference, rng):
    """A fixed graph with every trap, then random ones (extra cases: no known bug is caught by them alone)."""
    check_backward(student, reference, TRAPS)
    for size in (10, 15, 20, 25):
        check_backward(student, reference, random_dag(rng, size=size))
