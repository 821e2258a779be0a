"""A 2-process torchrun run follows the 1-process loss curve with the same global batch."""
import json
import os
import subprocess
import sys

import pytest

from seqlab.train.trainer import Trainer

from helpers import small_config, words_text

TIMEOUT_SECONDS = 300


def _losses(run_directory):
    records = [json.loads(line) for line in (run_directory / "metrics.jsonl").read_text().splitlines()]
    return [record["loss"] for record in records if record["kind"] == "train"]


@pytest.mark.parametrize("batching", ["random", "stream"])
def test_two_processes_follow_the_one_process_loss_curve(tmp_path, batching):
    data = tmp_path / "text.txt"
    data.write_text(words_text(4000), encoding="utf-8")
    config = small_config(data, max_steps=8, batch_size=8, eval_interval=4)
    config.data.batching = batching
    Trainer(config, tmp_path / "one", quiet=True).fit()

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.to_dict()), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("RANK", "WORLD_SIZE"))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "seqlab.cli", "train", "--config", str(config_file), "--out", str(tmp_path / "two"), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]

    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 8
    assert two == pytest.approx(one, abs=1e-5)
    assert one[-1] < one[0]  # the runs learned something, so the comparison means something
