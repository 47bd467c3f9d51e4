"""Hidden tests, group `ops`: each operation's `_backward`, called directly; never the student's backward()."""
import pytest

from inputs import random_graph

pytestmark = pytest.mark.group("ops")


@pytest.mark.covers("Value.__add__")
def test_add_backward_matches_reference(check_operation, rng):
    check_operation("+", [[2.0, -3.0], [0.0, 1.5], [rng.uniform(-3, 3), rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.__mul__")
def test_mul_backward_matches_reference(check_operation, rng):
    check_operation("*", [[2.0, -3.0], [0.0, 1.5], [rng.uniform(-3, 3), rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.__pow__")
@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, -2])
def test_pow_backward_matches_reference(check_operation, rng, exponent):
    check_operation("**", [[1.5], [0.4], [rng.uniform(0.5, 3)]], exponent=exponent)


@pytest.mark.covers("Value.exp")
def test_exp_backward_matches_reference(check_operation, rng):
    check_operation("exp", [[0.0], [1.0], [-2.5], [rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.log")
def test_log_backward_matches_reference(check_operation, rng):
    check_operation("log", [[1.0], [0.25], [3.0], [rng.uniform(0.2, 5)]])


@pytest.mark.covers("Value.relu")
def test_relu_backward_matches_reference(check_operation, rng):
    # At exactly 0 the course's relu passes no gradient.
    check_operation("relu", [[1.5], [-2.0], [0.0], [rng.uniform(0.1, 3)], [-rng.uniform(0.1, 3)]])


@pytest.mark.covers("Value.tanh")
def test_tanh_backward_matches_reference(check_operation, rng):
    check_operation("tanh", [[0.5], [0.0], [-1.3], [rng.uniform(-3, 3)]])


@pytest.mark.covers("Value.sigmoid")
def test_sigmoid_backward_matches_reference(check_operation, rng):
    check_operation("sigmoid", [[0.0], [2.0], [-1.5], [rng.uniform(-4, 4)]])


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


def derived(nodes, function, expression, builds_on, name):
    """A test of given code: it counts with the student function it builds on."""
    marks = [pytest.mark.covers(builds_on)] + ([pytest.mark.given(function)] if function != builds_on else [])
    return pytest.param(nodes, function, expression, marks=marks, id=name)


X, Y = {"leaf": 1.5}, {"leaf": -0.5}
DERIVED = [
    derived([X, {"op": "neg", "a": 0}], "Value.__neg__", "-x", "Value.__mul__", "neg"),
    derived([X, Y, {"op": "-", "a": 0, "b": 1}], "Value.__sub__", "x - y", "Value.__add__", "sub"),
    derived([X, {"op": "-", "a": 0, "b": {"const": 2.0}}], "Value.__sub__", "x - 2", "Value.__add__", "sub-const"),
    derived([X, {"op": "-", "a": {"const": 2.0}, "b": 0}], "Value.__rsub__", "2 - x", "Value.__add__", "rsub"),
    derived([X, Y, {"op": "/", "a": 0, "b": 1}], "Value.__truediv__", "x / y", "Value.__mul__", "truediv"),
    derived([X, {"op": "/", "a": 0, "b": {"const": 4.0}}], "Value.__truediv__", "x / 4", "Value.__mul__",
            "truediv-const"),
    derived([X, {"op": "/", "a": {"const": 2.0}, "b": 0}], "Value.__rtruediv__", "2 / x", "Value.__pow__",
            "rtruediv"),
    derived([X, {"op": "+", "a": {"const": 3.0}, "b": 0}], "Value.__radd__", "3 + x", "Value.__add__", "radd"),
    derived([X, {"op": "+", "a": 0, "b": {"const": 3.0}}], "Value.__add__", "x + 3", "Value.__add__", "add-const"),
    derived([X, {"op": "*", "a": {"const": 3.0}, "b": 0}], "Value.__rmul__", "3 * x", "Value.__mul__", "rmul"),
    derived([X, {"op": "*", "a": 0, "b": {"const": 3.0}}], "Value.__mul__", "x * 3", "Value.__mul__", "mul-const"),
]


@pytest.mark.parametrize("nodes, function, expression", DERIVED)
def test_derived_operation_matches_reference(check_graph, nodes, function, expression):
    check_graph(nodes, function, expression)


@pytest.mark.covers("Value")
@pytest.mark.weight(0)
@pytest.mark.parametrize("graph", range(6))
def test_composed_graph_matches_reference(check_graph, rng, graph):
    """Random graphs over every operation: shared sub-expressions, reused nodes, constants on both sides."""
    check_graph(random_graph(rng, leaves=3, operations=6 + 2 * graph), "Value", f"random graph #{graph + 1}")
