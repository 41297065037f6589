"""Where pods pull their images from. Pure.

Without a private registry every image is pulled as written. With one (``images.registry``), each
keeps its path and tag under it, the layout registry mirrors use: the registry host the reference
names (Docker Hub when it names none) is replaced, and Docker Hub's official images keep their
``library/`` path.
"""

from __future__ import annotations


def _has_registry(first: str) -> bool:
    """Whether a reference's first path component is a registry host (the container runtimes' rule)."""
    return "." in first or ":" in first or first == "localhost"


def pulled_from(reference: str, registry: str) -> str:
    """``reference`` (a repository, or an image with its tag or digest) as the pods pull it.

    >>> pulled_from("hashicorp/vault:1.21.4", "registry.example.com/mirror")
    'registry.example.com/mirror/hashicorp/vault:1.21.4'
    >>> pulled_from("postgres:16.6-alpine", "localhost:5000")
    'localhost:5000/library/postgres:16.6-alpine'
    """
    if not registry:
        return reference
    first, slash, rest = reference.partition("/")
    if slash and _has_registry(first):
        path = rest
    elif slash:
        path = reference
    else:
        path = f"library/{reference}"
    return f"{registry.rstrip('/')}/{path}"
