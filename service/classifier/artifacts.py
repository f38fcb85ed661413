"""Classifier artifacts: one file holding a fitted scikit-learn estimator and its metadata.

The estimator is serialised with skops, never pickle: loading an artifact does not run
arbitrary code, and every type it would instantiate is checked against an allow-list
first (:data:`ALLOWED_MODULE_PREFIXES` and :data:`ALLOWED_TYPES`).

File format (a zip archive; the members are written in this order):

``metadata.json``
    ``{"format": "commentguard-artifact", "format_version": 1, "metadata": {...},
    "metadata_sha256": "...", "payload_sha256": "..."}`` where ``metadata`` is
    :class:`ArtifactMetadata`, ``metadata_sha256`` the sha256 of its canonical JSON and
    ``payload_sha256`` the sha256 of ``model.skops``.
``model.skops``
    The bytes of ``skops.io.dumps(estimator)``.
``signature``
    Only when saved with a ``signing_key``: the hex HMAC-SHA256, under that key, of
    ``metadata.json`` and ``model.skops`` together.

The digests catch accidental damage and naive edits; only the HMAC stops someone who
rewrites the digests too, so production artifacts should be signed.

Loading time grows with the number of Python objects in the estimator, not its bytes:
skops audits and rebuilds one node per object, about 10 microseconds each, so arrays of
millions of weights load in milliseconds while a 50,000-entry vocabulary dict takes
about a second.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeAlias

import sklearn
import skops
import skops.io

__all__ = [
    "ALLOWED_MODULE_PREFIXES",
    "ALLOWED_TYPES",
    "ArtifactError",
    "ArtifactMetadata",
    "CorruptArtifactError",
    "IncompatibleArtifactError",
    "JsonValue",
    "NotAnArtifactError",
    "SignatureError",
    "TamperedArtifactError",
    "UntrustedTypeError",
    "dump_artifact",
    "load_artifact",
    "load_artifact_bytes",
    "new_version_id",
    "save_artifact",
]

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None

FORMAT: Final = "commentguard-artifact"
FORMAT_VERSION: Final = 1
_METADATA_MEMBER: Final = "metadata.json"
_PAYLOAD_MEMBER: Final = "model.skops"
_SIGNATURE_MEMBER: Final = "signature"
_SIGNING_DOMAIN: Final = b"commentguard-artifact-v1\n"
_VERSION_ID: Final = re.compile(r"cg-\d{8}-\d{6}-[0-9a-f]{8}")
THRESHOLD_NAMES: Final = ("hold", "spam", "discard")

ALLOWED_MODULE_PREFIXES: Final = ("sklearn.", "numpy.", "scipy.sparse.", "service.classifier.")
"""Types and functions from these modules may be instantiated from an artifact (besides the
primitives and containers skops always trusts)."""

ALLOWED_TYPES: Final = frozenset(
    {
        # Containers and values that estimators hold (stop word sets, n-gram ranges,
        # partial tokenizers) and that skops does not trust by default.
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.frozenset",
        "builtins.range",
        "builtins.set",
        "builtins.slice",
        "collections.Counter",
        "collections.OrderedDict",
        "collections.defaultdict",
        "functools.partial",
    }
)
"""Types outside :data:`ALLOWED_MODULE_PREFIXES` that may be instantiated, named exactly."""

# Inside the allowed modules, names that touch files or the network: no estimator needs
# them, and a FunctionTransformer holding one would do I/O on whatever it is given.
_DENIED_PREFIXES: Final = (
    "numpy.load",
    "numpy.save",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "numpy.memmap",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "sklearn.datasets.",
    "sklearn.utils._testing",
    "service.classifier.artifacts.",
    "service.classifier.datasets.",
)


class ArtifactError(Exception):
    """An artifact was refused. Subclasses say why."""


class NotAnArtifactError(ArtifactError):
    """The path is missing, or is not a Commentguard classifier artifact at all."""


class CorruptArtifactError(ArtifactError):
    """The file is an artifact, but truncated or damaged, or its parts cannot be read."""


class TamperedArtifactError(ArtifactError):
    """A digest or the signature does not match: the file changed after it was saved
    (or, for the signature, the key is wrong)."""


class SignatureError(ArtifactError):
    """A signature was expected and is missing, or is present and no key was given."""


class UntrustedTypeError(ArtifactError):
    """The estimator would instantiate types outside the allow-list; ``types`` names them."""

    def __init__(self, message: str, types: list[str]) -> None:
        super().__init__(message)
        self.types = types


class IncompatibleArtifactError(ArtifactError):
    """The artifact was made by a scikit-learn (major.minor) or an artifact format this
    process cannot load faithfully."""


def new_version_id(now: datetime | None = None) -> str:
    """A fresh classifier version id, ``cg-YYYYMMDD-HHMMSS-<8 hex>`` (UTC time, then 32
    random bits so that two versions made in the same second differ)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"cg-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class ArtifactMetadata:
    """What is known about a trained classifier, saved beside it and returned on load.

    ``thresholds`` holds exactly ``hold``, ``spam`` and ``discard``, each in [0, 1] with
    hold <= spam <= discard; ``metrics`` holds finite numbers; ``notes`` holds anything
    JSON can (lists, not tuples, so that it round-trips equal). ``created_at`` is a UTC
    ISO 8601 timestamp. Construction raises ``ValueError`` on any violation.
    """

    version: str
    created_at: str
    sklearn_version: str
    skops_version: str
    skops_protocol: int
    training_size: int
    training_fingerprint: str
    metrics: dict[str, float]
    thresholds: dict[str, float]
    notes: dict[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _VERSION_ID.fullmatch(self.version):
            raise ValueError(f"version {self.version!r} is not cg-YYYYMMDD-HHMMSS-<8 hex>")
        try:
            created = datetime.fromisoformat(self.created_at)
        except ValueError:
            raise ValueError(f"created_at {self.created_at!r} is not ISO 8601") from None
        if created.utcoffset() != UTC.utcoffset(None):
            raise ValueError(f"created_at {self.created_at!r} is not in UTC")
        if self.training_size < 0:
            raise ValueError("training_size must be >= 0")
        for name, value in self.metrics.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"metric {name!r} must be a finite number, got {value!r}")
        if sorted(self.thresholds) != sorted(THRESHOLD_NAMES):
            raise ValueError(f"thresholds must be exactly {THRESHOLD_NAMES}, got {self.thresholds}")
        hold, spam, discard = (self.thresholds[name] for name in THRESHOLD_NAMES)
        if not 0.0 <= hold <= spam <= discard <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= hold <= spam <= discard <= 1: {self.thresholds}"
            )
        try:
            encoded = json.dumps(self.notes, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"notes must be JSON: {exc}") from None
        if json.loads(encoded) != self.notes:
            raise ValueError("notes must round-trip through JSON (use lists, not tuples)")

    @classmethod
    def create(
        cls,
        *,
        training_size: int,
        training_fingerprint: str,
        metrics: Mapping[str, float],
        thresholds: Mapping[str, float],
        notes: Mapping[str, JsonValue] | None = None,
        now: datetime | None = None,
    ) -> ArtifactMetadata:
        """Metadata for an estimator trained in this process: a new version id, the current
        UTC time, and the running scikit-learn and skops versions."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        return cls(
            version=new_version_id(moment),
            created_at=moment.isoformat(timespec="seconds"),
            sklearn_version=sklearn.__version__,
            skops_version=skops.__version__,
            skops_protocol=_running_skops_protocol(),
            training_size=training_size,
            training_fingerprint=training_fingerprint,
            metrics=dict(metrics),
            thresholds=dict(thresholds),
            notes=dict(notes or {}),
        )

    def to_dict(self) -> dict[str, JsonValue]:
        """The JSON form saved in the artifact."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactMetadata:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on missing or unknown keys
        and on invalid values."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
            raise ValueError(f"metadata keys differ: missing {missing}, unknown {unknown}")
        for name in ("metrics", "thresholds", "notes"):
            if not isinstance(data[name], dict):
                raise ValueError(f"{name} must be an object")
        for name in ("skops_protocol", "training_size"):
            if type(data[name]) is not int:
                raise ValueError(f"{name} must be an integer")
        text_fields = (
            "version",
            "created_at",
            "sklearn_version",
            "skops_version",
            "training_fingerprint",
        )
        for name in text_fields:
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be a string")
        return cls(**data)


