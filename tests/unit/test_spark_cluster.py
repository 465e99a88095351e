"""The on-demand Spark standalone cluster of the local stack and jobs.submit's command for a cluster master:
the command lines and environments built, and how a master that cannot start is reported."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobs.submit import absolute_job_args, build_command, cluster_options, pop_confs, submit_environment
from stack.__main__ import up_services
from stack.config import StackConfig, StackConfigError
from stack.core import DEFAULT_SERVICES, Stack
from stack.services import SparkMaster, SparkWorker, alive_worker, scala_version
from tests.unit.test_stack_services import _stack_up

VENV_PYTHON = "/opt/venv/bin/python"


@pytest.fixture
def cfg(tmp_path) -> StackConfig:
    """A stack config on a throwaway state folder with a Spark home that has a spark-core jar."""
    jars = tmp_path / "spark" / "jars"
    jars.mkdir(parents=True)
    (jars / "spark-core_2.13-4.0.1.jar").touch()
    return StackConfig(state_dir=tmp_path / "state", spark_home=tmp_path / "spark")


def _after(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_master_runs_spark_s_master_class_on_loopback_with_its_configured_ports(cfg, tmp_path):
    master = SparkMaster(cfg.model_copy(update={"spark_master_port": 17077, "spark_master_ui_port": 18080}), None)
    master.java_home = tmp_path / "jdk"
    command = master.command()
    assert command[0] == str(tmp_path / "jdk" / "bin" / "java")
    assert command[command.index("-cp") + 1] == f"{tmp_path / 'spark' / 'jars'}/*"
    assert "-Daqstream.service=spark-master" in command  # the marker the stack finds its pid by
    main = command.index("org.apache.spark.deploy.master.Master")
    assert command[main + 1 :] == ["--host", "127.0.0.1", "--port", "17077", "--webui-port", "18080"]
    assert master.environment() == {
        "SPARK_HOME": str(tmp_path / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_SCALA_VERSION": "2.13",
    }


def test_the_worker_offers_its_cores_and_memory_works_under_the_state_folder_and_joins_the_master(cfg, tmp_path):
    worker = SparkWorker(cfg.model_copy(update={"spark_worker_cores": 3, "spark_worker_memory": "1500m"}), None)
    worker.java_home = tmp_path / "jdk"
    command = worker.command()
    main = command.index("org.apache.spark.deploy.worker.Worker")
    assert command[main + 1 :] == [
        "--host",
        "127.0.0.1",
        "--port",
        "7078",
        "--webui-port",
        "8081",
        "--cores",
        "3",
        "--memory",
        "1500m",
        "--work-dir",
        str(tmp_path / "state" / "spark-worker" / "work"),
        "spark://127.0.0.1:7077",
    ]
    assert worker.needs == "spark-master"


def test_a_spark_home_without_spark_s_jars_is_named():
    worker = SparkWorker(StackConfig(spark_home=Path("/nonexistent/spark")), Path("/jdk"))
    with pytest.raises(Exception, match=r"spark-worker: no Spark jars in /nonexistent/spark/jars.*AQSTREAM_SPARK_HOME"):
        worker.command()


def test_the_scala_version_is_read_from_spark_core_s_jar_name():
    assert scala_version("spark-core_2.12-3.5.7.jar") == "2.12"
    assert scala_version("spark-core_2.13-4.0.0-preview1.jar") == "2.13"
    with pytest.raises(Exception, match="spark-core.jar"):
        scala_version("spark-core.jar")


def test_the_worker_is_healthy_only_when_the_master_lists_it_alive():
    state = {
        "status": "ALIVE",
        "workers": [
            {"host": "127.0.0.1", "port": 7078, "state": "DEAD", "cores": 2},  # its previous run
            {"host": "127.0.0.1", "port": 7079, "state": "ALIVE", "cores": 4},  # another worker
        ],
    }
    assert alive_worker(state, "127.0.0.1", 7078) is None
    state["workers"].append({"host": "127.0.0.1", "port": 7078, "state": "ALIVE", "cores": 2})
    assert alive_worker(state, "127.0.0.1", 7078) == {"host": "127.0.0.1", "port": 7078, "state": "ALIVE", "cores": 2}
    assert alive_worker({}, "127.0.0.1", 7078) is None


def test_the_spark_ports_default_to_spark_s_own_and_may_not_clash_with_the_stack_s():
    cfg = StackConfig()
    assert (cfg.spark_master_port, cfg.spark_master_ui_port) == (7077, 8080)
    assert cfg.spark_master_url == "spark://127.0.0.1:7077"
    with pytest.raises(StackConfigError, match="ports must all differ"):
        StackConfig.from_env({"AQSTREAM_SPARK_MASTER_UI_PORT": "8083"})  # Kafka Connect's


def test_the_cluster_is_on_demand_named_or_by_flag():
    assert "spark-master" not in DEFAULT_SERVICES and "spark-worker" not in DEFAULT_SERVICES
    assert up_services([], spark_cluster=False) is None  # the default set
    assert up_services([], spark_cluster=True) == [*DEFAULT_SERVICES, "spark-master", "spark-worker"]
    assert up_services(["kafka"], spark_cluster=True) == ["kafka", "spark-master", "spark-worker"]
    # status lists them while they do not run only when asked for them by name
    stack = Stack(StackConfig(state_dir=Path("/nonexistent/state")))
    assert [r.name for r in stack.status()] == list(DEFAULT_SERVICES)
    assert [r.name for r in stack.status(["spark-worker", "spark-master"])] == ["spark-master", "spark-worker"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_master_that_exits_at_start_fails_the_up_naming_it_and_showing_its_log_tail(tmp_path):
    ports = {f"AQSTREAM_SPARK_MASTER{s}_PORT": str(_free_port()) for s in ("", "_UI")}
    done = _stack_up(tmp_path, "spark-master", **ports)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    log = tmp_path / "state" / "spark-master" / "spark-master.log"
    assert done.stderr.startswith(f"stack: spark-master exited during start-up; last lines of {log}:")
    assert "argument --cluster-id/-t: expected one argument" in done.stderr  # what the (fake) java printed


def test_a_local_master_gets_no_cluster_options():
    assert cluster_options("local[2]", VENV_PYTHON) == []
    assert cluster_options("local[*]", VENV_PYTHON) == []


def test_a_cluster_master_runs_the_driver_here_and_the_executors_python_with_the_venv_s_interpreter():
    assert cluster_options("spark://127.0.0.1:7077", VENV_PYTHON) == [
        "--deploy-mode",
        "client",
        "--conf",
        "spark.pyspark.python=/opt/venv/bin/python",
        "--conf",
        "spark.pyspark.driver.python=/opt/venv/bin/python",
    ]


def test_a_relative_config_path_is_made_absolute_before_submit():
    cwd = Path("/home/me/aqstream")
    assert absolute_job_args(["--available-now", "--config", "conf/x.toml"], cwd) == [
        "--available-now",
        "--config",
        "/home/me/aqstream/conf/x.toml",
    ]
    assert absolute_job_args(["--config=conf/x.toml"], cwd) == ["--config=/home/me/aqstream/conf/x.toml"]
    assert absolute_job_args(["--config", "/etc/aq.toml"], cwd) == ["--config", "/etc/aq.toml"]


def test_the_cluster_submit_ships_the_connector_jars_and_the_jobs_code():
    from jobs.session import connector_jars

    command = build_command(
        "raw_to_mongo", ["--available-now"], "spark://127.0.0.1:7077", VENV_PYTHON, Path("/anywhere")
    )
    assert _after(command, "--master") == "spark://127.0.0.1:7077"
    assert _after(command, "--deploy-mode") == "client"
    assert _after(command, "--jars").split(",") == connector_jars()
    assert Path(_after(command, "--py-files")).name == "aqstream-py.zip"
    assert command[-2:] == [str(Path(__file__).resolve().parents[2] / "jobs" / "raw_to_mongo.py"), "--available-now"]


def test_the_submit_environment_keeps_a_loopback_cluster_on_loopback_and_the_python_absolute(monkeypatch):
    monkeypatch.chdir("/tmp")
    env = submit_environment({"PYSPARK_PYTHON": "venv/bin/python"}, "spark://127.0.0.1:7077", VENV_PYTHON, "/sh")
    assert env["PYSPARK_PYTHON"] == "/tmp/venv/bin/python"  # an executor's working folder is not ours
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert env["SPARK_HOME"] == "/sh"
    remote = submit_environment({}, "spark://spark-master.example.net:7077", VENV_PYTHON, "/sh")
    assert "SPARK_LOCAL_IP" not in remote  # the executors elsewhere must reach the driver on a routable address
    assert remote["PYSPARK_PYTHON"] == VENV_PYTHON


def test_confs_go_to_spark_submit_and_the_other_arguments_to_the_job():
    args = ["--conf", "spark.cores.max=1", "--available-now", "--conf", "spark.executor.memory=512m"]
    confs = pop_confs(args)
    assert confs == ("spark.cores.max=1", "spark.executor.memory=512m")
    assert args == ["--available-now"]
    command = build_command("cdc_to_cassandra", args, "spark://127.0.0.1:7077", VENV_PYTHON, Path("/x"), confs)
    script = command.index(str(Path(__file__).resolve().parents[2] / "jobs" / "cdc_to_cassandra.py"))
    given = [command[i + 1] for i, arg in enumerate(command[:script]) if arg == "--conf"]
    assert {"spark.cores.max=1", "spark.executor.memory=512m"} <= set(given)  # before the script: spark-submit's
    assert command[script + 1 :] == ["--available-now"]


def test_a_conf_without_a_value_is_refused_naming_it():
    with pytest.raises(SystemExit, match="spark.cores.max"):
        pop_confs(["--conf", "spark.cores.max"])
