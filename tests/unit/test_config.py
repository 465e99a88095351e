"""conf/pipeline.toml → PipelineConfig: the folders (a local path or a URI) and the settings a cluster changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config import REPO_ROOT, ConfigError, load_config
from jobs.paths import ensure_local_dir, is_local, local_path, path_uri

pytestmark = pytest.mark.unit

FOLDERS = ("checkpoint_root", "bronze", "quarantine", "cdc_quarantine")


def paths_with(value: str):
    return load_config(environ={f"AQSTREAM__PATHS__{f.upper()}": value for f in FOLDERS}).paths


@pytest.mark.parametrize(
    ("given", "loaded"),
    [
        ("data/cp", str(REPO_ROOT / "data" / "cp")),  # relative: against the repo root, whatever the cwd
        ("/var/lib/aqstream/cp", "/var/lib/aqstream/cp"),
        ("file:///var/lib/aqstream/cp", "file:///var/lib/aqstream/cp"),
        ("s3a://bucket/aqstream/cp", "s3a://bucket/aqstream/cp"),  # not <repo>/s3a:/bucket/…
        ("hdfs://namenode:8020/aqstream/cp", "hdfs://namenode:8020/aqstream/cp"),
    ],
)
def test_each_folder_takes_a_local_path_or_a_uri(given, loaded):
    paths = paths_with(given)
    assert [getattr(paths, f) for f in FOLDERS] == [loaded] * len(FOLDERS)
    assert paths.checkpoint("raw_to_mongo") == f"{loaded}/raw_to_mongo"


def test_the_event_log_folder_follows_the_same_rules():
    def event_log_dir(value: str) -> str:
        return load_config(environ={"AQSTREAM__MONITORING__EVENT_LOG_DIR": value}).monitoring.event_log_dir

    assert event_log_dir("events") == str(REPO_ROOT / "events")
    assert event_log_dir("s3a://bucket/events") == "s3a://bucket/events"
    with pytest.raises(ConfigError, match=r"monitoring\.event_log_dir: .*'gs'"):
        event_log_dir("gs://bucket/events")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("ftp://host/cp", "scheme 'ftp' not supported"),
        ("s3://bucket/cp", "scheme 's3' not supported"),  # Hadoop's S3 file system is s3a
        ("file://cp", "absolute local path"),  # "cp" would be a host name
    ],
)
def test_a_bad_folder_names_its_field(given, problem):
    with pytest.raises(ConfigError, match=rf"paths\.bronze: .*{problem}"):
        load_config(environ={"AQSTREAM__PATHS__BRONZE": given})


def test_only_local_folders_are_touched_on_disk(tmp_path):
    assert local_path("/var/cp") == Path("/var/cp")
    assert local_path("file:///var/cp") == Path("/var/cp")
    assert local_path("file://localhost/var/cp") == Path("/var/cp")
    assert local_path("s3a://bucket/cp") is None and not is_local("hdfs://namenode/cp")
    assert path_uri("/var/events") == "file:///var/events"
    assert path_uri("s3a://bucket/events") == "s3a://bucket/events"

    ensure_local_dir(f"file://{tmp_path}/a/b")
    ensure_local_dir(str(tmp_path / "c"))
    ensure_local_dir("s3a://bucket/events")  # nothing to create, and no local s3a:/ folder either
    assert (tmp_path / "a" / "b").is_dir() and (tmp_path / "c").is_dir()
    assert not Path("s3a:").exists()
