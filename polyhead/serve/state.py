"""The server's life: load the model in the background, batch while up, drain on the way down.

The HTTP socket opens before the model is loaded so that /health can say "loading"
(503) and a supervisor sees the process alive; requests that need the model get 503
until it is ready.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from .batching import MicroBatcher, estimate_tokens
from .config import ServeConfig
from .errors import ApiError
from .metrics import ServerMetrics
from .served_model import ServedModel, load_served_model

logger = logging.getLogger("polyhead.serve")

Status = Literal["loading", "ok", "failed", "stopping"]


class ServerState:
    """Owns the model thread, the loaded model and the batcher."""

    def __init__(self, config: ServeConfig, on_load_failure: Callable[[BaseException], None] | None = None) -> None:
        self.config = config
        self.on_load_failure = on_load_failure
        self.status: Status = "loading"
        self.model: ServedModel | None = None
        self.batcher: MicroBatcher | None = None
        self.metrics = ServerMetrics(max_batch_texts=config.max_batch_texts, queued_texts=self._queued_texts) if config.metrics else None
        # One thread runs every model call: torch work never overlaps, and the event
        # loop stays free while a batch runs.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polyhead-model")
        self._load_task: asyncio.Task | None = None

    def _queued_texts(self) -> int:
        return self.batcher.queued_texts if self.batcher is not None else 0

    def ready(self) -> tuple[ServedModel, MicroBatcher]:
        """The model and batcher, or 503 while loading, after a failed load, or when stopping."""
        if self.status != "ok" or self.model is None or self.batcher is None:
            message = {"loading": "the model is still loading", "failed": "the model failed to load", "stopping": "the server is shutting down"}
            raise ApiError(503, message.get(self.status, "not ready"), headers={"Retry-After": "1"})
        return self.model, self.batcher

    async def start(self) -> None:
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="polyhead-load")

    async def stop(self) -> None:
        """Finish queued work, then release the model thread."""
        self.status = "stopping"
        if self._load_task is not None:
            await asyncio.gather(self._load_task, return_exceptions=True)
        if self.batcher is not None:
            await self.batcher.close()
        self.executor.shutdown(wait=True)

    async def _load(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            model = await loop.run_in_executor(self.executor, self._load_blocking)
        except Exception as error:  # noqa: BLE001 - reported, then the server exits
            self.status = "failed"
            logger.error("could not load the model from %s: %s", config.model_dir or "the built-in default", error, exc_info=error)
            if self.on_load_failure is not None:
                self.on_load_failure(error)
            return
        batcher = MicroBatcher(
            model.embed,
            self.executor,
            max_batch_texts=config.max_batch_texts,
            batch_wait_ms=config.batch_wait_ms,
            slice_texts=config.slice_texts,
            max_queued_texts=config.max_queued_texts,
            max_batch_tokens=config.batch_tokens_for(model.encoder.device.type),
            weigh=functools.partial(estimate_tokens, limit=model.encoder.max_seq_length),
            on_batch=self.metrics.batch_done if self.metrics is not None else None,
        )
        batcher.start()
        if self.metrics is not None:
            self.metrics.model_loaded(time.perf_counter() - started)
        self.model, self.batcher = model, batcher
        if self.status == "loading":
            self.status = "ok"
        heads = f", tasks {', '.join(model.task_names)}" if model.task_names else ", no task heads"
        logger.info(
            "model %s ready: dimension %d on %s, backend %s, %d texts per forward pass%s",
            model.name, model.encoder.embedding_dim, model.encoder.device, model.backend or "default", model.encode_batch_size, heads,
        )

    def _load_blocking(self) -> ServedModel:
        from transformers.utils import logging as hf_logging

        from ..inference import set_threads

        hf_logging.disable_progress_bar()
        if self.config.threads is not None:
            set_threads(self.config.threads)
        model = load_served_model(self.config.model_dir, name=self.config.model_name, device=self.config.device)
        model.encode_batch_size = self.config.batch_size_for(model.encoder.device.type)
        model.backend = self.config.backend
        model.warm_up()
        return model
