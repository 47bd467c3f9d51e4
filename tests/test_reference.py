"""Oracle tests for the reference solution in reference/ (engine.py, nn.py, train.py).

The hidden tests grade students by comparing them with the reference, so the reference itself is checked
here against independent oracles:

* SymPy's symbolic derivatives and central finite differences, on hundreds of random expression graphs that
  use every operation, shared sub-expressions and repeated operands (``x * x``);
* hand-computed values for the neural-network and training parts.

The reference modules are loaded under private names (``_reference_engine`` ...) and ``sys.modules`` is left
exactly as it was, so other test files can load students' ``engine``/``nn``/``train`` without clashes.
"""
from __future__ import annotations

import gc
import math
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import pytest

from grader.runner import import_modules
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference" / "micrograd"
MODULE_NAMES = ("engine", "nn", "train")


# ====================================================================== loading the reference


def load_modules(folder: Path, prefix: str) -> SimpleNamespace:
    """folder/engine.py, nn.py and train.py as private modules, the grader's own way (sys.modules left as it was)."""
    return SimpleNamespace(**import_modules(folder, ("engine", "nn", "train")))


REF = load_modules(REFERENCE_DIR, "_reference")
Value = REF.engine.Value


@pytest.fixture
def seeded_random() -> Iterator[None]:
    """Seed the global `random` (nn.py draws initial weights from it) and restore its state afterwards."""
    state = random.getstate()
    random.seed(1234)
    yield
    random.setstate(state)


def test_loading_the_reference_leaves_sys_modules_untouched() -> None:
    before = {name: sys.modules.get(name) for name in MODULE_NAMES}
    modules = load_modules(REFERENCE_DIR, "_reference_again")
    assert {name: sys.modules.get(name) for name in MODULE_NAMES} == before
    assert modules.nn.Value is modules.engine.Value
    assert modules.train.Value is modules.engine.Value


# ====================================================================== random expression graphs
#
# A graph is a list of leaves (input numbers) followed by operations; each operation reads earlier nodes by
# index, so a node can feed several later ones (shared sub-expressions) or both operands of one (x * x).
# The same graph is evaluated three ways: with the reference's Value, with SymPy symbols and with floats.

UNARY = ("exp", "log", "relu", "tanh", "sigmoid", "neg")
BINARY = ("add", "mul", "sub", "div")
POWER = ("pow_int", "pow_float")
WITH_CONSTANT = (  # x is the node, c a Python int or float
    "x+c", "c+x", "x*c", "c*x", "x-c", "c-x", "x/c", "c/x",
)
KINDS = UNARY + BINARY + POWER + WITH_CONSTANT


@dataclass(frozen=True)
class Op:
    kind: str
    args: tuple[int, ...]  # indices of earlier nodes
    const: int | float | None = None  # exponent or constant operand


@dataclass(frozen=True)
class Graph:
    leaves: tuple[float, ...]
    ops: tuple[Op, ...]

    def __repr__(self) -> str:  # readable in Hypothesis' falsifying examples
        names = [f"x{i}" for i in range(len(self.leaves))]
        lines = [f"{n} = {v!r}" for n, v in zip(names, self.leaves)]
        for op in self.ops:
            name = f"n{len(names)}"
            a = names[op.args[0]]
            b = names[op.args[1]] if len(op.args) > 1 else ""
            c = op.const
            text = {
                "add": f"{a} + {b}", "mul": f"{a} * {b}", "sub": f"{a} - {b}", "div": f"{a} / {b}",
                "pow_int": f"{a} ** {c!r}", "pow_float": f"{a} ** {c!r}", "neg": f"-{a}",
                "x+c": f"{a} + {c!r}", "c+x": f"{c!r} + {a}", "x*c": f"{a} * {c!r}", "c*x": f"{c!r} * {a}",
                "x-c": f"{a} - {c!r}", "c-x": f"{c!r} - {a}", "x/c": f"{a} / {c!r}", "c/x": f"{c!r} / {a}",
            }.get(op.kind, f"{a}.{op.kind}()")
            lines.append(f"{name} = {text}")
            names.append(name)
        return "Graph(" + "; ".join(lines) + ")"


