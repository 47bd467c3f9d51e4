"""Public tests for engine.py: a few cases per function, to guide you. The grader's hidden tests check more.

Each operation's test builds the operation, sets the output's gradient by hand (the "upstream" gradient, never 1,
so that a missing `* out.grad` shows), calls out._backward() once and checks the gradients that arrived at the
inputs. The backward() tests use graphs whose `_backward` closures are written here, so only backward() is on
trial there.
"""
import diagnosis
from checks import covers, expect, expect_equal
from engine import Value

NAMES = {"+": "add (__add__)", "*": "mul (__mul__)", "**": "pow (__pow__)"}


def check_op(op, inputs, upstream, expected_data, expected_grads, exponent=None, same=False, held=None):
    """out = op(inputs) (`same`: x op x), inputs holding `held` gradients, out.grad = upstream, out._backward()."""
    xs = [Value(x) for x in inputs]
    for x, grad in zip(xs, held or []):
        x.grad = grad
    a = xs[0]
    b = a if same else (xs[1] if len(xs) > 1 else None)
    out = {"+": lambda: a + b, "*": lambda: a * b, "**": lambda: a ** exponent}.get(op, lambda: getattr(a, op)())()
    out.grad = upstream
    out._backward()
    expect(diagnosis.operation(op, NAMES.get(op, op), inputs, upstream, expected_data, expected_grads, out.data,
                               [x.grad for x in xs], pregrads=held, exponent=exponent))


@covers("Value.__add__")
def test_add_backward():
    check_op("+", [2.0, -3.0], 1.75, -1.0, [1.75, 1.75])


@covers("Value.__add__")
def test_add_backward_adds_to_gradients_already_held():
    check_op("+", [2.0, -3.0], 1.75, -1.0, [2.5, 0.5], held=[0.75, -1.25])


@covers("Value.__add__")
def test_add_backward_with_the_same_value_on_both_sides():
    check_op("+", [1.5], -0.6, 3.0, [-1.2], same=True)


@covers("Value.__add__")
def test_add_backward_with_a_plain_number():
    a = Value(2.0)
    out = a + 5
    out.grad = 1.5
    out._backward()
    expect_equal(a.grad, 1.5, "check.plus_number", x=2.0, upstream=1.5)


@covers("Value.__mul__")
def test_mul_backward():
    check_op("*", [2.0, -3.0], 1.75, -6.0, [-5.25, 3.5])


@covers("Value.__mul__")
def test_mul_backward_with_the_same_value_on_both_sides():
    check_op("*", [1.5], -0.6, 2.25, [-1.8], same=True)
    check_op("*", [1.5], 1.75, 2.25, [5.5], same=True, held=[0.25])


@covers("Value.__pow__")
def test_pow_backward():
    check_op("**", [3.0], 1.75, 9.0, [10.5], exponent=2)
    check_op("**", [2.0], -0.6, 0.5, [0.15], exponent=-1)
    check_op("**", [4.0], 1.75, 2.0, [0.4375], exponent=0.5)


@covers("Value.exp")
def test_exp_backward():
    check_op("exp", [0.5], 1.75, 1.6487212707001282, [2.8852622237252243])
    check_op("exp", [-1.0], -0.6, 0.36787944117144233, [-0.2207276647028654])


@covers("Value.log")
def test_log_backward():
    check_op("log", [2.0], 1.75, 0.6931471805599453, [0.875])
    check_op("log", [0.25], -0.6, -1.3862943611198906, [-2.4])


@covers("Value.relu")
def test_relu_backward():
    check_op("relu", [1.5], 1.75, 1.5, [1.75])
    check_op("relu", [-0.5], -0.6, 0.0, [0.0])


@covers("Value.relu")
def test_relu_passes_no_gradient_at_exactly_zero():
    check_op("relu", [0.0], 1.75, 0.0, [0.0])


