"""`train_speed.py`'s verdict per setup: medians, the speed ratio against its target, and accuracy against seed noise."""

from __future__ import annotations

import statistics
from typing import Any

from machine_figures import print_table

ACCURACY_TOLERANCE_PT = 0.5
"""polyhead's mean test accuracy may be at most this many points under the plain loop's."""


def summarise(setup: Any, rounds: list[dict[str, Any]], peaks: dict[str, float], train_flops_per_token: float,
              plain_precisions: tuple[str, ...] = ("fp32",)) -> dict:
    """Medians, the ratio, PASS/FAIL and accuracy statistics of one setup (`plain_precisions`: the peaks the anchor is
    compared with: fp32 on a CPU; on a GPU, where the anchor may be the bf16 loop, both)."""
    summary: dict = {"sides": {}, "tasks": {}}
    for side in ("plain", "polyhead"):
        runs = [r[side] for r in rounds]
        figures = {
            "examples_per_s": statistics.median(r.examples_per_s for r in runs),
            "tokens_per_s": statistics.median(r.tokens_per_s for r in runs),
            "seconds": statistics.median(r.seconds for r in runs),
            "wall_s": statistics.median(r.wall_s for r in runs),
            "examples": statistics.median(r.examples for r in runs),
        }
        if setup.frozen_layers == 0:  # 6N FLOPs/token holds only when every layer trains
            precisions = ("fp32", "bf16") if side == "polyhead" else plain_precisions
            figures["peak_share"] = {p: figures["tokens_per_s"] * train_flops_per_token / peaks[p] for p in precisions}
        summary["sides"][side] = figures
    ratios = [r["polyhead"].examples_per_s / r["plain"].examples_per_s for r in rounds]
    summary["ratios"], summary["ratio"] = ratios, statistics.median(ratios)
    with_validation = [r["polyhead"].examples / r["polyhead"].with_validation_s / r["plain"].examples_per_s
                       for r in rounds if r["polyhead"].with_validation_s]
    summary["ratio_with_final_validation"] = statistics.median(with_validation) if with_validation else None
    summary["target"], summary["passed"] = setup.target, summary["ratio"] >= setup.target
    for task in rounds[0]["plain"].tasks:
        entry = {side: {metric: mean_std([r[side].tasks[task][metric] for r in rounds]) for metric in ("accuracy", "macro_f1")}
                 for side in ("plain", "polyhead")}
        difference = 100 * (entry["polyhead"]["accuracy"]["mean"] - entry["plain"]["accuracy"]["mean"])
        entry["accuracy_difference_pt"] = difference
        entry["within_tolerance"] = difference >= -ACCURACY_TOLERANCE_PT
        # Seed noise of the difference of two means over len(rounds) seeds each.
        stds = [entry[side]["accuracy"]["std"] for side in ("plain", "polyhead")]
        entry["difference_standard_error_pt"] = 100 * (sum(sd**2 for sd in stds) / len(rounds)) ** 0.5
        entry["beyond_noise"] = len(rounds) > 1 and abs(difference) > 2 * entry["difference_standard_error_pt"]
        summary["tasks"][task] = entry
    return summary


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def print_summary(setup: Any, summary: dict) -> None:
    sides = summary["sides"]
    peak_columns = "peak_share" in sides["plain"]
    header = ["side", "examples/s", "tokens/s", "train s", "whole run s"] + (["% fp32 peak", "% bf16 peak"] if peak_columns else [])
    rows = [header]
    for side, figures in sides.items():
        row = [side, f"{figures['examples_per_s']:.1f}", f"{figures['tokens_per_s']:.0f}"]
        row += [f"{figures['seconds']:.1f}", f"{figures['wall_s']:.1f}"]
        if peak_columns:
            shares = figures["peak_share"]
            row += [f"{shares['fp32']:.1%}", f"{shares['bf16']:.1%}" if "bf16" in shares else "-"]
        rows.append(row)
    print()
    print_table(rows)
    verdict = "PASS" if summary["passed"] else "FAIL"
    print(f"ratio polyhead / plain (median of per-round ratios): {summary['ratio']:.2f}x; target >= {setup.target:g}x: {verdict}")
    with_validation = summary["ratio_with_final_validation"]
    if with_validation is not None:
        print(f"  (with polyhead's final validation, checkpoint and best-model save counted too: {with_validation:.2f}x)")
    rows = [["task", "side", "accuracy", "macro-F1"]]
    for task, entry in summary["tasks"].items():
        for side in ("plain", "polyhead"):
            rows.append([task, side, _pm(entry[side]["accuracy"]), _pm(entry[side]["macro_f1"])])
    print()
    print_table(rows)
    for task, entry in summary["tasks"].items():
        tolerance = ACCURACY_TOLERANCE_PT
        note = f"within {tolerance} pt or better" if entry["within_tolerance"] else f"lower by more than {tolerance} pt"
        noise = entry["difference_standard_error_pt"]
        verdict = "beyond" if entry["beyond_noise"] else "within"
        print(f"{task}: accuracy polyhead - plain = {entry['accuracy_difference_pt']:+.2f} pt ({note}); "
              f"standard error of the difference {noise:.2f} pt, so the gap is {verdict} seed noise (2 standard errors)")


def _pm(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4f} +- {stats['std']:.4f}"
