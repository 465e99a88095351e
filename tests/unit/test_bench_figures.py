"""The benchmark's arithmetic and its published table (the harness itself runs in the bench tier)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.bench import harness as H
from tests.bench.__main__ import README, RESULTS_DIR, TABLE_BEGIN, TABLE_END, table


# a shuffled 1..n: the nearest-rank percentile q is the value ceil(n * q / 100), known by construction
@pytest.mark.parametrize(
    ("n", "q", "expected"),
    [(200, 50, 100), (200, 95, 190), (200, 99, 198), (200, 100, 200), (997, 50, 499), (997, 95, 948), (997, 99, 988)],
)
def test_percentile_is_the_nearest_rank_of_varied_values(n, q, expected):
    values = [float(v) for v in range(1, n + 1)]
    random.Random(n).shuffle(values)
    assert H.percentile(values, q) == expected


@pytest.mark.parametrize("q", [50, 95, 99, 100])
def test_percentile_is_numpys_nearest_rank(q):
    rng = random.Random(q)  # one generator: 997 different values
    values = [rng.uniform(0, 10) for _ in range(997)]
    assert len(set(values)) == len(values)
    assert H.percentile(values, q) == np.percentile(values, q, method="inverted_cdf")


def test_distribution_of_a_shuffled_range():
    values = [v / 10 for v in range(1, 1001)]  # 0.1 .. 100.0 s
    random.Random(7).shuffle(values)
    assert H.distribution(values) == {"samples": 1000, "p50_s": 50.0, "p95_s": 95.0, "p99_s": 99.0, "max_s": 100.0}


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
