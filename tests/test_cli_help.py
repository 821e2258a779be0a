"""`seqlab train --help` teaches every flag from the config's own declarations, and mistakes get the closest fix."""
import dataclasses
import inspect
import json
import typing

import pytest

from seqlab.cli import main
from seqlab.config import SECTIONS, Config, field_choices, flag_of
from seqlab.data.synthetic import SOURCE_OPTION_HELP, SOURCES, source_options
from seqlab.registry import BACKBONE_OPTION_HELP, backbone_names, backbone_options
from seqlab.tasks import TASKS

from helpers import run_bad, words_text


def help_text(capsys, monkeypatch, *arguments: str) -> str:
    """The help printed for ``seqlab train ARGUMENTS --help``, with the layout's line breaks undone."""
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert main(["train", *arguments, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def shown(value) -> str:
    """A value as typed on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return '""' if value == "" else str(value)


def config_fields():
    for section_name, section_class in SECTIONS.items():
        for item in dataclasses.fields(section_class):
            if item.name != "options":
                yield section_name, section_class, item


def test_every_config_field_declares_a_one_line_description():
    for section_name, _, item in config_fields():
        description = item.metadata.get("help")
        assert isinstance(description, str) and description.strip(), f"{section_name}.{item.name} has no help"
        assert "\n" not in description and len(description) < 160, f"{section_name}.{item.name}: one line, please"
        choices = item.metadata.get("choices", ())
        assert callable(choices) or isinstance(choices, tuple), f"{section_name}.{item.name}: choices must be a tuple"


def test_help_holds_every_fields_description_choices_and_default(capsys, monkeypatch):
    text = help_text(capsys, monkeypatch)
    defaults = Config()
    for section_name, section_class, item in config_fields():
        description = " ".join(item.metadata["help"].split())
        choices = field_choices(item)
        default = getattr(getattr(defaults, section_name), item.name)
        assert item.default is dataclasses.MISSING or item.default == default
        kind = typing.get_type_hints(section_class)[item.name].__name__.upper()
        minimum, below = item.metadata.get("minimum"), item.metadata.get("below")
        allowed = (f"choices: {', '.join(choices)}; " if choices else f"in [{minimum}, {below}); " if below is not None
                   else f">= {minimum}; " if minimum is not None else "")
        expected = f"--{flag_of(item)} {kind} {description} ({allowed}default: {shown(default)})"
        assert expected in text, expected
    # the registries' names are the task and backbone choices
    assert f"choices: {', '.join(sorted(TASKS))}; default: lm" in text
    assert f"choices: {', '.join(backbone_names())}; default: lstm" in text
    for section in ("task:", "model:", "data:", "train:"):
        assert section in text


def test_a_presets_values_are_the_defaults_shown(capsys, monkeypatch):
    text = help_text(capsys, monkeypatch, "--config", "shakespeare-lstm")
    assert "default: 512)" in text.split("--hidden-size INT")[1].split("--num-layers")[0]
    assert "default: stream)" in text.split("--batching STR")[1].split("--bucketing")[0]


@pytest.mark.parametrize("backbone", backbone_names())
def test_the_chosen_backbones_options_are_listed(capsys, monkeypatch, backbone):
    text = help_text(capsys, monkeypatch, "--backbone", backbone)
    options = {name: parameter for name, parameter in backbone_options(backbone).items()
               if name not in ("num_layers", "dropout")}
    assert f"options of --backbone {backbone}" in text
    for name, parameter in options.items():
        assert name in BACKBONE_OPTION_HELP, f"backbone option {name} of {backbone} has no help"
        flag = "--" + name.replace("_", "-")
        assert f"{flag} " in text and f"{BACKBONE_OPTION_HELP[name]} (default: {shown(parameter.default)})" in text
    others = {name for other in backbone_names() for name in backbone_options(other)} - set(backbone_options(backbone))
    for name in others:  # another backbone's options stay out of this one's help
        assert f"--{name.replace('_', '-')} " not in text


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_chosen_sources_options_are_listed(capsys, monkeypatch, source):
    text = help_text(capsys, monkeypatch, "--task", "synthetic", "--data", f"builtin:{source}")
    for name, parameter in source_options(source).items():
        assert name in SOURCE_OPTION_HELP, f"source option {name} of {source} has no help"
        assert f"--{name.replace('_', '-')} " in text
        assert f"{SOURCE_OPTION_HELP[name]} (default: {shown(parameter.default)})" in text


def test_the_chosen_tasks_own_fields_only(capsys, monkeypatch):
    everything = help_text(capsys, monkeypatch)
    classify = help_text(capsys, monkeypatch, "--task", "classify")
    assert "--horizon INT" in everything and "--pooling STR" in everything
    assert "--pooling STR" in classify and "--label-column STR" in classify
    assert "--horizon INT" not in classify and "--attention STR" not in classify
    assert "--hidden-size INT" in classify  # sections shared by every task stay



@pytest.mark.parametrize("arguments, suggestion", [
    (["trian"], "did you mean train?"),
    (["train", "--out", "OUT", "--max-step", "50"], "did you mean --max-steps?"),
    (["train", "--out", "OUT", "--hiden-size", "50"], "did you mean --hidden-size?"),
    (["train", "--out", "OUT", "--backbone", "transformer", "--num-head", "2"], "did you mean --num-heads?"),
    (["train", "--out", "OUT", "--task", "clasify"], "did you mean --task classify?"),
    (["train", "--out", "OUT", "--backbone", "lstn"], "did you mean --backbone lstm?"),
    (["train", "--out", "OUT", "--batching", "streams"], "did you mean --batching stream?"),
    (["train", "--out", "OUT", "--task", "classify", "--pooling", "maen"], "did you mean --pooling mean?"),
    (["train", "--out", "OUT", "--config", "shakespeare-lstm-fst"], "did you mean --config shakespeare-lstm-fast?"),
    (["train", "--out", "OUT", "--variant", "peepole"], "did you mean peephole?"),
    (["sample", "CHECKPOINT", "--max-tokns", "5"], "did you mean --max-tokens?"),
    (["experiment", "vanishing-gradient", "--out", "OUT"], "did you mean vanishing-gradients?"),
    (["experiment", "counting", "--preset", "quik", "--out", "OUT"], "did you mean --preset quick?"),
])
def test_mistakes_get_the_closest_match(tmp_path, capsys, arguments, suggestion):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    arguments = [str(tmp_path / "out") if word == "OUT" else word for word in arguments]
    if arguments[0] == "train":
        arguments += ["--data", str(data), "--max-steps", "1", "--threads", "1", "--quiet"]
    error = run_bad(capsys, arguments)
    assert suggestion in error
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_no_suggestion_when_nothing_is_close(tmp_path, capsys):
    error = run_bad(capsys, ["train", "--out", str(tmp_path / "out"), "--zzzz", "1"])
    assert "did you mean" not in error and "--variant" in error  # the backbone's options are listed instead


def test_a_config_files_misspelt_field_is_answered_with_the_field(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": {"max_step": 5}}), encoding="utf-8")
    error = run_bad(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "out")])
    assert "unknown field train.max_step; did you mean max_steps?" in error


def test_options_help_is_declared_once_for_options_that_exist():
    declared = {name for backbone in backbone_names() for name in backbone_options(backbone)}
    assert set(BACKBONE_OPTION_HELP) <= declared  # no help for an option nobody takes
    assert set(SOURCE_OPTION_HELP) <= {name for source in SOURCES for name in source_options(source)}
    assert all(isinstance(parameter, inspect.Parameter) for parameter in backbone_options("lstm").values())
