"""Where a recorded API response lives: committed under tests/data/<source>/ (small recordings the shared
data lacks, each in tests/data/<source>/PROVENANCE.md) or in the shared data's <source>/ folder."""

from __future__ import annotations

from pathlib import Path

from tests.support.pipeline import REPO_ROOT

COMMITTED = REPO_ROOT / "tests" / "data"


def recording(data_dir: Path, name: str, source: str = "openaq") -> Path:
    committed = COMMITTED / source / name
    return committed if committed.is_file() else data_dir / source / name
