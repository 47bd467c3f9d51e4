"""Public tests for classify.py. Parameters are set by hand and the random draws come from a seeded
random.Random, so every number below is exact. The grader's hidden tests check more."""
import random

import diagnosis
from checks import covers, expect
from classifier_runs import RUNS
from classify import Dropout, train_classifier
from engine import Value
from nn import MLP


class CountingRandom:
    """random.Random(seed) that counts its draws."""

    def __init__(self, seed):
        self.rng, self.draws = random.Random(seed), 0

    def random(self):
        self.draws += 1
        return self.rng.random()


def dropout_run(p, x, training, seed):
    xs = [Value(v) for v in x]
    rng = CountingRandom(seed)
    out = Dropout(p)(xs, training, rng)
    form_kept = isinstance(out, list) and len(out) == len(xs) and all(isinstance(o, Value) for o in out)
    if form_kept:
        sum(out, Value(0.0)).backward()
    return rng.draws, [o.data for o in out] if form_kept else [], [v.grad for v in xs], form_kept


@covers("Dropout.__call__")
def test_dropout_while_training():
    # random.Random(2) draws 0.956, 0.948, 0.057, 0.085, 0.835: with p = 0.5 the 3rd and 4th are dropped.
    x = [1.0, -2.0, 3.0, 4.0, 0.5]
    draws, out, grads, form_kept = dropout_run(0.5, x, True, 2)
    rng = random.Random(2)
    expect(diagnosis.dropout(0.5, x, [rng.random() for _ in x], [2.0, -4.0, 0.0, 0.0, 1.0], out,
                             [2.0, 2.0, 0.0, 0.0, 2.0], grads, draws, form_kept))


@covers("Dropout.__call__")
def test_dropout_off_draws_nothing():
    x = [1.0, 2.0]
    for p, training in ((0.5, False), (0.0, True)):
        draws, out, grads, form_kept = dropout_run(p, x, training, 0)
        expect(diagnosis.dropout_off(p, training, x, draws, out, form_kept, [1.0, 1.0], grads))


def check_run(name):
    """train_classifier on RUNS[name]'s request, compared with its run and with the classic mistakes' runs."""
    request = RUNS[name]["request"]
    model = MLP(request["sizes"][0], request["sizes"][1:])
    for p, data in zip(model.parameters(), request["params"]):
        p.data = data
    history = train_classifier(model, [(x, y) for x, y in request["train"]], [(x, y) for x, y in request["val"]],
                               request["epochs"], request["lr"], lam=request["lam"], patience=request["patience"])
    got = {"train_loss": [float(v) for v in history["train_loss"]], "val_loss": [float(v) for v in history["val_loss"]],
           "best_epoch": history["best_epoch"], "params": [p.data for p in model.parameters()], "draws": 0}
    setting = diagnosis.message("setting" + (".patience" if request["patience"] is not None else ""),
                                model="MLP(2, [4, 2])", epochs=request["epochs"], lr=request["lr"], lam=request["lam"],
                                patience=request["patience"])
    expect(diagnosis.train_classifier(setting, request["patience"], request["lam"], None, RUNS[name]["want"], got,
                                      RUNS[name]["mistakes"]))


@covers("train_classifier", uses=("cross_entropy",))  # MLP(2, [4, 2]): two logits
def test_train_classifier_losses():
    check_run("plain")


@covers("train_classifier", uses=("cross_entropy",))
def test_early_stopping_restores_the_best_parameters():
    check_run("early")
