"""Hidden tests, group `classify`: Dropout and train_classifier.

Dropout is run with a counted `random.Random(seed)`, so its draws are known here: the tests check one draw per
element in order, the keep rule (draw >= p), the 1/(1-p) scaling, the gradients, and that nothing is drawn in
eval mode or with p = 0.

train_classifier runs on the course's MLP (nn.py is a given file) with parameters injected through its
parameters(), on tiny data sets, and its whole result (both loss lists, best_epoch, the final parameters and
the number of draws) is compared with the reference's. When it differs, the run is matched against the classic
mistakes, each replayed here with the reference's losses (`simulate`): L2 left out or put into val_loss, a sum
instead of a mean, val_loss before the update, dropout in validation or on the logits, early stopping one
epoch late or early, the last parameters kept instead of the best, a restore without patience.
"""
import math
import random

import diagnosis
import pytest

from grader.testing import Feedback, all_close, message

pytestmark = pytest.mark.group("classify")


# ---------------------------------------------------------------------- Dropout


def draws_of(seed, n):
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def elements(rng, n):
    """n distinct numbers away from 0, so that a dropped element and a kept one never look alike."""
    return [round(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0), 3) + 0.001 * i for i in range(n)]


def check_dropout(student, reference, p, x, seed, single=False):
    args = {"p": p, "x": x, "training": True, "seed": seed, "single": single}
    got, want = student.call_beside(reference, "dropout", **args)
    raise_found(diagnosis.dropout(p, x, draws_of(seed, len(x)), want["out"], got["out"], want["grads"], got["grads"],
                                  got["draws"], got["form_kept"], single))


def raise_found(found, function="Dropout.__call__"):
    """The shared diagnosis's message (tests/diagnosis.py of the public tests), if it found something wrong."""
    if found is not None:
        raise Feedback(found["id"], function=function, **found["params"])


def first_seed(wanted, start=0):
    """The first seed from `start` whose draws have the property `wanted` (a deterministic choice)."""
    return next(seed for seed in range(start, start + 10_000) if wanted(seed))


FIXED_ELEMENTS = [1.5, -0.75, 2.25, -2.0, 0.5, 3.0, -1.25, 0.8]


@pytest.mark.covers("Dropout.__call__")
@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_draw_order_keep_rule_and_scaling(student, reference, rng, p):
    def mixed(seed):  # some elements kept and some dropped
        return 0 < sum(d >= p for d in draws_of(seed, 8)) < 8

    check_dropout(student, reference, p, FIXED_ELEMENTS, first_seed(mixed))
    seed = rng.randrange(10 ** 6)  # an extra, random case
    check_dropout(student, reference, p, elements(rng, 8), seed)


@pytest.mark.covers("Dropout.__call__")
def test_dropout_keeps_an_element_whose_draw_equals_p(student, reference, rng):
    """p is one of the draws itself (the median of 7), so that `>= p` and `> p` differ on that element."""
    for seed, x in ((2024, FIXED_ELEMENTS[:7]), (rng.randrange(10 ** 6), elements(rng, 7))):  # then a random case
        check_dropout(student, reference, sorted(draws_of(seed, 7))[3], x, seed)


@pytest.mark.covers("Dropout.__call__")
def test_dropout_of_a_single_value(student, reference, rng):
    kept, dropped = first_seed(lambda s: draws_of(s, 1)[0] >= 0.3), first_seed(lambda s: draws_of(s, 1)[0] < 0.3)
    for seed, x in ((kept, [1.5]), (dropped, [-0.75]), (rng.randrange(10 ** 6), elements(rng, 1))):
        check_dropout(student, reference, 0.3, x, seed, single=True)


@pytest.mark.covers("Dropout.__call__")
@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True)])
def test_dropout_off_returns_x_and_draws_nothing(student, reference, p, training):
    x = FIXED_ELEMENTS[:5]
    got, want = student.call_beside(reference, "dropout", p=p, x=x, training=training, seed=7)
    raise_found(diagnosis.dropout_off(p, training, x, got["draws"], got["out"], got["form_kept"], want["grads"],
                                      got["grads"]))


# ---------------------------------------------------------------------- train_classifier: requests


def dataset(rng, n):
    """n points [x0, x1] of two classes split by a wavy line: not linearly separable, like make_moons."""
    data = []
    for _ in range(n):
        x = [round(rng.uniform(-1.5, 1.5), 3), round(rng.uniform(-1.5, 1.5), 3)]
        data.append([x, int(x[1] > 0.6 * math.sin(2 * x[0]))])
    return data


