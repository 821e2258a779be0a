"""Checkpoint directories: JSON + safetensors, no pickle anywhere.

    DIR/config.json          the run's Config; rebuilds the model by registry names
    DIR/model.safetensors    weights
    DIR/tokenizer.json, ...  the task's assets (vocabulary, labels, scalers): JSON
    DIR/trainer.json         step, schedule clock, best validation loss, optimizer hyper-parameters
    DIR/trainer.safetensors  optimizer moments, RNG states, data position, carried state
    DIR/checkpoint.json      the manifest: every file's size and SHA-256, written last

At every instant DIR holds one complete checkpoint, the previous or the new
one, whatever kills the writer when (see ``save_checkpoint``): the new files
are written and fsynced in a staging folder, which is renamed to
``DIR/.incoming`` in one step once whole; readers take the checkpoint from
``.incoming`` while it exists, and the writer then places its files at the
top, the manifest last, before removing it. A reader never trusts a file
that does not match its manifest.

A training run holds ``DIR/train.lock`` (an advisory ``flock`` naming its
process) so that two runs never write one directory; the kernel drops the
lock when its process dies, so a killed run's lock is taken over.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn

from ..config import Config
from ..errors import SeqlabError
from ..manifest import file_entries, verify_files
from ..registry import task_class
from .distributed import resolve_device

MANIFEST = "checkpoint.json"
FORMAT = "seqlab-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.json"
TRAINER_TENSORS_FILE = "trainer.safetensors"
LOCK_FILE = "train.lock"
INCOMING = ".incoming"  # a complete new checkpoint, being placed at the top
STAGING_PREFIX = ".staging-"  # + the writer's process id: a checkpoint being written
RETIRED_PREFIX = ".retired-"  # + the writer's process id: a placed .incoming, being removed
# The fault campaign (benchmarks/fault_campaign.py) sets these to land kills inside saves and to see where they landed.
PAUSE_VARIABLE = "SEQLAB_CHECKPOINT_PAUSE"  # seconds to sleep at every stage of a save
TRACE_VARIABLE = "SEQLAB_CHECKPOINT_TRACE"  # a file that gets one line per stage reached
READ_ATTEMPTS = 5  # a reader starts again this often when saves replace the checkpoint under it


@dataclass
class Checkpoint:
    directory: Path
    config: Config
    model: nn.Module
    task: Any  # the Task rebuilt from its assets

    @property
    def tokenizer(self) -> Any:
        return self.task.tokenizer


def reach_stage(stage: str) -> None:
    """A named point of a save (see ``PAUSE_VARIABLE``); tests replace this to fail a save at each stage."""
    trace = os.environ.get(TRACE_VARIABLE)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{time.time():.6f} {os.getpid()} {stage}\n")
    pause = float(os.environ.get(PAUSE_VARIABLE) or 0)
    if pause:
        time.sleep(pause)


def _fsync_directory(directory: Path) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _written(path: Path) -> None:
    """A file is on disk before the next stage: fsync it, then report the stage."""
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
    reach_stage(f"wrote {path.name}")


def _write_json(path: Path, value: Any, *, indent: int | None = 2) -> None:
    path.write_text(json.dumps(value, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    _written(path)


def readable_directory(directory: str | Path) -> Path:
    """Where a checkpoint's files are read: ``.incoming`` while a save is placing it (or was killed placing it)."""
    incoming = Path(directory) / INCOMING
    return incoming if (incoming / MANIFEST).is_file() else Path(directory)


def is_checkpoint(directory: str | Path) -> bool:
    return (readable_directory(directory) / MANIFEST).is_file()


def _manifest_files(path: Path) -> set[str]:
    """The file names a manifest lists; none if it is absent or unreadable (it is about to be replaced)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return set()
    files = manifest.get("files") if isinstance(manifest, dict) else None
    return set(files) if isinstance(files, dict) else set()


def _place(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target`` in one step: a hard link (a copy where links are refused), then a rename."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
            raise
        shutil.copyfile(source, temporary)
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
    os.replace(temporary, target)


def _place_incoming(directory: Path) -> None:
    """Put the complete checkpoint in ``directory/.incoming`` at the top of ``directory``, the manifest last, then remove it."""
    incoming = directory / INCOMING
    new_files = sorted(path.name for path in incoming.iterdir() if path.name != MANIFEST)
    old_files = _manifest_files(directory / MANIFEST)
    for name in new_files:
        _place(incoming / name, directory / name)
        reach_stage(f"placed {name}")
    _fsync_directory(directory)
    _place(incoming / MANIFEST, directory / MANIFEST)
    for name in old_files - set(new_files):  # e.g. a model-only checkpoint must not keep a stale trainer state
        (directory / name).unlink(missing_ok=True)
    _fsync_directory(directory)
    reach_stage(f"placed {MANIFEST}")
    retired = directory / f"{RETIRED_PREFIX}{os.getpid()}"
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(incoming, retired)  # one step, so a reader never sees a half-removed .incoming
    _fsync_directory(directory)
    reach_stage("retired .incoming")
    shutil.rmtree(retired)


def _process_alive(process_id: int) -> bool:
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def recover_checkpoint(directory: str | Path) -> None:
    """Finish what a killed save left: place a complete ``.incoming``; remove the partial files of dead writers."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    if (directory / INCOMING / MANIFEST).is_file():
        _place_incoming(directory)
    for path in directory.iterdir():
        writer = path.name.removeprefix(STAGING_PREFIX).removeprefix(RETIRED_PREFIX)
        leftover = path.name != writer or (path.name.startswith(".") and path.name.endswith(".tmp"))
        if path.name != writer and writer.isdigit() and _process_alive(int(writer)) and int(writer) != os.getpid():
            continue  # another live process's save (without the lock: a model-only save elsewhere)
        if leftover:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _check_finite(tensors: dict[str, Tensor], what: str) -> None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SeqlabError(f"{what} {name} holds a non-finite value, so no checkpoint was written; "
                              "the previous checkpoint is kept (lower --learning-rate or clip with --clip-norm)")


