"""One process or many: the same training code under ``torchrun``.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE > 1 we join a
process group (gloo on CPU, nccl on CUDA). Each process reads its own rows of
the global batch and DDP averages the gradients, so the update equals the
one-process update on the whole batch.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..errors import SeqlabError

PROCESS_GROUP_TIMEOUT = timedelta(minutes=5)


@dataclass
class ProcessContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

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

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SeqlabError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqlabError(f"--device {name} asked for CUDA, which this machine does not have; use --device cpu")
    return device


def start_processes(device_name: str) -> ProcessContext:
    """Join the process group when launched by torchrun; otherwise a one-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    context = ProcessContext(
        rank=int(os.environ.get("RANK", "0")), world_size=world_size, local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))), device=device)
    if context.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
    return context


def stop_processes(context: ProcessContext) -> None:
    """Leave the process group. The caller must already have dropped its DDP wrapper:
    gloo's destructor can otherwise deadlock at exit, so collect garbage first."""
    if context.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
