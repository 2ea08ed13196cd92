"""Each task mixer yields the proportions it promises over many draws."""

from __future__ import annotations

import hashlib
import json
import random
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


# --- balanced sampling (`classes`) ---------------------------------------------------------------------------------

SKEWED = [0] * 900 + [1] * 100  # 90/10 class split of a 1000-example task


def _stream(sampler: TaskBatchSampler, task: str, examples: int) -> list[int]:
    """The task's first `examples` drawn example indices (its stream of epochs)."""
    stream: list[int] = []
    while len(stream) < examples:
        drawn, indices = sampler.next_batch()
        if drawn == task:
            stream += indices
    return stream[:examples]


def test_balanced_epochs_draw_each_class_equally_repeating_the_small_one_and_subsampling_the_large_one():
    size = len(SKEWED)
    sampler = TaskBatchSampler({"a": size}, batch_size=10, seed=3, classes={"a": SKEWED})
    stream = _stream(sampler, "a", 4 * size)
    assert sum(SKEWED[i] == 1 for i in stream) / len(stream) == pytest.approx(0.5, abs=0.02)
    large_subsets = []
    for epoch in range(4):
        order = stream[epoch * size : (epoch + 1) * size]
        assert len(order) == size
        counts = Counter(order)
        small = {i: n for i, n in counts.items() if SKEWED[i] == 1}
        large = {i: n for i, n in counts.items() if SKEWED[i] == 0}
        assert sum(small.values()) == sum(large.values()) == size // 2, epoch
        assert set(small) == set(range(900, 1000)), "every small-class example in every epoch"
        assert set(small.values()) == {5}, "500 places over 100 examples: each exactly 5 times"
        assert len(large) == 500 and set(large.values()) == {1}, "large class subsampled without repeats"
        large_subsets.append(frozenset(large))
    assert len(set(large_subsets)) == 4, "the large class's subset differs per epoch"


def test_balanced_remainder_places_go_to_distinct_classes():
    labels = [0] * 50 + [1] * 30 + [2] * 20 + [3] * 3  # size 103 = 4 * 25 + 3
    sampler = TaskBatchSampler({"a": 103}, batch_size=103, seed=1, classes={"a": labels})
    for epoch in range(5):
        shares = sorted(Counter(labels[i] for i in sampler._epoch_order("a", epoch)).values())
        assert shares == [25, 26, 26, 26], epoch


def test_balanced_order_is_a_pure_function_of_seed_and_position():
    sizes = {"a": 1000, "b": 300}
    kw = dict(batch_size=16, classes={"a": SKEWED})
    a = TaskBatchSampler(sizes, seed=5, **kw)
    first = [a.next_batch() for _ in range(40)]  # "a" mid-epoch here
    assert 0 < a.consumed["a"] % 1000
    b = TaskBatchSampler(sizes, seed=5, **kw)
    b.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(150)] == [b.next_batch() for _ in range(150)]
    same = TaskBatchSampler(sizes, seed=5, **kw)
    assert [same.next_batch() for _ in range(40)] == first
    other = TaskBatchSampler(sizes, seed=6, **kw)
    assert [other.next_batch() for _ in range(40)] != first


def test_balanced_batches_are_still_grouped_by_length():
    size = len(SKEWED)
    lengths = [(i * 37) % 101 + 1 for i in range(size)]
    kw = dict(batch_size=32, seed=2, lengths={"a": lengths}, classes={"a": SKEWED}, pool_batches=10)
    grouped = TaskBatchSampler({"a": size}, **kw)
    random_batches = TaskBatchSampler({"a": size}, group_by_length=False, **kw)
    assert _padding_ratio(grouped, lengths, 60) < 1.15 < _padding_ratio(random_batches, lengths, 60)
    # size 1000 is no multiple of 32, so epochs start and end inside shared batches: check the whole stream.
    stream = _stream(TaskBatchSampler({"a": size}, **kw), "a", 3 * size)
    ungrouped = _stream(TaskBatchSampler({"a": size}, group_by_length=False, **kw), "a", 3 * size)
    for epoch in range(3):
        order = stream[epoch * size : (epoch + 1) * size]
        assert Counter(SKEWED[i] for i in order) == {0: 500, 1: 500}, epoch
        assert Counter(order) == Counter(ungrouped[epoch * size : (epoch + 1) * size]), "grouping keeps every copy"


