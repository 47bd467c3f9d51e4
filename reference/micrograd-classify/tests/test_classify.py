"""Public tests for classify.py. Parameters are set by hand and the random draws come from a seeded
random.Random, so every number below is exact. The grader's hidden tests check more."""
import random

from checks import covers, expect_close, expect_equal
from classify import Dropout, make_moons, split, train_classifier
from engine import Value
from nn import MLP


class CountingRandom:
    """random.Random(seed) that counts its draws."""

    def __init__(self, seed):
        self.rng, self.draws = random.Random(seed), 0

    def random(self):
        self.draws += 1
        return self.rng.random()


@covers("Dropout.__call__")
def test_dropout_while_training():
    # random.Random(2) draws 0.956, 0.948, 0.057, 0.085, 0.835: with p = 0.5 the 3rd and 4th are dropped.
    xs = [Value(1.0), Value(-2.0), Value(3.0), Value(4.0), Value(0.5)]
    rng = CountingRandom(2)
    out = Dropout(0.5)(xs, True, rng)
    expect_equal(rng.draws, 5, "number of rng.random() calls of Dropout(0.5) on 5 elements")
    expect_close([o.data for o in out], [2.0, -4.0, 0.0, 0.0, 1.0], "Dropout(0.5)(x, True, random.Random(2))",
                 x=[1.0, -2.0, 3.0, 4.0, 0.5])
    sum(out, Value(0.0)).backward()
    expect_close([v.grad for v in xs], [2.0, 2.0, 0.0, 0.0, 2.0], "after sum(outputs).backward(), the inputs' grads",
                 p=0.5)


@covers("Dropout.__call__")
def test_dropout_off_draws_nothing():
    for p, training in ((0.5, False), (0.0, True)):
        xs = [Value(1.0), Value(2.0)]
        rng = CountingRandom(0)
        out = Dropout(p)(xs, training, rng)
        expect_equal(rng.draws, 0, "number of rng.random() calls", p=p, training=training)
        expect_close([o.data for o in out], [1.0, 2.0], "Dropout's output", p=p, training=training)


def model_and_data():
    random.seed(0)
    model = MLP(2, [4, 2])
    rng = random.Random(1)
    for p in model.parameters():
        p.data = round(rng.uniform(-1, 1), 2)
    train, val = split(make_moons(16, 0.1, 3), 0.75, 4)
    return model, train, val


@covers("train_classifier", uses=("cross_entropy",))  # MLP(2, [4, 2]): two logits
def test_train_classifier_losses():
    model, train, val = model_and_data()
    history = train_classifier(model, train, val, epochs=3, lr=0.5, lam=0.01)
    expect_equal(sorted(history), ["best_epoch", "train_loss", "val_loss"], "the keys of train_classifier's dict")
    expect_close(history["train_loss"], TRAIN_LOSS, "train_loss of train_classifier(MLP(2, [4, 2]), epochs=3, "
                 "lr=0.5, lam=0.01)")
    expect_close(history["val_loss"], VAL_LOSS, "val_loss (after each epoch's step, without L2)")
    expect_equal(history["best_epoch"], 2, "best_epoch")


@covers("train_classifier", uses=("cross_entropy",))  # MLP(2, [4, 2]): two logits
def test_early_stopping_restores_the_best_parameters():
    model, train, val = model_and_data()
    history = train_classifier(model, train, val, epochs=30, lr=4.0, patience=2)
    expect_close(history["val_loss"], STOPPED_VAL_LOSS, "val_loss of train_classifier(..., epochs=30, lr=4.0, "
                 "patience=2): stop after 2 epochs in a row without a lower val_loss")
    expect_equal(history["best_epoch"], STOPPED_BEST, "best_epoch")
    expect_close([p.data for p in model.parameters()][:3], STOPPED_PARAMS, "the first 3 parameters at the end "
                 "(restored to their values after epoch best_epoch)")


TRAIN_LOSS = [0.7254966663095445, 0.6895977625638041, 0.6698086532066476]
VAL_LOSS = [0.7931309669405722, 0.7176609118326446, 0.6753916415276968]
STOPPED_VAL_LOSS = [0.34035556476441414, 1.0127042640689219, 0.12114033054304837, 4.835538521292212,
                    1.9655602371583174]
STOPPED_BEST = 2
STOPPED_PARAMS = [-0.700459894688185, 0.6090043573377414, 0.2649180628714818]
