"""Hidden tests, group `losses`: bce_with_logits, softmax, cross_entropy and accuracy.

Each loss is run on Values built by the harness and backpropagated with the course's engine (a given file), so
its value and its inputs' gradients are compared with the reference. Moderate logits first (the formula), then
logits up to +-1000 (the stable form): a textbook form raises (log of 0, 0/0) or saturates there, and the
feedback says which stable form to use. Classic mistakes get their own message: the label used the wrong way
round, the minus sign left out, a loss built from `.data` so that no gradient flows.
"""
import diagnosis
import pytest

from grader.testing import Feedback, all_close, close, message

pytestmark = pytest.mark.group("losses")

EXTREME = (1000.0, -1000.0, 750.0, -750.0, 100.0, -100.0, 40.0, -40.0)
FAILED_TO_ANSWER = ("exception", "wrong_type")  # the grader's ids: raised, or replied with NaN / inf / no Value
FUNCTION = {"bce": "bce_with_logits", "softmax": "softmax", "cross_entropy": "cross_entropy"}


def logit(rng, scale=4.0):
    return round(rng.uniform(-scale, scale), 3)


def check_plain_numbers(student, reference, cmd, given, **args):
    """The README: losses take logits as Values, and plain numbers are wrapped. Same value as for Values."""
    try:
        got, want = student.call_beside(reference, cmd, **args)
    except Feedback as failure:
        if failure.message_id in FAILED_TO_ANSWER:
            raise Feedback("loss_plain_numbers", function=FUNCTION[cmd], name=FUNCTION[cmd], given=given) from None
        raise
    return got, want


def unstable_call(student, reference, unstable_id, cmd, params, **args):
    """call_beside for extreme inputs: an exception or a non-finite reply is the unstable form's fault."""
    try:
        return student.call_beside(reference, cmd, **args)
    except Feedback as failure:
        if failure.message_id in FAILED_TO_ANSWER:
            raise Feedback(unstable_id, function=FUNCTION[cmd], **params) from None
        raise


# ---------------------------------------------------------------------- bce_with_logits


def check_bce(student, reference, z, y, extreme=False):
    params = {"z": z, "y": y}
    if extreme:
        got, want = unstable_call(student, reference, "bce_unstable", "bce", params, z=z, y=y)
    else:
        got, want = student.call_beside(reference, "bce", z=z, y=y)
    flipped = None if close(got["data"], want["data"]) else reference.call("bce", z=z, y=1 - y)["data"]
    raise_found("bce_with_logits", diagnosis.bce(z, y, want["data"], want["grad"], got["data"], got["grad"],
                                                 flipped_data=flipped, extreme=extreme))


def raise_found(function, found):
    """The shared diagnosis's message (tests/diagnosis.py of the public tests), if it found something wrong."""
    if found is not None:
        raise Feedback(found["id"], function=function, **found["params"])


@pytest.mark.covers("bce_with_logits")
def test_bce_value_and_gradient(student, reference, rng):
    for z, y in [(0.0, 1), (0.0, 0), (1.5, 1), (-2.0, 1), (logit(rng), 0), (logit(rng), 1)]:
        check_bce(student, reference, z, y)


@pytest.mark.covers("bce_with_logits")
def test_bce_is_stable_for_large_logits(student, reference, rng):
    y = rng.choice([0, 1])
    for z in EXTREME:
        for label in (y, 1 - y):
            check_bce(student, reference, z, label, extreme=True)


@pytest.mark.covers("bce_with_logits")
@pytest.mark.weight(0.5)
def test_bce_accepts_a_plain_number(student, reference, rng):
    # Both branches and both labels, then an extra, random case.
    for z, y in [(1.5, 1), (2.5, 0), (-2.0, 0), (-1.5, 1), (logit(rng), rng.choice([0, 1]))]:
        got, want = check_plain_numbers(student, reference, "bce", message("given.float", z=z, y=y), z=z, y=y,
                                        as_number=True)
        if not close(got["data"], want["data"]):
            raise Feedback("bce_value", function="bce_with_logits", z=z, y=y, expected=want["data"], got=got["data"])


# ---------------------------------------------------------------------- softmax


def check_softmax(student, reference, logits, upstream, extreme=False):
    args = {"logits": logits, "upstream": upstream}
    if extreme:
        got, want = unstable_call(student, reference, "softmax_unstable", "softmax", {"logits": logits}, **args)
    else:
        got, want = student.call_beside(reference, "softmax", **args)
    raise_found("softmax", diagnosis.softmax(logits, upstream, want["data"], want["grads"], got["data"], got["grads"],
                                             extreme=extreme))


@pytest.mark.covers("softmax")
def test_softmax_values_and_gradients(student, reference, rng):
    check_softmax(student, reference, [1.0, -0.5, 2.0], [0.7, -1.2, 0.4])
    check_softmax(student, reference, [0.3, 0.3], [1.5, -0.5])
    check_softmax(student, reference, [0.0, 2.5, -1.5, 0.5, 1.0], [1.0, 0.5, -2.0, 0.25, -0.75])
    for size in (2, 3, 5):  # extra, random cases
        logits = [logit(rng) for _ in range(size)]
        upstream = [round(rng.uniform(-2, 2), 3) for _ in range(size)]
        check_softmax(student, reference, logits, upstream)
    check_softmax(student, reference, [1.0], [1.0])


