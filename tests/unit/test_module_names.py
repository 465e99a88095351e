"""A job file run by ``spark-submit jobs/<job>.py`` has its own folder first on ``sys.path``: a module there
named like a standard-library module shadows it for every import of the process, the libraries' too
(a ``jobs/secrets.py`` once broke numpy's ``from secrets import randbits`` inside the CDC job)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# the folders of the files run as scripts (spark-submit's job files; `python -m` runs put the cwd first instead)
SCRIPT_FOLDERS = ("jobs", "stack", "collectors", "dashboard")


@pytest.mark.parametrize("folder", SCRIPT_FOLDERS)
def test_no_module_shadows_the_standard_library(folder):
    shadowing = sorted(path.name for path in (REPO_ROOT / folder).glob("*.py") if path.stem in sys.stdlib_module_names)
    assert shadowing == [], f"{folder}/ modules named like standard-library ones: {shadowing}"
