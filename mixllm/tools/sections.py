"""Marked sections of a markdown file (``<!-- name:start -->`` ... ``<!-- name:end -->``): each
benchmark command rewrites its own section of docs/BENCHMARKS.md and keeps the others."""

from __future__ import annotations

import re
from pathlib import Path

from mixllm.core.errors import ConfigError

_ANY = re.compile(r"<!-- (?P<name>[\w-]+):start -->.*?<!-- (?P=name):end -->", re.DOTALL)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` replaced by ``body`` (appended when absent).

    Raises ``ConfigError`` on a start marker without its end marker.
    """
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    i = text.find(start)
    if i >= 0:
        j = text.find(end, i + len(start))
        if j < 0:
            raise ConfigError(f"found {start} but no {end} after it")
        return text[:i] + block + text[j + len(end) :]
    if not text.strip():
        return block + "\n"
    return text.rstrip("\n") + "\n\n" + block + "\n"


def upsert_section(path: str | Path, name: str, body: str) -> Path:
    """Write section ``name`` of markdown ``path`` (created with a title if missing)."""
    path = Path(path)
    old = path.read_text() if path.exists() else "# MixLLM benchmarks\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(old, name, body))
    return path


def write_keeping_sections(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, keeping the marked sections other commands wrote there."""
    old = path.read_text() if path.exists() else ""
    kept = [m.group(0) for m in _ANY.finditer(old)]
    path.write_text("\n\n".join([text.rstrip(), *kept]) + "\n")
