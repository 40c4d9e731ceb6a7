# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""What the three push scripts share: the arguments every one takes, staging a folder atomically, and the upload.

Every push script first builds the exact folder that would be uploaded (`--output_dir`, or a temporary folder), so
it can be inspected and reloaded offline (`--dry_run` stops there); only then does it call the Hub
(`HfApi.create_repo` + `HfApi.upload_folder`).
"""

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi
from transformers.utils import logging

from onegen.file_utils import atomic_directory


logger = logging.get_logger("onegen.hub_scripts")


@dataclass
class PushArguments:
    repo_id: str = field(metadata={"help": "Hub repository id, e.g. my-org/onegen-wn-el."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where to build the upload folder (kept); default: a temporary folder."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Build the upload folder only; do not contact the Hub."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to (default: the main branch)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message of the upload."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN or the cached login)."})


def _build_atomically(target: Path, fill):
    """Run `fill(work_folder)` in a temporary folder beside `target`, then move it to `target` (replacing an older
    one). On failure nothing is left behind and an older `target` is kept."""
    with atomic_directory(target) as work:
        return fill(work)


@contextmanager
def prepared_folder(output_dir: str | os.PathLike | None, name: str, fill):
    """Build the upload folder `name` with `fill(folder)` and yield `(folder, fill's result)`. With `output_dir`
    the folder is `output_dir/name` and is kept; without, it lives in a temporary folder removed at the end."""
    if output_dir is not None:
        target = Path(output_dir) / name
        yield target, _build_atomically(target, fill)
        return
    with tempfile.TemporaryDirectory(prefix="onegen-push-") as parent:
        target = Path(parent) / name
        yield target, _build_atomically(target, fill)


def upload(folder: Path, args: PushArguments, repo_type: str, default_message: str, **create_kwargs):
    """Create the repository if needed and upload `folder`; returns the `CommitInfo` (None with --dry_run)."""
    if args.dry_run:
        logger.warning(f"--dry_run: built {folder}; nothing uploaded")
        return None
    api = HfApi(token=args.token)
    api.create_repo(args.repo_id, repo_type=repo_type, private=args.private, exist_ok=True, **create_kwargs)
    if args.revision:
        api.create_branch(args.repo_id, repo_type=repo_type, branch=args.revision, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(folder), repo_id=args.repo_id, repo_type=repo_type, revision=args.revision,
        commit_message=args.commit_message or default_message,
    )
    logger.warning(f"Uploaded {folder} to {args.repo_id} ({repo_type}): {getattr(commit, 'commit_url', commit)}")
    return commit
