"""The whole Vault side of both stacks through the real engine and the real pulumi-vault provider, on
both servers (tests/integration/vault_side.py says what is moved to loopback and why).

Each stack goes through what its users do: the first `pulumi up`, then `preview`, `refresh` and a
second `up` that find nothing to change; later runs from fresh CI runners that log in with GitHub
OIDC tokens minted for the job; previews as `previewer`; logins from other repositories, refs and
environments refused; database credentials issued; and the tear-down the docs give. What the
deployer and previewer were refused is read from Vault's own audit log, not from our model of the
provider.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
from collections.abc import Iterator

import psycopg
import pytest
from pulumi import automation as auto

from components.render import deploy_identity as ident
from components.render import vault_objects as vs
from tests.harness import load_stack_file
from tests.integration import servers
from tests.integration.conftest import _postgres
from tests.integration.engine import resources, revealed, vault_plugin_binary
from tests.integration.vault_side import Database, VaultSide, start_vault_side, stop_vault_side, unused_rules

pytestmark = pytest.mark.engine

IDENTITY = "vault-bootstrap-identity"
# What the deployer and previewer are granted for runs this test does not make, and why (the rest
# of each policy must be used by the runs it makes, as Vault's audit log shows).
DEPLOYER_UNUSED = {
    "sys/storage/raft/configuration": "VaultReady checks the voters again after a run that could not finish",
    **{f"sys/mounts/{m}/tune": "a mount's lease lifetimes change" for m in ("secret", "database", "pki", "pki_int",
                                                                           "transit")},
    "pki/issuer/*": "a CA that leaves the config",
    "pki_int/issuer/*": "a CA that leaves the config",
    "pki/root": "a CA that leaves the config",
    # Enabled by the first run as the deployer before any device could record it (the run succeeding
    # is the proof); nothing later touches them.
    "sys/audit/file": "enabling the audit devices",
    "sys/audit/stdout": "enabling the audit devices",
}
PREVIEWER_UNUSED: dict[str, str] = {}


@pytest.fixture(scope="session")
def vault_plugin() -> pathlib.Path:
    try:
        return vault_plugin_binary(servers.cache_dir())
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _database(with_tls: bool) -> Iterator[Database]:
    with _postgres(with_tls=with_tls) as (pg, tls):
        yield Database(pg.host, pg.port, pg.dbname, pg.user, pg.password,
                       pathlib.Path(tls.ca_cert).read_text() if tls else "", tls.ca_cert if tls else "")


@pytest.fixture
def dev(engine, vault_plugin, vault_bin, workdir) -> Iterator[VaultSide]:
    for database in _database(with_tls=False):
        side = start_vault_side("dev", engine, vault_plugin, vault_bin, workdir, database)
        try:
            yield side
        finally:
            stop_vault_side(side)


@pytest.fixture
def prod(engine, vault_plugin, vault_bin, workdir, operators) -> Iterator[VaultSide]:
    _gpg, keys = operators
    for database in _database(with_tls=True):
        side = start_vault_side("prod", engine, vault_plugin, vault_bin, workdir, database, pgp_keys=keys)
        side.operators = operators
        try:
            yield side
        finally:
            stop_vault_side(side)


# --- helpers -----------------------------------------------------------------------------------------

def leader(side: VaultSide) -> servers.VaultProcess:
    return side.cluster.leader()


def token_status(side: VaultSide, token: str) -> int:
    try:
        servers.api("GET", leader(side).api_addr, "auth/token/lookup-self", token=token, ca=side.cluster.tls.ca_cert)
    except servers.VaultAPIError as exc:
        return exc.status
    return 200


def no_changes(side: VaultSide, **login) -> None:
    """preview, refresh (running the program, as `make refresh` does) and up all find nothing to do."""
    with side.login(**login):
        side.stack.preview(expect_no_changes=True)
        side.stack.refresh(expect_no_changes=True, run_program=True)
        side.stack.up(expect_no_changes=True)


def break_glass_root(side: VaultSide) -> str:
    """docs/break-glass.md: the operators decrypt their (recovery) shares and make a root token."""
    gpg, _ = side.operators
    shares = []
    init = resources(side.state(show_secrets=True))["vault-bootstrap-init"]
    for share in revealed(init["outputs"]["keys_base64"]):
        plain = gpg.decrypt(base64.b64decode(share))
        assert plain.ok, plain.status
        shares.append(str(plain))
    node = leader(side)
    attempt = node.api("PUT", "sys/generate-root/attempt", json={})
    answer = {}
    for share in shares[:2]:
        answer = node.api("PUT", "sys/generate-root/update", json={"key": share, "nonce": attempt["nonce"]})
    assert answer["complete"] is True
    encoded = answer["encoded_token"]
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, attempt["otp"].encode(), strict=True)).decode()


def move_backup_role_to_where_it_was(side: VaultSide) -> None:
    """Rewrite the state as a stack deployed before the move had it: the backup role a child of a
    RaftBackup component, under its old name."""
    exported = side.state()
    entries = exported["deployment"]["resources"]
    platform = next(r["urn"] for r in entries if r["type"] == "vault-platform:index:VaultPlatform")
    head = platform.rsplit("::", 1)[0]
    old_parent = f"{head}$vault-platform:backup:RaftBackup::vault-backup"
    role_type = "vault:kubernetes/authBackendRole:AuthBackendRole"
    old_role = f"{head}$vault-platform:backup:RaftBackup${role_type}::vault-backup-role"
    index = next(i for i, r in enumerate(entries) if r["urn"].endswith("::vault-config-role-raft-backup"))
    new_role = entries[index]["urn"]
    entries[index] = {**entries[index], "urn": old_role, "parent": old_parent}
    entries.insert(index, {"urn": old_parent, "custom": False, "type": "vault-platform:backup:RaftBackup",
                           "parent": platform})
    text = json.dumps(exported).replace(json.dumps(new_role), json.dumps(old_role))
    target = side.project / "moved-state.json"
    target.write_text(text)
    side.engine.cli("stack", "import", "--file", str(target), "--stack", side.name, cwd=side.project)
    assert old_role in resources_by_urn(side)


def resources_by_urn(side: VaultSide) -> set[str]:
    return {r["urn"] for r in side.state()["deployment"]["resources"]}


def ci_token(side: VaultSide, role: str, **claims) -> str:
    """A token of ``role`` as the CI workflow gets one: a job's OIDC token, logged in with."""
    jwt = side.github.token(audience="vault", **claims)
    answer = servers.api("POST", leader(side).api_addr, "auth/jwt-ci/login", json={"role": role, "jwt": jwt},
                         ca=side.cluster.tls.ca_cert)
    return answer["auth"]["client_token"]


