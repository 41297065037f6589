"""Write a one-layer OCI image archive from a folder, for `ctr images import` (or `kind load
image-archive`). Standard library only: the cluster's images are built without Docker.

    python3 mkimage.py --rootfs DIR --ref localhost:5000/hashicorp/vault:1.21.4 --out vault.tar \
        --entrypoint '["/usr/local/bin/docker-entrypoint.sh"]' --env PATH=/bin --owner home/vault=100:1000

The layer is reproducible: entries sorted, times zeroed, owned by root unless --owner says otherwise
(a path and everything below it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import tarfile
import tempfile


def layer(rootfs: str, owners: dict[str, tuple[int, int]], out) -> None:
    def owner_of(rel: str) -> tuple[int, int]:
        best = ""
        for prefix in owners:
            if (rel == prefix or rel.startswith(prefix + "/")) and len(prefix) > len(best):
                best = prefix
        return owners[best] if best else (0, 0)

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                entries.append(os.path.join(dirpath, name))
        for path in sorted(entries, key=lambda p: os.path.relpath(p, rootfs)):
            rel = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=rel)
            info.uid, info.gid = owner_of(rel)
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def blob(directory: str, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(directory, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rootfs", required=True)
    p.add_argument("--ref", required=True, help="the full reference, registry included")
    p.add_argument("--out", required=True)
    p.add_argument("--entrypoint", default="null", help="JSON list")
    p.add_argument("--cmd", default="null", help="JSON list")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--workdir", default="/")
    p.add_argument("--owner", action="append", default=[], help="PATH=UID:GID (relative to the rootfs)")
    a = p.parse_args(argv)

    owners = {}
    for item in a.owner:
        path, _, ids = item.partition("=")
        uid, _, gid = ids.partition(":")
        owners[path.strip("/")] = (int(uid), int(gid))
    name, _, tag = a.ref.rpartition(":")
    if not name or "/" in tag:
        p.error(f"--ref {a.ref!r} has no tag")

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as work:
        os.makedirs(os.path.join(work, "blobs", "sha256"))
        # The layer is written to a file first: the Vault binary alone is hundreds of MiB.
        layer_path = os.path.join(work, "layer.tar")
        with open(layer_path, "wb") as f:
            layer(a.rootfs, owners, f)
        sha = hashlib.sha256()
        with open(layer_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
        layer_digest = f"sha256:{sha.hexdigest()}"
        layer_size = os.path.getsize(layer_path)
        os.rename(layer_path, os.path.join(work, "blobs", "sha256", sha.hexdigest()))

        config = {
            "architecture": "amd64", "os": "linux",
            "config": {k: v for k, v in {
                "Entrypoint": json.loads(a.entrypoint), "Cmd": json.loads(a.cmd), "Env": a.env or None,
                "User": a.user or None, "WorkingDir": a.workdir}.items() if v is not None},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "tools/cluster/images/mkimage.py"}],
        }
        config_digest, config_size = blob(work, json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                        "size": layer_size}],
        }
        manifest_digest, manifest_size = blob(work, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                           "size": manifest_size, "platform": {"architecture": "amd64", "os": "linux"},
                           # containerd names the image by the first, other tools by the second.
                           "annotations": {"io.containerd.image.name": a.ref,
                                           "org.opencontainers.image.ref.name": tag}}],
        }
        with open(os.path.join(work, "index.json"), "w") as f:
            json.dump(index, f, sort_keys=True)
        with open(os.path.join(work, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

        tmp_out = a.out + ".tmp"
        with tarfile.open(tmp_out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            blob_dir = os.path.join("blobs", "sha256")
            blobs = sorted(os.path.join(blob_dir, d) for d in os.listdir(os.path.join(work, blob_dir)))
            for rel in ["oci-layout", "index.json", *blobs]:
                info = tar.gettarinfo(os.path.join(work, rel), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.mode = stat.S_IMODE(info.mode)
                with open(os.path.join(work, rel), "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp_out, a.out)
    print(f"{a.ref} {manifest_digest} {layer_size // (1 << 20)} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
