"""The job's manifest: which rows of which input each Parquet shard holds, and whether it is written.

Shards are fixed row ranges of one input file (`chunk_size` rows, cut where single-process
`polyhead encode` cuts its chunks, so each shard's texts are encoded as exactly the same
list). Global row ids number the inputs' rows in order, so "every row exactly once" is a
check of the shards' `row_id` columns against `range(total_rows)`. The manifest is rewritten
atomically after every shard; a shard counts as written only when its file is there with
its full row count, so a killed job resumes with exactly the missing shards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from ..fileio import read_json, write_json

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SHARDS_DIR = "shards"


@dataclass
class Shard:
    """One output file: rows [row_start, row_end) of one input."""

    index: int
    input: str
    """The input file, as the job was given it."""
    row_start: int
    """First row (0-based, within the input)."""
    row_end: int
    """One past the last row."""
    row_id_start: int
    """Global row id of `row_start` (inputs numbered in order)."""
    path: str
    """The shard file, relative to the output folder."""
    status: str = "pending"
    """`pending` or `done`."""
    rows: int | None = None
    """Rows written (= row_end - row_start once done)."""
    invalid: int = 0
    """Rows kept with a null result (null, empty or non-string text)."""
    truncated: int = 0
    """Texts cut at the model's max_seq_length."""
    seconds: float | None = None
    """Worker time to compute and write it."""
    seek: dict | None = None
    """Where `row_start` begins in a text input ({cookie, line}, see textio.Position), found when the job counted the
    rows; None: the worker parses the rows before it (Parquet skips row groups instead)."""

    @property
    def expected_rows(self) -> int:
        return self.row_end - self.row_start


@dataclass
class Manifest:
    """Everything needed to check a resumed job is the same job, and to find every row."""

    kind: str
    """`encode` or `predict`."""
    settings: dict
    """What the results depend on (model, backend, columns, chunk size, tasks...): a resume must match."""
    inputs: list[dict]
    """Per input file: path, rows, row_id_start."""
    shards: list[Shard] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    @property
    def total_rows(self) -> int:
        return sum(item["rows"] for item in self.inputs)

    def save(self, folder: Path) -> None:
        data = asdict(self)
        data["total_rows"] = self.total_rows
        write_json(folder / MANIFEST, data)

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST
        try:
            data = read_json(path)
            if data.get("version") != MANIFEST_VERSION:
                raise InputError(f"manifest version {data.get('version')!r}, this polyhead writes {MANIFEST_VERSION}", file=path)
            return cls(kind=data["kind"], settings=data["settings"], inputs=data["inputs"],
                       shards=[Shard(**shard) for shard in data["shards"]])
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, InputError):
                raise
            raise InputError(f"not a readable job manifest ({type(error).__name__}: {error})", file=path) from None


def plan(kind: str, settings: dict, files: list[Path], counts: list[int], chunk_size: int,
         starts: list[list[dict | None]] | None = None) -> Manifest:
    """Shards of `chunk_size` rows per input file, numbered in input order; `starts[f][k]`: where file f's shard k begins."""
    if chunk_size < 1:
        raise InputError(f"chunk size must be >= 1, got {chunk_size}", field="chunk_size")
    manifest = Manifest(kind=kind, settings=settings, inputs=[])
    row_id = 0
    for number, (file, rows) in enumerate(zip(files, counts)):
        manifest.inputs.append({"path": str(file), "rows": rows, "row_id_start": row_id})
        seeks = starts[number] if starts else []
        for k, start in enumerate(range(0, rows, chunk_size)):
            index = len(manifest.shards)
            end = min(rows, start + chunk_size)
            manifest.shards.append(Shard(index, str(file), start, end, row_id + start, f"{SHARDS_DIR}/part-{index:05d}.parquet",
                                         seek=seeks[k] if k < len(seeks) else None))
        row_id += rows
    return manifest


def shard_written(folder: Path, shard: Shard) -> bool:
    """Whether the shard's file is there with all its rows (files appear only complete: temp + rename)."""
    path = folder / shard.path
    if not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows == shard.expected_rows
    except Exception:  # noqa: BLE001 - an unreadable file is not written; it is computed again
        return False


SHARD_STATS_KEY = b"polyhead.shard_stats"
"""A shard file's schema metadata key holding its stats (rows, invalid, truncated, tokens, seconds) as JSON."""


def written_stats(folder: Path, shard: Shard) -> dict:
    """The stats a worker stored in a written shard's file; {} for files written before they were stored there."""
    import json

    import pyarrow.parquet as pq

    metadata = pq.read_schema(folder / shard.path).metadata or {}
    return json.loads(metadata[SHARD_STATS_KEY]) if SHARD_STATS_KEY in metadata else {}


def check_same_job(old: Manifest, new: Manifest, folder: Path) -> None:
    """A resume must be the same job: same kind, settings, inputs and row counts."""
    where = folder / MANIFEST
    if old.kind != new.kind:
        raise InputError(f"holds a `{old.kind}` job; this is `{new.kind}`: choose another output folder", file=where)
    changed = sorted(k for k in set(old.settings) | set(new.settings) if old.settings.get(k) != new.settings.get(k))
    if changed:
        detail = ", ".join(f"{k}: {old.settings.get(k)!r} then, {new.settings.get(k)!r} now" for k in changed)
        raise InputError(f"--resume with other settings ({detail}); rerun as before or choose another output folder", file=where)
    if old.inputs != new.inputs:
        raise InputError("--resume with other input files or changed row counts; the shards would not line up: "
                         "choose another output folder", file=where)
