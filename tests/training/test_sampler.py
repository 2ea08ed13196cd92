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


def _real_lengths(dataset: str) -> list[int]:
    from polyhead.encoder import SentenceEncoder
    from polyhead.training.config import TaskConfig
    from polyhead.training.data import load_task_data

    data = load_task_data("t", TaskConfig(data=dataset))
    tokenizer = SentenceEncoder(max_seq_length=128).text_tokenizer
    return tokenizer.tokenize(data.texts["train"]).lengths.tolist()


def _padding_ratio(sampler: TaskBatchSampler, lengths: list[int], draws: int) -> float:
    padded = real = 0
    for _ in range(draws):
        _, indices = sampler.next_batch()
        batch = [lengths[i] for i in indices]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return padded / real


def test_grouped_batches_cut_the_padding_of_real_jeopardy_batches():
    lengths = _real_lengths("jeopardy")
    sizes = {"topic": len(lengths)}
    random_batches = TaskBatchSampler(sizes, batch_size=32, seed=0, lengths={"topic": lengths}, group_by_length=False)
    grouped = TaskBatchSampler(sizes, batch_size=32, seed=0, lengths={"topic": lengths})
    random_ratio, grouped_ratio = _padding_ratio(random_batches, lengths, 200), _padding_ratio(grouped, lengths, 200)
    assert random_ratio > 1.8, random_ratio
    assert grouped_ratio < 1.1, grouped_ratio


def test_grouped_batches_cover_each_example_once_per_epoch_and_are_not_sorted_overall():
    size, lengths = 400, [(i * 37) % 101 + 1 for i in range(400)]
    sampler = TaskBatchSampler({"a": size}, batch_size=8, seed=2, lengths={"a": lengths}, pool_batches=5)
    batches = [sampler.next_batch()[1] for _ in range(size // 8)]
    assert sorted(i for b in batches for i in b) == list(range(size))
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True), "batch order must be shuffled"
    for b in batches:  # within a batch, lengths are close (8 random lengths span ~78 of 101 on average)
        assert max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 55


def test_grouped_batches_are_deterministic_and_resume_exactly():
    lengths = {t: [(i * 13) % 50 + 1 for i in range(n)] for t, n in SIZES.items()}
    a = TaskBatchSampler(SIZES, batch_size=8, seed=5, lengths=lengths)
    first = [a.next_batch() for _ in range(300)]
    b = TaskBatchSampler(SIZES, batch_size=8, seed=5, lengths=lengths)
    assert [b.next_batch() for _ in range(300)] == first
    c = TaskBatchSampler(SIZES, batch_size=8, seed=5, lengths=lengths)
    c.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(100)] == [c.next_batch() for _ in range(100)]
    other_seed = TaskBatchSampler(SIZES, batch_size=8, seed=6, lengths=lengths)
    assert [other_seed.next_batch() for _ in range(300)] != first


def test_grouped_epochs_cover_every_example_exactly_once_even_when_a_pool_is_larger_than_the_task():
    size, lengths = 601, [(i * 29) % 97 + 1 for i in range(601)]
    sampler = TaskBatchSampler({"a": size}, batch_size=32, seed=4, lengths={"a": lengths}, pool_batches=50)
    stream = [i for _ in range(3 * size // 32 + 1) for i in sampler.next_batch()[1]]
    for epoch in range(3):
        assert sorted(stream[epoch * size : (epoch + 1) * size]) == list(range(size)), epoch
    batches = [stream[b : b + 32] for b in range(0, len(stream) - 32, 32)]
    spread = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread[len(spread) // 2] <= 10, "most batches hold texts of similar length"


def test_fixed_shares_take_their_probability_and_the_other_tasks_share_the_rest():
    from polyhead.training.sampler import steps_per_epoch

    sizes = {"new": 600, "old_a": 300, "old_b": 100}
    probabilities = mixing_probabilities(sizes, "proportional", shares={"old_a": 0.2, "old_b": 0.1})
    assert probabilities == pytest.approx({"new": 0.7, "old_a": 0.2, "old_b": 0.1})
    sampler = TaskBatchSampler(sizes, batch_size=4, strategy="round_robin", seed=0, shares={"old_a": 0.2, "old_b": 0.1})
    drawn = [sampler.next_batch()[0] for _ in range(3000)]
    assert drawn.count("old_a") / 3000 == pytest.approx(0.2, abs=0.03)
    # An epoch is one pass over the tasks without a fixed share; the rehearsed batches come on top.
    assert steps_per_epoch(sizes, 10, {"old_a": 0.2, "old_b": 0.1}) == pytest.approx(600 / 10 / 0.7)
    assert steps_per_epoch(sizes, 10) == pytest.approx(100)
