"""RouterBench from the Hugging Face hub: ``hf://[datasets/]owner/name[/file]`` paths and the
download (through ``huggingface_hub``'s cache) of a dataset file."""

from __future__ import annotations

from pathlib import Path

from mixllm.core.errors import DataError
from mixllm.core.types import RoutingData
from mixllm.data.routerbench import load_routerbench

ROUTERBENCH_HUB_REPO = "withmartian/routerbench"
ROUTERBENCH_HUB_FILE = "routerbench_0shot.pkl"


def parse_hf_path(url: str) -> tuple[str, str]:
    """Split ``hf://[datasets/]owner/name[/file]`` into (repo_id, filename)."""
    rest = url.removeprefix("hf://").removeprefix("datasets/").strip("/")
    parts = rest.split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise DataError(f"bad Hugging Face path {url!r}: expected hf://owner/name[/file]")
    filename = "/".join(parts[2:]) or ROUTERBENCH_HUB_FILE
    return "/".join(parts[:2]), filename


def load_routerbench_hub(
    repo_id: str = ROUTERBENCH_HUB_REPO,
    filename: str = ROUTERBENCH_HUB_FILE,
    cache_dir: str | Path | None = None,
    *,
    local_files_only: bool = False,
) -> RoutingData:
    """Download a RouterBench file from the Hugging Face hub (dataset repo) and load it."""
    from huggingface_hub import hf_hub_download

    try:
        local = hf_hub_download(
            repo_id=repo_id,
            filename=filename,
            repo_type="dataset",
            cache_dir=None if cache_dir is None else str(cache_dir),
            local_files_only=local_files_only,
        )
    except Exception as exc:  # hub errors come in many types; all mean "no file"
        raise DataError(
            f"cannot fetch {filename} from Hugging Face dataset {repo_id}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return load_routerbench(local)
