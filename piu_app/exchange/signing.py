"""Signed bundles: this city's Ed25519 key, the manifest of what a city shares, the keys pinned for peers.

* Each instance has one Ed25519 key pair (`cryptography`, never hand-written crypto). The private
  key is a file of the data directory (mode 0600, written atomically), never in the database, a
  bundle or a backup. Its fingerprint (SHA-256 of the raw public key, first 20 bytes, as groups of
  four hex digits) is what officials read to each other by phone.
* A bundle carries `signature/manifest.tsv`: one line per record of the producer's own (table,
  uid, version, fingerprint of the record's bundle row and join rows), signed by the producer; and,
  for records it relays, the last manifest it received from each origin (`signature/relayed/`),
  with the origin's signature. `signature/bundle.sig` signs `checksums.sha256`, which lists every
  other member: one signature covers the whole archive.
* The first signed bundle of a city pins its key (trust on first use, at apply); a later bundle of
  that city must be signed by the same key. See docs/bundle-format.md, "Signature".
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from .. import transaction_files
from ..database import fsync_dir
from ..models import ChangeLog, PeerKey, SignedManifest, db, utcnow

ALGORITHM = "ed25519"
KEY_FILE = "signing_key.pem"
BUNDLE_SIGNATURE = "signature/bundle.sig"   # signs checksums.sha256; the one member it cannot list
MANIFEST = "signature/manifest.tsv"
RELAYED_DIR = "signature/relayed/"
MANIFEST_HEADER = "piu-manifest\t1"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_ORIGIN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


# --------------------------------------------------------------------------- this instance's key

@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_key: str       # the 32 raw bytes, hex
    fingerprint: str

    def sign(self, data: bytes) -> str:
        """Return the hex Ed25519 signature of `data`."""
        return self.private.sign(data).hex()


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def instance_key(data_dir: Path) -> SigningKey:
    """Return this instance's key pair, made on first use (set-up, or the first export of an
    instance made by an earlier release): written under a temporary name, fsynced, then linked to
    its final name, so that two first uses at once agree on one key and a crash leaves no half key."""
    path = key_file(data_dir)
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # unlike a rename, never replaces a key another thread just made
            except FileExistsError:
                pass
            with contextlib.suppress(OSError):  # the key is written; its folder entry is the system's
                fsync_dir(data_dir)
        finally:
            tmp.unlink(missing_ok=True)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    return SigningKey(private, public, fingerprint(public))


def fingerprint(public_key: str) -> str:
    """Return the short fingerprint of a hex public key: 10 groups of 4 hex digits."""
    digest = hashlib.sha256(bytes.fromhex(public_key)).hexdigest()[:40].upper()
    return " ".join(digest[i:i + 4] for i in range(0, 40, 4))


def is_public_key(text: Any) -> bool:
    return isinstance(text, str) and _HEX_KEY.fullmatch(text) is not None


def verify(public_key: str, data: bytes, signature: str) -> bool:
    """Return True when `signature` (hex) is the signature of `data` by `public_key` (hex)."""
    if not is_public_key(public_key) or not isinstance(signature, str) or not _HEX_SIGNATURE.fullmatch(signature):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- record fingerprints

def row_fingerprint(row: Sequence[str]) -> str:
    """SHA-256 of a record's bundle row, its first 16 bytes in hex (128 bits: no one can make other
    content with the same fingerprint; a manifest of 400 000 lines stays 30 MB): the cells in column
    order joined by NUL (NUL, refused in a bundle's cells, cannot blur the boundary between two cells)."""
    return hashlib.sha256("\x00".join(row).encode()).hexdigest()[:32]


def children_fingerprint(rows: Iterable[Sequence[str]]) -> str:
    """SHA-256 (hex) of a record's join rows of one table (without the owner's uid), in any order: the
    rows' cells joined by NUL, rows sorted, then joined by NUL too (the rows of one table all have
    the same number of cells, so the cells still split back into the same rows). 16 bytes, in hex."""
    return hashlib.sha256("\x00".join(sorted(["\x00".join(r) for r in rows])).encode()).hexdigest()[:32]


NO_CHILDREN = children_fingerprint(())


def record_fingerprint(row: str, children: Sequence[str]) -> str:
    """The fingerprint a manifest lists for a record: its row's, or, for a record type with join
    tables, the first 16 bytes (hex) of the SHA-256 of its row's and its join rows' fingerprints,
    in the order of `bf.RecordTable.children` (NO_CHILDREN for a table where it has none)."""
    if not children:
        return row
    return hashlib.sha256((row + "".join(children)).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- manifests

@dataclass
class Manifest:
    """A city's list of its records: (table, uid) -> (version, `record_fingerprint`)."""

    origin: str
    created: str
    level: str
    records: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)


def manifest_head(origin: str, created: str, level: str) -> bytes:
    return f"{MANIFEST_HEADER}\norigin\t{origin}\ncreated\t{created}\nlevel\t{level}\n\n".encode()


def manifest_message(sha256_hex: str) -> bytes:
    """What a manifest's signature signs: its SHA-256, which checksums.sha256 already lists, so that
    neither the signer nor the verifier holds a large manifest in memory to sign or check it."""
    return f"piu-manifest-sha256:{sha256_hex}".encode()


def parse_manifest(data: bytes, *, records: bool = True) -> Manifest:
    """Read a manifest (its head only unless `records`); ValueError when it is not one."""
    text = data.decode("utf-8") if records else data[:4096].decode("utf-8", "replace")
    head, sep, body = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != MANIFEST_HEADER or len(lines) != 4:
        raise ValueError("not a manifest")
    fields = dict(line.split("\t", 1) for line in lines[1:] if "\t" in line)
    if set(fields) != {"origin", "created", "level"}:
        raise ValueError("not a manifest")
    manifest = Manifest(fields["origin"], fields["created"], fields["level"])
    if records:
        found = manifest.records
        for line in body.splitlines():
            table, uid, version, fp = line.split("\t")
            found[(table, uid)] = (int(version), fp)
    return manifest


def relayed_path(origin: str) -> str:
    return f"{RELAYED_DIR}{origin}.tsv"


def is_origin_code(text: Any) -> bool:
    return isinstance(text, str) and _ORIGIN.fullmatch(text) is not None


# --------------------------------------------------------------------------- pinned keys, kept manifests

def pinned_key(origin: str) -> PeerKey | None:
    """Return the key pinned for a city, or None (never pinned, or forgotten by an administrator)."""
    peer = db.session.scalars(select(PeerKey).filter_by(origin_instance=origin)).first()
    return peer if peer is not None and peer.public_key else None


def pin(origin: str, city_name: str, public_key: str, *, username: str) -> PeerKey:
    """Pin a city's key (first signed bundle applied, or the first after an administrator forgot it)."""
    peer = db.session.scalars(select(PeerKey).filter_by(origin_instance=origin)).first()
    if peer is None:
        peer = PeerKey(origin_instance=origin, previous_keys=[])
        db.session.add(peer)
    peer.city_name, peer.public_key, peer.fingerprint = city_name[:200], public_key, fingerprint(public_key)
    peer.pinned_at, peer.pinned_by = utcnow(), username[:80]
    db.session.add(ChangeLog(record_type="peer_key", record_uid=origin[:36], record_title=city_name[:300],
                             action="pin", username=username[:80], changes={"fingerprint": ["", peer.fingerprint]}))
    return peer


def forget(peer: PeerKey, *, username: str) -> None:
    """Unpin a city's key on purpose (the city made a new one): its next signed bundle pins anew.
    The key is kept in `previous_keys`, and the change logged."""
    old = peer.fingerprint
    peer.previous_keys = [*(peer.previous_keys or []), {
        "public_key": peer.public_key, "fingerprint": peer.fingerprint,
        "pinned_at": peer.pinned_at.isoformat() if peer.pinned_at else "",
        "replaced_at": utcnow().isoformat(), "replaced_by": username[:80]}]
    peer.public_key = peer.fingerprint = ""
    db.session.add(ChangeLog(record_type="peer_key", record_uid=peer.origin_instance[:36],
                             record_title=peer.city_name[:300], action="unpin", username=username[:80],
                             changes={"fingerprint": [old, ""]}))


def keep_manifest(folder: Path, origin: str, public_key: str, signature: str, head: Manifest, sha256: str,
                  copy: Callable[[IO[bytes]], None], *, authoritative: bool) -> None:
    """Keep a city's signed manifest to relay its records, if it is newer than the one kept.

    The manifest itself (30 MB at 100 000 records) is a file of the data directory,
    `manifests/<origin>.tsv`, written by `copy` under a temporary name, checked against `sha256`,
    then renamed; the database keeps its head and SHA-256 (`SignedManifest.manifest`), so that
    keeping it costs no memory. `authoritative`: verified with the city's pinned key (or from its
    own signed bundle); it then also replaces a manifest kept under another key (one a relay
    carried before the city was met)."""
    kept = db.session.scalars(select(SignedManifest).filter_by(origin_instance=origin)).first()
    if kept is not None:
        same_key = kept.public_key == public_key
        newer = head.created > _created_of(kept.manifest)
        if not ((authoritative and (not same_key or newer)) or (same_key and newer)):
            return  # a re-import: the manifest kept is the same, and is not read again
    folder.mkdir(parents=True, exist_ok=True)
    # Named by its content, so that the file the database names now stays until this transaction
    # commits, and the new one goes if it does not (transaction_files).
    target = _manifest_path(folder, origin, sha256)
    existed = target.is_file()  # the same manifest, kept before: not this transaction's to remove
    tmp = folder / f".{origin}.{os.getpid()}.{os.urandom(4).hex()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            hashing = _Hashing(raw)
            copy(hashing)  # type: ignore[arg-type]
            raw.flush()
            os.fsync(raw.fileno())
        if hashing.digest.hexdigest() != sha256:
            return  # not what was checked: keep nothing
        os.replace(tmp, target)
        with contextlib.suppress(OSError):
            fsync_dir(folder)
    finally:
        tmp.unlink(missing_ok=True)
    if not existed:
        transaction_files.remove_on_rollback([target])
    old_sha256 = kept.manifest.rpartition("sha256\t")[2].strip() if kept is not None else ""
    if re.fullmatch(r"[0-9a-f]{64}", old_sha256) and old_sha256 != sha256:
        transaction_files.remove_after_commit([_manifest_path(folder, origin, old_sha256)])
    if kept is None:
        kept = SignedManifest(origin_instance=origin)
        db.session.add(kept)
    kept.public_key, kept.signature, kept.received_at = public_key, signature, utcnow()
    kept.manifest = manifest_head(head.origin, head.created, head.level).decode() + f"sha256\t{sha256}\n"


class _Hashing:
    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest = out, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def _created_of(text: str) -> str:
    for line in text.split("\n", 4)[:4]:
        if line.startswith("created\t"):
            return line.partition("\t")[2]
    return ""


def _manifest_path(folder: Path, origin: str, sha256: str) -> Path:
    """Where a kept manifest lives: `manifests/<origin>-<first 16 hex of its SHA-256>.tsv` (the
    origin is an instance code and the digest hex, checked before: never a path from outside)."""
    if not is_origin_code(origin) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not an instance code and a SHA-256")  # checked by the callers: a defect if seen
    return folder / f"{origin}-{sha256[:16]}.tsv"


def kept_file(folder: Path, kept: SignedManifest) -> Path | None:
    """Return the file of a kept manifest, or None when it is missing or is not the one kept (a
    database restored from a backup, a file changed by hand): its records then travel unproven."""
    sha256 = kept.manifest.rpartition("sha256\t")[2].strip()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return None
    path = _manifest_path(folder, kept.origin_instance, sha256)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return path if digest.hexdigest() == sha256 else None


def kept_manifests(origins: Iterable[str]) -> list[SignedManifest]:
    wanted = sorted(set(origins))
    if not wanted:
        return []
    return list(db.session.scalars(select(SignedManifest).where(SignedManifest.origin_instance.in_(wanted))
                                   .order_by(SignedManifest.origin_instance)))


# --------------------------------------------------------------------------- what a bundle carries

@dataclass
class CarriedManifest:
    """The manifest of another city that a bundle carries to prove the records it relays."""

    origin: str
    public_key: str
    signature: str
    path: str          # read only when the bundle relays records of that city
    sha256: str        # as checksums.sha256 lists it (checked)
    text: bytes = b""


@dataclass
class BundleSignature:
    """The producer's signature of a bundle, checked: its key, its manifest, the manifests it carries."""

    public_key: str
    fingerprint: str
    manifest_signature: str
    manifest: Manifest  # its head only: the producer's own records need no check
    manifest_sha256: str
    relayed: dict[str, CarriedManifest] = field(default_factory=dict)


@dataclass
class RelayProof:
    """What proves the records of one origin that a bundle relays: `status` is verified (the
    origin's manifest, signed by its key pinned here), unverified (signed by a key carried by the
    relay, or no manifest at all, for a city whose key is not pinned here), missing (no manifest
    for a city whose key is pinned) or invalid (a signature that does not verify)."""

    origin: str
    status: str
    fingerprint: str = ""
    public_key: str = ""  # the key the manifest was checked with
    manifest: Manifest | None = None
    carried: CarriedManifest | None = None
