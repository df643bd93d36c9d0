"""Settings to Serve deployment options, per-replica settings, and the checks made before Ray
deploys anything (no Ray instance here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from whisperd.config import Settings
from whisperd.errors import StartupError
from whisperd.ray_serve.options import check_ray_settings, deployment_options, replica_settings
from whisperd.ray_serve.placement import check_placement


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_fixed_replicas_reserve_their_cores_and_gpus_and_take_what_whisperd_admits() -> None:
    options = deployment_options(
        _settings(replicas=3, replica_gpus=0.5, replica_cpus=2, max_pending_requests=10)
    )
    assert options["num_replicas"] == 3
    assert "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 0.5}
    assert options["max_ongoing_requests"] == 10 + 64  # requests and streams
    assert options["graceful_shutdown_timeout_s"] > 25  # the drain bound, plus a grace


def test_max_replicas_turns_on_autoscaling_by_ongoing_requests() -> None:
    options = deployment_options(_settings(replicas=1, max_replicas=4, replica_target_requests=6))
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {
        "min_replicas": 1,
        "initial_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 6,
    }


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": 3, "max_replicas": 2}, "max_replicas (2) is below replicas (3)"),
        ({"replica_gpus": -1}, "replica_gpus"),
    ],
)
def test_impossible_replica_counts_are_refused(values: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        _settings(**values)


def test_each_replica_is_named_and_a_cpu_replica_does_not_look_for_a_gpu() -> None:
    base = _settings(ray=True, metrics_port=9100)
    replica = replica_settings(base, "abc123")
    assert (replica.replica_name, replica.device, replica.metrics_port) == ("abc123", "cpu", None)
    assert not replica.ray
    on_gpu = replica_settings(_settings(replica_gpus=1), "x")
    assert on_gpu.device == "auto"


def test_settings_that_cannot_work_across_replicas_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="METRICS_PORT cannot be used with --ray"):
        check_ray_settings(_settings(metrics_port=9100))
    with pytest.raises(StartupError, match="need the PostgreSQL store"):
        check_ray_settings(_settings(replicas=2, data_dir=tmp_path))
    with pytest.raises(StartupError, match="need the PostgreSQL store"):
        check_ray_settings(_settings(max_replicas=2, data_dir=tmp_path))
    check_ray_settings(_settings(replicas=1, data_dir=tmp_path))  # one replica: its own SQLite
    check_ray_settings(
        _settings(replicas=2, data_dir=tmp_path, database_url="postgresql://db/whisperd")
    )


CPU_NODE = {"CPU": 2.0, "memory": 8e9}
GPU_NODE = {"CPU": 16.0, "GPU": 2.0}


@pytest.mark.parametrize(
    ("values", "nodes", "problem"),
    [
        (
            {"replica_gpus": 1},
            [CPU_NODE],
            r"Each replica needs 1 GPU\(s\) \(--replica-gpus\), but no node of the Ray "
            r"cluster has that many \(the most on one node: 0\)\.",
        ),
        ({"replica_gpus": 3}, [GPU_NODE, GPU_NODE], r"the most on one node: 2\)"),
        (
            {"replica_gpus": 0.5, "replicas": 9},
            [GPU_NODE, GPU_NODE],
            r"9 replicas of 0.5 GPU\(s\) \(--replica-gpus\) do not fit: the Ray cluster has "
            r"room for 8 \(4 GPU\(s\) in all\)\.",
        ),
        ({"replicas": 3}, [CPU_NODE], r"3 replicas of 1 CPU core\(s\) \(--replica-cpus\)"),
        ({"replica_cpus": 4}, [CPU_NODE, CPU_NODE], r"needs 4 CPU core\(s\)"),
    ],
)
def test_replicas_the_cluster_cannot_place_are_refused_before_deploying(
    values: dict[str, Any], nodes: list[dict[str, float]], problem: str
) -> None:
    with pytest.raises(StartupError, match=problem):
        check_placement(_settings(**values), nodes)


def test_replicas_that_fit_pass() -> None:
    check_placement(_settings(replica_gpus=0.5, replicas=8), [GPU_NODE, GPU_NODE])
    check_placement(_settings(replicas=2), [CPU_NODE])
    check_placement(_settings(replicas=4, replica_cpus=0), [CPU_NODE])