@covers("Value.tanh")
def test_tanh_backward():
    check_op("tanh", [0.5], 1.75, 0.46211715726000974, [1.3762835326903728])
    check_op("tanh", [-1.2], -0.6, -0.8336546070121552, [-0.18301199772444542])


@covers("Value.sigmoid")
def test_sigmoid_backward():
    check_op("sigmoid", [0.0], 1.75, 0.5, [0.4375])
    check_op("sigmoid", [2.0], -0.6, 0.8807970779778823, [-0.06299615124210397])


# ---------------------------------------------------------------------- backward()

def check_backward(nodes, expected_grads, held=(), calls=1):
    """nodes[i] = {"data", "children": [[j, slope], ...]}: Values whose `_backward` passes slope * grad to each
    child and notes that it ran; the last node is the output. Then backward() on it, `calls` times."""
    built, log = [], []
    for index, spec in enumerate(nodes):
        children = [(built[j], slope) for j, slope in spec["children"]]
        node = Value(spec["data"], tuple(child for child, _ in children))
        node._backward = _passing(index, node, children, log)
        built.append(node)
    for index, grad in held:
        built[index].grad = grad
    for _ in range(calls):
        built[-1].backward()
    expect(diagnosis.backward(nodes, [v.grad for v in built], expected_grads, log, calls))


def _passing(index, node, children, log):
    def _backward():
        log.append(index)
        for child, slope in children:
            child.grad += slope * node.grad
    return _backward


@covers("Value.backward")
def test_backward_seeds_the_output_with_one():
    check_backward([{"data": 3.0, "children": []}], [1.0])
    check_backward([{"data": 2.0, "children": []}, {"data": 6.0, "children": [[0, 3.0]]}], [3.0, 1.0])


@covers("Value.backward")
def test_backward_visits_a_shared_node_once():
    # h = f(x) is used by both a and b: its _backward must run once, after both have passed it their gradient.
    nodes = [
        {"data": 0.5, "children": []},                     # 0: x
        {"data": 1.0, "children": [[0, 2.0]]},             # 1: h = f(x)
        {"data": 2.0, "children": [[1, 1.5]]},             # 2: a = g(h)
        {"data": 3.0, "children": [[1, -0.5]]},            # 3: b = k(h)
        {"data": 4.0, "children": [[2, 1.25], [3, 3.0]]},  # 4: out = m(a, b)
    ]
    check_backward(nodes, [0.75, 0.375, 1.25, 3.0, 1.0])


@covers("Value.backward")
def test_backward_waits_for_every_path_to_a_node():
    # h reaches the output directly, through d, and through c then b: its _backward must wait for all three.
    nodes = [
        {"data": 0.5, "children": []},                                 # 0: x
        {"data": 1.0, "children": [[0, 2.0]]},                         # 1: h = f(x)
        {"data": 1.5, "children": [[1, -1.5]]},                        # 2: b = g(h)
        {"data": 2.0, "children": [[2, 0.5]]},                         # 3: c = k(b)
        {"data": 2.5, "children": [[1, 1.25]]},                        # 4: d = l(h)
        {"data": 3.0, "children": [[3, 3.0], [1, 0.75], [4, -0.5]]},  # 5: out = m(c, h, d)
    ]
    check_backward(nodes, [-4.25, -2.125, 1.5, 3.0, -0.5, 1.0])


@covers("Value.backward")
def test_backward_adds_to_gradients_already_held():
    nodes = [{"data": 1.0, "children": []}, {"data": 2.0, "children": []},
             {"data": 3.0, "children": [[0, 2.0], [1, -1.0]]}]
    check_backward(nodes, [2.5, -1.25, 1.0], held=[(0, 0.5), (1, -0.25)])


@covers("Value.backward", uses=("Value.__add__", "Value.__mul__"))
def test_backward_through_operations():
    a = Value(2.0)
    d = (a * 3.0) * (a + 1.0)  # d = 3a(a + 1), dd/da = 6a + 3
    d.backward()
    expect_equal(round(a.grad, 9), 15.0, "check.backward_through_operations", a=2.0)
