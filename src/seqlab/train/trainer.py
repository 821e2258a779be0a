"""The trainer: one loop for every task and backbone, with backpropagation through time.

A batch goes forward (from a fresh state, or from the state the previous
batch left, detached: truncated BPTT), the task's loss (plus, with
``train.pascanu_weight``, that weight times the vanishing-gradient regulariser
of Pascanu et al. 2013, see ``regularisers.py``, logged as ``pascanu``) goes backward, the
gradient is clipped (its pre-clip norm logged) and AdamW (or SGD) steps with a warmup +
cosine schedule. The task is validated every ``eval_interval`` steps; the
latest checkpoint is kept at the top of the output directory and the best by
the task's selection metric in ``best/``, which is the run's result. With
``patience`` P, training stops early once P validations in a row after the
warmup bring no new best.

Time budgets (``max_seconds``) count training time only, not validation or
checkpoint writing, so a budgeted run's numbers compare across machines'
evaluation settings; the schedule then spans that time. On CUDA the clock is
read only after the device has finished the step's work.

A step (``_step``) reads one global batch; each process takes its rows and
splits them into ``train.accumulate`` micro-batches, whose summed losses are
divided by the global batch's count, so any number of processes and
micro-batches takes the same step (see ``Task.loss``). The forward runs in
``train.precision`` and, with ``train.compile``, compiled (``acceleration.py``).
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..backbones.base import State, final_state_unused, map_state, state_tensors
from ..config import Config
from ..errors import SeqlabError, TrainingDiverged
from ..progress import ProgressReport, SlowdownWatch, console_for
from ..tasks import task_class
from ..data.batches import Batch
from . import tensorboard
from .acceleration import (autocast, check_compiler, check_precision, compile_model, compiled_call,
                           gradient_scaler)
from .checkpoint import (MODEL_FILE, DirectoryLock, is_checkpoint, load_checkpoint, load_trainer_state, lock_directory,
                         readable_directory, recover_checkpoint, save_checkpoint)
from .distributed import ProcessContext, process_seed, start_processes, stop_processes
from .regularisers import check_regularisable, penalty

BEST_DIRECTORY = "best"
METRICS_FILE = {"jsonl": "metrics.jsonl", "csv": "metrics.csv"}
CSV_COLUMNS = ("kind", "step", "loss", "pascanu", "lr", "grad_norm", "tokens_per_second", "train_seconds",
               "elapsed_seconds")


@dataclass
class TrainSummary:
    steps: int
    train_seconds: float
    loss: float
    metrics: dict[str, float] | None  # the last validation's
    best: float | None  # the best value of the task's selection metric
    stopped_early: bool = False  # interrupted (Ctrl-C or request_stop), resumable
    best_step: int | None = None
    best_metrics: dict[str, float] | None = None  # the validation that made best/
    out_of_patience: bool = False  # early stopping ended the run
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped_steps: int = 0  # steps skipped for a non-finite loss or gradient


def learning_rate(config: Config, step: int, train_seconds: float) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_learning_rate`` over the budget.

    The decay's progress is the larger of the step and time fractions, so it
    spans whichever budget ends first.
    """
    train = config.train
    if step < train.warmup_steps:
        return train.learning_rate * (step + 1) / train.warmup_steps
    fractions = [0.0]
    if train.max_steps:
        fractions.append((step - train.warmup_steps) / max(1, train.max_steps - train.warmup_steps))
    if train.max_seconds:
        fractions.append(train_seconds / train.max_seconds)
    progress = min(1.0, max(fractions))
    return train.min_learning_rate + 0.5 * (train.learning_rate - train.min_learning_rate) * (1 + math.cos(math.pi * progress))


