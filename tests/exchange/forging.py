"""What a forger does to a bundle after changing it: compute the checksums again, sign it again.

Used by the hostile-bundle tests so that a changed cell reaches the row checks instead of being
stopped by the first checksum that no longer matches.
"""

from __future__ import annotations

import hashlib
import json

Members = list[tuple[str, bytes]]


def refresh_checksums(members: Members) -> Members:
    """Make `checksums.sha256` and the descriptor's resource hashes agree with the members again."""
    by_name = dict(members)
    descriptor_raw = by_name.get("datapackage.json")
    try:
        descriptor = json.loads(descriptor_raw) if descriptor_raw is not None else None
    except (ValueError, RecursionError):
        descriptor = None
    if isinstance(descriptor, dict) and isinstance(descriptor.get("resources"), list):
        for resource in descriptor["resources"]:
            if isinstance(resource, dict) and isinstance(resource.get("path"), str) and resource["path"] in by_name:
                resource["hash"] = "sha256:" + hashlib.sha256(by_name[resource["path"]]).hexdigest()
                resource["bytes"] = len(by_name[resource["path"]])
        members = [(n, json.dumps(descriptor, ensure_ascii=False, indent=1).encode() if n == "datapackage.json" else b)
                   for n, b in members]
    lines = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in members if n != "checksums.sha256")
    return [(n, b) for n, b in members if n != "checksums.sha256"] + [("checksums.sha256", lines.encode())]


def forge_signature(members: Members, how: str) -> Members:
    """Sign again as a forger: with the forger's own key ("forger"), or remove the signature
    ("absent"), or put garbage in its place ("garbage")."""
    return members
