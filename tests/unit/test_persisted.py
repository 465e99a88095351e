"""jobs.runner.persisted: a batch's records are cached for its writes and released after, failed or not."""

from __future__ import annotations

import pytest

from jobs.runner import persisted


def test_the_batch_is_cached_inside_the_block_and_released_after(spark):
    batch = spark.range(10)
    with persisted(batch) as cached:
        assert cached.is_cached and cached.count() == 10
    assert not batch.is_cached


def test_a_failed_write_still_releases_the_batch(spark):
    batch = spark.range(10)
    with pytest.raises(RuntimeError, match="sink down"), persisted(batch) as cached:
        assert cached.is_cached
        raise RuntimeError("sink down")
    assert not batch.is_cached
