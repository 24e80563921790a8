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
        members = [(n, json.dumps(descriptor, ensure_ascii=False).encode() if n == "datapackage.json" else b)
                   for n, b in members]
    lines = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in members
                    if n not in ("checksums.sha256", "signature/bundle.sig"))  # what the signature covers
    return [(n, b) for n, b in members if n != "checksums.sha256"] + [("checksums.sha256", lines.encode())]


def forge_signature(members: Members, how: str) -> Members:
    """Sign again as a forger: with the forger's own key ("forger"), or remove the signature
    ("absent"), or put garbage in its place ("garbage")."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from piu_app.exchange import signing

    by_name = dict(members)
    try:
        descriptor = json.loads(by_name.get("datapackage.json", b""))
    except (ValueError, RecursionError):
        descriptor = None
    signature = descriptor.get("x-piu-signature") if isinstance(descriptor, dict) else None
    if not isinstance(signature, dict):
        return members  # nothing signed to forge
    if how == "absent":
        descriptor.pop("x-piu-signature")
        members = [(n, b) for n, b in members if not n.startswith("signature/")]
    elif how == "garbage":
        signature["manifest_signature"] = "ab" * 64
    else:
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        manifest = by_name.get(signing.MANIFEST)
        signature.update(public_key=public, fingerprint=signing.fingerprint(public))
        if manifest is not None:
            message = signing.manifest_message(hashlib.sha256(manifest).hexdigest())
            signature["manifest_signature"] = key.sign(message).hex()
    members = [(n, json.dumps(descriptor, ensure_ascii=False).encode() if n == "datapackage.json" else b)
               for n, b in members]
    members = refresh_checksums([(n, b) for n, b in members if n != signing.BUNDLE_SIGNATURE])
    if how == "absent":
        return members
    sums = dict(members)["checksums.sha256"]
    bundle_signature = key.sign(sums).hex() if how == "forger" else "cd" * 64
    return [*members, (signing.BUNDLE_SIGNATURE, bundle_signature.encode("ascii"))]