@dataclass(frozen=True)
class Backend:
    """The five non-operator functions; +, -, *, /, ** are Python operators for every backend."""

    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    relu: Callable[[Any], Any]
    tanh: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]


VALUE_BACKEND = Backend(
    exp=lambda a: a.exp(), log=lambda a: a.log(), relu=lambda a: a.relu(),
    tanh=lambda a: a.tanh(), sigmoid=lambda a: a.sigmoid(),
)
# relu as a Piecewise: its derivative is 1 for x > 0 and 0 otherwise, i.e. Heaviside(x, 0).
SYMPY_BACKEND = Backend(
    exp=sympy.exp, log=sympy.log, relu=lambda a: sympy.Piecewise((a, a > 0), (0, True)),
    tanh=sympy.tanh, sigmoid=lambda a: 1 / (1 + sympy.exp(-a)),
)
FLOAT_BACKEND = Backend(
    exp=math.exp, log=math.log, relu=lambda a: max(a, 0.0),
    tanh=math.tanh, sigmoid=lambda a: 1 / (1 + math.exp(-a)),
)


def apply(op: Op, nodes: Sequence[Any], fn: Backend) -> Any:
    a = nodes[op.args[0]]
    b = nodes[op.args[1]] if len(op.args) > 1 else None
    c = op.const
    k = op.kind
    if k in UNARY:
        return -a if k == "neg" else getattr(fn, k)(a)
    if k == "add":
        return a + b
    if k == "mul":
        return a * b
    if k == "sub":
        return a - b
    if k == "div":
        return a / b
    if k in POWER:
        return a ** c
    return {
        "x+c": lambda: a + c, "c+x": lambda: c + a, "x*c": lambda: a * c, "c*x": lambda: c * a,
        "x-c": lambda: a - c, "c-x": lambda: c - a, "x/c": lambda: a / c, "c/x": lambda: c / a,
    }[k]()


def evaluate(graph: Graph, leaves: Sequence[Any], fn: Backend) -> list[Any]:
    """All nodes of the graph, leaves first; the last one is the root."""
    nodes = list(leaves)
    for op in graph.ops:
        nodes.append(apply(op, nodes, fn))
    return nodes


# Margins that keep every formula finite and well conditioned, also under a finite-difference step.
LOG_MIN = 0.1  # log and float exponents only above this
DIVISOR_MIN = 0.25  # |divisor| and |base| of a negative or zero integer exponent at least this
RELU_MARGIN = 0.05  # relu inputs at least this far from the kink at 0
NODE_MAX = 100.0  # every node's value stays within +-NODE_MAX


def well_conditioned(op: Op, nodes: Sequence[float]) -> bool:
    """True if op may be applied to these float values (domain, margins and size of the result)."""
    a = nodes[op.args[0]]
    b = nodes[op.args[1]] if len(op.args) > 1 else None
    k, c = op.kind, op.const
    if k == "log" and a <= LOG_MIN:
        return False
    if k == "relu" and abs(a) < RELU_MARGIN:
        return False
    if k == "pow_float" and a <= LOG_MIN:
        return False
    if k == "pow_int" and c <= 0 and abs(a) < DIVISOR_MIN:
        return False
    if k == "div" and abs(b) < DIVISOR_MIN:
        return False
    if k == "c/x" and abs(a) < DIVISOR_MIN:
        return False
    try:
        result = apply(op, nodes, FLOAT_BACKEND)
    except (OverflowError, ZeroDivisionError, ValueError):
        return False
    return isinstance(result, float | int) and math.isfinite(result) and abs(result) <= NODE_MAX


constants = st.one_of(
    st.integers(-3, 3).filter(lambda c: c != 0),
    st.floats(-3, 3).map(lambda c: round(c, 2)).filter(lambda c: abs(c) >= 0.1),
)
int_exponents = st.integers(-2, 3)
float_exponents = st.sampled_from([0.5, 1.5, 2.5, -0.5, -1.5, 0.3, 1.7, 2.0])