def train_request(rng, sizes, epochs=5, lr=0.3, lam=0.0, patience=None, dropout_p=None, n_train=5, n_val=4):
    count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    return {"sizes": sizes, "params": [round(rng.uniform(-1, 1), 3) for _ in range(count)],
            "train": dataset(rng, n_train), "val": dataset(rng, n_val), "epochs": epochs, "lr": lr, "lam": lam,
            "patience": patience, "dropout_p": dropout_p, "seed": rng.randrange(10 ** 6)}


def setting(request):
    """The run's settings as a message of messages.toml, worded (its commas) in the report's language: one id per
    combination of the optional settings, as a report keeps messages nested only so deep."""
    patience, p = request["patience"], request["dropout_p"]
    message_id = "setting" + (".patience" if patience is not None else "") + (".dropout" if p is not None else "")
    return message(message_id, model=f"MLP({request['sizes'][0]}, {request['sizes'][1:]})", epochs=request["epochs"],
                   lr=request["lr"], lam=request["lam"], patience=patience, p=p)


# ---------------------------------------------------------------------- train_classifier: classic mistakes


def agrees(got, key, epoch, value):
    return epoch < len(got[key]) and all_close([got[key][epoch]], [value])


def simulate(reference, request, mistake=None, against=None):
    """train_classifier as the contract says, or with one classic mistake, run on the reference's modules.

    With `against` (a student's run), None as soon as a loss of some epoch differs from that run's: the mistake
    is not the student's, and the rest of the run need not be computed."""
    Value = reference.modules["engine"].Value
    losses = reference.modules["losses"]
    sizes, lam, dropout_p, patience = request["sizes"], request["lam"], request["dropout_p"], request["patience"]
    model = reference.modules["nn"].MLP(sizes[0], list(sizes[1:]))
    params = model.parameters()
    for p, data in zip(params, request["params"]):
        p.data = data
    rng, draws = random.Random(request["seed"]), [0]

    def dropout(h):
        single = not isinstance(h, list)
        out = []
        for v in [h] if single else h:
            draws[0] += 1
            out.append(v * (1 / (1 - dropout_p)) if rng.random() >= dropout_p else v * 0)
        return out[0] if single else out

    def forward(x, training):
        last = len(model.layers) - 1
        for i, layer in enumerate(model.layers):
            x = layer(x)
            if training and dropout_p and (i < last or mistake == "dropout_on_last"):
                x = dropout(x)
        return x

    def loss_of(out, label):
        return losses.cross_entropy(out, label) if isinstance(out, list) else losses.bce_with_logits(out, label)

    def penalty():
        return lam * sum((p ** 2 for p in params), Value(0.0))

    def validation():
        mean = sum(loss_of(forward(x, mistake == "dropout_in_val"), y).data for x, y in request["val"])
        mean /= len(request["val"])
        return mean + penalty().data if mistake == "l2_in_val" else mean

    limit = None if patience is None else patience + {"stop_late": 1, "stop_early": -1}.get(mistake, 0)
    train_loss, val_loss, best_epoch = [], [], 0
    best_loss, best_params, waited = math.inf, [p.data for p in params], 0
    for epoch in range(request["epochs"]):
        data_loss = sum((loss_of(forward(x, True), y) for x, y in request["train"]), Value(0.0))
        if mistake != "sum_not_mean":
            data_loss = data_loss * (1 / len(request["train"]))
        loss = data_loss if mistake == "no_l2" else data_loss + penalty()
        train_loss.append(loss.data)
        if against is not None and not agrees(against, "train_loss", epoch, loss.data):
            return None
        model.zero_grad()
        loss.backward()
        early = validation() if mistake == "val_before_update" else None
        for p in params:
            p.data -= request["lr"] * p.grad
        val_loss.append(early if early is not None else validation())
        if against is not None and not agrees(against, "val_loss", epoch, val_loss[-1]):
            return None
        if val_loss[-1] < best_loss or (mistake == "ties_improve" and val_loss[-1] <= best_loss):
            best_loss, best_params, waited, best_epoch = val_loss[-1], [p.data for p in params], 0, epoch
        else:
            waited += 1
            if limit is not None and waited >= limit:
                break
    if (patience is not None and mistake != "restore_last") or mistake == "restore_without_patience":
        for p, data in zip(params, best_params):
            p.data = data
    return {"train_loss": train_loss, "val_loss": val_loss, "best_epoch": best_epoch,
            "params": [p.data for p in params], "draws": draws[0]}


def mistakes_for(request):
    found = ["sum_not_mean", "val_before_update"]
    if request["lam"]:
        found += ["no_l2", "l2_in_val"]
    if request["dropout_p"]:
        found += ["dropout_in_val", "dropout_on_last"]
    if request["lr"] == 0:  # every val_loss the same
        found.append("ties_improve")
    if request["patience"] is not None:
        found += ["restore_last", "stop_late"] + (["stop_early"] if request["patience"] >= 2 else [])
    else:
        found.append("restore_without_patience")
    return found


