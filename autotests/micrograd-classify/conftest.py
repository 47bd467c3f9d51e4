"""Fixtures of micrograd-classify's hidden tests.

`student`, `reference` and `rng` come from the grader (grader/runner.py); this file adds `reply_shapes`, the
shape of every reply of reference/micrograd-classify/harness.py, which the grader checks each sandbox reply
against before a test sees it (finite numbers, bounded lists, no extra keys).
"""
import pytest

from grader.testing import BOOLEAN, NUMBER, Integer, Record, numbers

MAX_LOGITS = 100
MAX_ELEMENTS = 1000
MAX_EPOCHS = 1000
MAX_PARAMETERS = 10_000
COUNT = Integer(0, 2 ** 31)


@pytest.fixture(scope="session")
def reply_shapes():
    return {
        "bce": Record({"data": NUMBER, "grad": NUMBER}),
        "softmax": Record({"data": numbers(MAX_LOGITS), "grads": numbers(MAX_LOGITS)}),
        "cross_entropy": Record({"data": NUMBER, "grads": numbers(MAX_LOGITS)}),
        "accuracy": Record({"accuracy": NUMBER}),
        "dropout": Record({"out": numbers(MAX_ELEMENTS), "grads": numbers(MAX_ELEMENTS), "draws": COUNT,
                           "form_kept": BOOLEAN}),
        "train": Record({"train_loss": numbers(MAX_EPOCHS), "val_loss": numbers(MAX_EPOCHS),
                         "best_epoch": Integer(-(2 ** 31), 2 ** 31), "params": numbers(MAX_PARAMETERS),
                         "draws": COUNT}),
    }
