"""Losses for classification (Ana's version)."""
from engine import Value


def as_value(x):
    if isinstance(x, Value):
        return x
    return Value(x)


def bce_with_logits(z, y):
    z = as_value(z)
    # relu(z) is max(z, 0); -|z| is -z above 0 and z at or below it. At exactly 0 both give the value log 2,
    # but only z gives the right gradient there, because relu passes no gradient at 0.
    if z.data > 0:
        minus_abs = -z
    else:
        minus_abs = z
    return z.relu() - z * y + (minus_abs.exp() + 1).log()


def softmax(logits):
    values = [as_value(x) for x in logits]
    largest = values[0].data
    for v in values:
        if v.data > largest:
            largest = v.data
    exps = []
    total = Value(0.0)
    for v in values:
        e = (v - largest).exp()
        exps.append(e)
        total = total + e
    inverse = total ** -1
    return [e * inverse for e in exps]


def cross_entropy(logits, label):
    values = [as_value(x) for x in logits]
    m = max(v.data for v in values)
    shifted = [v - m for v in values]
    total = Value(0.0)
    for s in shifted:
        total = total + s.exp()
    return -(shifted[label] - total.log())


def accuracy(logit_rows, labels):
    hits = 0
    for row, label in zip(logit_rows, labels):
        if not isinstance(row, list):
            row = [row]
        scores = [x.data if isinstance(x, Value) else x for x in row]
        if len(scores) == 1:
            guess = int(scores[0] > 0)
        else:
            guess = 0
            for i in range(1, len(scores)):
                if scores[i] > scores[guess]:  # strictly larger: the first of equal ones stays
                    guess = i
        if guess == label:
            hits += 1
    return hits / len(labels)
