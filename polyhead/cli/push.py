"""`polyhead push MODEL_DIR REPO_ID`: upload a saved model, with its model card, to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import MODEL_CONFIG


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="upload a saved model and its model card to the Hugging Face Hub",
        description="Upload MODEL_DIR (a training run's model/ or any saved polyhead model) to the Hub repository "
        "REPO_ID, creating it if needed. The model card (README.md) is written first when the directory has none. "
        "Needs a reachable hub and a token (`hf auth login`, HF_TOKEN or --token); --dry-run shows what would be sent.",
    )
    parser.add_argument("model", help="saved polyhead model directory")
    parser.add_argument("repo_id", help="Hub repository, e.g. my-org/topic-sentiment")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to push to (default: the repository's main branch)")
    parser.add_argument("--commit-message", default="Upload polyhead model", help="commit message")
    parser.add_argument("--token", default=None, help="Hub token (default: the logged-in one or HF_TOKEN)")
    parser.add_argument("--dry-run", action="store_true", help="list the files and the card's metadata; send nothing")
    parser.set_defaults(func=run)


def upload_files(directory: Path) -> list[Path]:
    """Every file of the model directory, hidden files and leftovers of interrupted writes excepted."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..fileio import read_json
    from ..model_card import CARD_FILE, read_card_metadata, write_model_card

    directory = Path(args.model)
    if not (directory / MODEL_CONFIG).is_file():
        what = "does not exist" if not directory.exists() else f"is not a polyhead model directory (no {MODEL_CONFIG})"
        raise InputError(f"{directory} {what}", field="MODEL_DIR")
    if "/" not in args.repo_id or args.repo_id.count("/") > 1:
        raise InputError(f"{args.repo_id!r} is not a Hub repository id: give OWNER/NAME", field="REPO_ID")
    if not (directory / CARD_FILE).is_file():
        write_model_card(directory, read_json(directory / MODEL_CONFIG), str(directory))
        print(f"wrote the model card {directory / CARD_FILE}")
    files = upload_files(directory)
    if args.dry_run:
        metadata = read_card_metadata(directory)
        print(f"would upload {len(files)} files ({sum(p.stat().st_size for p in files) / 2**20:.1f} MiB) to {args.repo_id}:")
        for path in files:
            print(f"  {path.relative_to(directory)}  {path.stat().st_size:,} bytes")
        print(f"card: library {metadata.get('library_name')}, base model {metadata.get('base_model')}, "
              f"pipeline {metadata.get('pipeline_tag')}, {len((metadata.get('model-index') or [{}])[0].get('results', []))} results")
        return 0
    url = _upload(directory, args)
    print(f"uploaded {len(files)} files to {url}")
    return 0


def _upload(directory: Path, args: argparse.Namespace) -> str:
    """One-line errors for the ways a push fails: offline, unreachable, not logged in, no access."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    from ..errors import InputError

    api = HfApi(token=args.token)
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(directory), repo_id=args.repo_id, revision=args.revision,
                                   commit_message=args.commit_message, ignore_patterns=[".*", "**/.*"])
    except OfflineModeIsEnabled:
        raise InputError("the Hugging Face Hub is switched off here (HF_HUB_OFFLINE=1): unset it on a machine that can reach the hub") from None
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        hint = "log in with `hf auth login`, set HF_TOKEN or pass --token" if status in (401, 403) else "check the repository id and your access"
        raise InputError(f"the hub refused the upload (HTTP {status}): {hint}") from None
    except _network_errors() as error:  # connection refused, DNS failure, timeouts (httpx's own, or OSError)
        raise InputError(f"cannot reach the Hugging Face Hub ({type(error).__name__}): check the network or HF_ENDPOINT") from None
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{args.repo_id}")


def _network_errors() -> tuple[type[BaseException], ...]:
    """What the hub client raises when the network fails: its HTTP library's transport errors (httpx in
    huggingface_hub 1.x, httpx2 in 2.x), and OSError (requests in older versions)."""
    import importlib

    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)
