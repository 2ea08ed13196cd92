"""Check a request's texts against the server's limits before they reach the queue.

Everything a text could do to break a shared batch (lone surrogates the tokenizer cannot
read, megabyte strings) is refused here, so one bad request fails alone with a 4xx.
"""

from __future__ import annotations

from .errors import ApiError


def request_texts(value: str | list[str], *, max_items: int, max_chars: int) -> list[str]:
    """The request's texts as a list, or ApiError(422) naming the first problem."""
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ApiError(422, "'input' must not be empty", param="input")
    if len(texts) > max_items:
        raise ApiError(422, f"'input' has {len(texts)} texts; the limit is {max_items} per request", param="input")
    for index, text in enumerate(texts):
        where = "input" if isinstance(value, str) else f"input[{index}]"
        if not text:
            raise ApiError(422, f"{where} is an empty string", param="input")
        if len(text) > max_chars:
            raise ApiError(422, f"{where} has {len(text)} characters; the limit is {max_chars}", param="input")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(422, f"{where} is not valid Unicode (it holds a lone surrogate)", param="input") from None
    return texts
