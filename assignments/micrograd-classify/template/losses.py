"""Losses for classification, in forms that stay finite for logits as large as +-1000.

A classifier's last layer gives logits: raw scores, any real number. These functions turn them into a loss
(a `Value`, so that `backward()` reaches the model's parameters) or into an accuracy (a plain number).
The textbook formulas compute exp(logit) first, which overflows for logits above about 709, and log(p) of a
probability that rounds to 0; the forms below never do either.
"""
from engine import Value


def _value(x):
    """x as a Value (numbers are wrapped, Values kept as they are, so that gradients reach them)."""
    return x if isinstance(x, Value) else Value(x)


def _data(x):
    """The number inside x: a Value's data, or x itself when it is already a number."""
    return x.data if isinstance(x, Value) else x


def bce_with_logits(z, y):
    """Binary cross-entropy of one logit z (a Value) against a label y (0 or 1): -log sigmoid(z) when y = 1,
    -log(1 - sigmoid(z)) when y = 0, computed as max(z, 0) - z*y + log(1 + exp(-|z|)).

    The gradient with respect to z is sigmoid(z) - y.
    """
    # Branch on the number z.data, but build the result from Value operations on z itself, so that the
    # gradient flows. exp only ever sees -|z| <= 0, so it never overflows, and 1 + exp(...) >= 1 > 0.
    raise NotImplementedError("bce_with_logits is not written yet")


def softmax(logits):
    """Probabilities exp(l_i) / sum_j exp(l_j), a list of Values that sums to 1.

    Subtract the largest logit's data (a plain number, a constant) first: the result is the same, and exp
    then sees only numbers <= 0, so it never overflows.
    """
    raise NotImplementedError("softmax is not written yet")


def cross_entropy(logits, label):
    """-log softmax(logits)[label], through log-sum-exp: log(sum_j exp(l_j - m)) + m - l_label, m the largest
    logit's data. The gradient with respect to l_j is softmax(logits)[j] - (1 if j == label else 0).
    """
    raise NotImplementedError("cross_entropy is not written yet")


def accuracy(logit_rows, labels):
    """The share (0.0 to 1.0) of rows whose predicted class equals the label.

    A row is a list of logits (Values or numbers): the prediction is the index of the largest one, the first
    of them on a tie (as argmax does). A row of a single logit (one Value or number, or a list of one) is a
    binary classifier: the prediction is 1 when the logit is > 0, else 0 (exactly 0 is class 0).
    """
    raise NotImplementedError("accuracy is not written yet")
