"""Training a classifier without overfitting (Ana's version).

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
    def __init__(self, p):
        self.p = p

    def __call__(self, x, training, rng):
        if not training or self.p == 0:
            return x
        items = x if isinstance(x, list) else [x]
        keep = [rng.random() >= self.p for _ in items]  # one draw per element, in order
        scale = 1.0 / (1.0 - self.p)
        out = [v * scale if k else Value(0.0) for v, k in zip(items, keep)]
        if isinstance(x, list):
            return out
        return out[0]


def _loss(output, label):
    if isinstance(output, list):
        return cross_entropy(output, label)
    return bce_with_logits(output, label)


def _forward(model, x, dropout, rng):
    layers = model.layers
    for index in range(len(layers)):
        x = layers[index](x)
        if dropout is not None and index != len(layers) - 1:
            x = dropout(x, True, rng)
    return x


def train_classifier(model, train, val, epochs, lr, lam=0.0, patience=None, dropout=None, rng=None):
    params = model.parameters()
    result = {"train_loss": [], "val_loss": [], "best_epoch": 0}
    saved = {}
    for epoch in range(epochs):
        total = Value(0.0)
        for x, label in train:
            total = total + _loss(_forward(model, x, dropout, rng), label)
        penalty = Value(0.0)
        for p in params:
            penalty = penalty + p * p
        loss = total / len(train) + penalty * lam
        result["train_loss"].append(loss.data)
        model.zero_grad()
        loss.backward()
        for p in params:
            p.data = p.data - lr * p.grad

        v = 0.0
        for x, label in val:
            v += _loss(model(x), label).data
        v = v / len(val)
        result["val_loss"].append(v)
        best = result["val_loss"][result["best_epoch"]]
        if epoch == 0 or v < best:
            result["best_epoch"] = epoch
            saved = {i: p.data for i, p in enumerate(params)}
        if patience is not None and epoch - result["best_epoch"] >= patience:
            break
    if patience is not None and saved:
        for i, p in enumerate(params):
            p.data = saved[i]
    return result
