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
    z = _value(z)
    if z.data >= 0:
        return z - z * y + (1 + (-z).exp()).log()
    return -z * y + (1 + z.exp()).log()


def softmax(logits):
    """Probabilities exp(l_i) / sum_j exp(l_j), a list of Values that sums to 1.

    Subtract the largest logit's data (a plain number, a constant) first: the result is the same, and exp
    then sees only numbers <= 0, so it never overflows.
    """
    logits = [_value(logit) for logit in logits]
    top = max(logit.data for logit in logits)
    exps = [(logit - top).exp() for logit in logits]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


def cross_entropy(logits, label):
    """-log softmax(logits)[label], through log-sum-exp: log(sum_j exp(l_j - m)) + m - l_label, m the largest
    logit's data. The gradient with respect to l_j is softmax(logits)[j] - (1 if j == label else 0).
    """
    logits = [_value(logit) for logit in logits]
    top = max(logit.data for logit in logits)
    exps = [(logit - top).exp() for logit in logits]  # one of them is exp(0) = 1, so the sum is >= 1
    return sum(exps[1:], exps[0]).log() + top - logits[label]


def accuracy(logit_rows, labels):
    """The share (0.0 to 1.0) of rows whose predicted class equals the label.

    A row is a list of logits (Values or numbers): the prediction is the index of the largest one, the first
    of them on a tie (as argmax does). A row of a single logit (one Value or number, or a list of one) is a
    binary classifier: the prediction is 1 when the logit is > 0, else 0 (exactly 0 is class 0).
    """
    correct = 0
    for row, label in zip(logit_rows, labels):
        scores = [_data(x) for x in row] if isinstance(row, (list, tuple)) else [_data(row)]
        if len(scores) == 1:
            predicted = 1 if scores[0] > 0 else 0
        else:
            predicted = max(reversed(range(len(scores))), key=scores.__getitem__)  # max keeps the first of equals
        correct += predicted == label
    return correct / len(labels)
