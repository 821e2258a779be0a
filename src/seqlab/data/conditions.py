"""Conditions of a one-to-many model: labels in named groups (e.g. a tune's key and meter) -> one vector."""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import Tensor

from ..errors import SeqlabError


class ConditionVocabulary:
    """Labels in named groups -> a multi-hot vector c (C,), one slot per known label, the groups side by side.

    {"K": "D", "M": "6/8"} sets the slot of "D" among the keys and of "6/8"
    among the meters; a group given no label (None) leaves its slots at zero,
    which is how a model learns to do without it. The vocabulary keeps how many
    training examples carried each label.

    Args:
        groups: {group name: {label: count}}, in slot order.
    """

    def __init__(self, groups: dict[str, dict[str, int]]) -> None:
        self.groups = {name: dict(labels) for name, labels in groups.items()}
        self.slots: dict[tuple[str, str], int] = {}
        for name, labels in self.groups.items():
            for label in labels:
                self.slots[(name, label)] = len(self.slots)

    @classmethod
    def fit(cls, examples: list[dict[str, str | None]]) -> "ConditionVocabulary":
        """One slot per label seen in ``examples``, each group's labels sorted by name."""
        names = sorted({name for example in examples for name in example})
        counts = {name: Counter(example[name] for example in examples if example.get(name) is not None)
                  for name in names}
        return cls({name: dict(sorted(counts[name].items())) for name in names})

    @property
    def size(self) -> int:
        return len(self.slots)

    def encode(self, values: dict[str, str | None], *, strict: bool) -> Tensor:
        """{group: label or None} -> (C,) float32; an unknown group or label is refused if ``strict``, else left out."""
        vector = torch.zeros(self.size)
        for name, label in values.items():
            if label is None:
                continue
            if (name, label) in self.slots:
                vector[self.slots[(name, label)]] = 1.0
            elif strict:
                raise SeqlabError(self.unknown_message(name, label))
        return vector

    def unknown_message(self, name: str, label: str) -> str:
        if name not in self.groups:
            return f"unknown condition {name}:{label}; the conditions are {', '.join(self.groups)}"
        known = " ".join(self.groups[name])
        return f"unknown condition {name}:{label}; the model knows {name}: {known}"

    def parse(self, text: str) -> dict[str, str]:
        """"K:D M:6/8" -> {"K": "D", "M": "6/8"}: group:label pairs; a label runs to the next group's name
        ("K: G major M:3/4" -> {"K": "G major", "M": "3/4"})."""
        values: dict[str, str] = {}
        name = None
        for word in text.split():
            group, colon, rest = word.partition(":")
            if colon and group in self.groups:
                name = group
                values[name] = rest
            elif colon and group.isalpha():  # a group this vocabulary lacks
                raise SeqlabError(self.unknown_message(group, rest))
            elif name is None:
                example = " ".join(f"{group}:{next(iter(labels), 'x')}" for group, labels in self.groups.items())
                raise SeqlabError(f"condition {text!r} is not group:label pairs; write e.g. {example!r}")
            else:
                values[name] = f"{values[name]} {word}".strip()
        for name, label in values.items():
            if not label:
                raise SeqlabError(f"condition {name}: has no label; write e.g. {name}:{next(iter(self.groups[name]), 'x')}")
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"groups": self.groups}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ConditionVocabulary":
        return cls({name: {label: int(count) for label, count in labels.items()}
                    for name, labels in values["groups"].items()})