def save_checkpoint(directory: str | Path, *, config: Config, model: nn.Module, assets: dict[str, Any],
                    trainer_state: dict[str, Any] | None = None, trainer_tensors: dict[str, Tensor] | None = None) -> None:
    """Write a whole checkpoint into ``directory`` (created if needed), replacing the one there.

    1. Every file, then the manifest, is written and fsynced in ``.staging-PID``. A failed write
       (a full disk) removes that folder and raises a SeqlabError: the previous checkpoint is untouched.
    2. The staging folder is renamed to ``.incoming``: the commit. From here readers take the new checkpoint.
    3. ``.incoming``'s files replace those at the top one by one, the manifest last; then it is removed.
    A kill at any point leaves a complete checkpoint: before 2 the previous one, after it the new one, which
    ``recover_checkpoint`` (run by the next training run on the directory) finishes placing.
    Non-finite weights or optimizer moments are refused: a checkpoint is always one worth resuming.
    """
    directory = Path(directory)
    trainer_tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in (trainer_tensors or {}).items()}
    _check_finite(dict(model.state_dict()), "the model's weight")
    _check_finite(trainer_tensors, "the trainer's tensor")
    staging = directory / f"{STAGING_PREFIX}{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        recover_checkpoint(directory)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        reach_stage("staging")
        _write_json(staging / CONFIG_FILE, config.to_dict())
        save_model(model, str(staging / MODEL_FILE), metadata={"format": "pt"})
        _written(staging / MODEL_FILE)
        for name, value in assets.items():
            _write_json(staging / name, value, indent=None)
        if trainer_state is not None:
            _write_json(staging / TRAINER_FILE, trainer_state)
            save_file(trainer_tensors, str(staging / TRAINER_TENSORS_FILE))
            _written(staging / TRAINER_TENSORS_FILE)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "files": file_entries(sorted(staging.iterdir())),
        }
        _write_json(staging / MANIFEST, manifest)
        _fsync_directory(staging)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise SeqlabError(f"cannot write a checkpoint in {directory} ({error.strerror or error}); the previous "
                          "checkpoint there is intact; free some space (or fix the disk) and continue with --resume") from None
    try:
        os.replace(staging, directory / INCOMING)
        _fsync_directory(directory)
        reach_stage("committed")
        _place_incoming(directory)
    except OSError as error:
        raise SeqlabError(f"the new checkpoint is complete in {directory / INCOMING} but could not be moved into "
                          f"place ({error.strerror or error}); it is read from there, and --resume finishes moving it") from None


@dataclass
class DirectoryLock:
    """An exclusive ``flock`` on ``DIR/train.lock``, which names the holding process; ``release`` when done."""

    path: Path
    descriptor: int
    taken_over_from: int | None  # the process id of a dead run whose lock file was left behind

    def release(self) -> None:
        self.path.unlink(missing_ok=True)  # while still locked, so no other run locks the file being removed
        os.close(self.descriptor)


