"""docker-compose.yml runs what `make run` runs: no Docker engine here, so we compare the files."""

from __future__ import annotations

from pathlib import Path

import yaml

from devstack.nodes import NODE_NAMES, PROCESS_KINDS, NodeConfig, node_commands

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service_of_a_node():
    assert {"postgres", "redis", "anvil", *PROCESS_KINDS} <= set(COMPOSE["services"])


def test_web_worker_and_beat_commands_match_make_run():
    node = NODE_NAMES[0]
    schedule = COMPOSE["services"]["beat"]["command"][-1]
    expected = node_commands(node=node, bind="0.0.0.0", port=8000, beat_schedule=schedule)  # noqa: S104

    for kind in PROCESS_KINDS:
        assert COMPOSE["services"][kind]["command"] == expected[kind], kind


def test_compose_sets_the_environment_make_run_sets(tmp_path):
    config = NodeConfig(NODE_NAMES[0], 0, 8000, tmp_path)
    make_run_keys = set(
        config.environment(
            database_url="postgres://x",
            redis_port=1,
            eth_rpc_url="http://x",
            var_dir=tmp_path,
            contracts_file=tmp_path,
        )
    )
    # make run hands the passphrase over in a file; compose passes it directly.
    make_run_keys = (make_run_keys - {"NODE_KEY_PASSPHRASE_FILE", "DJANGO_SETTINGS_MODULE"}) | {
        "NODE_KEY_PASSPHRASE"
    }

    for kind in PROCESS_KINDS:
        assert make_run_keys <= set(COMPOSE["services"][kind]["environment"]), kind


def test_every_node_service_waits_for_the_backing_services():
    for kind in PROCESS_KINDS:
        depends = COMPOSE["services"][kind]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert set(COMPOSE["services"]["migrate"]["depends_on"]) == {"postgres", "redis", "anvil"}