@pytest.mark.covers("softmax")
def test_softmax_is_stable_for_large_logits(student, reference):
    upstream = [0.7, -1.2, 0.4]
    for logits in ([1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -999.5], [800.0, 0.0, 799.0],
                   [-800.0, -801.0, -1000.0]):
        check_softmax(student, reference, logits, upstream, extreme=True)


@pytest.mark.covers("softmax")
@pytest.mark.weight(0.5)
def test_softmax_accepts_plain_numbers(student, reference, rng):
    for logits in ([0.5, -1.0, 2.0], [logit(rng) for _ in range(3)]):  # fixed, then an extra, random case
        check_softmax_of_numbers(student, reference, logits)


def check_softmax_of_numbers(student, reference, logits):
    got, want = check_plain_numbers(student, reference, "softmax", message("given.floats", logits=logits),
                                    logits=logits, upstream=[1.0, 1.0, 1.0], as_numbers=True)
    if not all_close(got["data"], want["data"]):
        raise Feedback("softmax_value", function="softmax", logits=logits, expected=want["data"], got=got["data"])


# ---------------------------------------------------------------------- cross_entropy


def check_cross_entropy(student, reference, logits, label, extreme=False):
    params = {"logits": logits, "label": label}
    if extreme:
        got, want = unstable_call(student, reference, "cross_entropy_unstable", "cross_entropy", params, **params)
    else:
        got, want = student.call_beside(reference, "cross_entropy", **params)
    raise_found("cross_entropy", diagnosis.cross_entropy(logits, label, want["data"], want["grads"], got["data"],
                                                         got["grads"], extreme=extreme))


@pytest.mark.covers("cross_entropy")
def test_cross_entropy_value_and_gradients(student, reference, rng):
    check_cross_entropy(student, reference, [2.0, -1.0, 0.5], 1)
    check_cross_entropy(student, reference, [0.3, -0.2], 0)
    check_cross_entropy(student, reference, [1.5, 0.5, -0.5, 2.5], 3)
    for size in (2, 3, 4):  # extra, random cases
        logits = [logit(rng) for _ in range(size)]
        check_cross_entropy(student, reference, logits, rng.randrange(size))
    check_cross_entropy(student, reference, [0.0, 0.0, 0.0], 2)


@pytest.mark.covers("cross_entropy")
def test_cross_entropy_is_stable_for_large_logits(student, reference):
    for logits in ([1000.0, -1000.0, 999.0], [-1000.0, -1000.0], [750.0, 0.0, -750.0]):
        for label in range(len(logits)):  # every label: the likeliest and the most unlikely ones
            check_cross_entropy(student, reference, logits, label, extreme=True)


@pytest.mark.covers("cross_entropy")
@pytest.mark.weight(0.5)
def test_cross_entropy_accepts_plain_numbers(student, reference, rng):
    for logits, label in (([0.5, -1.0, 2.0], 1), ([logit(rng) for _ in range(3)], rng.randrange(3))):
        check_cross_entropy_of_numbers(student, reference, logits, label)  # fixed, then an extra, random case


def check_cross_entropy_of_numbers(student, reference, logits, label):
    got, want = check_plain_numbers(student, reference, "cross_entropy", message("given.floats", logits=logits),
                                    logits=logits, label=label, as_numbers=True)
    if not close(got["data"], want["data"]):
        raise Feedback("cross_entropy_value", function="cross_entropy", logits=logits, label=label,
                       expected=want["data"], got=got["data"])


# ---------------------------------------------------------------------- accuracy


def check_accuracy(student, reference, rows, labels, message_id):
    got, want = student.call_beside(reference, "accuracy", rows=rows, labels=labels)
    raise_found("accuracy", diagnosis.accuracy(rows, labels, want["accuracy"], got["accuracy"], message_id))


@pytest.mark.covers("accuracy")
def test_accuracy_of_distinct_logits(student, reference, rng):
    rows = [[0.5, -1.0, 2.0], [3.0, 1.0, -2.0], [-0.5, 0.25, 0.0], [1.5, 2.5, -3.5]]
    check_accuracy(student, reference, rows, [2, 0, 2, 1], "accuracy_wrong")  # 3 of 4 right
    rows = [[logit(rng) for _ in range(3)] for _ in range(6)]  # an extra, random case
    labels = [rng.randrange(3) for _ in rows]
    labels[0] = max(range(3), key=rows[0].__getitem__)  # at least one right
    check_accuracy(student, reference, rows, labels, "accuracy_wrong")


@pytest.mark.covers("accuracy")
def test_accuracy_ties_go_to_the_first_largest(student, reference, rng):
    for top in (0.5, logit(rng)):  # fixed, then an extra, random case
        rows = [[top, top, top - 1], [top - 1, top, top], [top, top - 2, top], [top - 1, top, top - 2]]
        check_accuracy(student, reference, rows, [0, 1, 0, 1], "accuracy_ties")
        check_accuracy(student, reference, rows, [1, 2, 2, 1], "accuracy_ties")


@pytest.mark.covers("accuracy")
def test_accuracy_with_one_logit_per_row(student, reference, rng):
    for rows in ([0.0, 1.5, -0.5, 1e-9, 0.0], [0.0, abs(logit(rng)) + 0.001, -abs(logit(rng)) - 0.001, 1e-9, 0.0]):
        check_accuracy(student, reference, rows, [0, 1, 0, 1, 0], "accuracy_single_logit")
        check_accuracy(student, reference, rows, [1, 1, 1, 0, 1], "accuracy_single_logit")
