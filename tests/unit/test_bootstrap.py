"""VaultBootstrap through the harness: VaultInit, the in-stack provider and the order of things."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from components.resources.bootstrap import write_ca_file
from tests.harness import ROOT, canary_leaks, run_stack
from tests.harness.fakes import fake_pgp_key

INIT = "pulumi-python:dynamic:Resource"
PGP_KEY = fake_pgp_key(7)


def vault_provider(rec):
    return rec.one("pulumi:providers:vault")


def test_dev_init_unseals_every_pod_through_its_own_port():
    init = run_stack("dev").one(INIT, "vault-bootstrap-init")
    assert init.get("mode") == "shamir" and init.get("shares") == 1 and init.get("threshold") == 1
    assert init.get("unseal_addresses") == ["https://127.0.0.1:8201", "https://127.0.0.1:8202",
                                            "https://127.0.0.1:8203"]
    assert init.get("expected_peers") == 3 and init.get("address") == "https://127.0.0.1:8200"
    assert "BEGIN CERTIFICATE" in init.get("ca_cert_pem")


def test_prod_init_uses_recovery_shares_and_waits_for_five_members():
    init = run_stack("prod").one(INIT, "vault-bootstrap-init")
    assert init.get("mode") == "auto" and init.get("shares") == 5 and init.get("threshold") == 3
    assert init.get("unseal_addresses") == [] and init.get("expected_peers") == 5


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_init_outputs_are_secret(stack):
    rec = run_stack(stack)
    init = rec.one(INIT, "vault-bootstrap-init")
    assert {"root_token", "keys", "keys_base64"} <= set(init.additional_secret_outputs)
    assert "unsealKeys" in rec.export_secret_paths
    if stack == "prod":
        # Revoked in the same run: only the fact is exported, never the token.
        assert "rootToken" not in rec.exports and rec.exports["rootTokenRevoked"] is True
    else:
        assert "rootToken" in rec.export_secret_paths
    assert canary_leaks(rec) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_init_waits_for_the_release_and_services(stack):
    rec = run_stack(stack)
    init = rec.one(INIT, "vault-bootstrap-init")
    assert rec.depends_on(init, rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release"))
    assert rec.depends_on(init, rec.one("kubernetes:core/v1:Service", "vault-cluster-api"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_provider_is_built_from_address_ca_and_init_token(stack):
    rec = run_stack(stack)
    provider = vault_provider(rec)
    assert provider.get("address") == rec.one(INIT, "vault-bootstrap-init").get("address")
    # Relative to the project folder: no checkout path in the provider's state, so `pulumi refresh`
    # and `destroy` find the file on any runner (`make ca-file` writes it from the stack output).
    assert provider.get("caCertFile") == f".vault-ca/{stack}-ca.pem"
    assert str(ROOT) not in json.dumps(provider.inputs)
    # It logs in with a file the program writes, never with a token in its inputs (the state).
    assert json.loads(provider.get("authLoginTokenFile")) == {"filename": f".vault-login/{stack}.token"}
    assert provider.get("token", None) is None and provider.get("authLoginJwt", None) in (None, "null")
    assert provider.get("skipChildToken") == "true"
    if stack == "dev":
        assert rec.local_files[f".vault-login/{stack}.token"] == "FAKE-CANARY-ROOT-TOKEN\n"
    else:
        # The first run finishes with the short-lived deployer token the root token was traded for.
        assert rec.local_files[f".vault-login/{stack}.token"] == "FAKE-CANARY-FIRST-RUN-TOKEN\n"
    assert rec.local_files[f".vault-ca/{stack}-ca.pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert rec.depends_on(provider, rec.one(INIT, "vault-bootstrap-init"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_vault_resource_uses_the_in_stack_provider_after_init(stack):
    rec = run_stack(stack)
    provider = vault_provider(rec)
    init = rec.one(INIT, "vault-bootstrap-init")
    vault_resources = [r for r in rec.resources if r.type.startswith("vault:")]
    assert vault_resources, "the stack configures nothing in Vault"
    for r in vault_resources:
        assert r.provider.rsplit("::", 1)[0] == provider.urn, f"{r.type}::{r.name} uses another provider"
        assert rec.depends_on(r, init), f"{r.type}::{r.name} does not wait for init"


def test_a_configured_token_replaces_the_root_token():
    # (dev: prod refuses a token in its config; an operator gives VAULT_TOKEN at run time there.)
    rec = run_stack("dev", secrets={"vaultToken": "CANARY-admin-token"})
    assert rec.local_files[".vault-login/dev.token"] == "CANARY-admin-token\n"
    init = rec.one(INIT, "vault-bootstrap-init")
    assert init.get("existing_token") == "CANARY-admin-token" and init.is_secret("existing_token")
    assert canary_leaks(rec) == []


def test_pgp_root_token_without_a_stack_token_stops_after_init():
    rec = run_stack("dev", {"init": {"rootTokenPgpKey": PGP_KEY}})
    assert rec.one(INIT, "vault-bootstrap-init").get("root_token_pgp_key") == PGP_KEY
    assert [r for r in rec.resources if r.type.startswith("vault:")] == []
    assert rec.of_type("kubernetes:batch/v1:CronJob") == []
    # The ciphertext is no token: no Vault provider is built with it.
    assert rec.of_type("pulumi:providers:vault") == []
    with_token = run_stack("dev", {"init": {"rootTokenPgpKey": PGP_KEY}},
                           {"vaultToken": "CANARY-admin-token"})
    assert with_token.local_files[".vault-login/dev.token"] == "CANARY-admin-token\n"


def test_ca_file_is_written_once_and_atomically(tmp_path):
    path = Path(write_ca_file("dev", "PEM-1", tmp_path))
    assert path.read_text() == "PEM-1"
    assert write_ca_file("dev", "PEM-2", tmp_path) == str(path) and path.read_text() == "PEM-2"
    assert [p.name for p in tmp_path.iterdir()] == ["dev-ca.pem"]


def test_vault_init_provider_loads_in_a_fresh_provider_process(tmp_path):
    """The engine runs dynamic providers in their own process from the project directory; the
    pickled provider must load there and work, with nothing from this test process."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    from components.providers.vault_init import VaultInitProvider
    from tests.harness import ROOT

    blob = tmp_path / "provider.txt"
    blob.write_text(serialize_provider(VaultInitProvider()))
    script = (
        "import base64, sys, dill\n"
        f"p = dill.loads(base64.b64decode(open({str(blob)!r}).read()))\n"
        "try:\n"
        "    p.create({'address': 'http://127.0.0.1:9', 'ca_cert_pem': '', 'timeout_seconds': 1})\n"
        "except RuntimeError as e:\n"
        "    print('refused:', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "refused: cannot reach Vault at http://127.0.0.1:9" in result.stdout


def test_an_unreachable_vault_gives_a_clear_error():
    from components.providers.vault_init import VaultInitError, VaultInitProvider
    from tests.integration.servers import free_port

    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    props = {"address": address, "ca_cert_pem": "", "mode": "shamir", "shares": 1, "threshold": 1, "pgp_keys": [],
             "root_token_pgp_key": "", "unseal_addresses": [], "expected_peers": 1, "timeout_seconds": 2,
             "existing_token": None}
    with pytest.raises(VaultInitError) as err:
        VaultInitProvider().create(props)
    assert f"cannot reach Vault at {address}" in str(err.value)
    assert "vault-platform:api.address" in str(err.value)


READY = "pulumi-python:dynamic/bootstrap:VaultReady"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_wait_comes_after_init_in_its_own_resource(stack):
    """VaultInit returns once sys/init has answered, so its token is in the state before anything
    waits; VaultReady unseals and waits for the voters, and the Vault provider waits for it."""
    rec = run_stack(stack)
    init, ready = rec.one(INIT, "vault-bootstrap-init"), rec.one(READY)
    assert ready.parent == init.parent == rec.one("vault-platform:bootstrap:VaultBootstrap").urn
    assert init.urn in ready.depends_on
    assert rec.depends_on(vault_provider(rec), ready)
    for key in ("address", "ca_cert_pem", "mode", "threshold", "unseal_addresses", "expected_peers",
                "timeout_seconds"):
        assert ready.get(key) == init.get(key), key
    assert ready.get("token") == "FAKE-CANARY-ROOT-TOKEN" and ready.is_secret("token")
    assert ready.get("keys") == [f"FAKE-CANARY-SHARE-{i}" for i in range(int(init.get("shares")))]
    assert ready.is_secret("keys") and {"token", "keys"} <= set(ready.additional_secret_outputs)
    # prod encrypts the shares to the operators' PGP keys: the stack cannot unseal with them.
    assert ready.get("token_encrypted") is False and ready.get("keys_encrypted") is (stack == "prod")


def test_the_wait_uses_a_configured_token_and_knows_about_pgp():
    # (dev: prod hands the root token over instead, and refuses a token in its config.)
    rec = run_stack("dev", {"init": {"rootTokenPgpKey": PGP_KEY, "pgpKeys": [fake_pgp_key(0)]},
                            "cluster": {"rollout": {"enabled": False}}}, secrets={"vaultToken": "CANARY-admin-token"})
    ready = rec.one(READY)
    # The configured token is plain text, so it can read the Raft configuration; the shares cannot unseal.
    assert ready.get("token") == "CANARY-admin-token" and ready.get("token_encrypted") is False
    assert ready.get("keys_encrypted") is True
    encrypted = run_stack("dev", {"init": {"rootTokenPgpKey": PGP_KEY}}).one(READY)
    assert encrypted.get("token_encrypted") is True


def test_a_defect_in_a_provider_step_reads_as_one_line():
    from components.providers.vault_init import VaultInitProvider

    with pytest.raises(RuntimeError) as err:
        VaultInitProvider().create({})  # no address: a KeyError inside the step
    message = str(err.value)
    assert message.startswith("VaultInitProvider failed unexpectedly: KeyError: 'address' (")
    assert "vault_init.py:" in message and "\n" not in message
    assert err.value.__suppress_context__ is True


def test_the_engine_host_reports_a_provider_error_as_one_line(tmp_path):
    """The dynamic-provider host sends the engine traceback.format_exc() of whatever a step raised
    (pulumi/dynamic/__main__.py); once the stored provider is configured that is one line."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    from components.providers import vault_init
    from tests.integration.servers import free_port

    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    blob = tmp_path / "provider.txt"
    blob.write_text(serialize_provider(vault_init._STORED_PROVIDER()))
    script = (
        "import base64, sys, traceback, dill\n"
        f"p = dill.loads(base64.b64decode(open({str(blob)!r}).read()))\n"
        "p.configure(None)\n"
        "try:\n"
        f"    p.create({{'address': {address!r}, 'ca_cert_pem': '', 'timeout_seconds': 1}})\n"
        "except Exception:\n"
        "    sys.stdout.write(traceback.format_exc())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith(f"RuntimeError: cannot reach Vault at {address} within 1s")


def test_ready_waits_until_every_pod_reaches_the_active_node():
    """A standby just unsealed answers HTTP 500 until it has found the active node; the Vault resources
    after VaultReady reach the pods through a Service, so the wait ends only once each pod forwards."""
    from components.providers.vault_init import VaultReadyProvider

    pods = ["https://pod-0", "https://pod-1"]
    answers = {"https://pod-1": [500, 500, 200]}  # pod-1 finds the active node on the third ask
    calls: list[tuple[str, str]] = []

    class Cluster(VaultReadyProvider):
        def _call(self, props, method, path, body=None, *, token=None, address=None, timeout=10):
            calls.append((path, address))
            if path == "sys/storage/raft/configuration":
                return 200, {"data": {"config": {"servers": [{"node_id": p, "voter": True} for p in pods]}}}
            if path == "auth/token/lookup-self":
                left = answers.get(address)
                status = left.pop(0) if left else 200
                return status, {"errors": ["local node not active but active cluster node not found"]} \
                    if status == 500 else {"data": {}}
            raise AssertionError(path)

    props = {"mode": "awskms", "address": "https://vault-api", "unseal_addresses": pods, "expected_peers": 2,
             "timeout_seconds": 30, "token": "t", "keys": [], "threshold": 1}
    assert Cluster()._finish(props) == "ready"
    assert calls.count(("auth/token/lookup-self", "https://pod-1")) == 3
    # A pod that never finds it leaves the resource incomplete, naming the pod, for the next `pulumi up`.
    answers["https://pod-1"] = [500] * 1000
    status = Cluster()._finish({**props, "timeout_seconds": 0})
    assert status.startswith("incomplete: https://pod-1 does not reach the active node (HTTP 500: ")
    assert "active cluster node not found" in status
