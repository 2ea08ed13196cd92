"""The HTTP endpoints: health, models, embeddings (OpenAI shape), predictions, stats."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .errors import ApiError
from .inputs import request_texts
from .payloads import embeddings_body, pair_predictions_body, predictions_body
from .schemas import (EmbeddingsRequest, EmbeddingsResponse, ErrorBody, Health, ModelList, PairPredictRequest, PredictRequest,
                      PredictResponse)
from .state import ServerState

router = APIRouter()

ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 408, 413, 415, 421, 422, 503, 504)}


def _state(request: Request) -> ServerState:
    return request.app.state.polyhead


def _waiting(request: Request) -> dict:
    """How `MicroBatcher.submit` learns that this request's client left, and its deadline."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return {"disconnected": disconnected, "timeout_s": _state(request).config.request_timeout_s}


def _json(payload: bytes) -> Response:
    return Response(payload, media_type="application/json")


@router.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["server"])
async def health(request: Request) -> JSONResponse:
    """200 once the model is loaded and serving; 503 while loading, after a failed load or when stopping."""
    status = _state(request).status
    return JSONResponse({"status": status}, status_code=200 if status == "ok" else 503)


@router.get("/v1/models", response_model=ModelList, responses=ERRORS, tags=["models"])
async def models(request: Request) -> JSONResponse:
    """The served model: id, embedding size, pooling, normalization, and its tasks with their labels."""
    model, _ = _state(request).ready()
    return JSONResponse({"object": "list", "data": [model.card()]})


@router.post("/v1/embeddings", response_model=EmbeddingsResponse, responses=ERRORS, tags=["embeddings"])
async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
    """Embed texts; the request and response follow OpenAI's embeddings API."""
    state = _state(request)
    model, batcher = state.ready()
    texts = request_texts(body.input, max_items=state.config.max_items, max_chars=state.config.max_chars)
    if body.dimensions is not None and body.dimensions != model.encoder.embedding_dim:
        raise ApiError(422, f"'dimensions' must be {model.encoder.embedding_dim} for this model, got {body.dimensions}", param="dimensions")
    normalize = model.encoder.normalize if body.normalize is None else body.normalize
    finish = functools.partial(embeddings_body, model=model.name, normalize=normalize, encoding_format=body.encoding_format,
                               dim=model.encoder.embedding_dim)
    return _json(await batcher.submit(texts, finish, **_waiting(request)))


@router.post("/v1/predict", response_model=PredictResponse, responses={**ERRORS, 404: {"model": ErrorBody}}, tags=["predictions"])
async def predict(body: PredictRequest, request: Request) -> Response:
    """Per text and task: the predicted label, its probability, and every label's probability."""
    state = _state(request)
    model, batcher = state.ready()
    if model.multitask is None:
        raise ApiError(404, f"model {model.name!r} has no task heads: /v1/predict needs a MultiTaskModel directory (with polyhead_model.json)")
    tasks = _requested_tasks(body.tasks, model.task_names, model.multitask.pair_tasks, "/v1/predict_pairs")
    texts = request_texts(body.input, max_items=state.config.max_items, max_chars=state.config.max_chars)
    finish = functools.partial(predictions_body, model=model.name, multitask=model.multitask, tasks=tasks)
    return _json(await batcher.submit(texts, finish, **_waiting(request)))


@router.post("/v1/predict_pairs", response_model=PredictResponse, responses={**ERRORS, 404: {"model": ErrorBody}}, tags=["predictions"])
async def predict_pairs(body: PairPredictRequest, request: Request) -> Response:
    """Per pair of texts and pair task (pair_classification, pair_regression): a label with probabilities, or a similarity."""
    state = _state(request)
    model, batcher = state.ready()
    if model.multitask is None or not model.multitask.pair_tasks:
        raise ApiError(404, f"model {model.name!r} has no pair tasks: /v1/predict_pairs needs a model trained with a "
                       "pair_classification or pair_regression task")
    tasks = _requested_tasks(body.tasks, model.multitask.pair_tasks, model.task_names, "/v1/predict")
    odd = next((i for i, pair in enumerate(body.input) if len(pair) != 2), None)
    if odd is not None:
        raise ApiError(422, f"input[{odd}] has {len(body.input[odd])} texts; a pair has 2", param="input")
    limits = {"max_items": state.config.max_items, "max_chars": state.config.max_chars}
    firsts = request_texts([a for a, _ in body.input], **limits)
    seconds = request_texts([b for _, b in body.input], **limits)
    finish = functools.partial(pair_predictions_body, model=model.name, multitask=model.multitask, tasks=tasks)
    return _json(await batcher.submit(firsts + seconds, finish, **_waiting(request)))


def _requested_tasks(asked: list[str] | None, served: list[str], elsewhere: list[str], other_route: str) -> list[str]:
    """The tasks a request asks for, checked against those this route answers (422 naming the others' route)."""
    tasks = served if asked is None else list(dict.fromkeys(asked))
    if not tasks:
        raise ApiError(422, "'tasks' must not be empty" if asked is not None else "the model has no task this route answers", param="tasks")
    moved = [t for t in tasks if t in elsewhere]
    if moved:
        raise ApiError(422, f"task(s) {moved} are answered by {other_route}; this route answers {served}", param="tasks")
    unknown = [t for t in tasks if t not in served]
    if unknown:
        raise ApiError(422, f"unknown task(s) {unknown}; the model has {served}", param="tasks")
    return tasks


@router.get("/v1/stats", responses=ERRORS, tags=["server"])
async def stats(request: Request) -> JSONResponse:
    """Batching counters: how many shared batches ran and how many texts they held."""
    _, batcher = _state(request).ready()
    done = batcher.stats
    return JSONResponse(
        {
            "batches": done.batches,
            "texts": done.texts,
            "mean_batch_texts": done.texts / done.batches if done.batches else 0.0,
            "largest_batch_texts": done.largest_batch,
            "queued_texts": batcher.queued_texts,
        }
    )