@st.composite
def ops(draw: st.DrawFn, n_nodes: int) -> Op:
    """One operation on the nodes 0 .. n_nodes-1, preferring the newest node so graphs grow deep."""
    kind = draw(st.sampled_from(KINDS))
    newest = n_nodes - 1
    first = draw(st.one_of(st.just(newest), st.integers(0, newest)))
    if kind in BINARY:
        second = draw(st.one_of(st.just(first), st.integers(0, newest)))  # st.just(first): x * x, x + x ...
        return Op(kind, (first, second))
    if kind == "pow_int":
        return Op(kind, (first,), draw(int_exponents))
    if kind == "pow_float":
        return Op(kind, (first,), draw(float_exponents))
    if kind in WITH_CONSTANT:
        return Op(kind, (first,), draw(constants))
    return Op(kind, (first,))


@st.composite
def graphs(draw: st.DrawFn, max_leaves: int = 4, max_ops: int = 8) -> Graph:
    """A random, well-conditioned expression graph (see `well_conditioned`)."""
    leaves = draw(st.lists(st.floats(-3, 3), min_size=1, max_size=max_leaves))
    nodes: list[float] = list(leaves)
    chosen: list[Op] = []
    for _ in range(draw(st.integers(2, max_ops))):  # single operations are tested one by one below
        for _attempt in range(4):
            op = draw(ops(len(nodes)))
            if well_conditioned(op, nodes):
                break
        else:  # tanh is defined, bounded and smooth everywhere
            op = Op("tanh", (len(nodes) - 1,))
        chosen.append(op)
        nodes.append(apply(op, nodes, FLOAT_BACKEND))
    return Graph(tuple(leaves), tuple(chosen))


def reference_gradients(graph: Graph) -> tuple[float, list[float]]:
    """The reference's root value and d(root)/d(leaf) for every leaf, from root.backward()."""
    leaves = [Value(x) for x in graph.leaves]
    root = evaluate(graph, leaves, VALUE_BACKEND)[-1]
    root.backward()
    return root.data, [leaf.grad for leaf in leaves]


def reference_forward(graph: Graph, leaves: Sequence[float]) -> float:
    return evaluate(graph, [Value(x) for x in leaves], VALUE_BACKEND)[-1].data


def sympy_gradients(graph: Graph) -> tuple[float, list[float]]:
    """SymPy's value of the root and its symbolic derivatives, evaluated at the graph's leaves."""
    symbols = sympy.symbols(f"x0:{len(graph.leaves)}")
    root = evaluate(graph, symbols, SYMPY_BACKEND)[-1]
    point = dict(zip(symbols, graph.leaves))
    value = float(sympy.sympify(root).subs(point))
    return value, [float(sympy.diff(root, s).subs(point)) for s in symbols]


def finite_difference_gradients(graph: Graph) -> list[float]:
    """Central differences of the reference's forward pass, one leaf at a time."""
    grads = []
    for i, x in enumerate(graph.leaves):
        h = 1e-6 * max(1.0, abs(x))
        up = list(graph.leaves)
        down = list(graph.leaves)
        up[i], down[i] = x + h, x - h
        grads.append((reference_forward(graph, up) - reference_forward(graph, down)) / (2 * h))
    return grads


def largest_node(graph: Graph) -> float:
    return max(abs(v) for v in evaluate(graph, graph.leaves, FLOAT_BACKEND))


GRAPH_SETTINGS = settings(
    max_examples=600, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow],
)
MIN_GRAPHS = 500  # distinct random graphs that each property below must check per run


def _has(kind: str) -> Callable[[Graph], bool]:
    return lambda g: any(op.kind == kind for op in g.ops)


def _shares_a_node(g: Graph) -> bool:
    uses = [i for op in g.ops for i in set(op.args)]
    return any(uses.count(i) >= 2 for i in range(len(g.leaves), len(g.leaves) + len(g.ops)))


