"""The labels every object the platform makes carries (Kubernetes' recommended app.kubernetes.io set)."""

from __future__ import annotations

PART_OF = "vault-platform"


def platform_labels(*, name: str | None = None, instance: str | None = None, component: str | None = None,
                    managed: bool = True) -> dict[str, str]:
    """``app.kubernetes.io/part-of: vault-platform``, ``managed-by: pulumi`` unless ``managed`` is
    off (an object another controller writes from a template), and whichever of name, instance and
    component are given."""
    labels = {f"app.kubernetes.io/{key}": value
              for key, value in (("name", name), ("instance", instance), ("component", component)) if value}
    labels["app.kubernetes.io/part-of"] = PART_OF
    if managed:
        labels["app.kubernetes.io/managed-by"] = "pulumi"
    return labels
