"""sentence-transformers in a process of its own, encoding on command: the anchor of encode_speed.py.

polyhead changes process-wide settings when it encodes on a CPU (glibc's malloc thresholds,
see polyhead/inference/allocator.py). Run in the benchmark's own process, the anchor would
get them too and would no longer be sentence-transformers as its users run it. Here it runs
as shipped, or with `--tune-allocator` with polyhead's allocator setting, to show that share.

Protocol (one line per command on stdin, one line of answer on stdout):
    warm          -> "ok"        encode the first 64 texts (model and kernels warmed up)
    run           -> SECONDS     encode all texts, timed
    save PATH     -> "ok"        write the last run's embeddings to PATH (.npy)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tune-allocator", action="store_true")
    args = parser.parse_args()
    if args.tune_allocator:
        from polyhead.inference.allocator import keep_freed_memory

        keep_freed_memory()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from polyhead.assets import default_model_path
    from polyhead.datasets import rotten_tomatoes

    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        texts = rotten_tomatoes("sentiment").train.texts[: args.texts]
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    vectors = None

    def encode(items):
        return model.encode(items, batch_size=args.batch_size, show_progress_bar=False, convert_to_numpy=True)

    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "warm":
            encode(texts[:64])
            answer = "ok"
        elif command == "run":
            start = time.perf_counter()
            vectors = encode(texts)
            answer = repr(time.perf_counter() - start)
        elif command == "save" and vectors is not None:
            np.save(argument, vectors)
            answer = "ok"
        else:
            answer = f"error: unknown command {line.strip()!r}"
        print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
