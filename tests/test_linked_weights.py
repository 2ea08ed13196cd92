"""Unchanged weights written once: linking the earlier file, and tied tensors stored once."""

from __future__ import annotations

import os

import torch

from polyhead.linked_weights import LinkedWrites, load_tensors, save_tensors
from polyhead.modes import tensors_key


def test_tied_tensors_are_stored_once_and_loaded_under_every_name(tmp_path):
    shared = torch.arange(6.0).reshape(2, 3)
    tensors = {"embed": shared, "decoder": shared, "bias": torch.ones(3)}
    save_tensors(tensors, tmp_path / "w.safetensors")
    loaded = load_tensors(tmp_path / "w.safetensors", "cpu")
    assert set(loaded) == set(tensors) and all(torch.equal(loaded[n], tensors[n]) for n in tensors)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        assert sorted(handle.keys()) == ["bias", "embed"], "the tied copy is an alias, not a second tensor"


def test_a_file_is_linked_only_while_its_tensors_and_the_file_itself_are_unchanged(tmp_path):
    weight = torch.zeros(4)
    links, first = LinkedWrites(), tmp_path / "a.safetensors"
    save_tensors({"w": weight}, first)
    key = tensors_key([("w", weight)])
    links.record("frozen", key, first, {"bytes": first.stat().st_size})
    known = links.reuse("frozen", tensors_key([("w", weight)]), first, tmp_path / "b.safetensors")
    assert known is not None and known.entry == {"bytes": first.stat().st_size}
    assert os.stat(tmp_path / "b.safetensors").st_ino == first.stat().st_ino

    weight.add_(1)  # trained in place: the same storage, a new version
    assert links.reuse("frozen", tensors_key([("w", weight)]), first, tmp_path / "c.safetensors") is None
    assert links.reuse("frozen", key, first, tmp_path / "c.safetensors") is not None, "the recorded key still names that file"

    replaced = tmp_path / "d.safetensors"
    save_tensors({"w": torch.zeros(4)}, replaced)
    os.replace(replaced, first)  # another file under the recorded name
    assert links.reuse("frozen", key, first, tmp_path / "e.safetensors") is None
    assert links.reuse("other", key, first, tmp_path / "e.safetensors") is None and not (tmp_path / "e.safetensors").exists()


def test_a_model_saved_over_its_earlier_copy_links_an_unchanged_backbone(tmp_path, tiny_model_dir):
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    model = MultiTaskModel(SentenceEncoder(tiny_model_dir("bert"), device="cpu"), [TaskSpec("s", ["a", "b"], kind="classification")])
    target = tmp_path / "model"
    model.save(target)
    first = os.stat(target / "model.safetensors").st_ino
    config = (target / "config.json").read_text()
    model.save(target)  # a run's next best copy with the encoder frozen
    assert os.stat(target / "model.safetensors").st_ino == first and (target / "config.json").read_text() == config
    with torch.no_grad():
        next(model.encoder.backbone.parameters()).add_(1.0)
    model.save(target)
    assert os.stat(target / "model.safetensors").st_ino != first, "trained weights are written again"
    loaded = MultiTaskModel.load(target, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(loaded.encoder.backbone.parameters(), model.encoder.backbone.parameters()))
