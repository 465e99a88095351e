"""The benchmark's arithmetic and its published table (the harness itself runs in the bench tier)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.bench import harness as H
from tests.bench.__main__ import README, RESULTS_DIR, TABLE_BEGIN, TABLE_END, table


@pytest.mark.parametrize("q", [50, 95, 99, 100])
def test_percentile_is_numpys_nearest_rank(q):
    values = [random.Random(q).uniform(0, 10) for _ in range(997)]
    assert H.percentile(values, q) == np.percentile(values, q, method="inverted_cdf")


def test_summary_is_median_min_max_of_the_rates():
    runs = [H.Run(1000, 2.0, 10), H.Run(1000, 4.0, 30), H.Run(1000, 1.0, 20)]
    summary = H.summarize(runs)
    assert summary["records_per_s_median"] == 500
    assert (summary["records_per_s_min"], summary["records_per_s_max"]) == (250, 1000)
    assert summary["driver_heap_peak_bytes"] == 30


def test_readme_table_is_the_published_run():
    result = json.loads((RESULTS_DIR / "latest.json").read_text())
    published = README.read_text().split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    assert published == table(result)