def _relu_on_a_negative_input(g: Graph) -> bool:
    nodes = evaluate(g, g.leaves, FLOAT_BACKEND)
    return any(op.kind == "relu" and nodes[op.args[0]] < 0 for op in g.ops)


FEATURES: dict[str, Callable[[Graph], bool]] = {
    **{f"op {kind}": _has(kind) for kind in KINDS},
    "pow with a float exponent that is not whole": lambda g: any(
        op.kind == "pow_float" and op.const != int(op.const) for op in g.ops),
    "pow with a negative exponent": lambda g: any(op.kind in POWER and op.const < 0 for op in g.ops),
    "an int constant": lambda g: any(op.kind in WITH_CONSTANT and isinstance(op.const, int) for op in g.ops),
    "a float constant": lambda g: any(op.kind in WITH_CONSTANT and isinstance(op.const, float) for op in g.ops),
    "x * x": lambda g: any(op.kind == "mul" and op.args[0] == op.args[1] for op in g.ops),
    "x + x": lambda g: any(op.kind == "add" and op.args[0] == op.args[1] for op in g.ops),
    "a computed node reused by two later operations": _shares_a_node,
    "three or more leaves": lambda g: len(g.leaves) >= 3,
    "relu on a negative input": _relu_on_a_negative_input,
    "8 operations": lambda g: len(g.ops) == 8,
}


def check_random_graphs(check: Callable[[Graph], None]) -> list[Graph]:
    """Run check on MIN_GRAPHS random graphs (Hypothesis shrinks any failure); return the graphs checked.

    The caller then asserts that the graphs really were that many and covered every feature in FEATURES, so a
    change to the strategy cannot quietly stop testing an operation.
    """
    checked: list[Graph] = []

    @GRAPH_SETTINGS
    @given(graph=graphs())
    def property_holds(graph: Graph) -> None:
        check(graph)
        checked.append(graph)

    property_holds()
    return checked


def assert_many_graphs_covering_every_feature(checked: list[Graph]) -> None:
    assert len(set(checked)) >= MIN_GRAPHS  # Hypothesis repeats a few small graphs
    missing = [name for name, has in FEATURES.items() if not any(has(g) for g in checked)]
    assert not missing, f"no random graph had: {missing}"


def assert_gradients_match_sympy(graph: Graph) -> None:
    value, grads = reference_gradients(graph)
    want_value, want_grads = sympy_gradients(graph)
    assert value == pytest.approx(want_value, rel=1e-9, abs=1e-12), graph
    scale = 1.0 + max(abs(g) for g in want_grads)
    for i, (got, want) in enumerate(zip(grads, want_grads)):
        assert got == pytest.approx(want, rel=1e-8, abs=1e-10 * scale), f"d(root)/d(x{i}) in {graph}"


def assert_gradients_match_finite_differences(graph: Graph) -> None:
    _, grads = reference_gradients(graph)
    numeric = finite_difference_gradients(graph)
    # The rounding error of a central difference is about eps * |values| / h.
    noise = 1e-16 * (1.0 + largest_node(graph)) / 1e-6
    for i, (got, want) in enumerate(zip(grads, numeric)):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6 + 100 * noise), f"d(root)/d(x{i}) in {graph}"


def test_random_graph_gradients_match_sympy() -> None:
    assert_many_graphs_covering_every_feature(check_random_graphs(assert_gradients_match_sympy))


def test_random_graph_gradients_match_finite_differences() -> None:
    assert_many_graphs_covering_every_feature(check_random_graphs(assert_gradients_match_finite_differences))


# ====================================================================== each operation on its own


def _single(kind: str, const: int | float | None = None, binary_with_itself: bool = False) -> Callable[..., Graph]:
    def make(*xs: float) -> Graph:
        args = (0, 0) if binary_with_itself else tuple(range(len(xs)))
        return Graph(tuple(xs), (Op(kind, args, const),))
    return make


