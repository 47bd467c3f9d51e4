"""Public tests for losses.py: a few cases per function, to guide you. The grader's hidden tests check more
(other inputs, logits up to +-1000, ties)."""
import diagnosis
from checks import covers, expect, expect_equal
from engine import Value
from losses import accuracy, bce_with_logits, cross_entropy, softmax

# Numbers that are not finite, or an exception, on large logits: the textbook formula's overflow or log(0).
UNSTABLE = (ArithmeticError, ValueError)


def finite(*numbers):
    return all(abs(x) < float("inf") for x in numbers)  # False for NaN too


def bce_run(z, y):
    zv = Value(z)
    loss = bce_with_logits(zv, y)
    expect_equal(type(loss).__name__, "Value", "check.result_type", call="bce_with_logits(z, y)")
    loss.backward()
    return loss.data, zv.grad


# (z, y, loss, dloss/dz, the loss for the other label)
BCE_CASES = [(0.0, 1, 0.6931471805599453, -0.5, 0.6931471805599453),
             (2.0, 0, 2.1269280110429727, 0.8807970779778824, 0.1269280110429726),
             (-1.5, 1, 1.7014132779827524, -0.8175744761936437, 0.20141327798275246)]


@covers("bce_with_logits")
def test_bce_value_and_gradient():
    for z, y, want, grad, flipped in BCE_CASES:
        data, got_grad = bce_run(z, y)
        expect(diagnosis.bce(z, y, want, grad, data, got_grad, flipped_data=flipped))


@covers("bce_with_logits")
def test_bce_is_stable_for_large_logits():
    for z, y, want, grad in ((1000.0, 0, 1000.0, 1.0), (-1000.0, 1, 1000.0, -1.0), (1000.0, 1, 0.0, 0.0)):
        try:
            data, got_grad = bce_run(z, y)
        except UNSTABLE:
            data, got_grad = float("nan"), float("nan")
        if not finite(data, got_grad):
            expect(diagnosis.unstable("bce", z=z, y=y))
        expect(diagnosis.bce(z, y, want, grad, data, got_grad, extreme=True))


def softmax_run(logits, upstream):
    values = [Value(x) for x in logits]
    probs = softmax(values)
    expect_equal(type(probs).__name__, "list", "check.result_type", call="softmax(logits)")
    sum((p * u for p, u in zip(probs, upstream)), Value(0.0)).backward()
    return [p.data for p in probs], [v.grad for v in values]


UPSTREAM = [0.7, -1.2, 0.4]  # the probabilities' gradients, so that every logit's gradient shows


@covers("softmax")
def test_softmax_values_and_gradients():
    data, grads = softmax_run([1.0, 2.0, 0.5], UPSTREAM)
    expect(diagnosis.softmax([1.0, 2.0, 0.5], UPSTREAM,
                             [0.23122389762214907, 0.6285317192117624, 0.14024438316608848],
                             [0.2858583082696415, -0.41716682161893803, 0.13130851334929644], data, grads))


@covers("softmax")
def test_softmax_is_stable_for_large_logits():
    logits = [1000.0, -1000.0, 999.0]
    try:
        data, grads = softmax_run(logits, UPSTREAM)
    except UNSTABLE:
        data, grads = [float("nan")], []
    if not finite(*data, *grads):
        expect(diagnosis.unstable("softmax", logits=logits))
    expect(diagnosis.softmax(logits, UPSTREAM, [0.7310585786300049, 0.0, 0.26894142136999516],
                             [0.05898357997244452, 0.0, -0.058983579972444564], data, grads, extreme=True))


def cross_entropy_run(logits, label):
    values = [Value(x) for x in logits]
    loss = cross_entropy(values, label)
    expect_equal(type(loss).__name__, "Value", "check.result_type", call="cross_entropy(logits, label)")
    loss.backward()
    return loss.data, [v.grad for v in values]


@covers("cross_entropy")
def test_cross_entropy_value_and_gradients():
    data, grads = cross_entropy_run([1.0, 2.0, 0.5], 0)
    expect(diagnosis.cross_entropy([1.0, 2.0, 0.5], 0, 1.4643687841079451,
                                   [-0.768776102377851, 0.6285317192117624, 0.14024438316608848], data, grads))


@covers("cross_entropy")
def test_cross_entropy_is_stable_for_large_logits():
    for logits, label, want, want_grads in (
            ([1000.0, -1000.0, 999.0], 1, 2000.3132616875182, [0.7310585786300049, -1.0, 0.26894142136999516]),
            ([-1000.0, -1000.0], 0, 0.6931471805598903, [-0.5, 0.5])):
        try:
            data, grads = cross_entropy_run(logits, label)
        except UNSTABLE:
            data, grads = float("nan"), []
        if not finite(data, *grads):
            expect(diagnosis.unstable("cross_entropy", logits=logits, label=label))
        expect(diagnosis.cross_entropy(logits, label, want, want_grads, data, grads, extreme=True))


@covers("accuracy")
def test_accuracy():
    rows, labels = [[0.5, -1.0, 2.0], [3.0, 1.0, -2.0], [-0.5, 0.25, 0.0], [1.5, 2.5, -3.5]], [2, 0, 2, 1]
    expect(diagnosis.accuracy(rows, labels, 0.75, accuracy(rows, labels)))
    expect(diagnosis.accuracy(rows, labels, 0.75, accuracy([[Value(x) for x in row] for row in rows], labels)))


@covers("accuracy")
def test_accuracy_ties_go_to_the_first_largest():
    rows, labels = [[2.0, 1.0], [0.5, 1.5], [3.0, 3.0], [1.0, 0.0]], [0, 1, 0, 1]
    expect(diagnosis.accuracy(rows, labels, 0.75, accuracy(rows, labels), "accuracy_ties"))
