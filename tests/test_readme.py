"""The README stays true: every command block runs (tests/readme_walkthrough.py), and the walk-through's rules hold."""
import pytest

import readme_walkthrough as walkthrough


def test_commands_are_read_from_every_block_with_continuations_and_comments():
    text = ("intro\n```sh\n.venv/bin/seqlab train --data a.txt \\\n  --out runs/a   # a comment\n\n# a note\n"
            ".venv/bin/seqlab sample runs/a --stop $'\\n\\n'\n```\n```python\nprint(1)\n```\n```\nnot run\n```\n")
    assert walkthrough.readme_commands(text) == [
        ("sh", ".venv/bin/seqlab train --data a.txt    --out runs/a   # a comment"),
        ("sh", ".venv/bin/seqlab sample runs/a --stop $'\\n\\n'"),
        ("python", "print(1)\n"),
    ]
    prepared = walkthrough.prepared(".venv/bin/seqlab train --data a.txt --out runs/a  # a comment")
    assert prepared.startswith(".venv/bin/seqlab train --data a.txt --out runs/a --max-steps 2 ")  # before, not in, the comment
    assert walkthrough.without_comment('seqlab sample x --prompt "a # b" # c') == 'seqlab sample x --prompt "a # b"'


def test_bash_splits_the_words_as_typed(tmp_path):
    assert walkthrough.bash_words("""sample runs/a --stop $'\\n\\n' --prompt "ROMEO: hi" # comment""", tmp_path) == [
        "sample", "runs/a", "--stop", "\n\n", "--prompt", "ROMEO: hi"]


def test_every_slow_rule_names_its_reason_and_only_slow_commands_are_left_out():
    for pattern, why in walkthrough.SLOW + walkthrough.NEVER:
        assert why.strip()
    assert walkthrough.left_out("make test   # the suite", everything=True)  # never, or it would run itself
    assert walkthrough.left_out(".venv/bin/seqlab experiment --list", everything=False) is None
    assert walkthrough.left_out(".venv/bin/seqlab experiment counting --out x", everything=False)
    assert walkthrough.left_out(".venv/bin/seqlab experiment counting --out x", everything=True) is None
    assert walkthrough.left_out(".venv/bin/seqlab train --data a.txt --out b", everything=False) is None


def test_a_failing_command_fails_the_walk_through(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```sh\n.venv/bin/seqlab experiment --list\n.venv/bin/seqlab train --out runs/x\n```\n"
                      "```python\nraise RuntimeError('boom')\n```\n", encoding="utf-8")
    (tmp_path / "work").mkdir()
    outcomes = walkthrough.walk(readme, tmp_path / "work", echo=lambda line: None)
    assert [outcome.failed for outcome in outcomes] == [False, True, True]
    assert outcomes[1].code == 2 and "no training data" in outcomes[1].output
    assert "Traceback" in outcomes[2].output and "boom" in outcomes[2].output


@pytest.mark.slow
def test_every_command_of_the_readme_runs(tmp_path, capsys):
    lines = []
    outcomes = walkthrough.walk(walkthrough.README, tmp_path, echo=lines.append)
    failed = [outcome for outcome in outcomes if outcome.failed]
    assert not failed, "\n".join(lines)
    assert sum(outcome.code is not None for outcome in outcomes) >= 20
