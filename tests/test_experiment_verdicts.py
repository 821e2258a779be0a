"""Every experiment's verdict comes from its numbers: run each one on the smoke preset (seconds), then hand its
verdict the smoke table rewritten so the claim holds, and the same table with the models' results swapped so it
is contradicted; the verdict must say yes to the first and no to the second.

The smoke numbers themselves mean nothing (a few training steps); only their shape and the wiring are real.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

import pytest

from seqlab.experiments import EXPERIMENTS, run_experiment

Rows = list[dict[str, Any]]


def set_where(rows: Rows, match: dict[str, Any], **values: Any) -> None:
    """Set ``values`` in every row whose fields equal ``match``; at least one must."""
    chosen = [row for row in rows if all(row[key] == value for key, value in match.items())]
    assert chosen, f"no row matches {match}"
    for row in chosen:
        row.update(values)


def swap(rows: Rows, first: dict[str, Any], second: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Exchange ``fields`` between the rows matching ``first`` and ``second`` (one each), as if the results of
    the two models had been swapped."""
    (a,) = [row for row in rows if all(row[name] == value for name, value in first.items())]
    (b,) = [row for row in rows if all(row[name] == value for name, value in second.items())]
    for field in fields:
        a[field], b[field] = b[field], a[field]


# ------------------------------------------------- per experiment: make the claim hold, then contradict it
def vanishing_holds(rows: Rows, settings: dict) -> None:
    set_where(rows, {"model": "rnn", "stage": "trained"}, decay_per_step_h=0.7)
    set_where(rows, {"model": "lstm", "stage": "trained"}, decay_per_step_h=0.85, decay_per_step_c=0.9)


def vanishing_contradicts(rows: Rows, settings: dict) -> None:
    set_where(rows, {"model": "rnn", "stage": "trained"}, decay_per_step_h=0.9)
    set_where(rows, {"model": "lstm", "stage": "trained"}, decay_per_step_h=0.7, decay_per_step_c=0.7)


def long_range_holds(rows: Rows, settings: dict) -> None:
    longest = max(settings["copy"])
    for name, value in (("tcn", 1.0), ("lstm", 0.2), ("gru", 0.3)):
        set_where(rows, {"task": "copy_memory", "T": longest, "model": name}, value=value)


def long_range_contradicts(rows: Rows, settings: dict) -> None:
    longest = max(settings["copy"])
    swap(rows, {"task": "copy_memory", "T": longest, "model": "tcn"},
         {"task": "copy_memory", "T": longest, "model": "gru"}, ("value",))


def clipping_holds(rows: Rows, settings: dict) -> None:
    for gain in settings["gains"]:
        set_where(rows, {"gain": gain, "rule": "none"}, diverged=settings["seeds"], stuck=0, val_loss_mean=math.nan,
                  max_grad_norm=1e6)
        set_where(rows, {"gain": gain, "rule": "norm 1"}, diverged=0, stuck=0, val_loss_mean=2.3)


def clipping_contradicts(rows: Rows, settings: dict) -> None:
    for gain in settings["gains"]:
        swap(rows, {"gain": gain, "rule": "none"}, {"gain": gain, "rule": "norm 1"},
             ("diverged", "stuck", "val_loss_mean"))


def counting_reach(rows: Rows, settings: dict, lstm: float, gru: float) -> None:
    for model, factor in (("lstm", lstm), ("gru", gru)):
        set_where(rows, {"model": model}, largest_n_all_accepted=int(factor * settings["train_n_max"]))


def counting_holds(rows: Rows, settings: dict) -> None:
    counting_reach(rows, settings, lstm=3, gru=1)


def counting_contradicts(rows: Rows, settings: dict) -> None:
    counting_reach(rows, settings, lstm=1, gru=3)


def length_holds(rows: Rows, settings: dict) -> None:
    trained = settings["train_n_max"]
    set_where(rows, {"model": "transformer/learned"}, largest_n_all_accepted=trained)
    set_where(rows, {"model": "transformer/rotary"}, largest_n_all_accepted=3 * trained)


def length_contradicts(rows: Rows, settings: dict) -> None:
    swap(rows, {"model": "transformer/learned"}, {"model": "transformer/rotary"}, ("largest_n_all_accepted",))


def scratchpad_holds(rows: Rows, settings: dict) -> None:
    trained, beyond = settings["train_digits"], settings["train_digits"] + 1
    set_where(rows, {"answer": "scratchpad"}, **{f"{trained}_digits": 1.0, f"{beyond}_digits": 0.6})
    set_where(rows, {"answer": "direct"}, **{f"{trained}_digits": 1.0, f"{beyond}_digits": 0.0})


def scratchpad_contradicts(rows: Rows, settings: dict) -> None:
    model = settings["models"][0]
    swap(rows, {"model": model, "answer": "scratchpad"}, {"model": model, "answer": "direct"},
         (f"{settings['train_digits'] + 1}_digits",))


