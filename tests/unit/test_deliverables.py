"""What cannot run here must still be right: the kind cluster, the workflows, the stack files, lint."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from components.model.names import pod_unseal_ports
from components.resources.platform import TEARDOWN_ENV
from tests.harness import ROOT, load_stack


def test_kind_cluster_maps_the_dev_api_and_every_pod_to_loopback():
    kind = yaml.safe_load((ROOT / "kind/dev-cluster.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    config = load_stack("dev")
    assert kind["name"] == "vault-dev" and config.kubernetes.context == "kind-vault-dev"
    mappings = {m["containerPort"]: m for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings.values())
    api = urlparse(config.api.address)
    assert mappings[config.api.node_port]["hostPort"] == api.port and api.hostname == "127.0.0.1"
    for _, node_port, address in pod_unseal_ports(config.unseal.mode, config.api, config.cluster.replicas):
        assert mappings[node_port]["hostPort"] == urlparse(address).port
    workers = [n for n in kind["nodes"] if n["role"] == "worker"]
    assert len(workers) >= config.cluster.replicas


def test_port_forwards_in_the_runbooks_keep_off_the_dev_clusters_host_ports():
    # On the dev cluster 127.0.0.1:8200 is the API Service (any pod): a port-forward asked for it
    # listens on ::1 only, and a restore "through the tunnel" reached a standby instead.
    kind = yaml.safe_load((ROOT / "kind/dev-cluster.yaml").read_text())
    taken = {m["hostPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
    files = [*(ROOT / "docs").glob("*.md"), *(ROOT / "scripts").glob("*.sh"), ROOT / "README.md"]
    forwards = 0
    for path in files:
        text = path.read_text()
        local = {int(p) for p in re.findall(r"port-forward \S+ (\d+):\d+", text)}
        forwards += len(local)
        assert not local & taken, f"{path.name}: port-forward on {sorted(local & taken)}"
        for port in re.findall(r"VAULT_ADDR=https://127\.0\.0\.1:(\d+)", text):
            assert not local or int(port) in local, f"{path.name}: VAULT_ADDR port {port} is no port-forward's"
    assert forwards >= 2


def test_make_teardown_runs_the_program_with_nothing_protected():
    # `destroy --run-program` runs the program, whose protect flags win over `state unprotect`: without
    # the tear-down switch the DestroyGuard is protected again and the destroy stops at it.
    out = subprocess.run(["make", "-n", "teardown", "STACK=dev"], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "MAKEFLAGS": ""}).stdout
    destroys = [line for line in out.splitlines() if "pulumi destroy" in line]
    assert destroys, out
    assert all(f"{TEARDOWN_ENV}=1 " in line and "--run-program" in line for line in destroys), destroys


def test_stack_files_hold_no_plain_text_secrets():
    for stack in ("dev", "prod"):
        data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        secrets = data["config"].get("vault-platform:secrets")
        if secrets is not None:
            for leaf in _leaves(secrets):
                assert isinstance(leaf, dict) and set(leaf) == {"secure"}, f"{stack}: plain secret in stack file"
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert not re.search(r"(?i)(password|token)\s*:\s*(?!secure)[^\s{#]", text), stack


def _leaves(value):
    if isinstance(value, dict) and set(value) != {"secure"}:
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def test_project_file_runs_python_with_pip_in_a_venv():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "vault-platform"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    makefile = (ROOT / "Makefile").read_text()
    assert "VENV ?= venv" in makefile


def test_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r "):
                continue
            assert re.match(r"^[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][A-Za-z0-9.]*$", line), f"{name}: {line}"


def test_every_imported_third_party_package_is_a_runtime_requirement():
    wanted = {re.split(r"[=\[]", line)[0].lower().replace("-", "_")
              for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    imported = set()
    # The program, and the migration command that ships beside it.
    for path in [ROOT / "__main__.py", *(ROOT / "components").glob("*.py"), *(ROOT / "migration").glob("*.py")]:
        for match in re.finditer(r"^(?:from|import) ([a-z_][a-z0-9_]*)", path.read_text(), re.M):
            imported.add(match.group(1))
    assert {"boto3", "requests"} <= imported
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in ("components", "migration")}
    assert third_party <= wanted, third_party - wanted


def test_workflows_pass_actionlint():
    actionlint = shutil.which("actionlint") or str(ROOT / ".tools/bin/actionlint")
    assert Path(actionlint).exists(), "actionlint missing: `make tools` installs it"
    result = subprocess.run([actionlint, "-no-color"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_do_what_the_project_promises():
    wf = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / ".github/workflows").glob("*.yml")}
    assert set(wf) >= {"test", "preview", "deploy"}
    assert "pull_request" in wf["test"][True]
    test_steps = [s.get("run", "") for s in wf["test"]["jobs"]["test"]["steps"]]
    assert any("make test" in r for r in test_steps)
    for job in ("dev", "prod"):
        steps = wf["preview"]["jobs"][job]["steps"]
        action = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))
        assert action["with"]["command"] == "preview" and action["with"]["comment-on-pr"] is True
        assert action["with"]["stack-name"] == job
    assert wf["preview"]["jobs"]["prod"]["environment"] == "production-preview"
    assert wf["deploy"][True]["push"]["branches"] == ["main"]
    assert wf["deploy"]["jobs"]["prod"]["environment"] == "production"
    assert wf["deploy"]["jobs"]["prod"]["needs"] == "dev"
    assert any("make up" in s.get("run", "") for s in wf["deploy"]["jobs"]["dev"]["steps"])


def test_python_code_passes_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_leads_with_deploying_dev_the_first_login_and_the_tests():
    readme = (ROOT / "README.md").read_text()
    first_blocks = re.findall(r"```(?:sh|bash)?[^\n]*\n(.*?)```", readme, re.S)[:3]
    assert "make up" in first_blocks[0]
    assert "vault status" in first_blocks[1] and "vault kv get" in first_blocks[1]
    assert first_blocks[2].strip() == "make test"
    sections = re.findall(r"^## (.+)$", readme, re.M)
    assert sections[:4] == ["Deploy dev", "First login", "Run the tests", "Where the rest is"]
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci


def test_the_config_reference_matches_the_model():
    sys.path.insert(0, str(ROOT / "scripts"))
    import config_reference

    page = (ROOT / "docs" / "config-reference.md").read_text()
    assert config_reference.reference() in page, "run `python scripts/config_reference.py --write`"
    assert "docs/config-reference.md" in (ROOT / "README.md").read_text()


def _shellcheck(shell: str, scripts: list[Path]) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: `make test` installs it (apt-get install shellcheck)"
    proc = subprocess.run([shellcheck, "-s", shell, *map(str, scripts)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_in_images_are_posix_and_shellcheck_clean():
    # They run under the Vault image's busybox sh and the AWS CLI image's sh: POSIX only.
    scripts = [ROOT / "scripts" / "backup.sh", ROOT / "scripts" / "restore.sh"]
    _shellcheck("sh", scripts)
    for script in scripts:
        assert script.read_text().startswith("#!/bin/sh\n"), script.name
        assert os.access(script, os.X_OK), script.name


def test_tool_scripts_are_shellcheck_clean():
    scripts = sorted({*ROOT.glob("tools/**/*.sh"), ROOT / ".ci" / "run"})
    assert ROOT / "tools" / "vault-server" / "build.sh" in scripts
    assert ROOT / "tools" / "lib" / "go-build.sh" in scripts
    _shellcheck("bash", scripts)
    for script in scripts:
        assert script.read_text().startswith("#!/usr/bin/env bash\n"), script.name


def test_composite_action_steps_are_shellcheck_clean(tmp_path):
    # actionlint checks the workflows' run steps, not those of our own composite actions.
    scripts = []
    for action in sorted((ROOT / ".github/actions").glob("*/action.yml")):
        for i, step in enumerate(yaml.safe_load(action.read_text())["runs"]["steps"]):
            if "run" in step:
                assert step.get("shell") == "bash", f"{action.parent.name} step {i}"
                script = tmp_path / f"{action.parent.name}-{i}.sh"
                script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
                scripts.append(script)
    assert scripts
    _shellcheck("bash", scripts)


def _reaches_prod(job: dict, workflow: dict) -> list[str]:
    """What in a job could read prod: secrets other than GITHUB_TOKEN, an OIDC token, a passphrase."""
    text = yaml.safe_dump(job)
    found = [m for m in re.findall(r"secrets\.([A-Za-z0-9_]+)", text) if m != "GITHUB_TOKEN"]
    permissions = job.get("permissions", workflow.get("permissions")) or {}
    if isinstance(permissions, dict) and permissions.get("id-token") == "write":
        found.append("id-token: write")
    return found


def test_no_pull_request_job_reaches_prod_without_a_reviewed_environment():
    """A pull_request run uses the branch's own workflow files: whoever can push a branch decides
    what it does. Only a job in an environment with required reviewers may hold prod access."""
    checked = 0
    for path in (ROOT / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        on = workflow[True]
        triggers = on if isinstance(on, dict) else dict.fromkeys([on] if isinstance(on, str) else on)
        if not {"pull_request", "pull_request_target"} & set(triggers):
            continue
        assert "pull_request_target" not in triggers, f"{path.name}: pull_request_target runs with secrets"
        for name, job in workflow["jobs"].items():
            access = _reaches_prod(job, workflow)
            if access:
                checked += 1
                assert job.get("environment") in ("production-preview",), f"{path.name}:{name} holds {access}"
            assert "PULUMI_CONFIG_PASSPHRASE" not in yaml.safe_dump(job) or name == "dev", f"{path.name}:{name}"
    assert checked >= 1


PROD_JOBS = {"preview": "previewer", "deploy": "deployer", "drift": "drift", "restore": "restore",
             "migrate": "migration"}


def _workflows() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / ".github/workflows").glob("*.yml")}


def test_prod_jobs_use_a_kms_secrets_provider_and_log_in_with_tokens_the_program_mints():
    from components.render import deploy_identity as ident
    from components.resources.bootstrap import JWT_ENV, ROLE_ENV

    assert {ident.DEPLOYER_POLICY, ident.PREVIEWER_POLICY, ident.DRIFT_ROLE, ident.RESTORE_ROLE,
            ident.MIGRATION_ROLE} == set(PROD_JOBS.values())
    workflows = _workflows()
    for name, role in PROD_JOBS.items():
        job = workflows[name]["jobs"]["prod"]
        text = yaml.safe_dump(job)
        assert "PULUMI_CONFIG_PASSPHRASE" not in text
        # The program mints the job's GitHub OIDC token itself whenever it logs in (vault_http's
        # _github_oidc_token): the job may request one, and hands no token over.
        assert job["permissions"]["id-token"] == "write", name
        assert job["env"][ROLE_ENV] == role, name
        assert any(s.get("uses") == "./.github/actions/prod-access" for s in job["steps"]), name
    everything = "\n".join(p.read_text() for p in [*(ROOT / ".github").rglob("*.yml")])
    # Nothing is handed from step to step: no token in GITHUB_ENV, no GitHub token passed on.
    assert JWT_ENV not in everything and "GITHUB_ENV" not in everything
    assert "ACTIONS_ID_TOKEN_REQUEST" not in everything
    # The jobs that run a command with a token get it from the same login, in the step that uses it.
    for name in ("restore", "migrate"):
        run = "\n".join(s.get("run", "") for s in workflows[name]["jobs"]["prod"]["steps"])
        assert "VAULT_TOKEN=$(venv/bin/python scripts/ci_vault_login.py" in run and "::add-mask::$VAULT_TOKEN" in run


def _third_party_uses() -> list[tuple[str, str, str]]:
    """(file, action, ref and comment) of every `uses:` that is not a local action."""
    found = []
    for path in sorted([*(ROOT / ".github").rglob("*.yml")]):
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*-?\s*uses:\s*(\S+?)@(\S+)(.*)$", line)
            if match and not match.group(1).startswith("./"):
                found.append((path.name, match.group(1), match.group(2) + match.group(3)))
    return found


def test_third_party_actions_are_pinned_by_commit_with_the_release_named():
    uses = _third_party_uses()
    assert len({action for _, action, _ in uses}) >= 7
    for name, action, ref in uses:
        assert re.fullmatch(r"[0-9a-f]{40}\s+# v\d+\.\d+\.\d+", ref), f"{name}: {action}@{ref}"
    # One release of each action everywhere.
    pins = {}
    for _, action, ref in uses:
        pins.setdefault(action, set()).add(ref.split()[0])
    assert all(len(shas) == 1 for shas in pins.values()), pins


def test_jobs_with_credentials_install_hashed_packages_before_any_credential():
    sys.path.insert(0, str(ROOT / "scripts"))
    import lock_requirements

    assert lock_requirements.check() == []
    workflows = _workflows()
    checked = 0
    for name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            steps = job.get("steps", [])
            installs = [i for i, s in enumerate(steps) if "pip install" in s.get("run", "")]
            for i in installs:
                for line in steps[i]["run"].splitlines():
                    if "pip install" in line:
                        assert "--require-hashes" in line and ".lock.txt" in line, f"{name}:{job_name}: {line}"
            access = [i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/prod-access"]
            if access:
                checked += 1
                assert installs and max(installs) < min(access), f"{name}:{job_name} installs after credentials"
                later = [s.get("run", "") for s in steps[min(access):]]
                assert not any("pip install" in r or "make " in r for r in later), f"{name}:{job_name}"
    assert checked == len(PROD_JOBS)


def test_the_deploy_role_is_bound_to_main_and_the_reviewed_environment():
    """AWS, GitHub and Vault each refuse a deploy from another branch or environment; docs/deploy-identity.md gives
    the AWS trust and the GitHub settings, checked here against the stack's own deploy settings."""
    from components.render import deploy_identity as ident

    prod = load_stack("prod")
    config = prod.deploy.jwt.github
    repository = config.repository
    deploy_job = _workflows()["deploy"]["jobs"]["prod"]
    assert deploy_job["environment"] == config.deploy_environment
    assert deploy_job["if"] == f"github.ref == '{config.deploy_ref}'"
    for workflow, environment in (("drift", config.drift_environment), ("restore", config.restore_environment),
                                  ("migrate", config.migration_environment)):
        job = _workflows()[workflow]["jobs"]["prod"]
        assert job["environment"] == environment and job["if"] == f"github.ref == '{config.deploy_ref}'", workflow
    assert _workflows()["preview"]["jobs"]["prod"]["environment"] == config.preview_environment

    readme = (ROOT / "docs" / "deploy-identity.md").read_text()
    trusts = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", readme, re.S)
              if "AssumeRoleWithWebIdentity" in block]
    assert len(trusts) == 2
    deploy, preview = (t["Statement"][0]["Condition"] for t in trusts)
    key = "token.actions.githubusercontent.com"
    assert deploy == {"StringEquals": {
        f"{key}:aud": "sts.amazonaws.com",
        f"{key}:sub": f"repo:{repository}:environment:{config.deploy_environment}:ref:{config.deploy_ref}"}}
    assert preview["StringEquals"] == {f"{key}:aud": "sts.amazonaws.com"}
    assert sorted(preview["StringLike"][f"{key}:sub"]) == sorted([
        f"repo:{repository}:environment:{config.preview_environment}:ref:refs/pull/*",
        f"repo:{repository}:environment:{config.drift_environment}:ref:{config.deploy_ref}"])
    # The subject carries the ref only with the repository's customization, which the page gives.
    assert "include_claim_keys[]=ref" in readme and "actions/oidc/customization/sub" in readme
    for environment, reviewers in ((config.deploy_environment, "yes"), (config.drift_environment, "no"),
                                   (config.restore_environment, "yes"), (config.migration_environment, "yes")):
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{environment}` |"))
        assert row.split("|")[2].strip().startswith(reviewers) and "`main` only" in row, row
    # Vault binds the same: every role but the preview's to the ref, every role to the repository.
    roles = {r.name: r for a in ident.jwt_auths(prod) for r in a.roles}
    for name in (ident.DEPLOYER_POLICY, ident.DRIFT_ROLE, ident.RESTORE_ROLE, ident.MIGRATION_ROLE):
        assert roles[name].bound_claims["ref"] == config.deploy_ref, name
    assert all(r.bound_claims["repository"] == repository for r in roles.values())


def test_the_drift_check_runs_daily_as_drift_and_fails_loudly():
    workflow = _workflows()["drift"]
    assert "schedule" in workflow[True] and workflow[True]["schedule"][0]["cron"]
    job = workflow["jobs"]["prod"]
    runs = [s.get("run", "") for s in job["steps"]]
    check = next(r for r in runs if "pulumi preview" in r)
    for flag in ("--stack prod", "--refresh", "--run-program", "--expect-no-changes"):
        assert flag in check
    alarm = next(s for s in job["steps"] if "gh issue create" in s.get("run", ""))
    assert alarm["if"] == "failure()" and job["permissions"]["issues"] == "write"
    # It changes nothing: no `pulumi up`, and the preview role, never the deploy role.
    assert not any("pulumi up" in r for r in runs) and "AWS_DEPLOY_ROLE_ARN" not in yaml.safe_dump(job)


def _make_stack(tmp_path, stack: str, provider: str | None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`make stack` with a stand-in `pulumi` that has no stack yet and logs what it is asked."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    log = tmp_path / "pulumi.log"
    (fake / "pulumi").write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1 $2" = "stack select" ] && exit 1\nexit 0\n')
    (fake / "pulumi").chmod(0o755)
    venv = tmp_path / "venv"
    venv.mkdir(exist_ok=True)
    (venv / ".installed").touch()
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PULUMI_BACKEND_URL": f"file://{tmp_path}/state"}
    env.pop("PULUMI_SECRETS_PROVIDER", None)
    args = ["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", "stack", f"STACK={stack}"]
    if provider:
        args.append(f"PULUMI_SECRETS_PROVIDER={provider}")
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    return proc, log.read_text().splitlines() if log.exists() else []


def test_a_new_prod_stack_gets_a_kms_secrets_provider_never_a_passphrase(tmp_path):
    proc, calls = _make_stack(tmp_path, "prod", None)
    assert proc.returncode != 0 and "PULUMI_SECRETS_PROVIDER=awskms://" in proc.stderr
    assert not any(c.startswith("stack init") for c in calls)
    kms = "awskms://alias/vault-platform-state?region=eu-west-1"
    proc, calls = _make_stack(tmp_path, "prod", kms)
    assert proc.returncode == 0, proc.stderr
    assert f"stack init prod --secrets-provider {kms}" in calls
    # The local dev stack keeps its passphrase.
    proc, calls = _make_stack(tmp_path, "dev", None)
    assert proc.returncode == 0, proc.stderr
    assert "stack init dev" in calls


def _make_teardown(tmp_path, export: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`make teardown` with a stand-in `pulumi` whose stack exports ``export`` and that logs what it is
    asked (with the tear-down switch it saw)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    log = tmp_path / "pulumi.log"
    (tmp_path / "export.json").write_text(export)
    (fake / "pulumi").write_text(
        f'#!/bin/sh\necho "${{{TEARDOWN_ENV}:-}} $*" >> {log}\n'
        f'[ "$1 $2" = "stack export" ] && cat {tmp_path / "export.json"}\n'
        '[ "$1 $2" = "stack output" ] && exit 1\nexit 0\n')
    (fake / "pulumi").chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / ".installed").touch()
    (venv / "bin" / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PULUMI_BACKEND_URL": f"file://{tmp_path}/state"}
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", "teardown", "STACK=dev"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return proc, [line.strip() for line in log.read_text().splitlines()]


def test_make_teardown_of_a_stack_holding_nothing_does_nothing(tmp_path):
    """A second teardown: `destroy --run-program` on an empty stack would register the program's
    components and keep them in the state (as make e2e's second teardown showed), so it is not run."""
    proc, calls = _make_teardown(tmp_path, json.dumps({"version": 3, "deployment": {"resources": []}}))
    assert proc.returncode == 0, proc.stderr
    assert "holds nothing; nothing to tear down" in proc.stdout
    assert not [c for c in calls if "destroy" in c or "unprotect" in c], calls


@pytest.mark.parametrize("export", [json.dumps({"deployment": {"resources": [{"urn": "urn:pulumi:dev::x"}]}}),
                                    "not json: the export failed"])
def test_make_teardown_of_a_stack_holding_resources_destroys_them(tmp_path, export):
    proc, calls = _make_teardown(tmp_path, export)
    assert proc.returncode == 0, proc.stderr
    assert "state unprotect --all --yes --stack dev" in calls
    assert "1 destroy --yes --stack dev --run-program" in calls, calls
