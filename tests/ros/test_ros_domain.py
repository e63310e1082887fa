"""A graph owns its domain: a launch onto a domain with nodes on it refuses naming them, an unset domain is a free
one, and two graphs launched side by side do not reach each other."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402

from robolearn.ros_nodes import domain as domain_mod  # noqa: E402
from robolearn.ros_nodes.domain import DomainBusyError, claim_domain, domain_nodes  # noqa: E402
from robolearn.ros_nodes.launcher import DeployConfig, Graph, run_graph  # noqa: E402

LIFT = "robolearn/PandaLift-v0"


def test_launch_onto_an_occupied_domain_refuses_with_one_line_naming_the_nodes(tmp_path):
    domain = fresh_domain()
    client = Client(domain)  # someone else's node on the domain
    try:
        with pytest.raises(DomainBusyError) as err:
            run_graph(DeployConfig(env_id=LIFT, domain_id=domain, nodes=["safety"], log_dir=str(tmp_path)),
                      progress=False)
        message = str(err.value)
        assert "\n" not in message and "/test_client" in message and f"ROS_DOMAIN_ID {domain}" in message, message
        assert not list(tmp_path.glob("*.log")), "a node was started on the busy domain"
    finally:
        client.close()
    assert domain_nodes(domain) == []  # empty again once the other node left: the launch may go ahead


def test_robolearn_launch_onto_an_occupied_domain_prints_one_line_and_exits_2(capsys, repo_root):
    from robolearn.cli.main import main

    domain = fresh_domain()
    client = Client(domain)
    try:
        code = main(["launch", str(repo_root / "configs/deploy/panda_sim.yaml"), "--domain-id", str(domain)])
    finally:
        client.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "/test_client" in err, err


def test_an_unset_domain_skips_the_busy_ones(monkeypatch):
    busy = fresh_domain()
    free = 10 + (busy - 10 + 45) % 90
    client = Client(busy)
    try:
        monkeypatch.setattr(domain_mod, "AUTO_DOMAINS", (busy, free))
        assert claim_domain(None) == free
    finally:
        client.close()


@pytest.mark.slow
def test_two_graphs_launched_side_by_side_do_not_cross_talk(tmp_path):
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    cfg = DeployConfig(env_id=LIFT, domain_id=None, nodes=["safety"], log_dir=str(tmp_path))
    graphs = [Graph(cfg)]
    graphs[0].start()
    graphs.append(Graph(cfg))  # claims its domain while the first graph runs
    graphs[1].start()
    clients: list[Client] = []
    status: list[dict] = [{}, {}]
    try:
        assert graphs[0].domain != graphs[1].domain
        for i, graph in enumerate(graphs):
            clients.append(Client(graph.domain))
            clients[i].node.create_subscription(String, "safety/status",
                                                lambda m, i=i: status[i].update(json.loads(m.data)), 10)
        for i, client in enumerate(clients):
            assert client.spin_until(lambda i=i: status[i].get("active"), 30.0), f"graph {i} did not start"
        assert clients[0].call(Trigger, "/safety/estop").success
        clients[0].spin_until(lambda: status[0].get("estopped"), 3.0)
        clients[1].spin_for(1.2)  # two status periods
        assert status[0]["estopped"] and not status[1]["estopped"], status
        for graph in graphs:  # never the other graph's safety node too (a loaded machine may make the probe's
            nodes = domain_nodes(graph.domain)  # discovery window miss its own: the e-stop check above is the proof)
            assert nodes.count("/safety") <= 1, nodes
    finally:
        for client in clients:
            client.close()
        for graph in graphs:
            graph.stop()