# (name, graph builder, points); every point is inside the operation's domain and away from relu's kink.
SINGLE_OPERATIONS: list[tuple[str, Callable[..., Graph], list[tuple[float, ...]]]] = [
    ("add", _single("add"), [(1.5, -2.0), (0.0, 3.0)]),
    ("mul", _single("mul"), [(1.5, -2.0), (0.25, 4.0)]),
    ("x + x", _single("add", binary_with_itself=True), [(1.5,), (-3.0,)]),
    ("x * x", _single("mul", binary_with_itself=True), [(1.5,), (-3.0,)]),
    ("x - x", _single("sub", binary_with_itself=True), [(1.5,)]),
    ("x / x", _single("div", binary_with_itself=True), [(1.5,), (-0.5,)]),
    ("pow 2", _single("pow_int", 2), [(1.5,), (-3.0,)]),
    ("pow 3", _single("pow_int", 3), [(-1.5,)]),
    ("pow -1", _single("pow_int", -1), [(0.5,), (-2.0,)]),
    ("pow 0", _single("pow_int", 0), [(2.0,)]),
    ("pow 0.5", _single("pow_float", 0.5), [(2.0,)]),
    ("pow -1.5", _single("pow_float", -1.5), [(0.7,)]),
    ("exp", _single("exp"), [(0.0,), (-2.0,), (3.0,)]),
    ("log", _single("log"), [(0.5,), (7.0,)]),
    ("relu", _single("relu"), [(1.5,), (-1.5,)]),
    ("tanh", _single("tanh"), [(0.0,), (0.5,), (-2.5,)]),
    ("sigmoid", _single("sigmoid"), [(0.0,), (1.5,), (-4.0,)]),
    ("neg", _single("neg"), [(1.5,)]),
    ("sub", _single("sub"), [(1.5, -2.0)]),
    ("truediv", _single("div"), [(1.5, -2.0), (-3.0, 0.5)]),
    ("x + 2", _single("x+c", 2), [(1.5,)]),
    ("2 + x (radd)", _single("c+x", 2), [(1.5,)]),
    ("x * 3", _single("x*c", 3), [(1.5,)]),
    ("3.5 * x (rmul)", _single("c*x", 3.5), [(1.5,)]),
    ("x - 2", _single("x-c", 2), [(1.5,)]),
    ("2 - x (rsub)", _single("c-x", 2), [(1.5,)]),
    ("x / 4", _single("x/c", 4), [(1.5,)]),
    ("2 / x (rtruediv)", _single("c/x", 2), [(1.5,), (-0.4,)]),
]