def lock_directory(directory: str | Path) -> DirectoryLock:
    """Hold ``directory`` for one training run; refuse, naming the holder, while another live run holds it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(descriptor)
            raise SeqlabError(f"--out {directory} is in use by another training run (process {holder}); wait for it "
                              "to finish, stop it, or give another --out") from None
        try:
            same_file = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(descriptor)  # its holder removed it as we opened it: lock the new one
    previous = os.read(descriptor, 64).decode("ascii", "replace").strip()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
    os.fsync(descriptor)
    return DirectoryLock(path, descriptor, int(previous) if previous.isdigit() else None)


def _valid_manifest(manifest: Any) -> bool:
    """The shape ``save_checkpoint`` writes: format, version, and {name: {"bytes": int, "sha256": str}}."""
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT and isinstance(manifest.get("files"), dict)):
        return False
    return all(isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and isinstance(entry.get("sha256"), str)
               and name == Path(name).name for name, entry in manifest["files"].items())


def verify_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Check the manifest and every file against it (in ``.incoming`` while a save places it); return the manifest."""
    directory = Path(directory)
    if not directory.exists():
        if (directory.parent / MANIFEST).is_file():  # RUN/best of a run that kept none
            raise SeqlabError(f"checkpoint directory {directory} does not exist: the run in {directory.parent} kept no "
                              f"{directory.name}/ (a run keeps its best checkpoint only from its validations; with "
                              f"--val-fraction 0 there are none); use {directory.parent}, its latest checkpoint")
        raise SeqlabError(f"checkpoint directory {directory} does not exist")
    if not directory.is_dir():
        raise SeqlabError(f"{directory} is a file, not a checkpoint directory")
    files_directory = readable_directory(directory)
    manifest_path = files_directory / MANIFEST
    if not manifest_path.is_file():
        raise SeqlabError(f"{directory} is not a seqlab checkpoint (it has no {MANIFEST}); "
                          "point at a directory written by 'seqlab train --out'")
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    except OSError as error:
        raise SeqlabError(f"cannot read {manifest_path} ({error.strerror})") from None
    if not _valid_manifest(manifest):
        raise SeqlabError(f"{manifest_path} is damaged; restore the checkpoint or retrain")
    if manifest["version"] != FORMAT_VERSION:
        raise SeqlabError(f"{directory} is a version {manifest['version']} checkpoint; this seqlab reads version "
                          f"{FORMAT_VERSION}: use the seqlab that wrote it")
    verify_files(files_directory, manifest["files"], what=f"checkpoint {directory}", remedy="restore it or retrain")
    return manifest


def _generation(directory: Path) -> tuple[tuple[int, int] | None, ...]:
    """Identifies the checkpoint a directory holds: a save replaces its manifest (a new inode) or adds ``.incoming``."""
    marks = []
    for path in (directory / MANIFEST, directory / INCOMING / MANIFEST):
        try:
            status = path.stat()
        except FileNotFoundError:
            marks.append(None)
        else:
            marks.append((status.st_ino, status.st_mtime_ns))
    return tuple(marks)


def load_checkpoint(directory: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild config, task and model from a checkpoint directory (after verifying it), on ``device``
    (a device or its name: auto, cpu, cuda, cuda:N).

    A save that replaces the checkpoint while it is being read (a trainer writing the directory
    that ``sample`` reads) shows as files that vanish or no longer match: the read starts again,
    from the new checkpoint. Past verification every file is byte for byte what ``save_checkpoint``
    wrote, so a failure to rebuild from them is a bug in seqlab and shows as one.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    directory = Path(directory)
    for _ in range(READ_ATTEMPTS - 1):
        generation = _generation(directory)
        try:
            return _load_checkpoint(directory, device)
        except (SeqlabError, FileNotFoundError):
            if _generation(directory) == generation:  # nothing replaced it: the error is the checkpoint's own
                raise
    return _load_checkpoint(directory, device)


def _load_checkpoint(directory: Path, device: str | torch.device) -> Checkpoint:
    manifest = verify_checkpoint(directory)
    files_directory = readable_directory(directory)
    config = Config.from_dict(json.loads((files_directory / CONFIG_FILE).read_text(encoding="utf-8")),
                              source=str(directory / CONFIG_FILE))
    cls = task_class(config.task.name)
    for name in (CONFIG_FILE, MODEL_FILE, *cls.asset_files):
        if name not in manifest["files"]:
            raise SeqlabError(f"checkpoint {directory} lacks {name}; restore it or retrain")
    assets = {name: json.loads((files_directory / name).read_text(encoding="utf-8")) for name in cls.asset_files}
    task = cls(config, assets)
    model = task.build_model()
    missing, unexpected = load_model(model, str(files_directory / MODEL_FILE), strict=False, device=str(device))
    if missing or unexpected:
        raise SeqlabError(f"{directory / MODEL_FILE} does not fit its config.json "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    model.to(device)
    model.eval()
    return Checkpoint(directory=directory, config=config, model=model, task=task)


def load_trainer_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The trainer's JSON state and tensors of a (verified) checkpoint."""
    directory = Path(directory)
    manifest = verify_checkpoint(directory)
    if not {TRAINER_FILE, TRAINER_TENSORS_FILE} <= set(manifest["files"]):
        raise SeqlabError(f"checkpoint {directory} has no trainer state to resume from (it holds a model only)")
    files_directory = readable_directory(directory)
    state = json.loads((files_directory / TRAINER_FILE).read_text(encoding="utf-8"))
    return state, load_file(str(files_directory / TRAINER_TENSORS_FILE))
