"""The experiment framework: registry, files written, the CLI and the HTML report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqlab.cli import main
from seqlab.experiments import EXPERIMENTS, ExperimentResult, register_experiment, run_experiment
from seqlab.experiments.base import Finding
from seqlab.experiments.report import build_report


@pytest.fixture
def toy_experiment():
    import matplotlib.pyplot as plt

    def run(settings: dict, out: Path) -> ExperimentResult:
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3])
        figure.savefig(out / "line.png")
        plt.close(figure)
        return ExperimentResult(rows=[{"model": "a<b", "loss": 0.5}, {"model": "c", "loss": settings["loss"]}],
                                figures=["line.png"])

    def verdict(rows: list, settings: dict) -> Finding:
        return Finding(f"ran {settings['preset']}, loss {rows[1]['loss']}", rows[1]["loss"] < 2)

    settings = {"smoke": {"loss": 1.25}, "quick": {"loss": 1.25}, "full": {"loss": 3.0, "memory_gib": 1e9}}
    register_experiment("toy-test", title="Toy", claim="toys & <tags> work", settings=settings, verdict=verdict)(run)
    yield "toy-test"
    del EXPERIMENTS["toy-test"]


def test_run_writes_json_and_table(tmp_path, toy_experiment):
    record = run_experiment(toy_experiment, preset="quick", out_dir=tmp_path / "toy")
    saved = json.loads((tmp_path / "toy" / "result.json").read_text())
    assert saved == record
    assert saved["rows"][1] == {"model": "c", "loss": 1.25} and saved["verdict"] == "ran quick, loss 1.25"
    assert saved["reproduced"] is True
    table = (tmp_path / "toy" / "table.md").read_text()
    assert "| model | loss |" in table and "| c | 1.25 |" in table


def test_report_embeds_figures_and_escapes(tmp_path, toy_experiment):
    run_experiment(toy_experiment, preset="smoke", out_dir=tmp_path / "runs" / "toy")
    page = build_report(tmp_path / "runs").read_text()
    assert "data:image/png;base64," in page
    assert "a&lt;b" in page and "toys &amp; &lt;tags&gt;" in page and "reproduced" in page


def test_cli_lists_and_refuses(tmp_path, capsys, toy_experiment):
    assert main(["experiment", "--list"]) == 0
    assert "toy-test" in capsys.readouterr().out
    assert main(["experiment", "no-such", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'no-such'" in capsys.readouterr().err
    assert main(["experiment", "toy-test", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    # a full preset that needs more memory than the machine has, an experiment on a device it cannot use
    assert main(["experiment", "toy-test", "--preset", "full", "--out", str(tmp_path)]) == 2
    assert "needs about 1e+09 GiB of memory" in capsys.readouterr().err
    assert main(["experiment", "inference-cost", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "experiment inference-cost runs on cpu, not 'cuda'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["experiment", "toy-test", "--device", "cuda", "--out", str(tmp_path)]) == 2
        assert "torch sees no CUDA device here" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before writing anything
    assert main(["report", str(tmp_path)]) == 2
    assert "no experiment results" in capsys.readouterr().err
    assert main(["experiment", "toy-test", "--out", str(tmp_path / "t")]) == 0
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()


def test_data_flag_trains_on_the_users_file_and_is_refused_where_it_does_not_apply(tmp_path, capsys):
    rows = [("what a great and lovely meal", "1"), ("a rude waiter and an awful soup", "0")] * 20
    data = tmp_path / "mine.tsv"
    data.write_text("".join(f"{sentence}\t{label}\n" for sentence, label in rows), encoding="utf-8")
    assert main(["experiment", "clipping", "--preset", "smoke", "--data", str(data), "--out", str(tmp_path / "c")]) == 2
    assert "experiment clipping trains on its own builtin data only; drop --data" in capsys.readouterr().err
    missing = ["experiment", "sentiment-trajectory", "--preset", "smoke", "--data", str(tmp_path / "missing.tsv"),
               "--out", str(tmp_path / "m")]
    assert main(missing) == 2
    assert "missing.tsv: no such file" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine.tsv"]  # refused before writing anything
    out = tmp_path / "s"
    assert main(["experiment", "sentiment-trajectory", "--preset", "smoke", "--data", str(data), "--out", str(out)]) == 0
    assert json.loads((out / "result.json").read_text())["data"] == str(data)
    # trained on the file's labels, not the templated corpus's positive / negative / neutral
    assert json.loads((out / "run" / "labels.json").read_text())["labels"] == ["0", "1"]
