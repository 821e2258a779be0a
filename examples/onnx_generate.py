"""Greedy text generation from a model exported by ``seqlab export CKPT --format onnx --out DIR``.

Needs numpy and onnxruntime only (and the ``tokenizers`` library for a BPE
tokenizer); neither torch nor seqlab. Prints the same text as
``seqlab sample CKPT --prompt TEXT --max-tokens N --temperature 0``:

    python examples/onnx_generate.py DIR --prompt "ROMEO:" --max-tokens 200

The prompt runs through forward.onnx in one call; every new token then costs
one call of step.onnx, with the state the previous call gave.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime

WORD_PATTERN = re.compile(r"\w+|\s+|[^\w\s]")  # seqlab's word tokenizer: words, runs of space, single marks
UNKNOWN_TEXT = "\ufffd"


class Tokenizer:
    """Text <-> ids for the three kinds of tokenizer.json that seqlab writes (char, word, bpe)."""

    def __init__(self, values: dict) -> None:
        self.kind = values["kind"]
        if self.kind == "bpe":
            from tokenizers import Tokenizer as ByteLevelBPE

            self.bpe = ByteLevelBPE.from_str(values["tokenizer"])
            return
        if self.kind == "char":
            self.pieces = ([UNKNOWN_TEXT] if values["unknown"] == "unk" else []) + values["characters"]
        else:
            self.pieces = [UNKNOWN_TEXT, *values["pieces"]]
        first = 1 if self.kind == "word" or values["unknown"] == "unk" else 0
        self.ids = {piece: index for index, piece in enumerate(self.pieces) if index >= first}
        self.refuse_unknown = values["unknown"] == "error"

    def encode(self, text: str) -> list[int]:
        if self.kind == "bpe":
            return self.bpe.encode(text).ids
        pieces = list(text) if self.kind == "char" else WORD_PATTERN.findall(text)
        unknown = [piece for piece in pieces if piece not in self.ids]
        if unknown and self.refuse_unknown:
            sys.exit(f"onnx_generate: the prompt has text the model never saw: {unknown[:5]}")
        return [self.ids.get(piece, 0) for piece in pieces]

    def decode(self, ids: list[int]) -> str:
        if self.kind == "bpe":
            return self.bpe.decode(ids)
        return "".join(self.pieces[index] for index in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="the directory seqlab export wrote")
    parser.add_argument("--prompt", default="")
    parser.add_argument("--max-tokens", type=int, default=200)
    arguments = parser.parse_args()
    directory = Path(arguments.directory)
    manifest = json.loads((directory / "seqlab-onnx.json").read_text(encoding="utf-8"))
    tokenizer = Tokenizer(json.loads((directory / manifest["tokenizer"]["file"]).read_text(encoding="utf-8")))
    forward = onnxruntime.InferenceSession(str(directory / manifest["forward"]["file"]))
    step = onnxruntime.InferenceSession(str(directory / manifest["step"]["file"]))
    state = [np.load(directory / entry["initial"]) for entry in manifest["state"]]  # batch 1, as exported
    names = [entry["name"] for entry in manifest["state"]]

    prompt = tokenizer.encode(arguments.prompt) if arguments.prompt else manifest["empty_prompt"]
    logits, *state = forward.run(None, {"tokens": np.array([prompt], dtype=np.int64), **dict(zip(names, state))})
    logits = logits[:, -1]  # (1, V): the distribution after the prompt
    generated: list[int] = []
    for position in range(arguments.max_tokens):
        if position:
            logits, *state = step.run(None, {"token": np.array(generated[-1:], dtype=np.int64), **dict(zip(names, state))})
        generated.append(int(np.argmax(logits[0])))
    print(arguments.prompt + tokenizer.decode(generated))


if __name__ == "__main__":
    main()
