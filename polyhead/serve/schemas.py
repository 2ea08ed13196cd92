"""Request and response bodies, in the OpenAI embeddings shape where one exists.

Request models are strict and forbid unknown fields: a misspelt option ("normalise") or
a string where a boolean belongs is an error rather than silently ignored or coerced. Responses are built as plain dicts on the hot path; these
models document them in /openapi.json.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbeddingsRequest(BaseModel):
    """POST /v1/embeddings, as OpenAI clients send it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input: str | list[str] = Field(description="One text, or a list of texts to embed (token arrays are not supported).")
    model: str | None = Field(default=None, description="Accepted for compatibility; the served model answers whatever the name.")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="`float`: lists of numbers; `base64`: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(default=None, description="Must equal the model's embedding size when given.")
    user: str | None = Field(default=None, description="Accepted for compatibility and ignored.")
    normalize: bool | None = Field(default=None, description="L2-normalize the vectors; default: the model's own setting.")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class PredictRequest(BaseModel):
    """POST /v1/predict: texts in, one prediction per task out."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input: str | list[str] = Field(description="One text, or a list of texts.")
    tasks: list[str] | None = Field(default=None, description="Tasks to predict; default: all of the model's tasks.")
    model: str | None = Field(default=None, description="Accepted for symmetry with /v1/embeddings; ignored.")


class PairPredictRequest(BaseModel):
    """POST /v1/predict_pairs: pairs of texts in, one answer per pair task out."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input: list[list[str]] = Field(description="Pairs of texts, each a list of two: [[text, text], ...].")
    tasks: list[str] | None = Field(default=None, description="Pair tasks to answer; default: all of the model's pair tasks.")
    model: str | None = Field(default=None, description="Accepted for symmetry with /v1/embeddings; ignored.")


class TaskPredictionBody(BaseModel):
    """One task's answer; which fields it has depends on the task's kind."""

    label: str | None = Field(default=None, description="classification: the most probable class.")
    probability: float | None = Field(default=None, description="classification: that class's probability.")
    probabilities: dict[str, float] | None = Field(default=None, description="classification and multilabel: every class's or label's probability.")
    labels: list[str] | None = Field(default=None, description="multilabel: every label at or above its tuned threshold.")
    value: float | None = Field(default=None, description="regression with one target: the predicted value, in the target's units.")
    values: dict[str, float] | None = Field(default=None, description="regression: each target's predicted value.")
    similarity: float | None = Field(default=None, description="pair_regression: the pair's predicted similarity.")


class Prediction(BaseModel):
    object: Literal["prediction"] = "prediction"
    index: int
    predictions: dict[str, TaskPredictionBody]


class PredictResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Prediction]
    model: str
    usage: Usage


class TaskInfo(BaseModel):
    name: str
    labels: list[str]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    embedding_dim: int
    pooling: str
    normalize: bool
    max_seq_length: int
    tasks: list[TaskInfo]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "loading", "failed", "stopping"]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