def _old_grouped(sampler: TaskBatchSampler, task: str, epoch: int, order: list[int]) -> list[int]:
    """TaskBatchSampler._grouped as it was before balanced sampling (by value; loses repeated examples)."""
    size, batch = sampler.sizes[task], sampler.batch_size
    lengths = sampler.lengths[task]
    head = min((-epoch * size) % batch, size)
    tail = (size - head) % batch
    shortest = sorted(order, key=lambda i: lengths[i])[: head + tail]
    edge = set(shortest)
    middle = [i for i in order if i not in edge]
    rng = random.Random(f"{sampler.seed}:{task}:{epoch}:groups")
    span = sampler.pool_batches * batch
    grouped: list[int] = []
    for start in range(0, len(middle), span):
        pool = sorted(middle[start : start + span], key=lambda i: -lengths[i])
        batches = [pool[b : b + batch] for b in range(0, len(pool), batch)]
        rng.shuffle(batches)
        grouped += [i for b in batches for i in b]
    return shortest[:head] + grouped + shortest[head:]


@pytest.mark.parametrize("size, batch, pool", [(601, 32, 50), (400, 8, 5), (1000, 7, 3), (5, 8, 1)])
def test_grouped_on_a_permutation_equals_the_old_value_based_grouping(size, batch, pool):
    lengths = [(i * 29) % 17 + 1 for i in range(size)]  # many ties: stability matters
    sampler = TaskBatchSampler({"a": size}, batch_size=batch, seed=9, lengths={"a": lengths}, pool_batches=pool)
    for epoch in range(4):
        order = list(range(size))
        random.Random(f"perm:{epoch}").shuffle(order)
        assert sampler._grouped("a", epoch, order) == _old_grouped(sampler, "a", epoch, order), epoch


def _digest(batches: list) -> str:
    return hashlib.sha256(json.dumps(batches).encode()).hexdigest()


# Batches of the sampler before `classes` existed (git HEAD ecb7a5c), pinned so that unbalanced behaviour stays put.
GOLDEN = {
    False: "57b55a24611bed445ff35bf190aa0c644aaccaf97ef5a535f300b0ee01a89b78",
    True: "5d4999345020264f7aae7157bd73aed7e6870b59d6c5b99c68ec03891966e81a",
}


@pytest.mark.parametrize("with_lengths", [False, True])
def test_tasks_without_classes_draw_exactly_the_batches_of_before(with_lengths):
    sizes = {"big": 900, "medium": 90, "small": 13}
    lengths = {t: [(i * 13) % 50 + 1 for i in range(n)] for t, n in sizes.items()}
    kw = dict(lengths=lengths, pool_batches=4) if with_lengths else {}
    plain = TaskBatchSampler(sizes, batch_size=8, seed=7, **kw)
    before = [plain.next_batch() for _ in range(400)]
    assert _digest([list(b) for b in before]) == GOLDEN[with_lengths]
    labels = [i % 3 for i in range(90)]
    mixed = TaskBatchSampler(sizes, batch_size=8, seed=7, classes={"medium": labels}, **kw)
    after = [mixed.next_batch() for _ in range(400)]
    assert [t for t, _ in after] == [t for t, _ in before], "task choice does not depend on classes"
    assert [b for b in after if b[0] != "medium"] == [b for b in before if b[0] != "medium"]
    assert [b for b in after if b[0] == "medium"] != [b for b in before if b[0] == "medium"]


@pytest.mark.parametrize(
    "classes, message",
    [({"a": [0, 1, 0]}, "do not match"), ({"a": [0] * 10, "nope": [0]}, "unknown tasks"), ({"b": [1] * 11}, "do not match")],
)
def test_bad_classes_are_refused(classes, message):
    with pytest.raises(ValueError, match=message):
        TaskBatchSampler({"a": 10, "b": 5}, batch_size=4, classes=classes)
