"""Device names, training.device, the process line at the run start and the one-process `accelerate launch` trap."""

from __future__ import annotations

import pytest
import torch

from polyhead.cli.train import _check_launcher
from polyhead.devices import check_device_name, check_precision_on, resolve_device
from polyhead.errors import InputError
from polyhead.training.config import config_from_dict
from polyhead.training.processes import describe_processes


@pytest.mark.parametrize("name, expected", [("cpu", "cpu"), ("CUDA", "cuda"), (" cuda:1 ", "cuda:1"), (None, None)])
def test_device_names(name, expected):
    assert check_device_name(name) == expected


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "cpu:0", "mps", ""])
def test_bad_device_names_say_what_is_allowed(name):
    with pytest.raises(InputError, match="cpu, cuda or cuda:N"):
        check_device_name(name, "--device")


def test_training_device_is_validated_with_the_config():
    base = {"tasks": {"sentiment": {"data": "rotten_tomatoes:sentiment"}}}
    assert config_from_dict({**base, "training": {"device": "cpu"}}).training.device == "cpu"
    with pytest.raises(InputError, match="training.device"):
        config_from_dict({**base, "training": {"device": "gpu0"}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="the messages of a machine without a GPU")
def test_cuda_without_a_gpu_and_fp16_on_a_cpu_are_errors():
    assert resolve_device(None).type == "cpu" and resolve_device("cpu").type == "cpu"
    for name in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match="no usable CUDA GPU"):
            resolve_device(name, "training.device")
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        check_precision_on("fp16", "cpu")
    check_precision_on("bf16", "cpu")  # emulated on a CPU without bf16 hardware, but allowed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_devices_resolve_on_a_gpu():
    count = torch.cuda.device_count()
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(InputError, match=f"has {count} CUDA device"):
        resolve_device(f"cuda:{count}")
    check_precision_on("fp16", "cuda")


def test_the_run_start_line_names_processes_and_devices():
    assert describe_processes(["cpu"], None) == "training on 1 process: cpu"
    assert describe_processes(["cpu", "cpu"], "gloo") == "training on 2 processes: cpu, cpu (gloo)"
    assert describe_processes(["cuda:0", "cuda:1"], "nccl") == "training on 2 processes: cuda:0, cuda:1 (nccl)"


def test_accelerate_launch_that_starts_one_of_several_processes_is_refused():
    # What Accelerate's simple launcher sets for `--num_processes 2` without --multi_gpu: a port, no WORLD_SIZE.
    with pytest.raises(InputError, match="add --multi_gpu"):
        _check_launcher({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    _check_launcher({"ACCELERATE_USE_CPU": "True"})  # one process asked for
    _check_launcher({"ACCELERATE_USE_CPU": "True", "MASTER_PORT": "29500", "WORLD_SIZE": "2"})  # --multi_gpu / torchrun
    _check_launcher({"MASTER_PORT": "29500"})  # not launched by Accelerate
