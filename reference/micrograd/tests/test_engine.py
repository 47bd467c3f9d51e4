"""Public tests for engine.py: a few cases per function, to guide you. The grader's hidden tests check more.

Each operation's test builds the operation, sets the output's gradient by hand (the "upstream" gradient),
calls out._backward() once and checks the gradients that arrived at the inputs.
"""
from checks import covers, expect_close
from engine import Value


def run_backward(make, inputs, upstream):
    """Build out = make(*values), set out.grad = upstream, call out._backward(); return the input grads."""
    values = [Value(x) for x in inputs]
    out = make(*values)
    out.grad = upstream
    out._backward()
    return [v.grad for v in values]


@covers("Value.__add__")
def test_add_backward():
    for upstream in (1.0, 2.5):
        grads = run_backward(lambda a, b: a + b, [2.0, -3.0], upstream)
        expect_close(grads, [upstream, upstream], "a + b backward: [a.grad, b.grad]",
                     a=2.0, b=-3.0, upstream=upstream)


@covers("Value.__add__")
def test_add_backward_accumulates_when_a_value_is_used_twice():
    # out = a + a: both "inputs" are a, so a must receive the gradient twice (use +=, not =).
    grads = run_backward(lambda a: a + a, [2.0], 1.0)
    expect_close(grads[0], 2.0, "a + a backward: a.grad", a=2.0, upstream=1.0)


@covers("Value.__add__")
def test_add_backward_with_a_plain_number():
    grads = run_backward(lambda a: a + 5, [2.0], 1.5)
    expect_close(grads[0], 1.5, "a + 5 backward: a.grad", a=2.0, upstream=1.5)


@covers("Value.__mul__")
def test_mul_backward():
    grads = run_backward(lambda a, b: a * b, [2.0, -3.0], 1.5)
    expect_close(grads, [-4.5, 3.0], "a * b backward: [a.grad, b.grad]", a=2.0, b=-3.0, upstream=1.5)


@covers("Value.__mul__")
def test_mul_backward_accumulates_when_a_value_is_used_twice():
    grads = run_backward(lambda a: a * a, [3.0], 1.0)
    expect_close(grads[0], 6.0, "a * a backward: a.grad", a=3.0, upstream=1.0)


@covers("Value.__pow__")
def test_pow_backward():
    expect_close(run_backward(lambda a: a ** 2, [3.0], 1.0)[0], 6.0, "a ** 2 backward: a.grad", a=3.0, upstream=1.0)
    expect_close(run_backward(lambda a: a ** -1, [2.0], 0.5)[0], -0.125, "a ** -1 backward: a.grad",
                 a=2.0, upstream=0.5)
    expect_close(run_backward(lambda a: a ** 0.5, [4.0], 1.0)[0], 0.25, "a ** 0.5 backward: a.grad",
                 a=4.0, upstream=1.0)


@covers("Value.exp")
def test_exp_backward():
    expect_close(run_backward(lambda a: a.exp(), [0.5], 1.0)[0], 1.6487212707001282, "exp backward: x.grad",
                 x=0.5, upstream=1.0)
    expect_close(run_backward(lambda a: a.exp(), [-1.0], -2.0)[0], -0.7357588823428847, "exp backward: x.grad",
                 x=-1.0, upstream=-2.0)


@covers("Value.log")
def test_log_backward():
    expect_close(run_backward(lambda a: a.log(), [2.0], 1.0)[0], 0.5, "log backward: x.grad", x=2.0, upstream=1.0)
    expect_close(run_backward(lambda a: a.log(), [0.25], 3.0)[0], 12.0, "log backward: x.grad", x=0.25, upstream=3.0)


@covers("Value.relu")
def test_relu_backward():
    for x, expected in ((1.5, 2.0), (-0.5, 0.0)):
        expect_close(run_backward(lambda a: a.relu(), [x], 2.0)[0], expected, "relu backward: x.grad",
                     x=x, upstream=2.0)


@covers("Value.tanh")
def test_tanh_backward():
    expect_close(run_backward(lambda a: a.tanh(), [0.5], 1.0)[0], 0.7864477329659274, "tanh backward: x.grad",
                 x=0.5, upstream=1.0)
    expect_close(run_backward(lambda a: a.tanh(), [-1.2], 0.3)[0], 0.09150599886222271, "tanh backward: x.grad",
                 x=-1.2, upstream=0.3)


@covers("Value.sigmoid")
def test_sigmoid_backward():
    expect_close(run_backward(lambda a: a.sigmoid(), [0.0], 1.0)[0], 0.25, "sigmoid backward: x.grad",
                 x=0.0, upstream=1.0)
    expect_close(run_backward(lambda a: a.sigmoid(), [2.0], -1.5)[0], -0.15749037810525993,
                 "sigmoid backward: x.grad", x=2.0, upstream=-1.5)


def link(out, *inputs_and_slopes):
    """Give `out` a hand-made _backward that passes slope * out.grad to each input (no operation needed)."""
    def _backward():
        for value, slope in inputs_and_slopes:
            value.grad += slope * out.grad
    out._backward = _backward
    return out


@covers("Value.backward")
def test_backward_on_a_diamond_calls_each_node_once_and_in_order():
    # x -> a -> b -> d and a -> c -> d, with hand-made local slopes, so only backward() is tested here.
    # a's _backward may run only after both b and c have passed their gradients to a.
    x = Value(1.0)
    a = link(Value(0.0, (x,)), (x, 11.0))
    b = link(Value(0.0, (a,)), (a, 5.0))
    c = link(Value(0.0, (a,)), (a, 7.0))
    d = link(Value(0.0, (b, c)), (b, 2.0), (c, 3.0))
    d.backward()
    expect_close([d.grad, b.grad, c.grad, a.grad, x.grad], [1.0, 2.0, 3.0, 31.0, 341.0],
                 "backward() on a diamond: [d.grad, b.grad, c.grad, a.grad, x.grad]",
                 slopes="d->b 2, d->c 3, b->a 5, c->a 7, a->x 11")


@covers("Value.backward")
def test_backward_through_operations():
    a = Value(2.0)
    b = a * 3.0
    c = a + 1.0
    d = b * c  # d = 3a(a + 1), dd/da = 6a + 3
    d.backward()
    expect_close([a.grad, b.grad, c.grad], [15.0, 3.0, 6.0], "d = (a * 3) * (a + 1), d.backward(): "
                 "[a.grad, b.grad, c.grad]", a=2.0)
    x = Value(0.8)
    y = (x * 2 + 1) * x  # dy/dx = 4x + 1
    y.backward()
    expect_close(x.grad, 4.2, "y = (x * 2 + 1) * x, y.backward(): x.grad", x=0.8)


@covers("Value.backward")
def test_backward_seeds_the_output_with_one():
    x = Value(3.0)
    x.backward()  # a graph of one node: dx/dx = 1
    expect_close(x.grad, 1.0, "x.backward() on a lone Value: x.grad", x=3.0)
