"""The rolling restart (scripts/vault_rollout.py, run as the stack's Job runs it) against a real
3-node Raft cluster from our rendered HCL. A test double of the Kubernetes API restarts a server
process where the API server would delete a pod, giving it the new revision's config and
certificate, as the StatefulSet controller would give a new pod the new template.

What each test proves:
- a roll to a new server config and a renewed certificate restarts every node once, standbys first
  and the leader last after a step-down, with every other node running and unsealed whenever one is
  taken down, writes accepted throughout and none lost, and survives being killed mid-roll (the
  second run finishes the work without restarting a node twice); every node then serves the new
  certificate;
- after a CA change (the pods still present certificates the new CA did not sign) the roll still
  finishes, trusting only the new CA, and every node then serves a certificate that CA verifies;
- a roll refuses to take a node down while another is down, and the scale-down step removes the
  departing servers from Raft before they go, so a 3 -> 1 shrink keeps a working cluster.
"""

from __future__ import annotations

import pathlib
import ssl
import time

import pytest

from tests.integration import servers
from tests.integration.fake_statefulset import FakeStatefulSet
from tests.integration.raft_cluster import start_cluster
from tests.integration.rollout_support import (
    Observers,
    init,
    job_env,
    load_ca,
    run_job,
    served_certificate,
    set_up_rollout_login,
    start_job,
)

NEW_REVISION = "vault-rev2"


@pytest.fixture
def cluster(vault_bin, workdir):
    c = start_cluster(vault_bin, workdir)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def statefulset(cluster):
    fake = FakeStatefulSet(cluster)
    try:
        yield fake
    finally:
        fake.close()


def _mount_kv(cluster, token: str) -> None:
    leader = cluster.leader()
    servers.mount_kv_v2(lambda method, path, **kw: servers.api(method, leader.api_addr, path, token=token,
                                                                ca=cluster.tls.ca_cert, **kw))


def test_roll_restarts_standbys_then_the_leader_without_losing_quorum_or_writes(
        cluster, statefulset, fake_kube, workdir):
    token = init(cluster)
    _mount_kv(cluster, token)
    jwt = set_up_rollout_login(cluster, token, fake_kube, workdir)
    # The new revision: another server config (Raft timing) and a renewed certificate from the same CA.
    renewed_dir = workdir / "tls-renewed"
    cert, key = servers.issue_server_cert(load_ca(cluster.tls), renewed_dir, "server",
                                          cluster.names.server_dns_names())
    renewed = servers.TLSFiles(ca_cert=cluster.tls.ca_cert, ca_key=cluster.tls.ca_key, cert=cert, key=key)
    renewed_serial = served_serial_of(cert)

    def template(i, node):
        node.config_path.write_text(cluster.render(i, tls=renewed, performance_multiplier=2))

    statefulset.roll_out(NEW_REVISION, template)
    leader_before = cluster.leader().name
    env = job_env(cluster, statefulset, workdir, jwt)

    with Observers(cluster, token, cluster.tls.ca_cert) as watch:
        # The Job's pod is killed right after it deleted the first pod (a drained node, an eviction).
        first = start_job("restart", env)
        try:
            deadline = time.monotonic() + 180
            for _ in range(1800):
                if statefulset.deletions() or first.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            first.kill()
            _, interrupted_log = first.communicate(timeout=30)
        assert len(statefulset.deletions()) == 1, interrupted_log
        # The replacement pod runs the roll again: it waits for the pod that was restarting, then goes on.
        resumed = run_job("restart", env)
        time.sleep(2)  # writes after the last restart, too
    assert resumed.returncode == 0, resumed.stderr
    assert "done: all 3 pods run revision vault-rev2" in resumed.stderr

    deletions = statefulset.deletions()
    order = [e.pod for e in deletions]
    assert sorted(order) == ["vault-0", "vault-1", "vault-2"], order  # each node exactly once
    assert order[-1] == leader_before, f"the leader {leader_before} must go last: {order}"
    for event in deletions:
        state = event.detail
        # Taken down only as a standby (the leader after its step-down), with every node up and unsealed.
        assert state[event.pod]["standby"] is True, (event.pod, state)
        assert all(s["running"] and s["sealed"] is False for s in state.values()), (event.pod, state)
    # Never a moment with fewer than a quorum of nodes running unsealed.
    assert watch.seen.samples and min(up for _, up in watch.seen.samples) >= 2, watch.seen.samples
    assert not watch.seen.failed_writes, watch.seen.failed_writes
    restarting = (deletions[0].at, time.monotonic())
    assert sum(1 for _, started, _ in watch.seen.writes if restarting[0] <= started <= restarting[1]) > 20
    assert watch.read_back() == [], "acknowledged writes were lost"

    assert statefulset.revision == {n.name: NEW_REVISION for n in cluster.nodes}
    for node in cluster.nodes:
        assert served_certificate(node).serial_number == renewed_serial, node.name


