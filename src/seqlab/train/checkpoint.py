"""Checkpoint directories: JSON + safetensors, no pickle anywhere.

    DIR/config.json          the run's Config; rebuilds the model by registry names
    DIR/model.safetensors    weights
    DIR/tokenizer.json, ...  the task's assets (vocabulary, labels, scalers): JSON
    DIR/trainer.json         step, schedule clock, best validation loss, optimizer hyper-parameters
    DIR/trainer.safetensors  optimizer moments, RNG states, data position, carried state
    DIR/checkpoint.json      the manifest: every file's size and SHA-256, written last

Files are written to a staging folder and moved into place one by one, the
manifest last, so a reader never trusts a half-written checkpoint: any file
that does not match the manifest is reported as damaged.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn

from ..config import Config
from ..errors import SeqlabError
from ..registry import task_class
from .distributed import resolve_device

MANIFEST = "checkpoint.json"
FORMAT = "seqlab-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.json"
TRAINER_TENSORS_FILE = "trainer.safetensors"


@dataclass
class Checkpoint:
    directory: Path
    config: Config
    model: nn.Module
    task: Any  # the Task rebuilt from its assets

    @property
    def tokenizer(self) -> Any:
        return self.task.tokenizer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_checkpoint(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def save_checkpoint(directory: str | Path, *, config: Config, model: nn.Module, assets: dict[str, Any],
                    trainer_state: dict[str, Any] | None = None, trainer_tensors: dict[str, Tensor] | None = None) -> None:
    """Write a whole checkpoint into ``directory`` (created if needed), replacing the one there."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    save_model(model, str(staging / MODEL_FILE), metadata={"format": "pt"})
    for name, value in assets.items():
        (staging / name).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    if trainer_state is not None:
        (staging / TRAINER_FILE).write_text(json.dumps(trainer_state, indent=2) + "\n", encoding="utf-8")
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in (trainer_tensors or {}).items()},
                  str(staging / TRAINER_TENSORS_FILE))
    names = sorted(path.name for path in staging.iterdir())
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "files": {name: {"bytes": (staging / name).stat().st_size, "sha256": _sha256(staging / name)} for name in names},
    }
    for name in names:
        os.replace(staging / name, directory / name)
    if trainer_state is None:  # a model-only checkpoint must not keep a stale trainer state beside it
        for name in (TRAINER_FILE, TRAINER_TENSORS_FILE):
            (directory / name).unlink(missing_ok=True)
    manifest_staging = staging / MANIFEST
    manifest_staging.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(manifest_staging, directory / MANIFEST)
    staging.rmdir()


def verify_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Check the manifest and every file against it; return the manifest."""
    directory = Path(directory)
    if not directory.exists():
        raise SeqlabError(f"checkpoint directory {directory} does not exist")
    if not directory.is_dir():
        raise SeqlabError(f"{directory} is a file, not a checkpoint directory")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise SeqlabError(f"{directory} is not a seqlab checkpoint (it has no {MANIFEST}); "
                          "point at a directory written by 'seqlab train --out'")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != FORMAT:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise SeqlabError(f"{manifest_path} is damaged; restore the checkpoint or retrain") from None
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise SeqlabError(f"checkpoint {directory} is missing {name}; restore it or retrain")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise SeqlabError(f"{path} is truncated or damaged ({size} bytes, expected {expected['bytes']}); "
                              "restore it or retrain")
        if _sha256(path) != expected["sha256"]:
            raise SeqlabError(f"{path} is damaged (its SHA-256 does not match the manifest); restore it or retrain")
    return manifest


def load_checkpoint(directory: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild config, task and model from a checkpoint directory (after verifying it), on ``device``
    (a device or its name: auto, cpu, cuda, cuda:N)."""
    device = resolve_device(device) if isinstance(device, str) else device
    directory = Path(directory)
    verify_checkpoint(directory)
    try:
        config = Config.from_dict(json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")),
                                  source=str(directory / CONFIG_FILE))
        cls = task_class(config.task.name)
        assets = {name: json.loads((directory / name).read_text(encoding="utf-8")) for name in cls.asset_files}
        task = cls(config, assets)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise SeqlabError(f"checkpoint {directory} has an unreadable config or task file ({error})") from None
    model = task.build_model()
    try:
        missing, unexpected = load_model(model, str(directory / MODEL_FILE), strict=False, device=str(device))
    except (SafetensorError, RuntimeError, OSError) as error:
        raise SeqlabError(f"{directory / MODEL_FILE} cannot be loaded ({error}); restore it or retrain") from None
    if missing or unexpected:
        raise SeqlabError(f"{directory / MODEL_FILE} does not fit its config.json "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    model.to(device)
    model.eval()
    return Checkpoint(directory=directory, config=config, model=model, task=task)


def load_trainer_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    directory = Path(directory)
    if not (directory / TRAINER_FILE).is_file():
        raise SeqlabError(f"checkpoint {directory} has no trainer state to resume from (it holds a model only)")
    try:
        state = json.loads((directory / TRAINER_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / TRAINER_TENSORS_FILE))
    except (ValueError, SafetensorError, OSError) as error:
        raise SeqlabError(f"the trainer state in {directory} cannot be read ({error}); restore it or retrain") from None
    return state, tensors
