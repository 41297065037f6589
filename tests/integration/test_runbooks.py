"""The docs' command blocks, run as written against the test servers: one terminal per runbook,
where what a block exports reaches the next one, as in an operator's terminal.

What changes is only what a reader fills in: a placeholder (`<root>`, `<nonce>`) gets the value the
runbook says to use, the example addresses get the test server's, and the commands find the Pulumi
CLI (with a stack holding the outputs the blocks read), the server binary as `vault`, the AWS CLI
against moto, and gpg with the operators' keys. Which blocks run where is tests/harness/runbooks.py;
the blocks that cannot run here say why in the docs (```sh not-run: ...).
"""

from __future__ import annotations

import base64
import os
import pathlib
import pty
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from components.render import policies as pol
from components.render import vault_objects as vs
from tests.harness import load_stack, runbooks
from tests.integration import servers
from tests.integration.test_backup_restore import prepare_source
from tests.integration.test_migration import kv, seed

ROOT = runbooks.ROOT


@dataclass
class Terminal:
    """A terminal: a folder, an environment that every block's exports update, and the reader's values
    for the placeholders."""

    cwd: pathlib.Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def run(self, block: runbooks.Block, *, expect: int = 0, stdin: str | None = None,
            tty_input: str | None = None) -> subprocess.CompletedProcess[str]:
        code = block.code
        for placeholder, value in self.values.items():
            code = code.replace(placeholder, value)
        left = sorted(set(re.findall(r"<[a-z][a-zA-Z' -]*>", code)))
        assert not left, f"{block.where}: no value for {left}"
        env_file = self.cwd / ".terminal-env"
        script = f"set -eo pipefail\n{code}\nenv -0 > {env_file}\n"
        if tty_input is not None:
            proc = _with_tty(script, self.cwd, self.env, tty_input)
        else:
            proc = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, input=stdin, text=True,
                                  capture_output=True, timeout=300, check=False)
        assert proc.returncode == expect, (f"{block.where} exited {proc.returncode}, not {expect}\n"
                                           f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}")
        if proc.returncode == 0:
            self.env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
        self.ran.append(block.where)
        return proc


def _with_tty(script: str, cwd: pathlib.Path, env: dict[str, str], typed: str) -> subprocess.CompletedProcess[str]:
    """Run with a terminal for stdin, as a prompt that hides what is typed wants, and type ``typed`` (the
    terminal keeps the line until the prompt reads it)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdin=follower, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    os.close(follower)
    try:
        os.write(leader, typed.encode() + b"\n")
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    os.read(leader, 4096)  # the terminal's echo, drained
                except OSError:
                    break
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def runbook(name: str) -> list[runbooks.Block]:
    return [runbooks.find(doc, first) for doc, first in runbooks.RUNS[name]]


def stack_with_outputs(engine, outputs: dict, secret: tuple[str, ...] = (), stack: str = "prod") -> None:
    """A stack (prod unless said) in the engine's backend whose last update exported ``outputs``."""

    def program() -> None:
        import pulumi

        for key, value in outputs.items():
            pulumi.export(key, pulumi.Output.secret(value) if key in secret else value)

    engine.stack(program, folder="runbook", stack_name=stack).up()