def save_artifact(
    path: Path | str,
    estimator: Any,
    metadata: ArtifactMetadata,
    *,
    signing_key: bytes | None = None,
) -> None:
    """Write ``estimator`` and ``metadata`` to ``path`` as one artifact file, signed with
    HMAC-SHA256 when ``signing_key`` is given.

    The file is written to a temporary name and renamed into place, so that a reader never
    sees half an artifact. Raises ``ValueError`` when the metadata names another
    scikit-learn or skops than the running ones (the estimator was fitted here) or the key
    is empty, and ``TypeError`` when skops cannot serialise the estimator.
    """
    _write_atomically(Path(path), dump_artifact(estimator, metadata, signing_key=signing_key))


def dump_artifact(
    estimator: Any, metadata: ArtifactMetadata, *, signing_key: bytes | None = None
) -> bytes:
    """The bytes :func:`save_artifact` writes (for a database column, say); raises as it
    does."""
    if signing_key is not None and not signing_key:
        raise ValueError("signing_key must not be empty")
    if (metadata.sklearn_version, metadata.skops_version) != (
        sklearn.__version__,
        skops.__version__,
    ):
        raise ValueError(
            f"metadata names scikit-learn {metadata.sklearn_version} and skops "
            f"{metadata.skops_version}, but this process runs {sklearn.__version__} and "
            f"{skops.__version__}; build it with ArtifactMetadata.create()"
        )
    payload = skops.io.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    protocol = _payload_protocol(payload)
    if protocol != metadata.skops_protocol:
        raise ValueError(f"metadata names skops protocol {metadata.skops_protocol}, not {protocol}")
    meta_dict = metadata.to_dict()
    envelope = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": meta_dict,
        "metadata_sha256": _sha256(_canonical(meta_dict)),
        "payload_sha256": _sha256(payload),
    }
    meta_bytes = json.dumps(envelope, indent=2, sort_keys=True, ensure_ascii=False).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _write_member(archive, _METADATA_MEMBER, meta_bytes)
        _write_member(archive, _PAYLOAD_MEMBER, payload)
        if signing_key is not None:
            signature = _sign(signing_key, meta_bytes, payload)
            _write_member(archive, _SIGNATURE_MEMBER, signature.encode())
    return buffer.getvalue()