def status(side: VaultSide, method: str, path: str, token: str, body=None) -> int:
    try:
        servers.api(method, leader(side).api_addr, path, token=token, json=body, ca=side.cluster.tls.ca_cert)
    except servers.VaultAPIError as exc:
        return exc.status
    return 200


def fails_with(action, *phrases: str) -> str:
    with pytest.raises(auto.CommandError) as raised:
        action()
    text = str(raised.value)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in the error:\n{text[-3000:]}"
    return text


def identity_denials(side: VaultSide) -> list[str]:
    return [d for d in side.denied() if any(p in d.split(" ")[0].split(",")
                                            for p in (ident.DEPLOYER_POLICY, ident.PREVIEWER_POLICY))]


def database_login_works(side: VaultSide, creds: dict) -> bool:
    db = side.database
    try:
        with psycopg.connect(host=db.host, port=db.port, dbname=db.dbname, user=creds["username"],
                             password=creds["password"], connect_timeout=5,
                             sslmode="require" if db.tls_ca else "disable"):
            return True
    except psycopg.OperationalError:
        return False


# --- dev --------------------------------------------------------------------------------------------

def test_dev_up_no_changes_credentials_and_teardown(dev):
    up = dev.stack.up()
    assert up.summary.result == "succeeded" and up.outputs["status"].value == "ready"
    assert up.summary.resource_changes.get("create", 0) >= 30
    no_changes(dev)

    # dev keeps its root token: an application's database credentials, issued and revoked.
    root = up.outputs["rootToken"].value
    node = leader(dev)

    # A stack deployed before the Jobs' roles moved into the configuration keeps its backup role: the
    # engine takes the new resource for the old one (its alias), and deletes nothing in Vault.
    move_backup_role_to_where_it_was(dev)
    moved = dev.stack.up()
    assert moved.summary.resource_changes.get("create", 0) == 0, moved.summary.resource_changes
    assert node.api("GET", "auth/kubernetes/role/raft-backup", token=root)["data"]["token_policies"] == ["raft-backup"]
    no_changes(dev)

    creds = node.api("GET", "database/creds/myapp-db", token=root)
    assert database_login_works(dev, creds["data"])
    node.api("PUT", "sys/leases/revoke", token=root, json={"lease_id": creds["lease_id"]})
    assert not database_login_works(dev, creds["data"])

    # `make destroy` stops before deleting anything ...
    state_before = resources(dev.state())
    fails_with(lambda: dev.stack.destroy(run_program=True), "protected")
    assert resources(dev.state()).keys() == state_before.keys()
    assert "secret/" in node.api("GET", "sys/mounts", token=root)["data"]
    # ... and `make teardown` (the program without protection) removes everything it made.
    with dev.login():
        os.environ["VAULT_PLATFORM_TEARDOWN"] = "1"
        try:
            dev.stack.destroy(run_program=True)
        finally:
            os.environ.pop("VAULT_PLATFORM_TEARDOWN")
    assert resources(dev.state()) == {}
    mounts = node.api("GET", "sys/mounts", token=root)["data"]
    assert set(mounts) <= {"sys/", "cubbyhole/", "identity/"}, sorted(mounts)
    assert set(node.api("GET", "sys/auth", token=root)["data"]) == {"token/"}
    assert set(node.api("LIST", "sys/policies/acl", token=root)["data"]["keys"]) == {"default", "root"}


