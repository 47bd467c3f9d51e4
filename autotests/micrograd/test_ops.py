"""Hidden tests, group `ops`: each operation's `_backward`, called directly; never the student's backward()."""
import pytest

from inputs import random_graph

pytestmark = pytest.mark.group("ops")


# Each test's `cases` are deterministic, with fixed upstream gradients other than 1 (conftest.FIXED_UPSTREAMS),
# and catch every known bug on their own; `random_cases` are extra cases with a random upstream gradient.

@pytest.mark.covers("Value.__add__")
def test_add_backward_matches_reference(check_operation, rng):
    check_operation("+", [[2.0, -3.0], [0.0, 1.5], [-0.5, 0.0]],
                    random_cases=[[rng.uniform(-3, 3), rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.__mul__")
def test_mul_backward_matches_reference(check_operation, rng):
    check_operation("*", [[2.0, -3.0], [0.0, 1.5], [-0.5, 0.0]],
                    random_cases=[[rng.uniform(-3, 3), rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.__pow__")
@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, -2])
def test_pow_backward_matches_reference(check_operation, rng, exponent):
    cases = [[1.5], [0.4]] + ([[-1.5]] if isinstance(exponent, int) else [])
    cases += [[0.0]] if exponent in (2, 3) else []  # where the course defines the derivative at 0: n * 0 ** (n - 1)
    check_operation("**", cases, exponent=exponent, random_cases=[[rng.uniform(0.5, 3)]])


@pytest.mark.covers("Value.exp")
def test_exp_backward_matches_reference(check_operation, rng):
    check_operation("exp", [[0.0], [1.0], [-2.5]], random_cases=[[rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.log")
def test_log_backward_matches_reference(check_operation, rng):
    check_operation("log", [[1.0], [0.25], [3.0]], random_cases=[[rng.uniform(0.2, 5)]])


@pytest.mark.covers("Value.relu")
def test_relu_backward_matches_reference(check_operation, rng):
    # At exactly 0 the course's relu passes no gradient.
    check_operation("relu", [[1.5], [-2.0], [0.0]], random_cases=[[rng.uniform(0.1, 3)], [-rng.uniform(0.1, 3)]])


@pytest.mark.covers("Value.tanh")
def test_tanh_backward_matches_reference(check_operation, rng):
    check_operation("tanh", [[0.5], [0.0], [-1.3]], random_cases=[[rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.sigmoid")
def test_sigmoid_backward_matches_reference(check_operation, rng):
    check_operation("sigmoid", [[0.0], [2.0], [-1.5]], random_cases=[[rng.uniform(-4, 4)]])


ACCUMULATING = [
    pytest.param("+", [1.5, -0.5], None, marks=pytest.mark.covers("Value.__add__"), id="add"),
    pytest.param("*", [1.5, -0.5], None, marks=pytest.mark.covers("Value.__mul__"), id="mul"),
    pytest.param("**", [1.5], 3, marks=pytest.mark.covers("Value.__pow__"), id="pow"),
    pytest.param("exp", [0.7], None, marks=pytest.mark.covers("Value.exp"), id="exp"),
    pytest.param("log", [0.7], None, marks=pytest.mark.covers("Value.log"), id="log"),
    pytest.param("relu", [0.7], None, marks=pytest.mark.covers("Value.relu"), id="relu"),
    pytest.param("tanh", [0.7], None, marks=pytest.mark.covers("Value.tanh"), id="tanh"),
    pytest.param("sigmoid", [0.7], None, marks=pytest.mark.covers("Value.sigmoid"), id="sigmoid"),
]


@pytest.mark.parametrize("op, inputs, exponent", ACCUMULATING)
def test_backward_adds_to_a_gradient_already_held(check_operation, op, inputs, exponent):
    """`+=`, not `=`: an input that already holds a gradient (from another use) keeps it."""
    check_operation(op, [inputs], exponent=exponent, pregrads=[0.75, -1.25][: len(inputs)])


@pytest.mark.parametrize("op", [
    pytest.param("+", marks=pytest.mark.covers("Value.__add__"), id="x+x"),
    pytest.param("*", marks=pytest.mark.covers("Value.__mul__"), id="x*x"),
])
def test_backward_with_the_same_value_on_both_sides(check_operation, op):
    check_operation(op, [[1.5], [-0.8]], same=True)
    check_operation(op, [[1.5]], same=True, pregrads=[0.75])  # x also used elsewhere: both uses add up


def given(name, expression, nodes, function, id):
    """A case of DERIVED: `name` is given code (the skeleton's), built on the student-written `function`."""
    return pytest.param(nodes, expression, marks=[pytest.mark.covers(function), pytest.mark.given(name)], id=id)


# The operations the skeleton gives, each covering the student-written operation it is built on in
# reference/micrograd/engine.py: -x is x * -1, x - y is x + (-y), 2 - x is 2 + (-x), 3 + x is x + 3, 3 * x is
# x * 3, x / y is x * y ** -1 (a product, with a power only when y is a Value), 2 / x is 2 * x ** -1 (always a
# power). When one fails, the pinpointed operation is named; a given function the student changed is the
# grader's to report.
DERIVED = [
    given("Value.__neg__", "-x", [{"leaf": 1.5}, {"op": "neg", "a": 0}], "Value.__mul__", "neg"),
    given("Value.__sub__", "x - y", [{"leaf": 1.5}, {"leaf": -0.5}, {"op": "-", "a": 0, "b": 1}],
          "Value.__add__", "sub"),
    given("Value.__sub__", "x - 2", [{"leaf": 1.5}, {"op": "-", "a": 0, "b": {"const": 2.0}}],
          "Value.__add__", "sub-const"),
    given("Value.__rsub__", "2 - x", [{"leaf": 1.5}, {"op": "-", "a": {"const": 2.0}, "b": 0}],
          "Value.__add__", "rsub"),
    given("Value.__truediv__", "x / y", [{"leaf": 1.5}, {"leaf": -0.5}, {"op": "/", "a": 0, "b": 1}],
          "Value.__mul__", "truediv"),
    given("Value.__truediv__", "x / 4", [{"leaf": 1.5}, {"op": "/", "a": 0, "b": {"const": 4.0}}],
          "Value.__mul__", "truediv-const"),
    given("Value.__rtruediv__", "2 / x", [{"leaf": 1.5}, {"op": "/", "a": {"const": 2.0}, "b": 0}],
          "Value.__pow__", "rtruediv"),
    given("Value.__radd__", "3 + x", [{"leaf": 1.5}, {"op": "+", "a": {"const": 3.0}, "b": 0}],
          "Value.__add__", "radd"),
    given("Value.__rmul__", "3 * x", [{"leaf": 1.5}, {"op": "*", "a": {"const": 3.0}, "b": 0}],
          "Value.__mul__", "rmul"),
]

# Constants on the right of the student's own operations (not given code).
WITH_CONSTANTS = [
    pytest.param([{"leaf": 1.5}, {"op": "+", "a": 0, "b": {"const": 3.0}}], "x + 3",
                 marks=pytest.mark.covers("Value.__add__"), id="add-const"),
    pytest.param([{"leaf": 1.5}, {"op": "*", "a": 0, "b": {"const": 3.0}}], "x * 3",
                 marks=pytest.mark.covers("Value.__mul__"), id="mul-const"),
]


@pytest.mark.parametrize("nodes, expression", DERIVED + WITH_CONSTANTS)
def test_derived_operation_matches_reference(check_graph, request, nodes, expression):
    function = request.node.get_closest_marker("covers").args[0]
    check_graph(nodes, function, expression, upstream=-1.5)


@pytest.mark.covers("Value")
@pytest.mark.weight(0)
@pytest.mark.parametrize("graph", range(6))
def test_composed_graph_matches_reference(check_graph, rng, graph):
    """Random graphs over every operation: shared sub-expressions, reused nodes, constants on both sides.

    A cross-check worth no points: the grade never depends on what the seed draws; every known bug is caught
    by the deterministic tests above."""
    check_graph(random_graph(rng, leaves=3, operations=6 + 2 * graph), "Value", f"random graph #{graph + 1}")
