"""The classical baseline every classifier is reported beside: TF-IDF + logistic regression (scikit-learn)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


class BagOfWords:
    r"""scikit-learn's ``TfidfVectorizer`` and ``LogisticRegression``, both with their default settings.

    A text becomes x = l2-normalise(tf(w) * idf(w)) over the words of the
    training texts (lower-cased, two or more word characters), with
    idf(w) = ln((1 + N) / (1 + df(w))) + 1; then p(c | x) = softmax(W x + b) with
    W, b fitted by L-BFGS under an L2 penalty (C = 1). It is fitted on exactly
    the rows the network trains on and saved as JSON (vocabulary, idf,
    coefficients) inside the checkpoint, so ``eval`` scores the same model on
    any file without the training data.

    Args:
        vectorizer: a fitted ``TfidfVectorizer``.
        classifier: a fitted ``LogisticRegression`` whose classes are class ids.
    """

    def __init__(self, vectorizer: Any, classifier: Any) -> None:
        self.vectorizer = vectorizer
        self.classifier = classifier

    @classmethod
    def fit(cls, texts: list[str], targets: Tensor) -> "BagOfWords | None":
        """texts and their (N,) class ids -> the fitted baseline; None when no text holds a word it reads
        (e.g. texts of single letters or symbols: there is no bag of words to fit)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer()
        analyse = vectorizer.build_analyzer()
        if not any(analyse(text) for text in texts):
            return None
        features = vectorizer.fit_transform(texts)  # (N, V) sparse
        classifier = LogisticRegression(max_iter=1000).fit(features, targets.numpy())
        return cls(vectorizer, classifier)

    def predict(self, texts: list[str]) -> Tensor:
        """texts -> (N,) int64 predicted class ids."""
        return torch.from_numpy(self.classifier.predict(self.vectorizer.transform(texts)).astype(np.int64))

    def probabilities(self, texts: list[str]) -> Tensor:
        """texts -> (N, C) float64 class probabilities, columns in class-id order."""
        return torch.from_numpy(self.classifier.predict_proba(self.vectorizer.transform(texts)))

    def to_dict(self) -> dict[str, Any]:
        return {"vocabulary": {word: int(index) for word, index in self.vectorizer.vocabulary_.items()},
                "idf": self.vectorizer.idf_.tolist(), "coefficients": self.classifier.coef_.tolist(),
                "intercepts": self.classifier.intercept_.tolist(), "classes": self.classifier.classes_.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BagOfWords":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(vocabulary=values["vocabulary"])
        vectorizer.idf_ = np.array(values["idf"], dtype=np.float64)
        classifier = LogisticRegression()
        classifier.coef_ = np.array(values["coefficients"], dtype=np.float64)
        classifier.intercept_ = np.array(values["intercepts"], dtype=np.float64)
        classifier.classes_ = np.array(values["classes"], dtype=np.int64)
        return cls(vectorizer, classifier)