@pytest.mark.parametrize(
    "build, point", [(build, p) for _, build, points in SINGLE_OPERATIONS for p in points],
    ids=[f"{name}@{p}" for name, _, points in SINGLE_OPERATIONS for p in points],
)
def test_operation_value_and_gradient_match_sympy(build: Callable[..., Graph], point: tuple[float, ...]) -> None:
    graph = build(*point)
    value, grads = reference_gradients(graph)
    want_value, want_grads = sympy_gradients(graph)
    assert value == pytest.approx(want_value, rel=1e-12, abs=1e-15)
    assert grads == pytest.approx(want_grads, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("x, slope", [(2.0, 1.0), (-2.0, 0.0), (0.0, 0.0)])
def test_relu_gradient_is_one_above_zero_and_zero_otherwise(x: float, slope: float) -> None:
    v = Value(x)
    out = v.relu()
    out.backward()
    assert out.data == max(x, 0.0)
    assert v.grad == slope


def test_relu_gradient_at_exactly_zero_is_zero_even_inside_a_graph() -> None:
    x = Value(1.5)
    y = (x - x).relu() * 3 + x  # relu sees exactly 0.0
    y.backward()
    assert x.grad == 1.0


def test_reflected_operations_build_values_with_the_right_data() -> None:
    x = Value(4.0)
    assert (2 + x).data == 6.0
    assert (x * 3).data == 12.0
    assert (3 * x).data == 12.0
    assert (2 - x).data == -2.0
    assert (2 / x).data == 0.5
    assert (x / 2).data == 2.0
    assert (-x).data == -4.0
    assert (x ** 0.5).data == 2.0


def test_pow_rejects_a_value_exponent() -> None:
    with pytest.raises(TypeError):
        Value(2.0) ** Value(3.0)


# ====================================================================== backward(): order, seed, accumulation


def test_backward_seeds_the_root_gradient_with_one() -> None:
    x = Value(3.0)
    y = x * 2
    y.grad = 42.0
    y.backward()
    assert y.grad == 1.0
    assert x.grad == 2.0


def test_backward_visits_a_shared_node_once_after_all_its_users() -> None:
    # a feeds b and c, which both feed d: a's gradient must collect both paths before it is passed on.
    x = Value(2.0)
    a = x * 3  # 6
    b = a.tanh()
    c = a * a
    d = b + c
    d.backward()
    expected_a = (1 - math.tanh(6.0) ** 2) + 2 * 6.0
    assert a.grad == pytest.approx(expected_a, rel=1e-14)
    assert x.grad == pytest.approx(3 * expected_a, rel=1e-14)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Every Value is in a reference cycle (out -> _backward -> out); pausing the cyclic collector while a
    huge graph is built makes the test about 3 times faster. It is not needed for correctness."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def test_backward_on_a_100000_node_chain_works_without_recursion() -> None:
    assert sys.getrecursionlimit() < 100_000  # so a recursive topological sort would fail here
    with cyclic_gc_paused():
        x = Value(1.0)
        y = x
        for _ in range(100_000):
            y = y * 1.00001
        y.backward()
    assert x.grad == pytest.approx(1.00001 ** 100_000, rel=1e-9)
    assert y.data == pytest.approx(1.00001 ** 100_000, rel=1e-9)


def test_second_backward_accumulates_into_the_leaves() -> None:
    x = Value(2.0)
    y = x * 3
    y.backward()
    assert x.grad == 3.0
    y.backward()
    assert x.grad == 6.0


def test_backward_never_resets_gradients_anywhere_in_the_graph() -> None:
    # Intermediate nodes keep their gradient too, so a second pass sends twice as much through them.
    x = Value(2.0)
    m = x * x
    y = m + x
    y.backward()
    assert (m.grad, x.grad) == (1.0, 5.0)
    y.backward()
    assert m.grad == 2.0
    assert x.grad == 5.0 + 1.0 + 2 * 2.0 * 2.0  # old + from y + from m (m.grad is now 2)


def test_backward_adds_to_a_gradient_a_leaf_already_has() -> None:
    x = Value(2.0)
    x.grad = 10.0
    (x * 3).backward()
    assert x.grad == 13.0


# ====================================================================== extreme inputs


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "exp"])
@pytest.mark.parametrize("x", [1000.0, -1000.0])
def test_activation_at_plus_minus_1000_is_finite_with_a_finite_gradient(op: str, x: float) -> None:
    v = Value(x)
    out = getattr(v, op)()
    out.backward()
    assert math.isfinite(out.data)
    assert math.isfinite(v.grad)


def test_saturated_activations_have_the_expected_limits() -> None:
    assert Value(1000.0).tanh().data == 1.0
    assert Value(-1000.0).tanh().data == -1.0
    assert Value(1000.0).sigmoid().data == 1.0
    assert Value(-1000.0).sigmoid().data == pytest.approx(0.0, abs=1e-300)
    assert Value(-1000.0).exp().data == pytest.approx(0.0, abs=1e-300)


@pytest.mark.parametrize("x", [0.0, -1.0])
def test_log_of_a_non_positive_number_raises_a_clear_value_error(x: float) -> None:
    with pytest.raises(ValueError, match=r"log is only defined for positive numbers"):
        Value(x).log()


# ====================================================================== nn: Neuron, Layer, MLP


