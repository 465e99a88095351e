"""Build (and run) the spark-submit command line of an aqstream job.

Usage:
    python -m jobs.submit JOB [--master URL] [--print] [JOB ARGS ...]
    python -m jobs.submit raw_to_mongo --available-now
    python -m jobs.submit cdc_to_cassandra --master spark://host:7077 --config conf/pipeline.toml

It passes conf/spark-defaults.conf as the properties file, every jar of jars/lib/spark with
--jars (never --packages), and the project's Python packages as a zip with --py-files so a
cluster's executors can import them. ``--print`` shows the command instead of running it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import zipfile
from pathlib import Path

from jobs.config import REPO_ROOT
from jobs.session import SPARK_DEFAULTS, connector_jars, read_spark_defaults

JOBS = ("raw_to_mongo", "cdc_to_cassandra")
LOG_CONFIG = REPO_ROOT / "conf" / "spark-log4j2.properties"


def python_zip(target: Path = REPO_ROOT / ".runs" / "aqstream-py.zip") -> Path:
    """jobs/ and schemas/ zipped for --py-files (rebuilt each submit, so it is never stale)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed: a job submitted at the same moment never reads a half-written zip
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in ("jobs", "schemas"):
            for path in sorted((REPO_ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".cql"):
                    zf.write(path, path.relative_to(REPO_ROOT))
    os.replace(partial, target)
    return target


def spark_submit_binary() -> str:
    venv_bin = Path(sys.executable).parent / "spark-submit"
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which("spark-submit")
    if not found:
        raise SystemExit("spark-submit not found: install pyspark (make venv) or put Spark's bin/ on PATH")
    return found


def build_command(job: str, job_args: list[str], master: str | None) -> list[str]:
    if job not in JOBS:
        raise SystemExit(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    java_options = (
        f"{read_spark_defaults().get('spark.driver.extraJavaOptions', '')} -Dlog4j2.configurationFile={LOG_CONFIG}"
    )
    command = [spark_submit_binary(), "--properties-file", str(SPARK_DEFAULTS)]
    command += ["--driver-java-options", java_options.strip()]
    if master:
        command += ["--master", master]
    command += ["--jars", ",".join(connector_jars()), "--py-files", str(python_zip())]
    command += [str(REPO_ROOT / "jobs" / f"{job}.py"), *job_args]
    return command


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    job, rest = argv[0], argv[1:]
    master, show_only = None, False
    if "--master" in rest:
        i = rest.index("--master")
        master = rest[i + 1]
        del rest[i : i + 2]
    if "--print" in rest:
        rest.remove("--print")
        show_only = True
    command = build_command(job, rest, master or os.environ.get("AQSTREAM_SPARK_MASTER", "local[2]"))
    if show_only:
        print(shlex.join(command))
        return 0
    env = dict(os.environ)
    # spark-submit finds Spark through SPARK_HOME (pyspark's folder) and runs Python as PYSPARK_PYTHON
    if "SPARK_HOME" not in env:
        import pyspark

        env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if command[command.index("--master") + 1].startswith("local"):
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the UI and driver on loopback, not the first NIC
    os.execve(command[0], command, env)
    return 1  # unreachable


if __name__ == "__main__":
    sys.exit(main())