def load_artifact(
    path: Path | str, *, signing_key: bytes | None = None
) -> tuple[Any, ArtifactMetadata]:
    """Read an artifact written by :func:`save_artifact`: ``(estimator, metadata)``.

    With ``signing_key`` the artifact must be signed with that key; without one it must be
    unsigned (a signed artifact is not loaded unverified). Nothing from the payload is
    instantiated before the signature, the digests, the scikit-learn version and the
    types inside are checked. Raises a subclass of :class:`ArtifactError`:
    :class:`NotAnArtifactError`, :class:`CorruptArtifactError`,
    :class:`TamperedArtifactError`, :class:`SignatureError`,
    :class:`IncompatibleArtifactError` or :class:`UntrustedTypeError`.
    """
    path = Path(path)
    return _load(path, _read_file(path), signing_key)


def load_artifact_bytes(
    data: bytes, *, name: str = "<artifact>", signing_key: bytes | None = None
) -> tuple[Any, ArtifactMetadata]:
    """:func:`load_artifact` for an artifact held in memory (a database column); ``name``
    is what error messages call it. Same checks, same errors."""
    return _load(Path(name), data, signing_key)


def _load(path: Path, data: bytes, signing_key: bytes | None) -> tuple[Any, ArtifactMetadata]:
    meta_bytes, payload, signature = _read_members(path, data)
    _check_signature(path, meta_bytes, payload, signature, signing_key)
    envelope = _parse_envelope(path, meta_bytes)
    if not hmac.compare_digest(str(envelope.get("payload_sha256")), _sha256(payload)):
        raise TamperedArtifactError(f"{path}: the model payload does not match its sha256")
    meta_dict = envelope.get("metadata")
    if not isinstance(meta_dict, dict) or not hmac.compare_digest(
        str(envelope.get("metadata_sha256")), _sha256(_canonical(meta_dict))
    ):
        raise TamperedArtifactError(f"{path}: the metadata was edited after saving")
    try:
        metadata = ArtifactMetadata.from_dict(meta_dict)
    except (TypeError, ValueError) as exc:
        raise CorruptArtifactError(f"{path}: invalid metadata: {exc}") from None
    _check_sklearn_version(path, metadata)
    return _load_payload(path, payload), metadata


# --- reading -------------------------------------------------------------------------


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotAnArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NotAnArtifactError(f"{path}: is a directory, not an artifact file") from None


