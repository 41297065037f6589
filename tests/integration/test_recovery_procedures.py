"""The recovery runbooks' claims, on real servers: after a lost state, every import id names an
object that exists in Vault; after a restore, what was written since the snapshot is gone from
Vault though the stack's state still lists it, which is why the runbook says `pulumi refresh` first."""

from __future__ import annotations

import dataclasses

from components.render import policies as pol
from components.render import vault_objects as vs
from components.render.imports import NOT_IMPORTABLE, import_id
from tests.harness import load_stack, load_stack_file, run_stack
from tests.integration import servers
from tests.integration.vault_apply import SECTIONS, apply, kubernetes_role_payload, retarget_connection

# Raft autopilot settings: a dev server has none.
RAFT_AUTOPILOT = "vault:index/raftAutopilot:RaftAutopilot"

EXTRA_APP = {"name": "late", "namespace": "team", "serviceAccount": "late",
             "kv": [{"path": "secret/data/shared/late/*", "access": "read"}]}


def _exists(call, resource_type: str, object_id: str) -> bool:
    """Whether the object an import id names exists, asked the way the provider's read would."""
    listing = {"vault:index/mount:Mount": "sys/mounts", "vault:index/authBackend:AuthBackend": "sys/auth",
               "vault:index/audit:Audit": "sys/audit"}.get(resource_type)
    if listing:
        return f"{object_id}/" in call("GET", listing)["data"]
    path = f"sys/policies/acl/{object_id}" if resource_type == "vault:index/policy:Policy" else object_id
    try:
        call("GET", path)
    except servers.VaultAPIError as err:
        if err.status == 404:
            return False
        raise
    return True


def test_every_import_id_names_an_object_that_exists(dev_vault, postgres, fake_kube, workdir):
    config = load_stack("prod")
    settings = vs.build(config)
    assert settings.database is not None
    (conn,) = settings.database.connections
    here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                               username=postgres.user)
    devices = tuple(dataclasses.replace(d, options={"file_path": str(workdir / "audit.log")}) if d.path == "file"
                    else d for d in settings.audit_devices)
    settings = dataclasses.replace(settings, audit_devices=devices,
                                   database=dataclasses.replace(settings.database, connections=(here,)))
    dev_vault.api("DELETE", "sys/mounts/secret")
    # Not here: the deploy logins (DeployIdentity writes them, not VaultConfiguration), rotating the
    # shared PostgreSQL's admin password, and autopilot, which a dev server without Raft does not have
    # (test_root_token_handover applies it on a Raft node and reads it back at its import id).
    sections = [s for s in SECTIONS if s not in ("deploy", "rotate_root", "autopilot")]
    apply(settings, dev_vault.api, only=sections, passwords={conn.name: postgres.password},
          kubernetes_config=fake_kube.auth_config())

    rec = run_stack("prod")
    component = rec.one("vault-platform:configuration:VaultConfiguration")
    declared = [r for r in rec.resources if r.parent == component.urn and r.type.startswith("vault:")]
    checked = 0
    for resource in declared:
        object_id = import_id(resource.type, resource.inputs)
        if resource.type == RAFT_AUTOPILOT:
            continue  # no Raft on a dev server: see above
        if object_id is None:
            assert resource.type in NOT_IMPORTABLE
            continue
        assert _exists(dev_vault.api, resource.type, object_id), (resource.type, object_id)
        checked += 1
    assert checked >= 20
    # And the check can fail: an id of an object that is not there.
    assert not _exists(dev_vault.api, "vault:index/policy:Policy", "no-such-policy")
    assert not _exists(dev_vault.api, "vault:index/mount:Mount", "no-such-mount")


def test_after_a_restore_what_came_since_the_snapshot_is_gone_until_applied_again(raft_node, fake_kube, workdir):
    raft_node.init_and_unseal()
    base = vs.build(load_stack("prod"))
    later = vs.build(load_stack("prod", {"applications": [
        *load_stack_file("prod")[0]["vault-platform:applications"], EXTRA_APP]}))
    sections = {"mounts", "kv", "auth", "policies", "roles"}
    no_db = dataclasses.replace(base, database=None)
    apply(no_db, raft_node.api, only=sections, kubernetes_config=fake_kube.auth_config())
    snapshot = workdir / "before.snap"
    raft_node.cli("operator", "raft", "snapshot", "save", str(snapshot))

    def onboard_late() -> None:
        """What a later `pulumi up` writes for the new application: its policy and its role."""
        policy = next(p for p in later.policies if p.name == "app-late")
        raft_node.api("PUT", f"sys/policies/acl/{policy.name}", json={"policy": pol.render(policy)})
        role = next(r for r in later.kubernetes_roles if r.name == "late")
        raft_node.api("POST", f"auth/kubernetes/role/{role.name}", json=kubernetes_role_payload(role))

    # A later `pulumi up` onboards an application: the state now records its role and policy.
    onboard_late()
    assert _exists(raft_node.api, "vault:index/policy:Policy", "app-late")

    raft_node.cli("operator", "raft", "snapshot", "restore", str(snapshot))
    raft_node.wait_until_active(timeout=60)
    # Vault went back to the snapshot: the role and policy are gone, while the state still lists
    # them, so `pulumi up` alone would see nothing to do. `pulumi refresh` notices they are gone.
    assert not _exists(raft_node.api, "vault:index/policy:Policy", "app-late")
    assert not _exists(raft_node.api, "vault:kubernetes/authBackendRole:AuthBackendRole", "auth/kubernetes/role/late")
    assert _exists(raft_node.api, "vault:index/policy:Policy", "app-myapp")
    # Then `pulumi up` writes them again.
    onboard_late()
    assert _exists(raft_node.api, "vault:kubernetes/authBackendRole:AuthBackendRole", "auth/kubernetes/role/late")
