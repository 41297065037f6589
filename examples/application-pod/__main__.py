"""An application team's own program: one StackReference to vault-platform, one Deployment.

    cd examples/application-pod && pulumi stack init prod && pulumi up

It reads the ``applications`` output of the platform stack and takes its own entry: the pod
annotations and volumes the Vault Agent Injector needs (delivery injector or both) and the Secret the
External Secrets Operator keeps in sync (externalSecrets or both). Nothing here names a Vault path, a
role or a CA: the platform stack owns those, and a change there reaches this Deployment on its next
`pulumi up`.
"""

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
name = config.get("application") or "myapp"
platform = pulumi.StackReference(config.get("platformStack") or "organization/vault-platform/prod")
app = platform.require_output("applications").apply(lambda apps: apps[name])


def pod_spec(app: dict) -> dict:
    container: dict = {"name": name, "image": config.get("image") or "registry.example.com/myapp:1.4.2"}
    files = app.get("secretFiles") or {}
    if files:
        # The injector's files hold `export NAME='value'` lines: source them, then start the server.
        sourced = " && ".join(f". {path}" for path in sorted(files.values()))
        container["command"] = ["sh", "-c", f"{sourced} && exec /app/server"]
    if "externalSecret" in app:
        container["envFrom"] = [{"secretRef": {"name": app["externalSecret"]["secretName"]}}]
    return {"serviceAccountName": app["serviceAccount"], "volumes": app.get("podVolumes") or [],
            "containers": [container]}


labels = {"app.kubernetes.io/name": name}
deployment = k8s.apps.v1.Deployment(
    name,
    metadata={"name": name, "namespace": app["namespace"]},
    spec={
        "replicas": 2,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels, "annotations": app.apply(lambda a: a.get("podAnnotations") or {})},
            "spec": app.apply(pod_spec),
        },
    },
)
pulumi.export("deployment", deployment.metadata["name"])