def check_train(student, reference, request):
    got, want = student.call_beside(reference, "train", **request)
    mistakes = {}
    if not diagnosis.same_run(got, want):
        for mistake in mistakes_for(request):
            run = simulate(reference, request, mistake, against=got)
            if run is not None:
                mistakes[mistake] = run
    raise_found(diagnosis.train_classifier(setting(request), request["patience"], request["lam"],
                                           request["dropout_p"], want, got, mistakes), "train_classifier")


def telling_request(reference, rng, want_ok, attempts=12, **settings):
    """A request on which the reference's run has the property `want_ok` (e.g. stops early); the last one tried
    otherwise (the test is still right, only less sharp)."""
    for _ in range(attempts):
        request = train_request(rng, **settings)
        if want_ok(reference.call("train", **request), request):
            break
    return request


# ---------------------------------------------------------------------- train_classifier: tests
#
# Each test runs a fixed request (made from a Random of its own fixed seed, so the same whatever the report's
# seed) and then an extra, random one: every known mistake is caught by the fixed one. The fixed requests
# without patience have their best epoch neither first nor last, so that a restore or a stop where none belongs,
# and a best_epoch or best loss that is not kept up to date, always show.


def fixed(name):
    return random.Random(f"fixed request: {name}")


def best_in_the_middle(want, request):
    """The best epoch is neither the first nor the last, and an epoch before the last does not improve."""
    losses = want["val_loss"]
    worse_before_the_end = any(losses[e] >= min(losses[:e]) for e in range(1, len(losses) - 1))
    return 0 < want["best_epoch"] < len(losses) - 1 and worse_before_the_end


def requests(reference, rng, name, **settings):
    """The test's fixed request (its best epoch neither the first nor the last), then a random one."""
    return [telling_request(reference, fixed(name), best_in_the_middle, attempts=60, **settings),
            train_request(rng, **settings)]


@pytest.mark.covers("train_classifier")
def test_train_classifier_matches_reference(student, reference, rng):
    for request in requests(reference, rng, "multi-class", sizes=[2, 3, 2], epochs=5, n_train=5, n_val=4):
        check_train(student, reference, request)


@pytest.mark.covers("train_classifier")
def test_train_classifier_with_one_output_uses_bce(student, reference, rng):
    for request in requests(reference, rng, "one output", sizes=[2, 3, 1], epochs=5, n_train=5, n_val=4):
        check_train(student, reference, request)


@pytest.mark.covers("train_classifier")
def test_train_loss_includes_l2_and_val_loss_does_not(student, reference, rng):
    for request in requests(reference, rng, "l2", sizes=[2, 3, 2], epochs=4, lam=0.05, n_train=5, n_val=4):
        check_train(student, reference, request)


@pytest.mark.covers("train_classifier")
def test_train_with_dropout_on_every_layer_but_the_last(student, reference, rng):
    for request in requests(reference, rng, "dropout", sizes=[2, 3, 3, 2], epochs=4, dropout_p=0.25, n_train=4,
                            n_val=3):
        check_train(student, reference, request)


def stops_early_with_room(want, request):
    """Stopped at least two epochs before the end, with the last parameters unlike the best ones."""
    return len(want["val_loss"]) <= request["epochs"] - 2 and want["best_epoch"] < len(want["val_loss"]) - 1


@pytest.mark.covers("train_classifier")
@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_stops_at_best_epoch_plus_patience_and_restores_the_best(student, reference, rng, patience):
    for source in (fixed(f"patience {patience}"), rng):
        request = telling_request(reference, source, stops_early_with_room, sizes=[2, 3, 2], epochs=12, lr=2.5,
                                  patience=patience, n_train=4, n_val=3)
        check_train(student, reference, request)


@pytest.mark.covers("train_classifier")
@pytest.mark.parametrize("patience", [None, 2])
def test_equal_val_losses_are_no_improvement(student, reference, rng, patience):
    """lr = 0: the parameters never change, so every val_loss is the same as the first; best_epoch stays 0 and,
    with patience, the run stops after epoch `patience`."""
    for source in (fixed(f"equal val_loss {patience}"), rng):
        check_train(student, reference, train_request(source, [2, 2, 2], epochs=4, lr=0.0, patience=patience,
                                                      n_train=3, n_val=2))


@pytest.mark.covers("train_classifier")
def test_without_patience_every_epoch_runs_and_nothing_is_restored(student, reference, rng):
    settings = {"sizes": [2, 3, 2], "epochs": 6, "lr": 2.5, "n_train": 4, "n_val": 3}
    for request in (telling_request(reference, fixed("no patience"), best_in_the_middle, attempts=60, **settings),
                    telling_request(reference, rng, best_in_the_middle, **settings)):
        check_train(student, reference, request)
