"""Training a classifier without overfitting: dropout, an L2 penalty and early stopping.

`make_moons` and `split` (given) make a small two-class data set; `Dropout` and `train_classifier` are yours.
"""
import math
import random

from engine import Value
from losses import bce_with_logits, cross_entropy
from nn import Module

# ---------------------------------------------------------------------- data (given)


def make_moons(n=100, noise=0.1, seed=0):
    """Two interleaving half circles, as in micrograd's demo: a list of n (x, label) pairs, x = [x0, x1].

    Class 0 is the upper half circle of radius 1 around (0, 0); class 1 the lower one around (1, 0.5).
    Gaussian noise of standard deviation `noise` is added to every coordinate; `seed` makes it repeatable.
    """
    rng = random.Random(seed)
    n_upper = n // 2
    data = []
    for label, count in ((0, n_upper), (1, n - n_upper)):
        for i in range(count):
            t = math.pi * i / (count - 1) if count > 1 else 0.0
            if label == 0:
                x = [math.cos(t), math.sin(t)]
            else:
                x = [1 - math.cos(t), 0.5 - math.sin(t)]
            data.append(([x[0] + rng.gauss(0, noise), x[1] + rng.gauss(0, noise)], label))
    rng.shuffle(data)
    return data


def split(data, fraction=0.8, seed=0):
    """(train, val): the first `fraction` of a shuffled copy of data, and the rest."""
    shuffled = list(data)
    random.Random(seed).shuffle(shuffled)
    cut = round(len(shuffled) * fraction)
    return shuffled[:cut], shuffled[cut:]


# ---------------------------------------------------------------------- dropout


class Dropout(Module):
    """Inverted dropout: while training, zero each element with probability p and scale the kept ones by
    1/(1-p), so that the expected value of every element stays the same. It has no parameters."""

    def __init__(self, p):
        self.p = p  # 0 <= p < 1

    def __call__(self, x, training, rng):
        """x: a list of Values, or a single Value (treated as a list of one and returned as a single Value).

        Training with p > 0: for each element, in order, draw rng.random() once; keep the element when the
        draw is >= p, as element * (1 / (1 - p)); otherwise the output is element * 0, a Value 0 whose
        gradient to the element is 0. Not training, or p == 0: return x itself and draw nothing.
        """
        raise NotImplementedError("Dropout.__call__ is not written yet")

    def __repr__(self):
        return f"Dropout(p={self.p})"


# ---------------------------------------------------------------------- training


def train_classifier(model, train, val, epochs, lr, lam=0.0, patience=None, dropout=None, rng=None):
    """Full-batch gradient descent on a classifier; returns {"train_loss", "val_loss", "best_epoch"}.

    model: an MLP whose last layer gives the logits (several outputs: cross_entropy; one output:
    bce_with_logits). train, val: non-empty lists of (x, label). In every epoch i:

    1. forward every x of train, in order, through model.layers one by one, applying `dropout` (if given,
       with training=True and rng) to the output of every layer but the last;
    2. loss = the mean of the examples' losses + lam * sum(p ** 2 for p in model.parameters());
       train_loss[i] = loss.data;
    3. model.zero_grad(), loss.backward(), and one SGD step: p.data -= lr * p.grad;
    4. val_loss[i] = the mean loss of model(x) over val: no dropout, no L2.

    best_epoch is the index of the lowest val_loss (the first on ties). With patience (>= 1): stop after
    `patience` epochs in a row without a strictly lower val_loss, then set every parameter's data back to
    its value at the end of epoch best_epoch. Without patience: run every epoch and restore nothing.
    """
    raise NotImplementedError("train_classifier is not written yet")
