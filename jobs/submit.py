"""Build (and run) the spark-submit command line of an aqstream job.

Usage:
    python -m jobs.submit JOB [--master URL] [--conf KEY=VALUE ...] [--print] [JOB ARGS ...]
    python -m jobs.submit raw_to_mongo --available-now
    python -m jobs.submit cdc_to_cassandra --master spark://127.0.0.1:7077 --config conf/pipeline.toml

It passes conf/spark-defaults.conf as the properties file, every jar of jars/lib/spark with
--jars (never --packages), and the project's Python packages as a zip with --py-files so a
cluster's executors can import them. ``--conf`` is spark-submit's (e.g. ``spark.cores.max=1``, so two
jobs share a standalone cluster). ``--print`` shows the command instead of running it.
The master is --master, else $AQSTREAM_SPARK_MASTER, else local[2]. On a cluster master
(spark://, the local stack's is `python -m stack up --spark-cluster`) the driver stays here
(client deploy mode) and the executors run the jobs' Python with this interpreter (docs/cluster.md).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from jobs.config import REPO_ROOT, PipelineConfig, load_config_or_report
from jobs.mongo_auth import jvm_trust_options
from jobs.redact import install_excepthook, redact_argv
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


def is_local_master(master: str) -> bool:
    return master.startswith("local")


def on_loopback(master: str) -> bool:
    """A local[*] master, or a cluster master on this machine's loopback (the local stack's)."""
    host = urlsplit(master).hostname if "://" in master else None
    return is_local_master(master) or host in ("127.0.0.1", "localhost")


def cluster_options(master: str, python: str) -> list[str]:
    """What a cluster master needs beyond local[*]: the driver stays in this process (client mode: its
    UI, metrics and log here, as with local[*]) and the executors, on other JVMs with another working
    folder, run the jobs' Python with ``python`` (an absolute path; the venv's, which has pyspark and
    the jobs' dependencies). --jars and --py-files already ship the connectors and the jobs' code."""
    if is_local_master(master):
        return []
    # both: spark.pyspark.python alone would also become the driver's (it outranks PYSPARK_DRIVER_PYTHON)
    python_confs = [f"spark.pyspark.python={python}", f"spark.pyspark.driver.python={python}"]
    return ["--deploy-mode", "client", *(arg for conf in python_confs for arg in ("--conf", conf))]


def absolute_job_args(job_args: list[str], cwd: Path) -> list[str]:
    """The job's arguments with a relative ``--config`` made absolute against ``cwd``: what a path means
    must not depend on which process of the application reads it."""
    args = list(job_args)
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            args[i + 1] = str((cwd / args[i + 1]).absolute())
        elif arg.startswith("--config="):
            args[i] = f"--config={(cwd / arg.removeprefix('--config=')).absolute()}"
    return args


def job_config(job_args: list[str]) -> PipelineConfig:
    """The pipeline config the job will read (its ``--config``, else the default), for what the driver JVM must
    be started with; a bad one exits 2 naming the field, as the job itself would."""
    path = None
    for i, arg in enumerate(job_args):
        if arg == "--config" and i + 1 < len(job_args):
            path = job_args[i + 1]
        elif arg.startswith("--config="):
            path = arg.removeprefix("--config=")
    config = load_config_or_report(path)
    if config is None:
        raise SystemExit(2)
    return config


def build_command(
    job: str, job_args: list[str], master: str, python: str, cwd: Path, confs: tuple[str, ...] = ()
) -> list[str]:
    if job not in JOBS:
        raise SystemExit(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    job_args = absolute_job_args(job_args, cwd)
    # the driver JVM's own options: set before it starts, so here (the job's session cannot change them)
    java_options = " ".join(
        [
            read_spark_defaults().get("spark.driver.extraJavaOptions", ""),
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            *jvm_trust_options(job_config(job_args)),
        ]
    )
    command = [spark_submit_binary(), "--properties-file", str(SPARK_DEFAULTS)]
    command += ["--driver-java-options", java_options.strip()]
    command += ["--master", master, *cluster_options(master, python)]
    command += [arg for conf in confs for arg in ("--conf", conf)]
    command += ["--jars", ",".join(connector_jars()), "--py-files", str(python_zip())]
    command += [str(REPO_ROOT / "jobs" / f"{job}.py"), *job_args]
    return command


def submit_environment(environ: dict[str, str], master: str, python: str, spark_home: str) -> dict[str, str]:
    """spark-submit's environment: it finds Spark through SPARK_HOME (pyspark's folder) and runs Python as
    PYSPARK_PYTHON (made absolute: an executor's working folder is not ours)."""
    env = dict(environ)
    env.setdefault("SPARK_HOME", spark_home)
    env["PYSPARK_PYTHON"] = os.path.abspath(env.get("PYSPARK_PYTHON", python))
    env.setdefault("PYSPARK_DRIVER_PYTHON", python)
    if on_loopback(master):
        # the driver's UI, and the address executors call it back on, on loopback, not the first NIC
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def pop_confs(args: list[str]) -> tuple[str, ...]:
    """Take every ``--conf KEY=VALUE`` out of ``args`` (the rest are the job's); a value without ``=`` is refused."""
    confs = []
    while "--conf" in args:
        i = args.index("--conf")
        conf = args[i + 1] if i + 1 < len(args) else ""
        if "=" not in conf.strip("="):
            raise SystemExit(f"--conf needs KEY=VALUE, got {conf!r}")
        confs.append(conf)
        del args[i : i + 2]
    return tuple(confs)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    install_excepthook()
    job, rest = argv[0], argv[1:]
    master, show_only = None, False
    if "--master" in rest:
        i = rest.index("--master")
        master = rest[i + 1]
        del rest[i : i + 2]
    confs = pop_confs(rest)
    if "--print" in rest:
        rest.remove("--print")
        show_only = True
    master = master or os.environ.get("AQSTREAM_SPARK_MASTER", "local[2]")
    # the venv's interpreter as invoked (abspath, not resolve: the venv's symlink is what makes it the venv)
    python = os.path.abspath(sys.executable)
    command = build_command(job, rest, master, python, Path.cwd(), confs)
    if show_only:
        # what a human reads: credentials (spark.cassandra.auth.password, kafka.sasl.jaas.config) masked
        print(shlex.join(redact_argv(command)))
        return 0
    import pyspark

    env = submit_environment(dict(os.environ), master, python, str(Path(pyspark.__file__).parent))
    os.execve(command[0], command, env)
    return 1  # unreachable


if __name__ == "__main__":
    sys.exit(main())