def served_serial_of(cert_path: str) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes()).serial_number


def test_after_a_ca_change_the_roll_trusts_only_the_new_ca_and_still_finishes(
        cluster, statefulset, fake_kube, workdir):
    token = init(cluster)
    jwt = set_up_rollout_login(cluster, token, fake_kube, workdir)
    new_ca = servers.make_test_ca(workdir / "new-ca", "vault-platform new test CA")
    cert, key = servers.issue_server_cert(new_ca, workdir / "new-ca", "server", cluster.names.server_dns_names())
    new_tls = servers.TLSFiles(ca_cert=new_ca.cert_path, ca_key=new_ca.key_path, cert=cert, key=key)
    statefulset.roll_out(NEW_REVISION, lambda i, node: node.config_path.write_text(cluster.render(i, tls=new_tls)))

    # The pods present certificates the new CA did not sign: nothing this roll trusts answers yet.
    new_trust = ssl.create_default_context(cafile=new_ca.cert_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        host, port = cluster.nodes[0].api_addr.removeprefix("https://").rsplit(":", 1)
        with new_trust.wrap_socket(__import__("socket").create_connection((host, int(port)), timeout=5),
                                   server_hostname="vault-0.vault-internal"):
            pass

    done = run_job("restart", job_env(cluster, statefulset, workdir, jwt, ca=new_ca.cert_path))
    assert done.returncode == 0, done.stderr
    assert sorted(e.pod for e in statefulset.deletions()) == ["vault-0", "vault-1", "vault-2"]
    for node in cluster.nodes:
        health = servers.health(node.api_addr, ca=new_ca.cert_path)
        assert health["sealed"] is False, node.name
    assert sum(1 for n in cluster.nodes if servers.health(n.api_addr, ca=new_ca.cert_path)["_status"] == 200) == 1


def test_scale_down_removes_departing_servers_first_and_a_roll_never_takes_a_second_node_down(
        cluster, statefulset, fake_kube, workdir):
    token = init(cluster)
    _mount_kv(cluster, token)
    jwt = set_up_rollout_login(cluster, token, fake_kube, workdir)

    # One node down: a roll must not take down another, and says why.
    statefulset.roll_out(NEW_REVISION, lambda i, node: None)
    down = next(n for n in cluster.nodes if n is not cluster.leader())
    down.stop()
    refused = run_job("restart", job_env(cluster, statefulset, workdir, jwt, pod_timeout=15))
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if "rollout: ERROR:" in line]
    assert errors and down.name in errors[-1], refused.stderr
    assert statefulset.deletions() == []
    down.start()
    down.wait_until_responding(timeout=60)

    # 3 -> 1: two of three voters leaving at once would leave the last one without a quorum. The step
    # run before the StatefulSet shrinks takes them out of Raft first, one at a time.
    scaled = run_job("scale-down", job_env(cluster, statefulset, workdir, jwt, replicas=1))
    assert scaled.returncode == 0, scaled.stderr
    leader = cluster.leader()
    config = servers.api("GET", leader.api_addr, "sys/storage/raft/configuration", token=token,
                         ca=cluster.tls.ca_cert)["data"]["config"]["servers"]
    assert [s["node_id"] for s in config] == ["vault-0"]
    # Run again (an interrupted Job's replacement) before the StatefulSet shrank: nothing left to do.
    again = run_job("scale-down", job_env(cluster, statefulset, workdir, jwt, replicas=1))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("is not a Raft member any more") == 2 and "0 server(s) removed" in again.stderr
    # Now the StatefulSet shrinks: the departing pods go, and the one left still serves writes alone.
    for node in cluster.nodes[1:]:
        node.stop()
    survivor = cluster.nodes[0]
    survivor.wait_until_active(timeout=60)
    servers.api("POST", survivor.api_addr, "secret/data/after-scale-down", token=token, ca=cluster.tls.ca_cert,
                json={"data": {"ok": "yes"}})