class Trainer:
    """Fit a language model to a text file and keep checkpoints in ``out_dir``.

    Args:
        config: the whole run's configuration (validated here).
        out_dir: the checkpoint directory; must not already hold a checkpoint
            unless ``resume`` (continue it) or ``overwrite`` (start afresh).
        resume: continue the checkpoint in ``out_dir`` exactly where it stopped.
        step_callback: called with (trainer, step, loss) after every step; may
            call ``request_stop()`` (tests use this to interrupt a run).
    """

    def __init__(self, config: Config, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                 step_callback: Callable[["Trainer", int, float], None] | None = None, quiet: bool = False) -> None:
        config.validate()
        self.config = config
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.step_callback = step_callback
        self.console = console_for(quiet=quiet)
        self._check_out_dir(overwrite)
        self.stop_requested = False
        self.is_main = True
        self.lock: DirectoryLock | None = None
        self.tensorboard: tensorboard.TensorBoardLog | None = None
        if "tensorboard" in config.train.log_format.split(","):
            tensorboard.summary_writer_class()  # a missing extra stops the run before anything on disk changes

    def _check_out_dir(self, overwrite: bool) -> None:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise SeqlabError(f"--out {self.out_dir} is a file; give a directory")
        holds_checkpoint = is_checkpoint(self.out_dir)
        if self.resume and not holds_checkpoint:
            raise SeqlabError(f"--resume: {self.out_dir} holds no checkpoint to resume; train without --resume first")
        if holds_checkpoint and not (self.resume or overwrite):
            raise SeqlabError(f"{self.out_dir} already holds a checkpoint; pass --resume to continue it, "
                              "--overwrite to replace it, or another --out")

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and stop (what Ctrl-C does)."""
        self.stop_requested = True

    # ------------------------------------------------------------------ setup
    def _setup(self, context: ProcessContext) -> None:
        config = self.config
        train = config.train
        if train.batch_size % context.world_size:
            raise SeqlabError(f"--batch-size {train.batch_size} does not split evenly among "
                              f"{context.world_size} processes; use a multiple of {context.world_size}")
        rows = train.batch_size // context.world_size
        if train.accumulate > rows:
            raise SeqlabError(f"--accumulate {train.accumulate} asks for more micro-batches than the {rows} rows each "
                              f"of {context.world_size} process(es) takes of --batch-size {train.batch_size}; "
                              f"use --accumulate {rows} or less, or a larger --batch-size")
        check_precision(train.precision, context.device)
        if train.compile:
            check_compiler(context.device)
        torch.set_num_threads(train.threads or max(1, (os.cpu_count() or 1) // context.local_world_size))
        self.task = load_checkpoint(self.out_dir).task if self.resume else task_class(config.task.name)(config)
        self.task.config = config  # the budget flags of a resumed run override the checkpoint's
        self.task.load_data()
        if context.is_main:
            for note in self.task.notes:
                self.console.print(note)  # quiet with --quiet, as every other line
        torch.manual_seed(train.seed)  # the same initial weights in every process
        self.model = self.task.build_model().to(context.device)
        torch.manual_seed(process_seed(train.seed, context.rank))  # but each its own dropout masks
        if train.pascanu_weight:
            check_regularisable(getattr(self.model, "backbone", None))
        undecayed = {id(parameter) for parameter in self.task.undecayed(self.model)}
        decays = {id(parameter): parameter.dim() >= 2 and id(parameter) not in undecayed
                  for parameter in self.model.parameters()}
        decay = [parameter for parameter in self.model.parameters() if decays[id(parameter)]]
        no_decay = [parameter for parameter in self.model.parameters() if not decays[id(parameter)]]
        groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if train.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=train.learning_rate, momentum=train.momentum)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=train.learning_rate, betas=(train.beta1, train.beta2))
        self.batches = self.task.batches()
        self.step = 0
        self.train_seconds = 0.0
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_metrics: dict[str, float] | None = None
        self.validations_since_best = 0
        self.carried: list[State] | None = None  # one state per micro-batch, with stream batching
        self.skipped_steps = 0
        self.nonfinite_run = 0  # non-finite steps in a row
        self.scaler = gradient_scaler(train.precision, context.device)
        if self.resume:
            self._load_trainer_state(context)
            self._check_budget_left(announce=context.is_main)

    # ------------------------------------------------------------- checkpoint
    def _process_tensors(self, context: ProcessContext) -> dict[str, Tensor]:
        """Every process's random streams and carried states, as ``process.RANK.NAME``.

        A collective: every process must call it (the main one receives all)."""
        own = {"rng.torch": torch.get_rng_state()}
        if context.device.type == "cuda":
            own["rng.cuda"] = torch.cuda.get_rng_state(context.device)
        for micro, state in enumerate(self.carried or []):
            for index, tensor in enumerate(state_tensors(state)):
                own[f"carried.{micro}.{index}"] = tensor
        return {f"process.{rank}.{name}": value for name, tensor in own.items()
                for rank, value in enumerate(context.all_gather(tensor))}

    def _trainer_state(self, context: ProcessContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """What ``--resume`` needs; a collective (see ``_process_tensors``)."""
        optimizer_state = self.optimizer.state_dict()
        tensors = self._process_tensors(context)
        for index, values in optimizer_state["state"].items():
            for name, value in values.items():
                tensors[f"optimizer.{index}.{name}"] = value
        for name, value in self.batches.state_dict().items():
            tensors[f"batches.{name}"] = value
        state = {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "best": self.best,
            "best_step": self.best_step,
            "best_metrics": self.best_metrics,
            "validations_since_best": self.validations_since_best,
            "optimizer_param_groups": optimizer_state["param_groups"],
            "carried_state": self.carried is not None,
            "skipped_steps": self.skipped_steps,
            "world_size": context.world_size,
            "accumulate": self.config.train.accumulate,
            "gradient_scaler": self.scaler.state_dict(),
        }
        return state, tensors

    def _load_trainer_state(self, context: ProcessContext) -> None:
        from safetensors.torch import load_model

        state, tensors = load_trainer_state(self.out_dir)
        load_model(self.model, str(readable_directory(self.out_dir) / MODEL_FILE), device=str(context.device))
        optimizer_state: dict[str, Any] = {"state": {}, "param_groups": state["optimizer_param_groups"]}
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                optimizer_state["state"].setdefault(int(index), {})[key] = value
        try:
            self.optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError) as error:
            raise SeqlabError(f"the optimizer state in {self.out_dir} does not fit the model ({error})") from None
        self.batches.load_state_dict({name.split(".", 1)[1]: value for name, value in tensors.items()
                                      if name.startswith("batches.")})
        prefix = f"process.{context.rank}."
        own = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
        # a process the saved run did not have keeps the fresh stream seeded for its rank
        if "rng.torch" in own:
            torch.set_rng_state(own["rng.torch"])
        if "rng.cuda" in own and context.device.type == "cuda":
            torch.cuda.set_rng_state(own["rng.cuda"], context.device)
        if state.get("gradient_scaler"):
            self.scaler.load_state_dict(state["gradient_scaler"])
        if state["carried_state"]:
            self.carried = self._saved_carried(own, state, context)
        self.step = state["step"]
        self.train_seconds = state["train_seconds"]
        self.best = state["best"]
        self.best_step = state.get("best_step")
        self.best_metrics = state.get("best_metrics")
        self.validations_since_best = state.get("validations_since_best", 0)
        self.skipped_steps = state.get("skipped_steps", 0)

    def _check_budget_left(self, *, announce: bool) -> None:
        """A resumed run says how far it goes now; one whose budget is already spent is refused, not run for 0 steps."""
        train = self.config.train
        done = f"step {self.step} ({self.train_seconds:.1f} s trained)"
        budget = " and ".join(([f"--max-steps {train.max_steps}"] if train.max_steps else [])
                              + ([f"--max-seconds {train.max_seconds:g}"] if train.max_seconds else []))
        if (train.max_steps and self.step >= train.max_steps) or (
                train.max_seconds and self.train_seconds >= train.max_seconds):
            raise SeqlabError(f"{self.out_dir} is at {done}: its budget ({budget}) is spent, nothing left to do; "
                              f"give --resume a larger --max-steps or --max-seconds to train on")
        left = " and ".join(([f"{train.max_steps - self.step} more steps"] if train.max_steps else [])
                            + ([f"{train.max_seconds - self.train_seconds:.1f} more seconds"] if train.max_seconds else []))
        if announce:
            self.console.print(f"resuming {self.out_dir} at {done}: {budget} leaves {left}; the learning-rate "
                               f"schedule spans that budget")

    def _saved_carried(self, own: dict[str, Tensor], state: dict[str, Any], context: ProcessContext) -> list[State]:
        """This process's carried state of every micro-batch, from its saved tensors."""
        train = self.config.train
        saved_layout = (state["world_size"], state["accumulate"])
        if saved_layout != (context.world_size, train.accumulate):
            raise SeqlabError(f"{self.out_dir} carries stream states of {saved_layout[0]} process(es) with "
                              f"--accumulate {saved_layout[1]}; resume it with as many processes and that --accumulate")
        carried = []
        for micro, rows in enumerate(self._micro_rows(train.batch_size // context.world_size)):
            template = self.model.init_state(rows.stop - rows.start)
            saved = iter(own[f"carried.{micro}.{index}"] for index in range(len(state_tensors(template))))
            carried.append(map_state(lambda like: next(saved).to(like.device, like.dtype), template))
        return carried

    def _micro_rows(self, rows: int) -> list[slice]:
        """The rows of each of ``train.accumulate`` micro-batches of a process's ``rows``, as even as they split."""
        count = self.config.train.accumulate
        return [slice(rows * index // count, rows * (index + 1) // count) for index in range(count)]

    def _save(self, directory: Path, *, trainer: tuple[dict[str, Any], dict[str, Tensor]] | None) -> None:
        trainer_state, trainer_tensors = trainer if trainer is not None else (None, None)
        save_checkpoint(directory, config=self.config, model=self.model, assets=self.task.assets(),
                        trainer_state=trainer_state, trainer_tensors=trainer_tensors)

    # ---------------------------------------------------------------- metrics
    def _log(self, record: dict[str, Any]) -> None:
        record = {key: value for key, value in record.items() if value is not None}
        for log_format in self.config.train.log_format.split(","):
            if log_format == "tensorboard":
                self.tensorboard.write(record)
                continue
            path = self.out_dir / METRICS_FILE[log_format]
            if log_format == "jsonl":
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                continue
            new_file = not path.exists()
            with path.open("a", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS + self.task.metric_names)
                if new_file:
                    writer.writeheader()
                writer.writerow(record)

    # ------------------------------------------------------------------- loop
    def fit(self) -> TrainSummary:
        context = start_processes(self.config.train.device)
        self.is_main = context.is_main
        handler_installed = False
        previous_handler = None
        try:
            if context.is_main and self.out_dir.is_dir():  # before reading a checkpoint another run may be writing
                self._lock_out_dir()
            self._setup(context)
            if context.is_main:
                if self.lock is None:  # a new --out is made only once the input has proved good
                    self._lock_out_dir()
                if not self.resume:  # a fresh run (or --overwrite) starts a fresh record
                    for name in METRICS_FILE.values():
                        (self.out_dir / name).unlink(missing_ok=True)
                    shutil.rmtree(self.out_dir / BEST_DIRECTORY, ignore_errors=True)
                    shutil.rmtree(self.out_dir / tensorboard.DIRECTORY, ignore_errors=True)
                if "tensorboard" in self.config.train.log_format.split(","):
                    self.tensorboard = tensorboard.TensorBoardLog(self.out_dir, resume_step=self.step if self.resume else None)
            if threading.current_thread() is threading.main_thread():
                previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)
                handler_installed = True
            return self._loop(context)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            if handler_installed:
                signal.signal(signal.SIGINT, previous_handler)
            if self.lock is not None:
                self.lock.release()
                self.lock = None
            stop_processes(context)

    def _lock_out_dir(self) -> None:
        """Hold --out for this run, and finish or clear what a killed run left there (see checkpoint.py)."""
        self.lock = lock_directory(self.out_dir)
        if self.lock.taken_over_from is not None and self.lock.taken_over_from != os.getpid():
            self.console.print(f"--out {self.out_dir}: taking over the lock of process {self.lock.taken_over_from}, "
                               "which has ended", soft_wrap=True, markup=False)
        recover_checkpoint(self.out_dir)
        recover_checkpoint(self.out_dir / BEST_DIRECTORY)

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        if self.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.console.print("interrupted: finishing this step and saving a checkpoint (Ctrl-C again to abort)")
        self.stop_requested = True

    def _loop(self, context: ProcessContext) -> TrainSummary:
        config, train = self.config, self.config.train
        model: nn.Module = compile_model(self.model) if train.compile else self.model
        if context.distributed:
            model = DistributedDataParallel(model, find_unused_parameters=self.batches.carries_state)
        has_validation = self.task.has_validation
        history: list[dict[str, Any]] = []
        loss_value = float("nan")
        metrics: dict[str, float] | None = None
        started = time.perf_counter()
        start_step = self.step
        total = train.max_steps if train.max_steps and not train.max_seconds else train.max_seconds or train.max_steps
        self.progress = progress = ProgressReport("train", total, console=self.console if context.is_main
                                                  else console_for(quiet=True))
        slowdown = SlowdownWatch(threads=torch.get_num_threads(), load=lambda: os.getloadavg()[0],
                                 cores=os.cpu_count() or 1)
        try:
            with progress:
                end = self._budget_spent(context)
                while not end:
                    context.synchronize()  # CUDA runs ahead of Python: the clock waits for the device
                    step_started = time.perf_counter()
                    rate = learning_rate(config, self.step, self.train_seconds)
                    for group in self.optimizer.param_groups:
                        group["lr"] = rate
                    batch = self.batches.next_batch()
                    counted = self.task.counted(batch)
                    summed, penalty, grad_norm = compiled_call(self._step, model, batch, counted, context)
                    if self.nonfinite_run:  # _step skipped the update (see _skip_nonfinite)
                        self.train_seconds += time.perf_counter() - step_started
                        end = self._budget_spent(context)
                        if end:  # e.g. Ctrl-C: keep the (unchanged, finite) weights with the data position
                            metrics = self._validate_and_save(context, has_validation, history, started) or metrics
                        continue
                    self.step += 1
                    context.synchronize()
                    step_seconds = time.perf_counter() - step_started
                    self.train_seconds += step_seconds
                    warning = slowdown.observe(step_seconds)
                    if warning and context.is_main:
                        progress.print(f"note: {warning}")
                    loss_value = float(context.all_reduce(summed.double()) / counted)
                    if self.step_callback is not None:
                        self.step_callback(self, self.step, loss_value)
                    if self.step % train.log_interval == 0 or self.step == start_step + 1:
                        record = {"kind": "train", "step": self.step, "loss": round(loss_value, 6),
                                  "pascanu": None if penalty is None else round(float(penalty.detach()), 6), "lr": rate,
                                  "grad_norm": round(float(grad_norm), 6),
                                  "tokens_per_second": round(self.task.tokens(batch) / step_seconds),
                                  "train_seconds": round(self.train_seconds, 3),
                                  "elapsed_seconds": round(time.perf_counter() - started, 3)}
                        history.append(record)
                        if context.is_main:
                            self._log(record)
                            status = f"step {self.step} loss {loss_value:.4f} {record['tokens_per_second']:,} tok/s"
                            progress.update(self._progress_done(), status)
                    end = self._budget_spent(context)
                    if self.step % train.eval_interval == 0 or end:
                        metrics = self._validate_and_save(context, has_validation, history, started) or metrics
                        end = end or self._out_of_patience(context)
        finally:
            del model  # the DDP wrapper must go before the process group (see stop_processes)
        return TrainSummary(steps=self.step, train_seconds=self.train_seconds, loss=loss_value, metrics=metrics,
                            best=self.best, stopped_early=self.stop_requested, history=history,
                            best_step=self.best_step, best_metrics=self.best_metrics,
                            out_of_patience=self._out_of_patience(context, announce=False),
                            skipped_steps=self.skipped_steps)

    def _out_of_patience(self, context: ProcessContext, *, announce: bool = True) -> bool:
        """Early stopping: ``patience`` validations in a row without a new best (every process counts the same)."""
        patience = self.config.train.patience
        spent = bool(patience) and self.validations_since_best >= patience
        if spent and announce and context.is_main:
            self.console.print(f"early stop at step {self.step}: {self.task.selection_metric} has not improved in "
                               f"{patience} validations (best {self.best:.4f} at step {self.best_step})", soft_wrap=True)
        return spent

    def _skip_nonfinite(self, grad_norm: Tensor, context: ProcessContext) -> bool:
        """Whether to skip this step's update: its gradient norm is not finite (as after any non-finite loss).

        Every process decides alike, as DDP has averaged the gradients. A skipped step changes no
        weight, and the next batch goes on from the carried state before it; it is counted and logged.
        ``train.max_nonfinite_steps`` of them in a row stop training, the last checkpoint untouched.
        With fp16 the loss scaler makes this call itself (it skips a step whose scaled gradient
        overflowed, and lowers its scale), so overflows are not counted here.
        """
        if self.scaler.is_enabled() or math.isfinite(float(grad_norm)):
            self.nonfinite_run = 0
            return False
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.nonfinite_run += 1
        attempted = self.step + 1
        if self.nonfinite_run > self.config.train.max_nonfinite_steps:
            raise TrainingDiverged(
                f"training stopped at step {attempted}: the loss or gradient was not finite for {self.nonfinite_run} "
                f"steps in a row (--max-nonfinite-steps {self.config.train.max_nonfinite_steps}); the checkpoint in "
                f"{self.out_dir} is the last good one; lower --learning-rate or clip with --clip-norm, then --resume")
        if context.is_main:
            self._log({"kind": "skipped", "step": attempted, "train_seconds": round(self.train_seconds, 3)})
            self.console.print(f"step {attempted}: non-finite loss or gradient; skipped "
                               f"({self.nonfinite_run} in a row, {self.skipped_steps} in all)", soft_wrap=True)
        return True

    def _step(self, model: nn.Module, batch: Batch, counted: float,
              context: ProcessContext) -> tuple[Tensor, Tensor | None, Tensor]:
        """One optimizer step on a global batch whose loss counts ``counted`` positions.

        This process's rows go through in ``train.accumulate`` micro-batches. Each one's summed loss is
        multiplied by world_size / counted: DDP averages the gradients over the processes, so the gradient
        is that of the mean over every counted position of the global batch, the one-process step. DDP
        all-reduces once, in the last micro-batch's backward. Returns this process's summed loss, its
        regulariser (None without one) and the gradient norm before clipping.
        """
        train = self.config.train
        carries = self.batches.carries_state
        local = batch.rows(context.rows(train.batch_size))
        micro_rows = self._micro_rows(local.inputs.shape[0])
        scale = context.world_size / counted
        summed = torch.zeros((), dtype=torch.float64, device=context.device)
        penalties: list[Tensor] = []
        carried: list[State] = []
        self.optimizer.zero_grad(set_to_none=True)
        for index, rows in enumerate(micro_rows):
            piece = local.rows(rows).to(context.device)
            state = None if batch.reset or not carries or self.carried is None else self.carried[index]
            last = index == len(micro_rows) - 1
            with nullcontext() if last or not context.distributed else model.no_sync():
                with autocast(train.precision, context.device), final_state_unused(not carries):
                    loss, state, penalty = self._loss(model, piece, state)
                objective = loss * scale
                if penalty is not None:  # a mean over rows: each micro-batch weighs its share of them
                    penalty = penalty * ((rows.stop - rows.start) / local.inputs.shape[0])
                    penalties.append(penalty.detach())
                    objective = objective + train.pascanu_weight * penalty
                self.scaler.scale(objective).backward()
            summed += loss.detach()
            if carries:
                carried.append(map_state(torch.Tensor.detach, state))
        self.scaler.unscale_(self.optimizer)  # fp16: the true gradients, before they are clipped
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_norm or math.inf)
        if train.clip_value:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), train.clip_value)
        if self._skip_nonfinite(grad_norm, context):
            return summed, (torch.stack(penalties).sum() if penalties else None), grad_norm
        self.carried = carried if carries else None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return summed, (torch.stack(penalties).sum() if penalties else None), grad_norm

    def _loss(self, model: nn.Module, batch: Any, state: State) -> tuple[Tensor, State, Tensor | None]:
        """The task's loss, and with ``train.pascanu_weight`` the regulariser Omega (else None) on its forward."""
        if not self.config.train.pascanu_weight:
            return (*self.task.loss(model, batch, state), None)
        backbone = self.model.backbone
        with backbone.recording() as trajectory:
            loss, state = self.task.loss(model, batch, state)
        return loss, state, penalty(trajectory, backbone, loss)

    def _progress_done(self) -> float:
        train = self.config.train
        return self.step if train.max_steps and not train.max_seconds else self.train_seconds or self.step

    def _budget_spent(self, context: ProcessContext) -> bool:
        """Every process must stop after the same step: agree on the clock and on a stop request."""
        train = self.config.train
        clock = context.all_reduce(torch.tensor([self.train_seconds, float(self.stop_requested)], dtype=torch.float64),
                                   op="max")
        self.stop_requested = bool(clock[1])
        return (self.stop_requested or (train.max_steps and self.step >= train.max_steps)
                or (train.max_seconds and float(clock[0]) >= train.max_seconds))

    def _validate_and_save(self, context: ProcessContext, has_validation: bool, history: list[dict[str, Any]],
                           started: float) -> dict[str, float] | None:
        task = self.task
        metrics = None
        improved = False
        if has_validation:
            with autocast(self.config.train.precision, context.device):
                metrics = task.evaluate(self.model, context=context, max_batches=self.config.train.eval_max_batches)
            value = metrics[task.selection_metric]
            improved = self.best is None or (value > self.best if task.higher_is_better else value < self.best)
            if improved:
                self.best, self.best_step, self.best_metrics = value, self.step, dict(metrics)
                self.validations_since_best = 0
            elif self.step > self.config.train.warmup_steps:  # a model still warming up is not yet stuck
                self.validations_since_best += 1
            record = {"kind": "eval", "step": self.step, **{name: round(number, 6) for name, number in metrics.items()},
                      "train_seconds": round(self.train_seconds, 3),
                      "elapsed_seconds": round(time.perf_counter() - started, 3)}
            history.append(record)
            if context.is_main:
                self._log(record)
                shown = ", ".join(f"{name} {number:.4f}" for name, number in metrics.items())
                notes = (["best"] if improved else []) + ([
                    f"on the first {self.config.train.eval_max_batches} validation batches, as --eval-max-batches "
                    "asks; seqlab eval measures them all"] if self.config.train.eval_max_batches else [])
                self.progress.print(f"step {self.step}: {shown}" + (f" ({'; '.join(notes)})" if notes else ""))
        trainer = self._trainer_state(context)  # every process takes part: their states are gathered
        if context.is_main:
            self._save(self.out_dir, trainer=trainer)
            if improved:
                self._save(self.out_dir / BEST_DIRECTORY, trainer=None)
        context.barrier()
        return metrics


