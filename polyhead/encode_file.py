"""Encode a text file into a .npy or .parquet file, streaming in chunks with flat memory.

Only one chunk of texts and its vectors are in memory at a time: the reader yields
`chunk_size` texts, the encoder embeds them, the writer appends them (.npy rows or one
parquet row group) and the chunk is dropped. The output is written to a temp file and
renamed into place only when complete, so an interrupted run never leaves a
half-written file where a good one was. The progress bar counts texts per batch and
shows texts/s, tokens/s and the time left (from a cheap row count of the input).
"""

from __future__ import annotations

import codecs
import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .fileio import atomic_file
from .inference.batching import ThroughputBar
from .textio import DEFAULT_CHUNK, _suffix, iter_text_chunks

OUTPUT_SUFFIXES = (".npy", ".parquet")
_NPY_HEADER_BYTES = 128  # fixed, so the header can be rewritten once the row count is known


@dataclass
class EncodeFileResult:
    """What `encode_file` wrote."""

    rows: int
    """Texts encoded (= rows written)."""
    dim: int
    """Embedding dimension."""
    truncated: int
    """Texts cut at the encoder's max_seq_length."""
    tokens: int
    """Real (unpadded) tokens encoded."""


def estimate_rows(path: Path) -> int | None:
    """Row count for the progress bar's ETA: parquet metadata, or a line count of a text file.

    Counting lines reads the whole file anyway, so it also checks that every byte is valid
    UTF-8: a bad byte on line 120,000 fails now, naming its line, not after minutes of
    encoding (at some GB/s, this pass costs little next to encoding).
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    count = offset = 0
    last = b"\n"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            _check_utf8(decoder, block, path, count, offset)
            count += block.count(b"\n")
            offset += len(block)
            last = block[-1:]
        _check_utf8(decoder, b"", path, count, offset, final=True)
    count += last != b"\n"
    return count - 1 if suffix == ".csv" else count


def _check_utf8(decoder: codecs.IncrementalDecoder, block: bytes, path: Path, lines_before: int, offset: int, final: bool = False) -> None:
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError as error:
        held = len(error.object) - len(block)  # the start of a character cut by the previous block
        line = lines_before + error.object[: error.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 ({error.reason} at byte {offset - held + error.start}); nothing was encoded: "
            "fix the line or save the file as UTF-8",
            file=path, line=line,
        ) from None


class NpyStreamWriter:
    """Appends float32 rows to an .npy file whose header is finalised on close."""

    def __init__(self, handle, dim: int) -> None:
        self.handle, self.dim, self.rows = handle, dim, 0
        self._write_header()

    def _write_header(self) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.dim)}
        text = repr(header).encode("latin1")
        magic = b"\x93NUMPY\x01\x00"
        pad = _NPY_HEADER_BYTES - len(magic) - 2 - len(text) - 1
        body = text + b" " * pad + b"\n"
        self.handle.write(magic + len(body).to_bytes(2, "little") + body)

    def write(self, rows: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        self.handle.flush()
        self.handle.seek(0)
        self._write_header()


def encode_file(
    encoder,
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_column: str = "text",
    batch_size: int = 32,
    chunk_size: int = DEFAULT_CHUNK,
    show_progress: bool = True,
    **encode_options,
) -> EncodeFileResult:
    """Encode every text of `input_path` and write the embeddings to `output_path`."""
    input_path, output_path = Path(input_path), Path(output_path)
    _suffix(input_path)
    out_suffix = output_path.suffix.lower()
    if out_suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"unsupported output type {out_suffix or '(none)'!r}; use .npy or .parquet", file=output_path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    total = estimate_rows(input_path) if input_path.is_file() else None
    truncated = tokens = rows = 0
    with _sigterm_unwinds(), ThroughputBar(total, f"encode {input_path.name}", show_progress) as bar, \
            _write_errors_explained(output_path), atomic_file(output_path, "wb") as handle:
        writer = NpyStreamWriter(handle, encoder.embedding_dim) if out_suffix == ".npy" else None
        parquet = None
        try:
            chunks = iter_text_chunks(input_path, text_column, chunk_size)
            # On a CPU the encoder's threads use every core: a reading thread would only compete with them.
            on_accelerator = getattr(getattr(encoder, "device", None), "type", "cpu") != "cpu"
            for chunk in read_ahead(chunks) if on_accelerator else chunks:
                vectors = encoder.encode(chunk, batch_size=batch_size, show_progress=False, progress=bar.update, **encode_options)
                stats = encoder.last_encode_stats
                truncated, tokens, rows = truncated + stats.truncated, tokens + stats.tokens, rows + len(chunk)
                if writer is not None:
                    writer.write(vectors)
                else:
                    parquet = _write_parquet_chunk(parquet, handle, chunk, vectors, text_column)
        finally:
            # Also on failure: the temp file is then discarded, but the writers must not
            # try to finish it after its handle is gone.
            if writer is not None:
                writer.close()
            if parquet is not None:
                parquet.close()
    return EncodeFileResult(rows=rows, dim=encoder.embedding_dim, truncated=truncated, tokens=tokens)


def read_ahead(chunks: Iterator[list[str]]) -> Iterator[list[str]]:
    """The chunks of `chunks`, the next one read on a thread while the caller encodes the current one.

    Reading and parsing a chunk is Python work; on a GPU it would otherwise leave the device idle
    between chunks. One chunk ahead at most (memory stays two chunks), in order, and a reader's
    error (a bad line) is raised here when its chunk is reached.
    """
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="polyhead-read") as reader:
            pending = reader.submit(next, chunks, None)
            try:
                while (chunk := pending.result()) is not None:
                    pending = reader.submit(next, chunks, None)
                    yield chunk
            finally:
                pending.cancel()
    finally:  # the reader thread has finished (the executor waited for it): the source's open file closes now
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def _write_errors_explained(output_path: Path) -> Iterator[None]:
    """A failed write of the output (a full disk, a size limit) is one line, not a traceback."""
    try:
        yield
    except OSError as error:
        if error.filename is not None and Path(error.filename).parent != output_path.parent:
            raise  # not the output: let the reader's own error through
        import shutil

        free = shutil.disk_usage(output_path.parent).free / 2**20
        raise InputError(
            f"could not write the embeddings ({error.strerror or error}; {free:.0f} MiB free there); nothing was kept: "
            "free some space or choose another output path",
            file=output_path,
        ) from None


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) here instead of ending the process where it stands, so the
    temp output file is removed on the way out. (After SIGKILL the next write to the same output
    removes it: its name carries the dead writer's process id.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_parquet_chunk(writer, handle, texts: list[str], vectors: np.ndarray, text_column: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    embedding = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    table = pa.table({text_column: pa.array(texts, pa.string()), "embedding": embedding})
    if writer is None:
        writer = pq.ParquetWriter(handle, table.schema)
    writer.write_table(table)
    return writer