def terminal(engine, vault_bin: pathlib.Path, workdir: pathlib.Path, stack: str = "prod", **extra: str) -> Terminal:
    """A fresh folder of the project (the scripts, the Makefile, the migration command), the stack
    (prod unless said) selected, `vault` the server binary, and nothing of this machine's Vault or AWS
    settings."""
    folder = workdir / "terminal"
    folder.mkdir()
    for name in ("scripts", "migration", "components", "Makefile", "requirements.txt", "requirements-dev.txt",
                 "pyproject.toml"):
        (folder / name).symlink_to(ROOT / name)
    # A copy: `pulumi config set` writes the stack file beside it.
    (folder / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    bindir = workdir / "terminal-bin"
    bindir.mkdir()
    (bindir / "vault").symlink_to(vault_bin)
    if servers.flavor_of(vault_bin) == "openbao":
        (bindir / "bao").symlink_to(vault_bin)
    # `make migrate` runs the venv's Python; this one, already installed (a fresh checkout installs it).
    # A script, not a symlink: Python finds its venv's packages from the path it was started by.
    venv = workdir / "terminal-venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (venv / ".installed").touch()
    env = {"HOME": str(workdir / "home"), "LANG": "C.UTF-8", "VENV": str(venv),
           "PATH": os.pathsep.join([str(bindir), str(pathlib.Path(sys.executable).parent), engine.env()["PATH"],
                                    "/usr/local/bin:/usr/bin:/bin"]),
           **{k: v for k, v in engine.env().items() if k != "PATH"},
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true", **extra}
    (workdir / "home").mkdir(exist_ok=True)
    term = Terminal(folder, env)
    proc = subprocess.run(["pulumi", "stack", "select", stack], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return term


def init_with_pgp(node: servers.VaultProcess, public_keys: list[str], root_key: str | None = None) -> dict:
    """sys/init as the stack calls it in prod: every share (and the root token) encrypted to an operator."""
    body = {"secret_shares": len(public_keys), "secret_threshold": 2, "pgp_keys": public_keys}
    if root_key:
        body["root_token_pgp_key"] = root_key
    return servers.api("PUT", node.api_addr, "sys/init", json=body, ca=node.ca_cert)


def decrypt(gpg, ciphertext_b64: str) -> str:
    plain = gpg.decrypt(base64.b64decode(ciphertext_b64))
    assert plain.ok, plain.status
    return str(plain)


# --- break glass ------------------------------------------------------------------------------------

def test_break_glass_drill(engine, vault_bin, workdir, tls_raft_node, operators, flavor):
    import json

    node, tls = tls_raft_node
    gpg, public_keys = operators
    init = init_with_pgp(node, public_keys)
    for share in init["keys_base64"][:2]:
        servers.api("PUT", node.api_addr, "sys/unseal", json={"key": decrypt(gpg, share)}, ca=node.ca_cert)
    node.wait_until_active(timeout=60)
    stack_with_outputs(engine, {"unsealKeys": init["keys_base64"]}, secret=("unsealKeys",))
    term = terminal(engine, vault_bin, workdir, VAULT_ADDR=node.api_addr, VAULT_CACERT=tls.ca_cert,
                    GNUPGHOME=gpg.gnupghome)
    decrypt_share, start, give, decode, revoke, api_start, api_give, bao_decode = runbook("test_break_glass_drill")

    shares = []
    for index in ("0", "1"):  # two share holders, each on their own machine
        term.values["<your index>"] = index
        shares.append(term.run(decrypt_share).stdout.strip())
    assert shares == [decrypt(gpg, s) for s in init["keys_base64"][:2]]
    if flavor == "vault":
        started = term.run(start).stdout
        nonce = re.search(r"Nonce\s+(\S+)", started).group(1)
        otp = re.search(r"OTP\s+(\S+)", started).group(1)
        term.values["<nonce>"] = nonce
        answered = ""
        for share in shares:
            answered = term.run(give, tty_input=share).stdout
        encoded = re.search(r"Encoded Token\s+(\S+)", answered).group(1)
        finish = decode
    else:
        # OpenBao's CLI calls the authenticated sys/generate-root-token: the runbook's OpenBao steps use the API.
        attempt = json.loads(term.run(api_start).stdout)
        term.values["<nonce>"], otp = attempt["nonce"], attempt["otp"]
        answered = {}
        for share in shares:
            term.values["<decrypted share>"] = share
            answered = json.loads(term.run(api_give).stdout)
        encoded = answered["encoded_token"]
        finish = bao_decode
    term.values |= {"<encoded token>": encoded, "<otp>": otp}
    root = term.run(finish).stdout.strip().splitlines()[-1].strip()
    assert servers.api("GET", node.api_addr, "auth/token/lookup-self", token=root, ca=node.ca_cert)["data"][
        "policies"] == ["root"]
    term.values["<root>"] = root
    term.run(revoke)
    with pytest.raises(servers.VaultAPIError) as gone:
        servers.api("GET", node.api_addr, "auth/token/lookup-self", token=root, ca=node.ca_cert)
    assert gone.value.status == 403


# --- the README's first login ---------------------------------------------------------------------------

def test_the_first_login_after_make_up(engine, vault_bin, workdir, tls_raft_node):
    node, tls = tls_raft_node
    init = servers.api("PUT", node.api_addr, "sys/init", json={"secret_shares": 1, "secret_threshold": 1},
                       ca=node.ca_cert)
    servers.api("PUT", node.api_addr, "sys/unseal", json={"key": init["keys_base64"][0]}, ca=node.ca_cert)
    node.wait_until_active(timeout=60)
    root = init["root_token"]
    # What the dev stack has set up by then: KV v2 at secret/.
    servers.mount_kv_v2(lambda method, path, **kw: servers.api(method, node.api_addr, path, token=root,
                                                                ca=node.ca_cert, **kw))
    ca = pathlib.Path(tls.ca_cert).read_text()
    stack_with_outputs(engine, {"apiAddress": node.api_addr, "caCertificate": ca, "rootToken": root},
                       secret=("rootToken",), stack="dev")
    term = terminal(engine, vault_bin, workdir, stack="dev")
    (block,) = runbook("test_the_first_login_after_make_up")
    proc = term.run(block)

    assert term.env["VAULT_ADDR"] == node.api_addr and term.env["VAULT_TOKEN"] == root
    assert pathlib.Path(term.env["VAULT_CACERT"]).read_text().strip() == ca.strip()
    assert "Sealed" in proc.stdout and proc.stdout.rstrip().splitlines()[-1] == "hello"
    stored = servers.api("GET", node.api_addr, "secret/data/myapp/config", token=root, ca=node.ca_cert)
    assert stored["data"]["data"] == {"greeting": "hello"}


# --- bootstrap ----------------------------------------------------------------------------------------

def test_an_admin_token_from_a_pgp_encrypted_root_token(engine, vault_bin, workdir, tls_raft_node, operators):
    node, tls = tls_raft_node
    gpg, public_keys = operators
    init = init_with_pgp(node, public_keys, root_key=public_keys[0])
    for share in init["keys_base64"][:2]:
        servers.api("PUT", node.api_addr, "sys/unseal", json={"key": decrypt(gpg, share)}, ca=node.ca_cert)
    node.wait_until_active(timeout=60)
    root = decrypt(gpg, init["root_token"])
    # The policy the token is made for, so that the check below can see it at work.
    admin = pol.render(pol.admin_policy(load_stack("prod")))
    servers.api("PUT", node.api_addr, "sys/policies/acl/admin", token=root, json={"policy": admin}, ca=node.ca_cert)
    ca = pathlib.Path(tls.ca_cert).read_text()
    stack_with_outputs(engine, {"apiAddress": node.api_addr, "caCertificate": ca, "rootToken": init["root_token"]},
                       secret=("rootToken",))
    term = terminal(engine, vault_bin, workdir, GNUPGHOME=gpg.gnupghome)
    (block,) = runbook("test_an_admin_token_from_a_pgp_encrypted_root_token")
    term.run(block)

    # Every later command of the terminal still reads the CA (the file is there, not a closed pipe).
    assert pathlib.Path(term.env["VAULT_CACERT"]).read_text().strip() == ca.strip()
    shown = subprocess.run(["pulumi", "config", "get", "--path", "secrets.vaultToken", "--stack", "prod"],
                           cwd=term.cwd, env=term.env, capture_output=True, text=True, timeout=60, check=True)
    token = shown.stdout.strip()
    looked_up = servers.api("GET", node.api_addr, "auth/token/lookup-self", token=token, ca=node.ca_cert)["data"]
    assert looked_up["policies"] == ["admin", "default"] and looked_up["orphan"] is True
    assert "secure:" in (term.cwd / "Pulumi.prod.yaml").read_text() and token not in (
        term.cwd / "Pulumi.prod.yaml").read_text()
    assert "admin" not in term.env


def test_the_old_block_lost_its_ca_at_the_next_command(workdir):
    """What the bootstrap runbook said before, typed into a terminal: the CA named by a process
    substitution is gone once the export's line has run, so the next command finds no file there."""
    typed = 'export VAULT_CACERT=<(echo "the CA")\ncat "$VAULT_CACERT"\n'
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-i"], cwd=workdir, input=typed, capture_output=True,
                          text=True, timeout=30, check=False, env={"PATH": os.environ["PATH"], "HOME": str(workdir)})
    assert "No such file or directory" in proc.stderr and "the CA" not in proc.stdout


# --- backup and restore -----------------------------------------------------------------------------

def test_backup_and_restore_by_hand_with_a_narrowed_break_glass_token(engine, vault_bin, workdir, tls_raft_node,
                                                                       s3_endpoint):
    node, tls = tls_raft_node
    written = prepare_source(node, count=20)
    node.api("POST", "secret/data/myapp/config", json={"data": {"api_key": "before"}})
    root = node.root_token
    for policy in vs.build(load_stack("prod")).policies:
        if policy.name in ("deployer", pol.RESTORE_POLICY):
            node.api("PUT", f"sys/policies/acl/{policy.name}", json={"policy": pol.render(policy)})
    # The test's own hands (the runbook revokes the root token it is given).
    hands = node.api("POST", "auth/token/create-orphan", json={"policies": ["root"]})["auth"]["client_token"]
    bucket = "vault-backups-runbook"
    s3_endpoint.client().create_bucket(Bucket=bucket)
    stack_with_outputs(engine, {"caCertificate": pathlib.Path(tls.ca_cert).read_text(), "backupBucket": bucket})
    term = terminal(engine, vault_bin, workdir, **s3_endpoint.env())
    reach, narrow, snapshot, listing, restore, verify, fresh = runbook(
        "test_backup_and_restore_by_hand_with_a_narrowed_break_glass_token")
    # The backup job's policy, in a token that outlives the root token the runbook revokes.
    backup = node.api("POST", "auth/token/create-orphan", token=hands, json={
        "policies": [pol.BACKUP_POLICY], "no_default_policy": True, "ttl": "15m"})["auth"]["client_token"]
    term.values |= {"https://127.0.0.1:8210": node.api_addr, "<root>": root, "<raft-backup token>": backup}

    term.run(reach)
    term.run(narrow)
    restorer = term.env["VAULT_TOKEN"]
    looked_up = node.api("POST", "auth/token/lookup", token=hands, json={"token": restorer})["data"]
    assert looked_up["policies"] == [pol.RESTORE_POLICY] and looked_up["display_name"] == "token-restore"
    with pytest.raises(servers.VaultAPIError):
        node.api("GET", "auth/token/lookup-self", token=root)  # revoked before anything else
    term.run(snapshot)
    assert re.search(r"vault-\d{8}T\d{6}Z\.snap", term.run(listing).stdout)
    # Damage after the backup, then the restore with the narrowed token.
    node.api("POST", "secret/data/myapp/config", token=hands, json={"data": {"api_key": "damaged"}})
    node.api("DELETE", "secret/metadata/app/s00001", token=hands)
    term.run(restore)
    node.wait_until_active(timeout=60)
    assert kv(node, "app/s00001", token=hands)["data"] == {"value": written["app/s00001"]}
    assert kv(node, "myapp/config", token=hands)["data"] == {"api_key": "before"}
    term.values["<operator token>"] = node.api("POST", "auth/token/create", token=hands,
                                               json={"policies": ["deployer"]})["auth"]["client_token"]
    checked = term.run(verify).stdout
    assert re.search(r"Sealed\s+false", checked) and "leader" in checked

    # Into a fresh cluster: its own root token, --force, an old cluster's token to read the secret.
    fresh_node = servers.start_raft_node(vault_bin, workdir / "fresh", tls)
    try:
        fresh_root, _ = fresh_node.init_and_unseal()
        term.env["VAULT_ADDR"] = fresh_node.api_addr  # the port-forward now goes to the new cluster
        term.values |= {"<the NEW cluster's root token>": fresh_root, "<bucket>": bucket,
                        "<a token of the OLD cluster, e.g. its admin token>": hands}
        # The test nodes are Shamir-sealed: the data comes back sealed by the old cluster's keys, and
        # restore.sh says so with exit code 3 (the runbook's next step: unseal with the old keys). The
        # block has no --yes: the operator types the confirmation at its prompt.
        sealed = term.run(fresh, expect=3, tty_input="restore")
        assert "SEALED" in sealed.stderr
        fresh_node.unseal(node.unseal_keys)
        fresh_node.wait_until_active(timeout=60)
        assert kv(fresh_node, "myapp/config", token=hands)["data"] == {"api_key": "before"}
    finally:
        fresh_node.stop()


# --- migration --------------------------------------------------------------------------------------

MIGRATION_SECRETS = {"prod/payments/db": ('{"password": "p1"}', None, []), "prod/api-key": ("k1", None, []),
                     "staging/x": ("no", None, [])}


def test_migration_runbook_with_a_narrowed_break_glass_token(engine, vault_bin, workdir, tls_raft_node,
                                                              secretsmanager_endpoint):
    import boto3

    node, tls = tls_raft_node
    root, _ = node.init_and_unseal()
    servers.mount_kv_v2(node.api)
    client = boto3.client("secretsmanager", endpoint_url=secretsmanager_endpoint.url, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    seed(client, MIGRATION_SECRETS)
    stack_with_outputs(engine, {"apiAddress": node.api_addr, "caCertificate": pathlib.Path(tls.ca_cert).read_text()})
    aws = {k: v for k, v in secretsmanager_endpoint.env().items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    term = terminal(engine, vault_bin, workdir, **aws)
    blocks = runbook("test_migration_runbook_with_a_narrowed_break_glass_token")
    # The test's own hands (the runbook revokes the root token it is given).
    hands = node.api("POST", "auth/token/create-orphan", json={"policies": ["root"]})["auth"]["client_token"]
    term.values["<root>"] = root
    for block in blocks:
        term.run(block)
    token = term.env["VAULT_TOKEN"]
    assert node.api("POST", "auth/token/lookup", token=hands, json={"token": token})["data"]["policies"] == [
        "secrets-manager-migration-adhoc"]
    with pytest.raises(servers.VaultAPIError):
        node.api("GET", "auth/token/lookup-self", token=root)
    assert kv(node, "imported/payments/db", token=token)["data"] == {"password": "p1"}
    assert kv(node, "imported/api-key", token=token)["data"] == {"value": "k1"}
    assert kv(node, "staging/x", token=hands) is None and kv(node, "imported/x", token=hands) is None
    assert (term.cwd / "plan.json").exists() and list((term.cwd / "migration-reports").glob("verify-*.jsonl"))


# --- setting secrets ----------------------------------------------------------------------------------

def _stack_config(term: Terminal, stack: str):
    """The stack's config as the program loads it (the typed model, every rule checked)."""
    import json

    from components.model import load_config

    shown = subprocess.run(["pulumi", "config", "--show-secrets", "--json", "--stack", stack], cwd=term.cwd,
                           env=term.env, capture_output=True, text=True, timeout=60, check=True)
    raw = json.loads(shown.stdout)
    return load_config({k: v["value"] for k, v in raw.items()}, {k for k, v in raw.items() if v.get("secret")})


def test_secrets_set_as_the_docs_say_reach_the_program(engine, vault_bin, workdir):
    stack_with_outputs(engine, {})
    term = terminal(engine, vault_bin, workdir)
    (term.cwd / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    term.values |= {"<password>": "runbook-db-password", "<key>": "runbook-api-key"}
    prod_password, dev_kv = runbook("test_secrets_set_as_the_docs_say_reach_the_program")
    term.run(prod_password)
    config = _stack_config(term, "prod")
    assert config.secrets.database_passwords["app-postgres"].reveal() == "runbook-db-password"
    assert "runbook-" not in (term.cwd / "Pulumi.prod.yaml").read_text()
    # Initial KV secrets are a dev setting (prod refuses them): the block runs on the dev stack.
    (term.cwd / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    subprocess.run(["pulumi", "stack", "init", "dev"], cwd=term.cwd, env=term.env, capture_output=True, text=True,
                   timeout=60, check=True)
    term.run(dev_kv)
    config = _stack_config(term, "dev")
    assert config.secrets.kv["payments/billing/config"]["api_key"].reveal() == "runbook-api-key"
    assert "runbook-" not in (term.cwd / "Pulumi.dev.yaml").read_text()


def test_restore_usage(engine, vault_bin, workdir):
    stack_with_outputs(engine, {})
    term = terminal(engine, vault_bin, workdir)
    (block,) = runbook("test_restore_usage")
    shown = term.run(block)
    assert "usage: restore.sh" in shown.stdout + shown.stderr and "--verify-kv" in shown.stdout + shown.stderr