# --- prod -------------------------------------------------------------------------------------------

def test_prod_first_run_later_ci_runs_previews_and_refused_logins(prod):
    # The first run, from an operator's checkout: init, the deploy identity, the root token traded for
    # a short-lived deployer token and revoked, then the whole configuration with that token.
    with prod.login():
        up = prod.stack.up()
    assert up.outputs["rootTokenRevoked"].value is True
    assert token_status(prod, up.outputs["rootToken"].value) == 403
    first_run = (prod.project / ".vault-login" / "prod.first-run").read_text().strip()
    assert token_status(prod, first_run) == 200
    # The state holds neither the first run's token nor any token the provider used.
    exported = prod.state(show_secrets=True)
    assert first_run not in str(exported)
    provider = resources(exported)["vault-bootstrap-vault"]
    assert "token" not in provider["inputs"] and "authLoginJwt" not in provider["inputs"]
    no_changes(prod)

    # A later deploy on a fresh CI runner, with the first run's token revoked early (it is not even
    # there): the job's OIDC token, minted when the program logs in.
    servers.api("POST", leader(prod).api_addr, "auth/token/revoke-self", token=first_run, ca=prod.cluster.tls.ca_cert)
    minted = prod.github.minted
    no_changes(prod, ci="deployer", fresh_runner=True)
    assert prod.github.minted > minted
    # The same checkout still holds the revoked first-run token: CI's login is chosen over it.
    with prod.login(ci="deployer"):
        (prod.project / ".vault-login").mkdir(mode=0o700, exist_ok=True)
        (prod.project / ".vault-login" / "prod.first-run").write_text(first_run + "\n")
        prod.stack.up(expect_no_changes=True)

    # A pull request's preview logs in as previewer: preview and refresh change nothing and are
    # refused nothing; the deployer's next preview sees no provider change either.
    no_previewer_changes = len(identity_denials(prod))
    with prod.login(ci="previewer", fresh_runner=True):
        prod.stack.preview(expect_no_changes=True)
        prod.stack.refresh(expect_no_changes=True, run_program=True)
    with prod.login(ci="deployer", fresh_runner=True):
        prod.stack.preview(expect_no_changes=True)
    assert identity_denials(prod)[no_previewer_changes:] == []

    # Tokens from elsewhere log in to nothing, and the run says why.
    for claims in ({"repository": "someone-else/vault-platform"}, {"ref": "refs/pull/7/merge"},
                   {"environment": "staging"}):
        with prod.login(ci="deployer", fresh_runner=True, **claims):
            text = fails_with(prod.stack.preview, "nothing here can log in", "a CI login to auth/jwt-ci as deployer")
            assert "HTTP 400" in text or "HTTP 403" in text
    # A GitHub token handed over at the start of a long job (TERRAFORM_VAULT_AUTH_JWT; GitHub's live 5
    # minutes, Vault allows 150 s more) is refused once expired, with Vault's reason; when the job may
    # mint tokens, the program mints a new one instead and logs in.
    expired = prod.github.token(audience="vault", environment="production", issued_ago=900)
    with prod.login(fresh_runner=True):
        os.environ.update({"TERRAFORM_VAULT_AUTH_JWT": expired, "VAULT_PLATFORM_VAULT_ROLE": "deployer"})
        fails_with(prod.stack.preview, "a CI login to auth/jwt-ci as deployer", "expired")
    with prod.login(ci="deployer", fresh_runner=True):
        os.environ["TERRAFORM_VAULT_AUTH_JWT"] = expired
        prod.stack.preview(expect_no_changes=True)

    # A team edits its stack file: every kind of object changes, one application and one policy come and
    # go. The deployer applies the edit and then the original again, from CI, and is refused nothing.
    apps = load_stack_file("prod")[0]["vault-platform:applications"]
    edit = {
        "kubernetesAuth": {"tokenTtl": "30m"},
        "kv": {"maxVersions": 12},
        "database": {"roles": [{"name": "myapp-db", "connection": "app-postgres", "defaultTtl": "30m",
                                "maxTtl": "12h"},
                               {"name": "reports-db", "connection": "app-postgres", "defaultTtl": "1h",
                                "maxTtl": "2h"}]},
        "pki": {"roles": [{"name": "internal-certs", "namespace": "default", "allowedDomains": ["a.internal"],
                           "maxTtl": "48h"}]},
        "applications": [{**apps[0], "tokenTtl": "30m"},
                         {"name": "billing", "namespace": "payments", "serviceAccount": "billing",
                          "kv": [{"path": "secret/data/billing/*", "access": "read"}], "delivery": "injector"}],
        "policies": [{"name": "ops-read", "rules": [{"path": "secret/metadata/*", "capabilities": ["list"]}]}],
    }
    with prod.login(ci="deployer", fresh_runner=True):
        changed = prod.edited(edit).up()
        assert changed.summary.resource_changes.get("update", 0) >= 5, changed.summary.resource_changes
        assert changed.summary.resource_changes.get("create", 0) >= 3, changed.summary.resource_changes
        # The dropped role's credentials are revoked before the role goes.
        operator = break_glass_root(prod)
        reports = leader(prod).api("GET", "database/creds/reports-db", token=operator)
        leader(prod).api("POST", "auth/token/revoke-self", token=operator)
        restored = prod.edited({}).up()
        assert not database_login_works(prod, reports["data"])
        assert restored.summary.resource_changes.get("delete", 0) >= 3, restored.summary.resource_changes
    no_changes(prod, ci="deployer", fresh_runner=True)

    # Break-glass: a root token from the operators' shares issues database credentials; revoked, they
    # stop working. The root token goes again afterwards.
    root = break_glass_root(prod)
    node = leader(prod)
    creds = node.api("GET", "database/creds/myapp-db", token=root)
    assert database_login_works(prod, creds["data"])
    node.api("PUT", "sys/leases/revoke", token=root, json={"lease_id": creds["lease_id"]})
    assert not database_login_works(prod, creds["data"])

    # Nothing the deployer or previewer did was refused, over all these runs.
    assert identity_denials(prod) == []
    # And what they were granted, they used (the audit log of every run above), but for what only a
    # run that did not happen here would use.
    policies = {p.name: p for p in vs.build(prod.config).policies}
    for name, allowed in ((ident.DEPLOYER_POLICY, DEPLOYER_UNUSED), (ident.PREVIEWER_POLICY, PREVIEWER_UNUSED)):
        unused = unused_rules(policies[name].rules, prod.requests_by(name))
        assert set(unused) <= set(allowed), f"{name} is granted what no run used: {sorted(set(unused) - set(allowed))}"

    # What a deployer and a previewer can do beyond a run: nothing that reads a secret, issues a
    # credential, or widens their own access. The same requests are not refused to root.
    deployer = ci_token(prod, "deployer", ref="refs/heads/main", environment="production")
    previewer = ci_token(prod, "previewer", ref="refs/pull/7/merge", environment="production-preview")
    refused = [("GET", "secret/data/myapp/config", None), ("GET", "secret/metadata/myapp/config", None),
               ("LIST", "secret/metadata", None), ("POST", "secret/data/another", {"data": {"x": "y"}}),
               ("DELETE", "secret/data/myapp/config", None), ("POST", "transit/decrypt/myapp", {"ciphertext": "x"}),
               ("GET", "database/creds/myapp-db", None), ("POST", "pki_int/issue/internal-certs",
                                                          {"common_name": "myapp.internal.example.com"}),
               ("GET", "sys/raw/core/keyring", None), ("POST", "sys/seal", None),
               ("PUT", "sys/policies/acl/deployer", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
               ("PUT", "sys/policies/acl/previewer", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
               ("POST", "auth/jwt-ci/role/deployer", {"bound_claims": {"repository": "someone-else/x"}}),
               ("POST", "sys/auth/not-managed", {"type": "userpass"}), ("POST", "auth/token/create", {}),
               ("PUT", "sys/policies/acl/admin", {"policy": 'path "*" { capabilities = ["sudo"] }'})]
    if prod.flavor == "vault":
        # A Kubernetes role carries only the policies the stack gives roles (deploy.limitRolePolicies; OpenBao
        # matches lists only whole, tests/integration/test_deploy_identity.py).
        role = {"bound_service_account_names": ["x"], "bound_service_account_namespaces": ["x"]}
        refused += [("POST", "auth/kubernetes/role/myapp", {**role, "token_policies": [name]})
                    for name in ("admin", ident.DEPLOYER_POLICY, ident.PREVIEWER_POLICY)]
        refused += [("POST", "auth/kubernetes/role/evil", {**role, "token_policies": ["app-myapp", "admin"]}),
                    ("POST", "auth/kubernetes/role/evil", {**role, "policies": ["admin"]})]
    for method, path, body in refused:
        assert status(prod, method, path, deployer, body) == 403, (method, path)
        assert status(prod, method, path, previewer, body) == 403, (method, path)
    # Prod seeds no secret values from the stack: the deployer writes no KV data at all.
    write = {"data": {"x": "y"}, "options": {"cas": 0}}
    assert status(prod, "POST", "secret/data/myapp/config", deployer, write) == 403
    for method, path, body in (("PUT", "sys/policies/acl/admin", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
                               ("DELETE", "sys/mounts/transit", None), ("POST", "database/config/app-postgres",
                                                                        {"allowed_roles": ["*"]})):
        assert status(prod, method, path, previewer, body) == 403, (method, path)

    # The refusals come from the policies, not from malformed requests: root writes and issues.
    assert status(prod, "POST", "secret/data/myapp/config", root, write) == 200
    # (A name the role signs: prod's internal-certs is bound to its namespace and its allowedDomains.)
    assert status(prod, "POST", "pki_int/issue/internal-certs", root,
                  {"common_name": "myapp.internal.example.com"}) == 200

    # `pulumi destroy` on prod stops before it deletes anything.
    before = resources(prod.state())
    with prod.login(ci="deployer", fresh_runner=True):
        fails_with(lambda: prod.stack.destroy(run_program=True), "protected")
    assert resources(prod.state()).keys() == before.keys()
    objects = vs.build(prod.config)
    assert {f"{m.path}/" for m in objects.mounts} <= set(node.api("GET", "sys/mounts", token=root)["data"])
    assert {"kubernetes/", "jwt-ci/"} <= set(node.api("GET", "sys/auth", token=root)["data"])
    node.api("POST", "auth/token/revoke-self", token=root)


def test_prod_recovers_from_a_first_run_that_died_after_revoking_the_root_token(prod):
    # What a first run leaves when it dies between revoking the root token and the engine recording
    # DeployIdentity: init and readiness recorded, the deploy identity written in Vault and the root
    # token revoked, nothing else. (Killing a run inside that window cannot be timed reliably, so the
    # run goes as far as the hand-over, and the state then loses what was recorded after it.)
    with prod.login():
        prod.engine.stack(prod.program(bootstrap_only=True), folder="prod", stack_name="prod").up()
    state = resources(prod.state(show_secrets=True))
    assert state[IDENTITY]["outputs"]["root_token_revoked"] is True
    prod.engine.cli("state", "delete", state[IDENTITY]["urn"], "--target-dependents", "--stack", "prod", "--yes",
                    cwd=prod.project)
    left = resources(prod.state(show_secrets=True))
    assert IDENTITY not in left and "vault-bootstrap-vault" not in left and "vault-bootstrap-ready" in left
    root = revealed(left["vault-bootstrap-init"]["outputs"]["root_token"])
    assert token_status(prod, root) == 403

    # The docs' way back: an operator's token (here from break-glass), on a checkout with nothing else.
    operator = break_glass_root(prod)
    with prod.login(vault_token=operator, fresh_runner=True):
        again = prod.stack.up()
    assert again.outputs["rootTokenRevoked"].value is True
    # CI deploys as before, and nothing asks for the dead root token again.
    no_changes(prod, ci="deployer", fresh_runner=True)
    leader(prod).api("POST", "auth/token/revoke-self", token=operator)
    assert identity_denials(prod) == []


# --- drift ------------------------------------------------------------------------------------------

def drift_check(side: VaultSide) -> None:
    """What .github/workflows/drift.yml runs on its schedule: a preview that refreshes first and expects
    nothing to change, logged in as `drift` (the previewer's policy) from main in its environment. The
    program runs for the refresh (--run-program): a fresh runner has no token file of an earlier run."""
    with side.login(ci=ident.DRIFT_ROLE, fresh_runner=True, ref="refs/heads/main", environment="production-drift"):
        side.stack.preview(refresh=True, run_program=True, expect_no_changes=True)


def test_prod_a_change_made_by_hand_fails_the_drift_check_until_it_is_put_back(prod):
    with prod.login():
        prod.stack.up()
    drift_check(prod)
    node = leader(prod)
    root = break_glass_root(prod)

    def policy(name: str) -> str:
        return node.api("GET", f"sys/policies/acl/{name}", token=root)["data"]["policy"]

    widened = 'path "secret/data/*" { capabilities = ["read"] }\n'
    # An application's policy widened by hand: the deployer puts it back (docs/day-2.md, "Drift").
    app_policy = policy("app-myapp")
    node.api("PUT", "sys/policies/acl/app-myapp", token=root, json={"policy": app_policy + widened})
    fails_with(lambda: drift_check(prod), "no changes were expected", "vault-config-policy-app-myapp")
    with prod.login(ci="deployer", fresh_runner=True):
        prod.stack.up(refresh=True, run_program=True)
    assert policy("app-myapp") == app_policy
    drift_check(prod)

    # The deploy identity changed by hand (the deployer's own policy widened, the CI login opened to every
    # branch): the same check sees it, and only a break-glass token puts it back.
    deployer_policy = policy(ident.DEPLOYER_POLICY)
    node.api("PUT", f"sys/policies/acl/{ident.DEPLOYER_POLICY}", token=root, json={"policy": deployer_policy + widened})
    fails_with(lambda: drift_check(prod), "no changes were expected", IDENTITY)
    # The deployer's run sees it too, and may not undo it: it is refused, and says what to do.
    refused_before = identity_denials(prod)
    with prod.login(ci="deployer", fresh_runner=True):
        fails_with(lambda: prod.stack.up(refresh=True, run_program=True), "break-glass")
    assert policy(ident.DEPLOYER_POLICY) == deployer_policy + widened
    assert set(identity_denials(prod)) - set(refused_before) == {
        f"default,{ident.DEPLOYER_POLICY} update sys/policies/acl/{ident.DEPLOYER_POLICY}"}
    role = node.api("GET", "auth/jwt-ci/role/deployer", token=root)["data"]
    node.api("POST", "auth/jwt-ci/role/deployer", token=root,
             json={"role_type": "jwt", "bound_claims": {k: v for k, v in role["bound_claims"].items() if k != "ref"}})
    fails_with(lambda: drift_check(prod), "no changes were expected", IDENTITY)
    with prod.login(vault_token=root, fresh_runner=True):
        prod.stack.up(refresh=True, run_program=True)
    assert policy(ident.DEPLOYER_POLICY) == deployer_policy
    assert node.api("GET", "auth/jwt-ci/role/deployer", token=root)["data"]["bound_claims"]["ref"] == "refs/heads/main"
    drift_check(prod)
    node.api("POST", "auth/token/revoke-self", token=root)
    # The checks themselves were refused nothing; the deployer only its one write.
    assert set(identity_denials(prod)) == {
        *refused_before, f"default,{ident.DEPLOYER_POLICY} update sys/policies/acl/{ident.DEPLOYER_POLICY}"}
