"""One process or many: the same training code under ``torchrun``.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE > 1 we join a
process group (gloo on CPU, nccl on CUDA). Each process reads its own rows of
the global batch; the trainer divides every process's summed loss by the
count of the whole global batch (times the number of processes, which DDP's
gradient average divides out again), so the update equals the one-process
update on the whole batch even where processes count different numbers of
positions (padding, masks, class weights).

Each process draws dropout and other noise from its own random stream,
derived from the seed and its rank (``seed_process``). DDP does not forward a
model's own methods (``condition_state``, ``init_state``, ...): reach them
through ``unwrap``.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import SeqlabError

PROCESS_GROUP_TIMEOUT = timedelta(minutes=5)


@dataclass
class ProcessContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context joined the process group, so it leaves it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch."""
        share = batch_size // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Sum or max over processes (a no-op for one process)."""
        if self.distributed:
            reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
            tensor = tensor.to(self.device)
            dist.all_reduce(tensor, op=reduce_op)
        return tensor.cpu()

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor`` (same shape and dtype on each), in rank order, on the CPU."""
        if not self.distributed:
            return [tensor.cpu()]
        tensor = tensor.to(self.device).contiguous()
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(gathered, tensor)
        return [item.cpu() for item in gathered]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def synchronize(self) -> None:
        """Wait for the device to finish its queued work, so a clock read after it is true (CUDA runs ahead)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def process_seed(seed: int, rank: int) -> int:
    """A seed for process ``rank``'s own random stream: independent streams from one seed (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] % (2 ** 63))


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself inside DistributedDataParallel and torch.compile wrappers (which do not forward its methods)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU where there is one, else the CPU; a bare ``cuda`` is this process's GPU too."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SeqlabError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqlabError(f"--device {name} asked for CUDA, which this machine does not have; use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise SeqlabError(f"--device {device} is not here: this machine has {torch.cuda.device_count()} GPU(s), "
                          "cuda:0 and up")
    return device


def start_processes(device_name: str) -> ProcessContext:
    """Join the process group when launched by torchrun; otherwise a one-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    context = ProcessContext(
        rank=int(os.environ.get("RANK", "0")), world_size=world_size, local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))), device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if context.distributed and not dist.is_initialized():  # a caller that joined a group itself keeps it
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
        context.owns_group = True
    return context


def stop_processes(context: ProcessContext) -> None:
    """Leave the process group this context joined. The caller must already have dropped its DDP wrapper:
    gloo's destructor can otherwise deadlock at exit, so collect garbage first."""
    if context.owns_group and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
