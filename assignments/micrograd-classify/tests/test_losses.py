"""Public tests for losses.py: a few cases per function, to guide you. The grader's hidden tests check more
(other inputs, logits up to +-1000, ties)."""
import math

from checks import covers, expect_close, expect_equal
from engine import Value
from losses import accuracy, bce_with_logits, cross_entropy, softmax

PROBS = [0.23122389762214907, 0.6285317192117624, 0.14024438316608848]  # softmax([1.0, 2.0, 0.5])


def bce(z, y):
    zv = Value(z)
    loss = bce_with_logits(zv, y)
    expect_equal(type(loss).__name__, "Value", "type of bce_with_logits's result")
    loss.backward()
    return loss.data, zv.grad


@covers("bce_with_logits")
def test_bce_value_and_gradient():
    for z, y, want, grad in ((0.0, 1, math.log(2), -0.5), (2.0, 0, 2.1269280110429727, 0.8807970779778823),
                             (-1.5, 1, 1.7014132779827524, -0.8175744761936437)):
        data, got_grad = bce(z, y)
        expect_close(data, want, "bce_with_logits(z, y)", z=z, y=y)
        expect_close(got_grad, grad, "after bce_with_logits(z, y).backward(), z.grad (sigmoid(z) - y)", z=z, y=y)


@covers("bce_with_logits")
def test_bce_is_finite_for_large_logits():
    for z, y, want, grad in ((1000.0, 0, 1000.0, 1.0), (-1000.0, 1, 1000.0, -1.0), (1000.0, 1, 0.0, 0.0)):
        data, got_grad = bce(z, y)
        expect_close([data, got_grad], [want, grad], "[loss, z.grad] of bce_with_logits", z=z, y=y)


@covers("softmax")
def test_softmax():
    logits = [Value(1.0), Value(2.0), Value(0.5)]
    probs = softmax(logits)
    expect_close([p.data for p in probs], PROBS, "softmax(logits)", logits=[1.0, 2.0, 0.5])
    probs[1].backward()
    expect_close([v.grad for v in logits], [-0.1453315538952939, 0.23347959715646865, -0.08814804326117474],
                 "after softmax(logits)[1].backward(), the logits' grads", logits=[1.0, 2.0, 0.5])


@covers("softmax")
def test_softmax_is_finite_for_large_logits():
    probs = softmax([Value(1000.0), Value(-1000.0), Value(999.0)])
    expect_close([p.data for p in probs], [0.7310585786300049, 0.0, 0.2689414213699951], "softmax(logits)",
                 logits=[1000.0, -1000.0, 999.0])


@covers("cross_entropy")
def test_cross_entropy_value_and_gradient():
    logits = [Value(1.0), Value(2.0), Value(0.5)]
    loss = cross_entropy(logits, 0)
    expect_equal(type(loss).__name__, "Value", "type of cross_entropy's result")
    expect_close(loss.data, 1.4643687841079451, "cross_entropy(logits, 0)", logits=[1.0, 2.0, 0.5])
    loss.backward()
    expect_close([v.grad for v in logits], [PROBS[0] - 1, PROBS[1], PROBS[2]],
                 "after cross_entropy(logits, 0).backward(), the logits' grads (softmax - onehot)",
                 logits=[1.0, 2.0, 0.5])


@covers("cross_entropy")
def test_cross_entropy_is_finite_for_large_logits():
    expect_close(cross_entropy([Value(1000.0), Value(-1000.0)], 1).data, 2000.0, "cross_entropy(logits, 1)",
                 logits=[1000.0, -1000.0])
    expect_close(cross_entropy([Value(-1000.0), Value(-1000.0)], 0).data, math.log(2), "cross_entropy(logits, 0)",
                 logits=[-1000.0, -1000.0])


@covers("accuracy")
def test_accuracy():
    rows = [[2.0, 1.0], [0.5, 1.5], [3.0, 3.0], [1.0, 0.0]]
    expect_close(accuracy(rows, [0, 1, 0, 1]), 0.75, "accuracy(rows, labels) (a tie goes to the first largest)",
                 rows=rows, labels=[0, 1, 0, 1])
    as_values = [[Value(x) for x in row] for row in rows]
    expect_close(accuracy(as_values, [0, 1, 0, 1]), 0.75, "accuracy(rows of Values, labels)", rows=rows,
                 labels=[0, 1, 0, 1])


@covers("accuracy")
def test_accuracy_with_one_logit_per_row():
    rows = [0.7, -0.2, 0.0, 1.5]
    expect_close(accuracy(rows, [1, 0, 0, 0]), 0.75, "accuracy(rows, labels) (one logit: > 0 is class 1)",
                 rows=rows, labels=[1, 0, 0, 0])
