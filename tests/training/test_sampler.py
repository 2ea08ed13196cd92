"""Each task mixer yields the proportions it promises over many draws."""

from __future__ import annotations

from collections import Counter

import pytest

from polyhead.training.sampler import TaskBatchSampler, mixing_probabilities

SIZES = {"big": 9000, "medium": 900, "small": 100}


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("proportional", {"big": 0.9, "medium": 0.09, "small": 0.01}),
        ("temperature", {t: n**0.5 / sum(m**0.5 for m in SIZES.values()) for t, n in SIZES.items()}),
        ("uniform", {t: 1 / 3 for t in SIZES}),
        ("round_robin", {t: 1 / 3 for t in SIZES}),
    ],
)
def test_mixer_proportions(strategy, expected):
    sampler = TaskBatchSampler(SIZES, batch_size=4, strategy=strategy, temperature=2.0, seed=1)
    assert mixing_probabilities(SIZES, strategy, 2.0) == pytest.approx(expected)
    draws = Counter(sampler.next_batch()[0] for _ in range(20000))
    for task, share in expected.items():
        assert draws[task] / 20000 == pytest.approx(share, abs=0.01), (strategy, task)


def test_round_robin_is_exact_and_every_epoch_covers_each_example():
    sampler = TaskBatchSampler({"a": 10, "b": 6}, batch_size=2, strategy="round_robin", seed=3)
    tasks = [sampler.next_batch() for _ in range(6)]
    assert [t for t, _ in tasks] == ["a", "b"] * 3
    seen_b = [i for t, idx in tasks if t == "b" for i in idx]
    assert sorted(seen_b) == list(range(6))


def test_state_round_trip_continues_the_same_stream():
    a = TaskBatchSampler(SIZES, batch_size=8, seed=5)
    for _ in range(37):
        a.next_batch()
    b = TaskBatchSampler(SIZES, batch_size=8, seed=5)
    b.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(50)] == [b.next_batch() for _ in range(50)]
