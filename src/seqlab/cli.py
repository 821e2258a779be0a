"""The ``seqlab`` command: parses arguments and calls plain functions; no logic of its own.

Every bad input ends in one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
import typing
from typing import Any, NoReturn, Sequence

from rich_argparse import ArgumentDefaultsRichHelpFormatter, RichHelpFormatter

from .errors import SeqlabError, did_you_mean


class _HelpFormatter(RichHelpFormatter):
    """rich-argparse's layout; help texts are plain (a "[0, 1)" is not markup). `train`'s flags write their own
    defaults (a preset's, where one is given)."""

    help_markup = False
    text_markup = False
    group_name_formatter = str  # section titles as written ("task: the problem"), not Title Cased


class _DefaultsHelpFormatter(ArgumentDefaultsRichHelpFormatter, _HelpFormatter):
    """The other commands' layout: each flag's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False or action.default == ""
        return action.help if unset else super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


TRAIN_USAGE = "%(prog)s --out DIR [--config PRESET] [--data PATH] [--FLAG VALUE ...]"
TRAIN_DESCRIPTION = (
    "Train a model. Every config field is a flag, listed below by section with its default; the options of the "
    "chosen backbone (--backbone transformer --help), task (--task classify --help) and synthetic source "
    "(--task synthetic --data builtin:adding --help) are listed when they are chosen.")
SECTION_TITLES = {"task": "task: the problem", "model": "model: the network", "data": "data: what it reads",
                  "train": "train: the optimisation"}


def _train_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", allow_abbrev=False, add_help=False, help="train a model on a text file",
                                   usage=TRAIN_USAGE, description=TRAIN_DESCRIPTION, formatter_class=_HelpFormatter)
    _add_train_arguments(parser)
    return parser


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="where the model runs: auto (CUDA when there is one, else the CPU), cpu, cuda or cuda:N")


def _add_train_arguments(parser: argparse.ArgumentParser, defaults: Any = None, *, task: str | None = None) -> None:
    """The run's own flags, then every config field as a flag, grouped by section.

    ``defaults``, a Config, supplies the defaults shown (a preset's, a resumed run's); ``task`` shows only that
    task's own fields among the task section's.
    """
    from .config import SECTIONS, Config, field_choices, flag_of

    defaults = defaults or Config()
    run = parser.add_argument_group("run")
    run.add_argument("-h", "--help", action="store_true", help="show this help (with --backbone, --task, --data: "
                     "their own options too) and exit")
    run.add_argument("--config", help="a preset name (see configs/) or a JSON config file")
    run.add_argument("--out", help="checkpoint directory (latest at its top, best in best/); required")
    run.add_argument("--resume", action="store_true",
                     help="continue the checkpoint in --out exactly; a larger --max-steps or --max-seconds extends it")
    run.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    for section, section_class in SECTIONS.items():
        group = parser.add_argument_group(SECTION_TITLES[section])
        task_groups: dict[tuple[str, ...], Any] = {}
        for item in dataclasses.fields(section_class):
            if item.name == "options":
                continue
            tasks = item.metadata.get("tasks")
            if tasks and task is not None and task not in tasks:
                continue
            if tasks:
                title = f"{section} options of --task {', '.join(tasks)}"
                owner = task_groups.setdefault(tasks, parser.add_argument_group(title))
            else:
                owner = group
            kind = typing.get_type_hints(section_class)[item.name]
            owner.add_argument(f"--{flag_of(item)}", dest=f"{section}.{item.name}", default=argparse.SUPPRESS,
                               metavar=kind.__name__.upper(),
                               help=_described(item.metadata["help"], getattr(getattr(defaults, section), item.name),
                                               field_choices(item), _range(item.metadata)))


def _described(description: str, default: Any, choices: Sequence[str] = (), allowed: str = "") -> str:
    """A flag's help: its description, its allowed values and its default, as typed on the command line."""
    shown = "true" if default is True else "false" if default is False else "null" if default is None else (
        '""' if default == "" else str(default))
    allowed = f"choices: {', '.join(choices)}; " if choices else f"{allowed}; " if allowed else ""
    return f"{description} ({allowed}default: {shown})"


def _range(metadata: Any) -> str:
    """A numeric field's declared range, as the help shows it: ">= 1", "in [0, 1)"."""
    if metadata.get("below") is not None:
        return f"in [{metadata['minimum']}, {metadata['below']})"
    return f">= {metadata['minimum']}" if metadata.get("minimum") is not None else ""


def _backbone_flags(backbone: str) -> dict[str, inspect.Parameter]:
    """The backbone's own options that are flags (num_layers and dropout are config fields)."""
    from .registry import backbone_options

    options = backbone_options(backbone)  # an unknown backbone is an OptionError
    return {name: parameter for name, parameter in options.items() if name not in ("num_layers", "dropout")}


def _source_flags(config: Any) -> tuple[str | None, dict[str, inspect.Parameter]]:
    """The synthetic source a config names (or None) and its options."""
    from .data.synthetic import source_name, source_options

    source = source_name(config.data.path) if config.task.name == "synthetic" else None
    return source, source_options(source) if source else {}


def _base_config(arguments: argparse.Namespace, *, with_flags: bool = True):
    """The task's defaults <- checkpoint (with --resume) or --config <- config-field flags."""
    from .config import Config, load_config_file, parse_flag_value
    from .tasks import TASKS
    from .train.checkpoint import CONFIG_FILE, readable_directory, verify_checkpoint

    config = Config()
    if arguments.resume:
        if not arguments.out:
            raise SeqlabError("--resume needs --out DIR, the checkpoint directory to continue")
        verify_checkpoint(arguments.out)
        with open(readable_directory(arguments.out) / CONFIG_FILE, encoding="utf-8") as handle:
            config.update(json.load(handle), source=f"{arguments.out}/{CONFIG_FILE}")
    else:
        values = load_config_file(arguments.config) if arguments.config else {}
        source = arguments.config or "config"
        task_name = getattr(arguments, "task.name", None) or Config.from_dict(values, source=source).task.name
        if task_name in TASKS:  # an unknown name is refused, with suggestions, by validate()
            config = Config.for_task(task_name)
        config.update(values, source=source)
    if with_flags:
        if arguments.resume and {"train.max_steps", "train.max_seconds"} & set(vars(arguments)):
            config.train.max_steps, config.train.max_seconds = 0, 0.0  # a new budget replaces the checkpoint's
        for key, text in vars(arguments).items():
            if "." in key:
                section, name = key.split(".")
                setattr(getattr(config, section), name, parse_flag_value(section, name, text))
        _check_task_flags(arguments, config)
    return config


def _check_task_flags(arguments: argparse.Namespace, config: Any) -> None:
    """Refuse a flag of another task than the run's (``--word-vectors`` with ``--task lm``): it would do nothing."""
    from .config import flag_of

    for key in vars(arguments):
        if "." not in key:
            continue
        section, name = key.split(".")
        item = next(item for item in dataclasses.fields(getattr(config, section)) if item.name == name)
        tasks = item.metadata.get("tasks")
        if tasks and config.task.name not in tasks:
            raise SeqlabError(f"--{flag_of(item)} is an option of --task {' or '.join(tasks)}, and this run is "
                              f"--task {config.task.name}; drop the flag, or pass --task {tasks[0]}")


def _build_config(arguments: argparse.Namespace, extra: list[str]):
    """Defaults <- checkpoint (with --resume) or --config <- flags <- backbone and source options."""
    from .config import flag_names, parse_option_value

    config = _base_config(arguments)
    known_options = _backbone_flags(config.model.backbone)
    source, known_source_options = _source_flags(config)
    index = 0
    while index < len(extra):
        flag = extra[index]
        name = flag[2:].replace("-", "_") if flag.startswith("--") else ""
        backbone_option = name in known_options
        if not backbone_option and name not in known_source_options:
            options = [*known_options, *known_source_options]
            takes = f"backbone {config.model.backbone!r} takes " + ", ".join(
                "--" + option.replace("_", "-") for option in sorted(known_options))
            if source:
                takes += f"; source {source!r} takes " + ", ".join(
                    "--" + option.replace("_", "-") for option in sorted(known_source_options))
            everything = [*flag_names(), *(option.replace("_", "-") for option in options), *_RUN_FLAGS]
            suggestion = did_you_mean(flag.lstrip("-"), everything, prefix="--")
            if suggestion:
                raise SeqlabError(f"unknown option {flag}{suggestion} (seqlab train --help lists every flag)")
            raise SeqlabError(f"unknown option {flag}; {takes}, and every config field is a flag (seqlab train --help)")
        if index + 1 >= len(extra):
            raise SeqlabError(f"{flag} needs a value")
        options = config.model.options if backbone_option else config.data.options
        options[name] = parse_option_value(extra[index + 1])
        index += 2
    return config


_RUN_FLAGS = ("help", "config", "out", "resume", "overwrite", "quiet")


def _print_train_help(arguments: argparse.Namespace) -> None:
    """`seqlab train --help`: every flag, and the chosen backbone's, task's and source's own options."""
    from .data.synthetic import BUILTIN_PREFIX, SOURCE_OPTION_HELP, SOURCES
    from .registry import BACKBONE_OPTION_HELP

    defaults = _base_config(arguments, with_flags=False)
    chosen = _base_config(arguments)
    task = chosen.task.name if hasattr(arguments, "task.name") or arguments.config or arguments.resume else None
    parser = _Parser(prog="seqlab train", allow_abbrev=False, add_help=False, usage=TRAIN_USAGE,
                     description=TRAIN_DESCRIPTION, formatter_class=_HelpFormatter)
    _add_train_arguments(parser, defaults, task=task)
    backbone = chosen.model.backbone
    flags = _backbone_flags(backbone)
    group = parser.add_argument_group(f"options of --backbone {backbone}", None if flags else "(it has none)")
    for name, parameter in flags.items():
        group.add_argument(f"--{name.replace('_', '-')}", metavar=_option_kind(parameter),
                           help=_described(BACKBONE_OPTION_HELP[name], chosen.model.options.get(name, parameter.default)))
    source, source_options = _source_flags(chosen)
    if source:
        group = parser.add_argument_group(f"options of --data {BUILTIN_PREFIX}{source}")
        for name, parameter in source_options.items():
            group.add_argument(f"--{name.replace('_', '-')}", metavar=_option_kind(parameter),
                               help=_described(SOURCE_OPTION_HELP[name], chosen.data.options.get(name, parameter.default)))
    elif chosen.task.name == "synthetic":
        parser.epilog = ("synthetic sources (--data builtin:NAME, then --help for its options): "
                         + ", ".join(sorted(SOURCES)))
    parser.print_help()


def _option_kind(parameter: inspect.Parameter) -> str:
    """An option's metavar from its annotation: 'int | None' -> INT."""
    return str(parameter.annotation).split("|")[0].strip().upper() or "VALUE"


def _command_train(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .data.hints import task_hint
    from .train.trainer import train

    if arguments.help:
        _print_train_help(arguments)
        return
    if not arguments.out:
        raise SeqlabError("give --out DIR, the directory for the checkpoints (seqlab train --help lists every flag)")
    config = _build_config(arguments, extra)
    config.validate()  # a bad config is refused in one line, before any note
    hint = task_hint(config.data.path) if config.task.name == "lm" and not arguments.resume else None
    if hint and not arguments.quiet:
        print(hint, file=sys.stderr)
    train(config, arguments.out, resume=arguments.resume, overwrite=arguments.overwrite, quiet=arguments.quiet)


def _command_prepare(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .config import parse_flag_value
    from .data.prepared import cpu_count, prepare_corpus

    if arguments.vocab_size < 0 or arguments.workers < 0:
        raise SeqlabError("--vocab-size and --workers must be zero or more")
    if arguments.min_count < 1:
        raise SeqlabError(f"--min-count must be at least 1, got {arguments.min_count}")
    prepare_corpus(arguments.data, out=arguments.out, tokenizer_kind=arguments.tokenizer,
                   vocab_size=arguments.vocab_size, val_fraction=arguments.val_fraction, unknown=arguments.unknown,
                   min_count=arguments.min_count, lowercase=parse_flag_value("data", "lowercase", arguments.lowercase),
                   words_only=parse_flag_value("task", "words_only", arguments.words_only),
                   strict=arguments.strict, workers=arguments.workers or cpu_count(), quiet=arguments.quiet,
                   encoding=arguments.encoding)


def _command_sample(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .generate import check_sampling, generate_batch
    from .train.checkpoint import load_checkpoint

    check_sampling(max_tokens=arguments.max_tokens, temperature=arguments.temperature, top_k=arguments.top_k,
                   top_p=arguments.top_p, num_samples=arguments.num_samples)
    checkpoint = load_checkpoint(arguments.checkpoint, device=arguments.device)
    state = None
    if arguments.condition is not None:
        state = checkpoint.task.condition_state(checkpoint.model, arguments.condition)
    steps = generate_batch(checkpoint.model, checkpoint.tokenizer, arguments.prompt,
                           num_samples=arguments.num_samples, max_tokens=arguments.max_tokens,
                           temperature=arguments.temperature, top_k=arguments.top_k, top_p=arguments.top_p,
                           seed=arguments.seed, stop=arguments.stop, state=state)
    # sample 0 streams; each later one is printed whole once it and those before it are done
    texts = [arguments.prompt] * arguments.num_samples
    printed = 0
    sys.stdout.write(arguments.prompt)
    for step in steps:
        texts = [text + piece for text, piece in zip(texts, step.texts)]
        if printed == 0:
            sys.stdout.write(step.texts[0])
            printed += step.finished[0]
        while 0 < printed < arguments.num_samples and step.finished[printed]:
            sys.stdout.write("\n\n" + texts[printed])
            printed += 1
        sys.stdout.flush()
    for text in texts[max(printed, 1):]:  # max_tokens 0: nothing was generated
        sys.stdout.write("\n\n" + text)
    sys.stdout.write("\n")


def _command_export(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .export.onnx import export_onnx

    out = export_onnx(arguments.checkpoint, arguments.out)
    print(f"wrote {out}: forward.onnx, step.onnx, the fresh state, tokenizer.json, seqlab-onnx.json", file=sys.stderr)


def _command_serve(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .serve.app import serve

    serve(arguments.checkpoint, port=arguments.port)


def _command_eval(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(arguments.checkpoint, arguments.data, split=arguments.split,
                                  beam_size=arguments.beam_size, device=arguments.device, encoding=arguments.encoding)
    data = metrics["data"] if arguments.json else metrics.pop("data")
    split = metrics.get("split", arguments.split)  # a task may measure another split (classify: a new file, all)
    measured = f"all of the {split} split" if split != "all" else "all of it"
    if arguments.json:
        print(json.dumps(metrics))
        print(f"{data}: {measured}", file=sys.stderr)
    else:
        verdict = metrics.pop("verdict", None)  # a task's one-line comparison with its baselines
        tables = {name: value for name, value in metrics.items() if isinstance(value, dict)}  # e.g. per column
        shown = ", ".join(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                          for name, value in metrics.items() if name not in tables)
        print(f"{data} ({measured}): {shown}")
        for name, table in tables.items():
            for key, value in table.items():
                print(f"  {name} {key}: " + (", ".join(f"{inner} {number:.4f}" for inner, number in value.items())
                                             if isinstance(value, dict) else str(value)))
        if verdict:
            print(verdict)


def _command_predict(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .train.checkpoint import load_checkpoint

    from .decode import use_beam_size
    from .evaluate import data_to_read, use_encoding

    checkpoint = load_checkpoint(arguments.checkpoint, device=arguments.device)
    use_beam_size(checkpoint, arguments.beam_size)
    inputs, file = list(arguments.inputs), arguments.file
    if not inputs and not file and not checkpoint.task.goes_on_from_its_data:
        raise SeqlabError("give inputs to predict on the command line or with --file FILE")
    if inputs or file:
        use_encoding(checkpoint, arguments.encoding)
    else:  # a forecaster: what comes after the series it was trained on
        file = data_to_read(checkpoint, arguments.checkpoint, None, arguments.encoding, "--file")
    if file:
        inputs += checkpoint.task.read_inputs(file)
    predictions = checkpoint.task.predict(checkpoint.model, inputs)
    header = checkpoint.task.prediction_header(predictions)
    if header is not None and not arguments.json:
        print(header)
    for prediction in predictions:
        print(json.dumps(prediction) if arguments.json else prediction)
    for path in checkpoint.task.draw(checkpoint.model, inputs):
        print(f"plot: {path}", file=sys.stderr)


def _command_align(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .diagnostics.alignment import write_alignment

    result, figure, numbers = write_alignment(arguments.checkpoint, arguments.text, arguments.out,
                                              beam_size=arguments.beam_size, device=arguments.device)
    print(result.text)
    print(f"alignment: {figure} and {numbers}", file=sys.stderr)


def _command_demo(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .demo import run_demo

    run_demo(arguments.out, seconds=arguments.seconds, tunes=arguments.tunes)


def _command_music(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .music import make_music

    report = make_music(arguments.checkpoint, tunes=arguments.tunes, out=arguments.out, condition=arguments.condition,
                        write_header=arguments.write_header,
                        midi=arguments.midi, wav=arguments.wav, temperature=arguments.temperature,
                        top_k=arguments.top_k, top_p=arguments.top_p, max_tokens=arguments.max_tokens,
                        seed=arguments.seed, device=arguments.device)
    if arguments.out is None:
        for number, tune in enumerate(report.tunes, start=1):
            print(f"X:{number}\n{tune}\n")
    for skipped in report.skipped:
        print(skipped, file=sys.stderr)
    print(report.summary() + (f"; {len(report.files)} files in {arguments.out}" if arguments.out else ""),
          file=sys.stderr)


def _command_diagnose(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .diagnostics import diagnose, parse_analyses

    what = None if arguments.what is None else parse_analyses(arguments.what)
    print(diagnose(arguments.checkpoint, arguments.data, out=arguments.out, length=arguments.length,
                   offset=arguments.offset, what=what, device=arguments.device, encoding=arguments.encoding).render())


def _command_experiment(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .experiments import EXPERIMENTS, run_experiment
    from .experiments.base import TABLE_FILE, check_experiment

    if arguments.list:
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:24} {experiment.title}")
        return
    if not arguments.name:
        raise SeqlabError("name an experiment (seqlab experiment --list shows them), or 'all'")
    if arguments.out is None:
        raise SeqlabError("give --out DIR for the experiment's figures, table and JSON")
    names = list(EXPERIMENTS) if arguments.name == "all" else [arguments.name]
    for name in names:
        check_experiment(name, arguments.preset, arguments.device, arguments.data)
    for name in names:
        out = f"{arguments.out}/{name}" if arguments.name == "all" else arguments.out
        record = run_experiment(name, preset=arguments.preset, out_dir=out, device=arguments.device,
                                data=arguments.data)
        print(open(f"{out}/{TABLE_FILE}", encoding="utf-8").read())
        if arguments.name == "all":
            print(f"({record['seconds']} s; written to {out})\n")


def _command_report(arguments: argparse.Namespace, extra: list[str]) -> None:
    from .experiments.report import build_report

    print(build_report(arguments.directory))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="seqlab", allow_abbrev=False, description="Sequence models from the vanilla RNN to the Transformer.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.set_defaults(commands=subparsers.choices)
    _train_parser(subparsers).set_defaults(handler=_command_train)

    prepare = subparsers.add_parser("prepare", help="tokenize a corpus of any size once, for train and eval "
                                    "--data DIR", description="Tokenize text files into a folder of memory-mapped "
                                    "tokens, tokenizer.json and manifest.json; train and eval read it with --data DIR.")
    prepare.add_argument("--data", nargs="+", required=True, help="text files, folders (searched recursively), globs")
    prepare.add_argument("--out", required=True, help="the folder to write; it appears only when complete")
    prepare.add_argument("--tokenizer", choices=("char", "word", "bpe"), default="char", help="fitted on the training part")
    prepare.add_argument("--vocab-size", type=int, default=0, help="word and bpe: 0 is their default (10,000; 1,024)")
    prepare.add_argument("--val-fraction", type=float, default=0.1,
                         help="held out by documents (for one file: its last part); 0: no validation")
    prepare.add_argument("--unknown", choices=("unk", "error"), default="unk",
                         help="characters or words the training part lacks: <unk>, or refuse")
    prepare.add_argument("--min-count", type=int, default=1,
                         help="char and word: pieces seen fewer times in the training part become <unk>")
    prepare.add_argument("--lowercase", default="false", metavar="BOOL", help="case-fold the text before tokenizing")
    prepare.add_argument("--words-only", default="false", metavar="BOOL",
                         help="word: white space is not a token (the classify task's default reading)")
    prepare.add_argument("--encoding", default="utf-8", help="the files' text encoding: utf-8, or e.g. cp1252, latin-1")
    prepare.add_argument("--strict", action="store_true", help="refuse files that are not text (default: skip them)")
    prepare.add_argument("--workers", type=int, default=0, help="processes that read and encode; 0: one per core")
    prepare.add_argument("--quiet", action="store_true", help="print nothing but errors and skipped files")
    prepare.set_defaults(handler=_command_prepare)

    sample = subparsers.add_parser("sample", help="generate text from a checkpoint, streaming")
    sample.add_argument("checkpoint", help="checkpoint directory")
    sample.add_argument("--prompt", default="", help="text to start from")
    sample.add_argument("--max-tokens", type=int, default=500, help="tokens to generate at most")
    sample.add_argument("--temperature", type=float, default=1.0, help="0 is greedy")
    sample.add_argument("--top-k", type=int, default=0, help="0: off")
    sample.add_argument("--top-p", type=float, default=1.0, help="1: off")
    sample.add_argument("--seed", type=int, default=None,
                        help="sample i of --num-samples uses seed + i (without one: a fresh draw)")
    sample.add_argument("--num-samples", type=int, default=1,
                        help="N samples through one batched step, each with its own stop; joined by a blank line")
    sample.add_argument("--stop", default=None, help="end where the text first contains this string")
    sample.add_argument("--condition", default=None,
                        help='start from a condition, for conditioned checkpoints (music: "K:D M:6/8")')
    _add_device(sample)
    sample.set_defaults(handler=_command_sample)

    export = subparsers.add_parser("export", help="export a language model's forward and step as ONNX graphs")
    export.add_argument("checkpoint", help="checkpoint directory")
    export.add_argument("--format", choices=("onnx",), default="onnx", help="onnx (needs the export extra)")
    export.add_argument("--out", required=True, help="directory for the graphs, state, tokenizer and seqlab-onnx.json")
    export.set_defaults(handler=_command_export)

    serve = subparsers.add_parser("serve", help="a local web page to sample from a checkpoint and look inside it")
    serve.add_argument("checkpoint", help="checkpoint directory (a language model)")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    serve.set_defaults(handler=_command_serve)

    evaluate = subparsers.add_parser("eval", help="a checkpoint's metrics on the held-out part of its data or another "
                                     "file, beside its task's baselines")
    evaluate.add_argument("checkpoint", help="checkpoint directory")
    evaluate.add_argument("--data", default=None, help="a text file, a folder or a prepared corpus, split as in "
                          "training (default: the data it was trained on)")
    evaluate.add_argument("--split", choices=("val", "train", "all"), default="val",
                          help="which part of the file, split as in training")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--beam-size", type=int, default=None, help="seq2seq: decode with this beam (1: greedy)")
    evaluate.add_argument("--encoding", default=None, help="the file's text encoding (default utf-8; e.g. cp1252)")
    _add_device(evaluate)
    evaluate.set_defaults(handler=_command_eval)

    predict = subparsers.add_parser("predict", help="predict labels or values with a trained checkpoint")
    predict.add_argument("checkpoint", help="checkpoint directory")
    predict.add_argument("inputs", nargs="*", help="inputs, e.g. sentences to classify")
    predict.add_argument("--file", help="a file of inputs: one per line, or laid out like the training data (a "
                         "forecaster's default: the series it was trained on)")
    predict.add_argument("--json", action="store_true", help="one JSON value per line")
    predict.add_argument("--beam-size", type=int, default=None, help="seq2seq: decode with this beam (1: greedy)")
    predict.add_argument("--encoding", default=None, help="the file's text encoding (default utf-8; e.g. cp1252)")
    _add_device(predict)
    predict.set_defaults(handler=_command_predict)

    align = subparsers.add_parser("align", help="seq2seq: decode one input and draw its attention alignment")
    align.add_argument("checkpoint", help="a seq2seq checkpoint directory")
    align.add_argument("text", help="the source text, e.g. \"3 March 2017\"")
    align.add_argument("--out", default="align.png", help="the figure (.png, .pdf, .svg); its weights go beside it as .json")
    align.add_argument("--beam-size", type=int, default=None, help="decode with this beam (1: greedy)")
    _add_device(align)
    align.set_defaults(handler=_command_align)

    demo = subparsers.add_parser("demo", help="train a character LSTM on folk tunes shipped with music21, then play")
    demo.add_argument("--out", default="runs/demo", help="where the tunes, the checkpoint and its metrics go")
    demo.add_argument("--seconds", type=float, default=120.0, help="training time")
    demo.add_argument("--tunes", type=int, default=3, help="tunes to generate")
    demo.set_defaults(handler=_command_demo)

    music = subparsers.add_parser("music", help="generate tunes from a music checkpoint, check them with music21, "
                                  "export MIDI and WAV")
    music.add_argument("checkpoint", help="checkpoint directory (trained with --task music)")
    music.add_argument("--tunes", type=int, default=10, help="how many tunes")
    music.add_argument("--condition", default="", help='key and/or meter, e.g. "K:D M:6/8" (default: the model\'s choice)')
    music.add_argument("--out", default=None, help="write tune-001.abc, ... here (default: print the tunes)")
    music.add_argument("--midi", action="store_true", help="also write a .mid per tune that parses (needs --out)")
    music.add_argument("--write-header", action="store_true",
                       help="write the asked M:/K: lines for the model (default: it writes them from its conditioned state)")
    music.add_argument("--wav", action="store_true", help="also render .wav with timidity or fluidsynth (needs --out)")
    music.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    music.add_argument("--top-k", type=int, default=0, help="0: off")
    music.add_argument("--top-p", type=float, default=1.0, help="1: off")
    music.add_argument("--max-tokens", type=int, default=1500, help="the longest tune, in tokens")
    music.add_argument("--seed", type=int, default=0, help="tune n uses seed + n")
    _add_device(music)
    music.set_defaults(handler=_command_music)

    diagnose = subparsers.add_parser("diagnose", help="look inside a checkpoint: gradient flow, Jacobians, gates, "
                                     "attention maps, state trajectories")
    diagnose.add_argument("checkpoint", help="checkpoint directory")
    diagnose.add_argument("--data", required=True, help="the text file to read")
    diagnose.add_argument("--encoding", default=None, help="the file's text encoding (default utf-8; e.g. cp1252)")
    diagnose.add_argument("--out", default=None, help="where to write figures and JSON (default CHECKPOINT/diagnostics)")
    diagnose.add_argument("--length", type=int, default=100, help="tokens to read, T")
    diagnose.add_argument("--offset", type=int, default=None,
                          help="start at this token of the whole text (default: the start of the validation part)")
    diagnose.add_argument("--what", default=None,
                          help="comma-separated: gradients,jacobians,gates,attention,trajectories (default: all that apply)")
    _add_device(diagnose)
    diagnose.set_defaults(handler=_command_diagnose)

    experiment = subparsers.add_parser("experiment", help="reproduce a classic claim: figures, a table and JSON")
    experiment.add_argument("name", nargs="?", help="the experiment (see --list), or 'all'")
    experiment.add_argument("--list", action="store_true", help="name every experiment")
    experiment.add_argument("--preset", default="quick",
                            help="smoke (seconds: checks the wiring only), quick (at most 5 minutes on 2 cores) or "
                                 "full (at most 45 minutes, closer to the papers)")
    experiment.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N): where the models train")
    experiment.add_argument("--out", default=None, help="directory for the figures, table.md and result.json")
    experiment.add_argument("--data", default=None,
                            help="your data instead of the builtin, for experiments that read it (sentiment-trajectory: "
                                 "a TSV of sentence TAB label)")
    experiment.set_defaults(handler=_command_experiment)

    report = subparsers.add_parser("report", help="gather the experiment results under DIR into DIR/report.html")
    report.add_argument("directory", help="the --out directory of seqlab experiment (results are searched below it)")
    report.set_defaults(handler=_command_report)
    return parser


def _check_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """An unknown command answered with the closest one (argparse lists them all, without a suggestion)."""
    commands = parser.get_default("commands")
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        parser.error(f"unknown command {argv[0]!r}; the commands are {', '.join(commands)}"
                     f"{did_you_mean(argv[0], commands)}")


def _unrecognised(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> NoReturn:
    """Flags a command does not take, each with the closest one it does."""
    subparser = parser.get_default("commands")[command]
    flags = [flag for flag in subparser._option_string_actions if flag.startswith("--")]
    first = next((word for word in extra if word.startswith("-")), extra[0])
    subparser.error(f"unrecognized arguments: {' '.join(extra)}{did_you_mean(first, flags)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_command_line(parser, argv)
    arguments, extra = parser.parse_known_args(argv)
    if extra and arguments.command != "train":
        _unrecognised(parser, arguments.command, extra)
    try:
        arguments.handler(arguments, extra)
    except SeqlabError as error:
        print(f"seqlab: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("seqlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