def inference_holds(rows: Rows, settings: dict) -> None:
    for name in ("lstm", "gru", "mingru"):
        set_where(rows, {"model": name}, time_slope=0.0)
    set_where(rows, {"model": "transformer (recompute)"}, time_slope=1.0)


def inference_contradicts(rows: Rows, settings: dict) -> None:
    swap(rows, {"model": "lstm"}, {"model": "transformer (recompute)"}, ("time_slope",))


def parallelism_epochs(rows: Rows, settings: dict, growth: dict[str, float]) -> None:
    shortest, longest = settings["lengths"][0], settings["lengths"][-1]
    for name, factor in growth.items():
        set_where(rows, {"model": name}, **{f"epoch_s T={shortest}": 1.0, f"epoch_s T={longest}": factor})


def parallelism_holds(rows: Rows, settings: dict) -> None:
    parallelism_epochs(rows, settings, {"lstm": 4.0, "gru": 4.0, "mingru": 1.0, "tcn": 1.0})


def parallelism_contradicts(rows: Rows, settings: dict) -> None:
    parallelism_epochs(rows, settings, {"lstm": 1.0, "gru": 1.0, "mingru": 4.0, "tcn": 4.0})


def initial_holds(rows: Rows, settings: dict) -> None:
    for initial, loss in (("zeros", 1.2), ("random", 1.2), ("learned", 1.0)):
        set_where(rows, {"initial_state": initial}, **{"loss_pos1-5": loss})


def initial_contradicts(rows: Rows, settings: dict) -> None:
    for model in ("lstm", "gru"):
        swap(rows, {"model": model, "initial_state": "learned"}, {"model": model, "initial_state": "zeros"},
             ("loss_pos1-5",))


def variants_holds(rows: Rows, settings: dict) -> None:
    for variant, loss in (("vanilla", 1.80), ("peephole", 1.81), ("coupled", 1.82), ("no_forget", 2.2)):
        set_where(rows, {"variant": variant}, val_loss_mean=loss)
    set_where(rows, {"variant": "peephole"}, welch_t=0.5, **{"t_critical_5%": 3.0})


def variants_contradicts(rows: Rows, settings: dict) -> None:
    swap(rows, {"variant": "no_forget"}, {"variant": "coupled"}, ("val_loss_mean",))


def sentiment_holds(rows: Rows, settings: dict) -> None:
    set_where(rows, {"sentiment": "positive"}, **{"score_D(0)": 3.0, "state_half_life": 4.0})
    set_where(rows, {"sentiment": "negative"}, **{"score_D(0)": -3.0, "state_half_life": 4.0})


def sentiment_contradicts(rows: Rows, settings: dict) -> None:
    swap(rows, {"sentiment": "positive"}, {"sentiment": "negative"}, ("score_D(0)",))


def ball_holds(rows: Rows, settings: dict) -> None:
    for model, error in (("per-frame", 2.0), ("lstm", 1.0), ("convlstm", 0.5), ("baseline (stays)", 2.0)):
        set_where(rows, {"model": model}, error_h1=error)


def ball_contradicts(rows: Rows, settings: dict) -> None:
    swap(rows, {"model": "per-frame"}, {"model": "convlstm"}, ("error_h1",))


Rewrite = Callable[[Rows, dict], None]
CASES: dict[str, tuple[Rewrite, Rewrite]] = {
    "vanishing-gradients": (vanishing_holds, vanishing_contradicts),
    "long-range": (long_range_holds, long_range_contradicts),
    "clipping": (clipping_holds, clipping_contradicts),
    "counting": (counting_holds, counting_contradicts),
    "length-generalisation": (length_holds, length_contradicts),
    "scratchpad": (scratchpad_holds, scratchpad_contradicts),
    "inference-cost": (inference_holds, inference_contradicts),
    "training-parallelism": (parallelism_holds, parallelism_contradicts),
    "initial-state": (initial_holds, initial_contradicts),
    "lstm-variants": (variants_holds, variants_contradicts),
    "sentiment-trajectory": (sentiment_holds, sentiment_contradicts),
    "ball-video": (ball_holds, ball_contradicts),
}


def test_every_experiment_has_a_flip_case():
    assert set(CASES) == set(EXPERIMENTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_smoke_run_and_verdict_flips(name: str, tmp_path) -> None:
    experiment = EXPERIMENTS[name]
    record = run_experiment(name, preset="smoke", out_dir=tmp_path)
    settings = {**experiment.settings["smoke"], "preset": "smoke", "device": "cpu", "data": ""}
    assert record["verdict"] == experiment.verdict(record["rows"], settings).text  # the verdict is of these rows
    assert all((tmp_path / figure).is_file() for figure in record["figures"])

    holds, contradicts = CASES[name]
    rows = copy.deepcopy(record["rows"])
    holds(rows, settings)
    supported = experiment.verdict(rows, settings)
    contradicts(rows, settings)
    refuted = experiment.verdict(rows, settings)
    assert supported.reproduced is True, supported.text
    assert refuted.reproduced is False, refuted.text
    assert "did not reproduce" in refuted.text and "did not reproduce" not in supported.text