def train(config: Config, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          quiet: bool = False) -> TrainSummary:
    """Train and checkpoint; the function behind ``seqlab train``. Only the main process reports."""
    trainer = Trainer(config, out_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    summary = trainer.fit()
    if trainer.is_main and not quiet:
        metrics = summary.metrics or {}
        tail = "".join(f", {name} {value:.4f}" for name, value in metrics.items())
        print(f"trained {summary.steps} steps in {summary.train_seconds:.1f} s: loss {summary.loss:.4f}{tail}; "
              f"checkpoint in {out_dir}", file=sys.stderr)
        if summary.skipped_steps:
            print(f"skipped {summary.skipped_steps} steps with a non-finite loss or gradient", file=sys.stderr)
        if summary.stopped_early:
            print(f"stopped at step {summary.steps}; continue with --resume", file=sys.stderr)
        if summary.best_metrics is not None:
            shown = ", ".join(f"{name} {value:.4f}" for name, value in summary.best_metrics.items())
            print(f"result: {Path(out_dir) / BEST_DIRECTORY} (step {summary.best_step}): {shown}", file=sys.stderr)
            baseline = trainer.task.baseline_metrics()
            if baseline:
                print("baseline on the same validation rows: "
                      + ", ".join(f"{name} {value:.4f}" for name, value in baseline.items()), file=sys.stderr)
    return summary
