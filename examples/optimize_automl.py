"""AutoML by code search, llm_optimize's second example: x is the scikit-learn code
that trains a classifier on the digits; each candidate runs in a child process
(``promptlog.optimize.run_python``: a timeout or a crash is scored, not fatal) and is
scored by its accuracy on held-out digits. Needs scikit-learn.

    python examples/optimize_automl.py          # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/optimize_automl.py

run_python is no sandbox: the code the model writes runs with your rights.
"""

from __future__ import annotations

import os

import promptlog

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")

X0 = """\
from sklearn import svm

clf = svm.SVC(C=1.0, gamma=0.01)
clf.fit(X_train, y_train)"""

# Runs in the child before the candidate (the data) and after it (the score).
SETUP = """\
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
data = digits.images.reshape((len(digits.images), -1))
X_train, X_test, y_train, y_test = train_test_split(
    data, digits.target, test_size=0.5, shuffle=False)
"""
SCORE = "\nscore = float(clf.score(X_test, y_test))\n"

TASK = """\
You are given scikit-learn code that trains a classifier of 8x8 digit images, as x.
Vary the model, its arguments and the preprocessing to make it generalise better.

Rules:
* The code must set `clf` to a fitted scikit-learn estimator.
* X_train (899 rows of 64 pixel values, 0-16) and y_train are given.
* Use scikit-learn only (no pip install), and do not compute the test score."""

QUESTION = "What is the next x to try, such that the test score increases?"


def accuracy(code: str) -> tuple[float, str]:
    outputs = promptlog.optimize.run_python(SETUP + code + SCORE, outputs=["score"],
                                            timeout=60)  # fmt: skip
    return outputs["score"], f"Test set score = {outputs['score']:.4f}"


if __name__ == "__main__":
    result = promptlog.optimize(
        accuracy, X0, task=TASK, question=QUESTION, model_name=MODEL,
        max_steps=3, stop_score=1.0, name="automl-digits",
    )  # fmt: skip
    print(result.history[["step", "score", "error"]].to_string(index=False))
    print(f"best test score {result.best_score:.4f} ({result.stopped}) with:\n{result.best_x}")
