"""Run a list of training runs under torchrun, one process group for all (tests/test_distributed.py plans them).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_runs.py PLAN.json

PLAN.json: a list of {"config": {...}, "out": DIR, "resume": bool, "float64": bool, "dropout_probe": bool}.
With ``dropout_probe`` the main process writes DIR/dropout_probe.json: whether the processes' dropout masks
differed after the first step (and, as a control, whether their outputs agreed without dropout).
"""
import gc
import json
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from seqlab.config import Config
from seqlab.train.distributed import unwrap
from seqlab.train.trainer import Trainer


def dropout_probe(out: str):
    """After step 1, run the model (weights equal in every process) on one fixed input in training and in
    evaluation mode and compare the processes' outputs: they differ only by the dropout masks drawn."""
    def callback(trainer: Trainer, step: int, loss: float) -> None:
        if step != 1:
            return
        model = unwrap(trainer.model)
        tokens = torch.arange(16).remainder(model.vocab_size).view(2, 8)  # (2, 8)
        outputs = {}
        for mode in ("train", "eval"):
            model.train(mode == "train")
            with torch.no_grad():
                logits, _ = model(tokens)  # (2, 8, V)
            gathered = [torch.empty_like(logits) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, logits.contiguous())
            outputs[mode] = not torch.equal(gathered[0], gathered[1])
        model.train()
        if dist.get_rank() == 0:
            with open(f"{out}/dropout_probe.json", "w", encoding="utf-8") as handle:
                json.dump({"train_outputs_differ": outputs["train"], "eval_outputs_differ": outputs["eval"]}, handle)
    return callback


def main(plan_path: str) -> None:
    dist.init_process_group("gloo", timeout=timedelta(minutes=2))
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    for run in plan:
        torch.set_default_dtype(torch.float64 if run.get("float64") else torch.float32)
        config = Config.from_dict(run["config"])
        callback = dropout_probe(run["out"]) if run.get("dropout_probe") else None
        Trainer(config, run["out"], resume=run.get("resume", False), quiet=run.get("quiet", True),
                step_callback=callback).fit()
    gc.collect()  # the runs' DDP wrappers go before the process group
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
