"""The alert rules and the scrape config, checked by Prometheus' own promtool (Debian's 2.42).

promtool comes from `make prometheus-tool` (stack/tools/prometheus.sh; `make test-unit` runs it
first). Without it these tests fail: the rules are part of the product, not an optional extra.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobs.config import JOBS, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = REPO_ROOT / "conf" / "prometheus"
TOOL = REPO_ROOT / "stack" / "tools" / "prometheus.sh"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = subprocess.run([str(TOOL), "path"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        pytest.fail("promtool is not installed: run `make prometheus-tool` (stack/tools/prometheus.sh install)")
    return found.stdout.strip()


def run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=RULES_DIR)
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_rules_are_valid(promtool):
    assert "SUCCESS: 6 rules found" in run(promtool, "check", "rules", "rules.yml")


def test_every_rule_fires_and_stays_quiet_as_tested(promtool):
    run(promtool, "test", "rules", "rules_test.yml")
    # every rule of rules.yml has a test case in rules_test.yml
    rules = {
        line.split(":", 1)[1].strip()
        for line in (RULES_DIR / "rules.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip()
        for line in (RULES_DIR / "rules_test.yml").read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert rules == tested


def test_the_scrape_config_template_renders_to_a_valid_config(promtool, tmp_path):
    monitoring = load_config().monitoring
    values = {
        "host": "127.0.0.1",
        "prometheus_port": "9090",
        "collectors_metrics_port": str(monitoring.metrics_port_collectors),
        "rules_file": str(RULES_DIR / "rules.yml"),
        **{f"metrics_port_{job}": str(monitoring.metrics_port(job)) for job in JOBS},
        **{f"ui_port_{job}": str(monitoring.ui_port(job)) for job in JOBS},
    }
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text((RULES_DIR / "prometheus.yml").read_text().format_map(values))
    out = run(promtool, "check", "config", str(rendered))
    assert "SUCCESS" in out
    text = rendered.read_text()
    for job in JOBS:
        assert f"127.0.0.1:{monitoring.metrics_port(job)}" in text
        assert f"127.0.0.1:{monitoring.ui_port(job)}" in text
    assert f"127.0.0.1:{monitoring.metrics_port_collectors}" in text
