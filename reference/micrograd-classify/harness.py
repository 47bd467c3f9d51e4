"""The sandbox side of micrograd-classify's hidden tests: one `cmd_<name>(session, **args)` per request.

Standard library only, and no solution logic: this file is copied into every sandbox (docs/architecture.md).
It builds inputs, calls the submission's functions and reads their results back as plain numbers; nothing
here knows an expected value, a loss formula or a training rule. engine.py and nn.py are the course's given
files at grading time, so their `Value.backward()` and `MLP.parameters()` are trusted here.

`session.module(name)` imports a submission module ("engine", "nn", "losses", "classify"). Every reply is
JSON: numbers, lists and dicts, checked against the shapes of autotests/micrograd-classify/conftest.py.
"""
import random

from grader_harness import WrongType, number, numbers

MAX_ITEMS = 10_000  # a reply list longer than any request could need is the student's runaway


def _value_class(session):
    return session.module("engine").Value


def _require_value(session, x, what):
    if not isinstance(x, _value_class(session)):
        raise WrongType(f"{what} is a {type(x).__name__}, expected a Value")
    return x


class CountingRandom:
    """A random.Random(seed) that counts every call made to it: `random()` and any other method alike."""

    def __init__(self, seed):
        self._rng = random.Random(seed)
        self.draws = 0

    def random(self):
        self.draws += 1
        return self._rng.random()

    def __getattr__(self, name):
        attribute = getattr(self._rng, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.draws += 1
            return attribute(*args, **kwargs)
        return counted


def _backward(session, root):
    """root.backward() with the course engine's backward (trusted: engine.py is the given file)."""
    root = _require_value(session, root, "the result")
    root.backward()
    return root


# ---------------------------------------------------------------------- losses


def _logits(session, logits, as_numbers):
    """The logits as the loss receives them: Values (the usual case), or the plain numbers themselves."""
    Value = _value_class(session)
    return list(logits) if as_numbers else [Value(x) for x in logits]


def _grad(session, x):
    """x's gradient; a plain number given to a loss has none (0.0)."""
    return x.grad if isinstance(x, _value_class(session)) else 0.0


def cmd_bce(session, z, y, as_number=False):
    """bce_with_logits(Value(z), y) (or of the plain number z), backpropagated: the loss and dloss/dz."""
    Value = _value_class(session)
    zv = _logits(session, [z], as_number)[0]
    loss = session.module("losses").bce_with_logits(zv, y)
    if not isinstance(loss, Value):
        raise WrongType(f"bce_with_logits() returned a {type(loss).__name__}, expected a Value")
    _backward(session, loss)
    return {"data": number(loss.data, "loss"), "grad": number(_grad(session, zv), "gradient")}


def _weighted_sum(session, outs, upstream):
    Value = _value_class(session)
    total = Value(0.0)
    for out, weight in zip(outs, upstream):
        total = total + out * weight
    return total


def cmd_softmax(session, logits, upstream, as_numbers=False):
    """softmax([Value(l) ...]) (or of the plain numbers): the probabilities, and the logits' gradients of
    sum(upstream[i] * p[i])."""
    vs = _logits(session, logits, as_numbers)
    probs = session.module("losses").softmax(vs)
    if not isinstance(probs, (list, tuple)):
        raise WrongType(f"softmax() returned a {type(probs).__name__}, expected a list of Values")
    probs = list(probs)[:MAX_ITEMS]
    for p in probs:
        _require_value(session, p, "an item of softmax()'s result")
    if len(probs) == len(vs):
        _backward(session, _weighted_sum(session, probs, upstream))
    return {"data": numbers([p.data for p in probs], "probability"),
            "grads": numbers([_grad(session, v) for v in vs], "grad")}


def cmd_cross_entropy(session, logits, label, as_numbers=False):
    """cross_entropy([Value(l) ...], label) (or of the plain numbers), backpropagated: the loss and the logits'
    gradients."""
    Value = _value_class(session)
    vs = _logits(session, logits, as_numbers)
    loss = session.module("losses").cross_entropy(vs, label)
    if not isinstance(loss, Value):
        raise WrongType(f"cross_entropy() returned a {type(loss).__name__}, expected a Value")
    _backward(session, loss)
    return {"data": number(loss.data, "loss"), "grads": numbers([_grad(session, v) for v in vs], "grad")}


def cmd_accuracy(session, rows, labels, as_values=False):
    """accuracy(rows, labels); a row is a list of logits or a single logit, passed as numbers (or as Values)."""
    if as_values:
        Value = _value_class(session)
        rows = [[Value(x) for x in row] if isinstance(row, list) else Value(row) for row in rows]
    return {"accuracy": number(session.module("losses").accuracy(rows, labels), "accuracy")}


# ---------------------------------------------------------------------- dropout


def cmd_dropout(session, p, x, training, seed, single=False):
    """Dropout(p)(x, training, rng) on Values x (a single Value when `single`), rng a counted Random(seed).

    Replies with the outputs' data, each input's gradient of sum(outputs), the number of calls to rng and whether
    the result had the input's form (a single Value for a single Value, a list for a list)."""
    Value = _value_class(session)
    xs = [Value(v) for v in x]
    given = xs[0] if single else xs
    rng = CountingRandom(seed)
    out = session.module("classify").Dropout(p)(given, training, rng)
    draws = rng.draws
    same_form = isinstance(out, Value) if single else isinstance(out, (list, tuple))
    outs = [out] if isinstance(out, Value) else list(out) if isinstance(out, (list, tuple)) else None
    if outs is None:
        raise WrongType(f"Dropout returned a {type(out).__name__}, expected a Value or a list of Values")
    outs = outs[:MAX_ITEMS]
    # A dropped element may be a plain 0 (a number): it contributes nothing, like a Value 0.
    data = [o.data if isinstance(o, Value) else o for o in outs]
    total = Value(0.0)
    for o in outs:
        total = total + o
    _backward(session, total)
    return {
        "out": numbers(data, "output"),
        "grads": numbers([v.grad for v in xs], "input gradient"),
        "draws": draws,
        "form_kept": same_form,
    }


# ---------------------------------------------------------------------- training


def cmd_train(session, sizes, params, train, val, epochs, lr, lam, patience, dropout_p, seed):
    """train_classifier on nn.MLP(sizes[0], sizes[1:]) with `params` injected through its parameters().

    train/val are lists of [x, label]; dropout_p None means no dropout; rng is a counted Random(seed).
    Replies with train_classifier's dict, the final parameters' data and the number of calls to rng."""
    nn, classify = session.module("nn"), session.module("classify")
    model = nn.MLP(sizes[0], list(sizes[1:]))
    own = model.parameters()  # the course's nn.py: trusted
    if len(own) != len(params):
        raise ValueError(f"the request has {len(params)} parameters for a model of {len(own)}")
    for p, data in zip(own, params):
        p.data = data
    rng = CountingRandom(seed)
    dropout = classify.Dropout(dropout_p) if dropout_p is not None else None
    result = classify.train_classifier(model, [(list(x), label) for x, label in train],
                                       [(list(x), label) for x, label in val], epochs, lr, lam=lam,
                                       patience=patience, dropout=dropout, rng=rng)
    if not isinstance(result, dict):
        raise WrongType(f"train_classifier() returned a {type(result).__name__}, expected a dict")
    for key in ("train_loss", "val_loss", "best_epoch"):
        if key not in result:
            raise WrongType(f"train_classifier()'s dict has no key {key!r}")
    for key in ("train_loss", "val_loss"):
        if not isinstance(result[key], (list, tuple)):
            raise WrongType(f"train_classifier()[{key!r}] is a {type(result[key]).__name__}, expected a list")
    best = result["best_epoch"]
    if isinstance(best, bool) or not isinstance(best, int):
        raise WrongType(f"train_classifier()['best_epoch'] is a {type(best).__name__}, expected an int")
    return {
        "train_loss": numbers(list(result["train_loss"])[:MAX_ITEMS], "train_loss"),
        "val_loss": numbers(list(result["val_loss"])[:MAX_ITEMS], "val_loss"),
        "best_epoch": best,
        "params": numbers([p.data for p in model.parameters()], "parameter"),
        "draws": rng.draws,
    }
