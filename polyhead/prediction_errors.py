"""What a model got wrong: the misclassified examples of a split, most confident first.

Metrics say how often a model is wrong; these rows say where, which is what one reads next
(a mislabelled example, a class that needs more data). An example is wrong when its answer's
`label` differs from the true one, so every kind that answers one label per text takes part
and kinds whose answer has no single label (values, label sets, pairs) are left out, without
this module naming any kind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class PredictionError:
    """One misclassified example."""

    task: str
    index: int
    """Position of the example in the evaluated split (0-based, after any --max-examples cut)."""
    text: str
    true_label: str
    predicted_label: str
    confidence: float
    """The probability the model gave its (wrong) label: high means confidently wrong."""
    true_label_probability: float | None
    """The probability it gave the right label, where the answer lists every class's."""

    def to_dict(self) -> dict:
        return asdict(self)


def find_errors(model, task_data: dict, split: str, batch_size: int = 64, outputs: dict | None = None) -> list[PredictionError]:
    """Every misclassified example of `split`, over all tasks, the most confident mistakes first.

    `outputs`: the answers evaluation already computed (`task_outputs`), so the split is encoded once.
    """
    from .training.evaluation import task_outputs

    if outputs is None:
        outputs = task_outputs(model, task_data, split, batch_size)
    errors: list[PredictionError] = []
    for name, values in outputs.items():
        spec, data = model.tasks[name], task_data[name]
        if spec.task_kind.text_columns != 1:
            continue
        kind, texts = spec.task_kind, data.columns(split)[0]
        truths = kind.names(data.targets[split], spec.labels)
        for index, (text, row, truth) in enumerate(zip(texts, values, truths)):
            answer = kind.answer([float(v) for v in row], spec)
            if "label" not in answer:
                break  # this kind does not answer one label per text
            if answer["label"] != truth:
                probabilities = answer.get("probabilities") or {}
                errors.append(PredictionError(name, index, text, str(truth), str(answer["label"]),
                                              float(answer.get("probability", float("nan"))), probabilities.get(truth)))
    errors.sort(key=lambda e: -e.confidence)
    return errors


def worst_lines(errors: list[PredictionError], per_task: int = 3, width: int = 70) -> list[str]:
    """The most confident mistakes of each task, one line each, for a report."""
    lines: list[str] = []
    for task in dict.fromkeys(e.task for e in errors):
        for error in [e for e in errors if e.task == task][:per_task]:
            text = error.text if len(error.text) <= width else error.text[: width - 1] + "…"
            lines.append(f"  {task}: {text!r}  true {error.true_label}, predicted {error.predicted_label} ({error.confidence:.2f})")
    return lines


def write_errors(path: Path, errors: list[PredictionError]) -> None:
    """The errors as a table (.csv/.jsonl/.parquet, written atomically); with no errors, still a file that names its columns."""
    from .prediction_table import table_writer

    with table_writer(path, [f.name for f in fields(PredictionError)]) as writer:
        writer.write([e.to_dict() for e in errors])