@pytest.mark.parametrize(
    "make, count",
    [
        (lambda nn: nn.Neuron(3), 4),
        (lambda nn: nn.Neuron(3, nonlin=False), 4),
        (lambda nn: nn.Layer(3, 4), 16),
        (lambda nn: nn.Layer(2, 1), 3),
        (lambda nn: nn.MLP(3, [4, 4, 1]), 41),
        (lambda nn: nn.MLP(2, [16, 16, 1]), 337),
    ],
    ids=["Neuron(3)", "linear Neuron(3)", "Layer(3, 4)", "Layer(2, 1)", "MLP(3, [4, 4, 1])", "MLP(2, [16, 16, 1])"],
)
def test_parameter_count(make: Callable[[ModuleType], Any], count: int, seeded_random: None) -> None:
    params = make(REF.nn).parameters()
    assert len(params) == count
    assert len({id(p) for p in params}) == count
    assert all(isinstance(p, Value) for p in params)


def test_neuron_parameters_are_the_weights_then_the_bias(seeded_random: None) -> None:
    n = REF.nn.Neuron(3)
    params = n.parameters()
    assert [id(p) for p in params] == [id(w) for w in n.w] + [id(n.b)]
    assert n.b.data == 0
    assert all(-1 <= w.data <= 1 for w in n.w)
    assert n.nonlin is True


def test_layer_parameters_go_neuron_by_neuron(seeded_random: None) -> None:
    layer = REF.nn.Layer(2, 3)
    expected = [id(p) for n in layer.neurons for p in [*n.w, n.b]]
    assert [id(p) for p in layer.parameters()] == expected


def test_mlp_parameters_go_layer_by_layer(seeded_random: None) -> None:
    model = REF.nn.MLP(3, [4, 4, 1])
    expected = [id(p) for layer in model.layers for n in layer.neurons for p in [*n.w, n.b]]
    assert [id(p) for p in model.parameters()] == expected
    assert [len(layer.neurons) for layer in model.layers] == [4, 4, 1]
    assert [len(layer.neurons[0].w) for layer in model.layers] == [3, 4, 4]


def test_mlp_last_layer_is_linear_and_the_others_are_not(seeded_random: None) -> None:
    model = REF.nn.MLP(3, [4, 4, 2])
    assert [[n.nonlin for n in layer.neurons] for layer in model.layers] == [[True] * 4, [True] * 4, [False] * 2]


def _set_neuron(neuron: Any, w: Sequence[float], b: float) -> None:
    for wi, value in zip(neuron.w, w):
        wi.data = value
    neuron.b.data = b


def test_neuron_computes_relu_of_w_dot_x_plus_b() -> None:
    n = REF.nn.Neuron(2)
    _set_neuron(n, [2.0, -3.0], 0.5)
    assert n([1.0, 1.0]).data == 0.0  # relu(-0.5)
    assert n([2.0, 1.0]).data == 1.5  # relu(1.5)
    n.nonlin = False
    assert n([1.0, 1.0]).data == -0.5


def test_linear_last_layer_lets_a_negative_output_through() -> None:
    model = REF.nn.MLP(1, [2, 1])
    _set_neuron(model.layers[0].neurons[0], [1.0], 0.0)  # h0 = relu(x)
    _set_neuron(model.layers[0].neurons[1], [-1.0], 0.0)  # h1 = relu(-x), 0 for x = 3
    _set_neuron(model.layers[1].neurons[0], [-2.0, 5.0], 0.5)  # -2 h0 + 5 h1 + 0.5, no relu
    out = model([3.0])
    assert out.data == -5.5
    out.backward()
    assert model.layers[1].neurons[0].w[0].grad == 3.0
    assert model.layers[0].neurons[0].w[0].grad == -2.0 * 3.0
    assert model.layers[0].neurons[1].w[0].grad == 0.0  # relu was off