def _read_members(path: Path, data: bytes) -> tuple[bytes, bytes, bytes | None]:
    # save_artifact always writes metadata.json first, so its name sits in the first local
    # header. Checking that, rather than only parsing the archive, tells a damaged artifact
    # from another file, even when truncation leaves the skops zip inside to be found.
    first_name = _METADATA_MEMBER.encode()
    if not (data.startswith(b"PK\x03\x04") and data[30 : 30 + len(first_name)] == first_name):
        raise NotAnArtifactError(f"{path}: not a classifier artifact")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if not {_METADATA_MEMBER, _PAYLOAD_MEMBER} <= names:
                raise zipfile.BadZipFile(f"members {sorted(names)}")
            meta_bytes = archive.read(_METADATA_MEMBER)
            payload = archive.read(_PAYLOAD_MEMBER)
            signature = archive.read(_SIGNATURE_MEMBER) if _SIGNATURE_MEMBER in names else None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        # The central directory or a member's CRC does not check out: cut short or damaged.
        raise CorruptArtifactError(f"{path}: truncated or corrupt artifact ({exc})") from None
    return meta_bytes, payload, signature


def _check_signature(
    path: Path,
    meta_bytes: bytes,
    payload: bytes,
    signature: bytes | None,
    signing_key: bytes | None,
) -> None:
    if signing_key is None:
        if signature is not None:
            raise SignatureError(
                f"{path}: the artifact is signed; give the signing key to verify it"
            )
        return
    if signature is None:
        raise SignatureError(f"{path}: the artifact is not signed, but a signature is required")
    expected = _sign(signing_key, meta_bytes, payload).encode()
    if not hmac.compare_digest(signature.strip(), expected):
        raise TamperedArtifactError(
            f"{path}: the signature does not match: the artifact was altered after signing, "
            "or the key is not the one it was signed with"
        )


def _parse_envelope(path: Path, meta_bytes: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(meta_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{path}: unreadable {_METADATA_MEMBER}: {exc}") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise NotAnArtifactError(f"{path}: not a classifier artifact (format is not {FORMAT})")
    if envelope.get("format_version") != FORMAT_VERSION:
        raise IncompatibleArtifactError(
            f"{path}: artifact format version {envelope.get('format_version')!r}; this "
            f"Commentguard reads version {FORMAT_VERSION}"
        )
    return envelope


def _check_sklearn_version(path: Path, metadata: ArtifactMetadata) -> None:
    # Estimators are only guaranteed to behave the same within one minor release; a
    # patch release differs in bug fixes only.
    if _major_minor(metadata.sklearn_version) != _major_minor(sklearn.__version__):
        raise IncompatibleArtifactError(
            f"{path}: the classifier was trained with scikit-learn {metadata.sklearn_version}, "
            f"this process runs scikit-learn {sklearn.__version__}; retrain it, or load it "
            f"with scikit-learn {'.'.join(_major_minor(metadata.sklearn_version))}.x"
        )


def _load_payload(path: Path, payload: bytes) -> Any:
    try:
        untrusted = skops.io.get_untrusted_types(data=payload)
    except Exception as exc:  # skops raises anything at all on a damaged payload
        raise CorruptArtifactError(f"{path}: unreadable model payload: {exc}") from None
    refused = sorted(name for name in untrusted if not _is_allowed(name))
    if refused:
        raise UntrustedTypeError(
            f"{path}: the model holds types outside the allow-list: {', '.join(refused)}",
            refused,
        )
    try:
        return skops.io.loads(payload, trusted=untrusted)
    except Exception as exc:  # as above: any failure here means a bad payload
        raise CorruptArtifactError(f"{path}: the model payload cannot be loaded: {exc}") from None


def _is_allowed(name: str) -> bool:
    if name.startswith(_DENIED_PREFIXES):
        return False
    return name in ALLOWED_TYPES or name.startswith(ALLOWED_MODULE_PREFIXES)


# --- helpers -------------------------------------------------------------------------


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _sign(key: bytes, meta_bytes: bytes, payload: bytes) -> str:
    # The length prefix keeps the boundary between the two parts unambiguous.
    mac = hmac.new(key, _SIGNING_DOMAIN, hashlib.sha256)
    mac.update(len(meta_bytes).to_bytes(8, "big"))
    mac.update(meta_bytes)
    mac.update(payload)
    return mac.hexdigest()


def _payload_protocol(payload: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        protocol = json.loads(archive.read("schema.json"))["protocol"]
    return int(protocol)


@functools.cache
def _running_skops_protocol() -> int:
    return _payload_protocol(skops.io.dumps(0))


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    # Stored, not deflated: the skops payload is compressed inside already, and a stored
    # member's CRC covers its bytes exactly as they lie in the file, so that any damage
    # to them is caught (a flipped bit in a deflate stream can go unnoticed).
    archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        # mkstemp makes the file private to its creator; workers running as another user
        # must be able to read the classifier.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
