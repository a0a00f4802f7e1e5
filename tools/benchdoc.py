"""Shared by the benchmark tools: each owns one top-level section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section of ``path`` that starts with the line ``heading`` (up to the next
    top-level heading) by ``section``, or append it; the rest of the file is left as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    else:
        following = text.find("\n# ", start + len(heading))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + section + ("\n" + text[end:] if following >= 0 else "")
    path.write_text(text, encoding="utf-8")