def test_layer_of_one_neuron_returns_a_value_not_a_list(seeded_random: None) -> None:
    assert isinstance(REF.nn.Layer(3, 1)([1.0, 2.0, 3.0]), Value)
    outs = REF.nn.Layer(3, 2)([1.0, 2.0, 3.0])
    assert isinstance(outs, list) and len(outs) == 2 and all(isinstance(o, Value) for o in outs)
    assert isinstance(REF.nn.MLP(3, [4, 1])([1.0, 2.0, 3.0]), Value)


def test_zero_grad_resets_every_parameter(seeded_random: None) -> None:
    model = REF.nn.MLP(3, [4, 1])
    model([1.0, -2.0, 0.5]).backward()
    for p in model.parameters():
        p.grad = 7.0
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


# ====================================================================== training

XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def test_mse_loss_of_hand_computed_values() -> None:
    ypred = [Value(1.0), Value(-0.5), Value(2.0)]
    loss = REF.train.mse_loss(ypred, [0.0, 0.5, 2.0])
    assert isinstance(loss, Value)
    assert loss.data == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    loss.backward()
    assert [p.grad for p in ypred] == pytest.approx([2 / 3, -2 / 3, 0.0])  # 2 (yp - y) / n


def test_l2_penalty_of_hand_computed_values() -> None:
    params = [Value(1.0), Value(-2.0), Value(3.0)]
    penalty = REF.train.l2_penalty(params, 0.1)
    assert isinstance(penalty, Value)
    assert penalty.data == pytest.approx(1.4)
    penalty.backward()
    assert [p.grad for p in params] == pytest.approx([0.2, -0.4, 0.6])  # 2 lam p


def test_l2_penalty_with_zero_lambda_is_zero() -> None:
    assert REF.train.l2_penalty([Value(5.0)], 0.0).data == 0.0


def test_sgd_step_moves_against_the_gradient_and_leaves_grad_alone() -> None:
    p, q = Value(1.0), Value(-2.0)
    p.grad, q.grad = 0.5, -4.0
    REF.train.sgd_step([p, q], 0.1)
    assert (p.data, q.data) == (pytest.approx(0.95), pytest.approx(-1.6))
    assert (p.grad, q.grad) == (0.5, -4.0)


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.05])
def test_train_lowers_the_loss_on_the_course_example(lam: float, seeded_random: None) -> None:
    model = REF.nn.MLP(3, [4, 4, 1])
    losses = REF.train.train(model, XS, YS, epochs=50, lr=0.05, lam=lam)
    assert len(losses) == 50
    assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]


def test_train_records_mse_plus_l2_before_each_update(seeded_random: None) -> None:
    model = REF.nn.MLP(3, [4, 4, 1])
    lam = 0.01
    first = (REF.train.mse_loss([model(x) for x in XS], YS) + REF.train.l2_penalty(model.parameters(), lam)).data
    losses = REF.train.train(model, XS, YS, epochs=1, lr=0.05, lam=lam)
    assert losses == [first]


def test_train_follows_the_specified_loop(seeded_random: None) -> None:
    """Same start, same steps: forward all xs, mse + l2, zero_grad, backward, record, sgd_step."""
    model = REF.nn.MLP(3, [4, 4, 1])
    twin = REF.nn.MLP(3, [4, 4, 1])
    for p, q in zip(model.parameters(), twin.parameters()):
        q.data = p.data
    losses = REF.train.train(model, XS, YS, epochs=5, lr=0.05, lam=0.01)

    expected = []
    for _ in range(5):
        ypred = [twin(x) for x in XS]
        loss = REF.train.mse_loss(ypred, YS) + REF.train.l2_penalty(twin.parameters(), 0.01)
        for p in twin.parameters():
            p.grad = 0.0
        loss.backward()
        expected.append(loss.data)
        for p in twin.parameters():
            p.data -= 0.05 * p.grad
    # Not bit-identical: backward() walks each node's _prev, a set ordered by object id, so gradients of
    # different graphs of the same shape are summed in different orders.
    assert losses == pytest.approx(expected, rel=1e-12)
    assert [p.data for p in model.parameters()] == pytest.approx([p.data for p in twin.parameters()], rel=1e-12)
