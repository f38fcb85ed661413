"""Classifier artifacts: round trips, and every refusal (corrupt, tampered, unsigned,
untrusted types, incompatible versions)."""

from __future__ import annotations

import io
import json
import os
import sys
import types
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn
import skops.io
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from service.classifier import artifacts
from service.classifier.artifacts import (
    ArtifactError,
    ArtifactMetadata,
    CorruptArtifactError,
    IncompatibleArtifactError,
    NotAnArtifactError,
    SignatureError,
    TamperedArtifactError,
    UntrustedTypeError,
    load_artifact,
    new_version_id,
    save_artifact,
)
from tests.support.labelled import labelled_comments

KEY = b"a signing key for the tests, 32+ bytes long"
THRESHOLDS = {"hold": 0.5, "spam": 0.85, "discard": 0.98}


def texts_of(n: int, seed: int) -> tuple[list[str], list[int]]:
    dataset = labelled_comments(n, seed=seed)
    return [r.content for r in dataset.records], dataset.labels


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    texts, labels = texts_of(400, seed=1)
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)


@pytest.fixture
def metadata() -> ArtifactMetadata:
    return ArtifactMetadata.create(
        training_size=400,
        training_fingerprint="ab" * 32,
        metrics={"roc_auc": 0.9731, "f1": 0.912345678901234, "n_test": 100.0},
        thresholds=THRESHOLDS,
        notes={"data": ["bootstrap:seed=1,n=400"], "seed": 1, "comment": "über"},
    )


def proba(estimator: Any, texts: list[str]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = estimator.predict_proba(texts)
    return result


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path: Path, parts: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def edit_metadata(
    path: Path, change: Callable[[dict[str, Any]], None], *, redigest: bool, resign: bool
) -> None:
    """Edit the metadata in place, as someone with a zip tool and a text editor would;
    ``redigest``/``resign`` model an attacker who also recomputes the digest/signature."""
    parts = members(path)
    envelope = json.loads(parts["metadata.json"])
    change(envelope)
    if redigest:
        envelope["metadata_sha256"] = artifacts._sha256(artifacts._canonical(envelope["metadata"]))
    parts["metadata.json"] = json.dumps(envelope).encode()
    if resign:
        parts["signature"] = artifacts._sign(
            KEY, parts["metadata.json"], parts["model.skops"]
        ).encode()
    rewrite(path, parts)


# --- round trips ---------------------------------------------------------------------


def test_round_trip(tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata) -> None:
    path = tmp_path / "model.cgm"
    save_artifact(path, pipeline, metadata)
    estimator, loaded = load_artifact(path)
    assert loaded == metadata
    texts, _ = texts_of(50, seed=2)
    np.testing.assert_array_equal(proba(estimator, texts), proba(pipeline, texts))
    assert set(members(path)) == {"metadata.json", "model.skops"}


def test_signed_round_trip(tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata) -> None:
    path = tmp_path / "model.cgm"
    save_artifact(path, pipeline, metadata, signing_key=KEY)
    estimator, loaded = load_artifact(path, signing_key=KEY)
    assert loaded == metadata
    texts, _ = texts_of(20, seed=3)
    np.testing.assert_array_equal(proba(estimator, texts), proba(pipeline, texts))
    assert "signature" in members(path)


def test_overwrite_is_atomic_and_leaves_no_temporary_files(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "model.cgm"
    path.write_bytes(b"old")
    save_artifact(path, pipeline, metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["model.cgm"]
    assert load_artifact(path)[1] == metadata
    assert path.stat().st_mode & 0o777 == 0o644


def test_metadata_records_versions_and_digests(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "model.cgm"
    save_artifact(path, pipeline, metadata)
    envelope = json.loads(members(path)["metadata.json"])
    assert envelope["format"] == "commentguard-artifact"
    assert envelope["metadata"]["sklearn_version"] == sklearn.__version__
    assert envelope["metadata"]["skops_protocol"] >= 1
    assert envelope["payload_sha256"] == artifacts._sha256(members(path)["model.skops"])


# A transformer living in a service.classifier module, as the model's own features do.
class _ClassifierFeature(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def fit(self, x: Any, y: Any = None) -> _ClassifierFeature:
        return self

    def transform(self, x: list[str]) -> NDArray[np.float64]:
        return np.array([[len(t) * self.scale] for t in x], dtype=np.float64)


@pytest.fixture
def classifier_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    module = types.ModuleType("service.classifier._artifact_test_features")
    _ClassifierFeature.__module__ = module.__name__
    module._ClassifierFeature = _ClassifierFeature  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    yield _ClassifierFeature
    _ClassifierFeature.__module__ = __name__


def test_custom_classes_from_service_classifier_are_allowed(
    tmp_path: Path, classifier_module: type, metadata: ArtifactMetadata
) -> None:
    texts, labels = texts_of(100, seed=4)
    model = make_pipeline(classifier_module(scale=0.5), LogisticRegression()).fit(texts, labels)
    save_artifact(tmp_path / "m", model, metadata)
    estimator, _ = load_artifact(tmp_path / "m")
    assert type(estimator.steps[0][1]) is classifier_module
    np.testing.assert_array_equal(proba(estimator, texts), proba(model, texts))


# --- untrusted types -----------------------------------------------------------------


class Foreign:
    """A class from outside the allow-list (this test module)."""

    def __init__(self) -> None:
        self.payload = "anything"


def test_foreign_class_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    save_artifact(tmp_path / "m", {"model": pipeline, "extra": Foreign()}, metadata)
    with pytest.raises(UntrustedTypeError, match=r"test_artifacts\.Foreign") as caught:
        load_artifact(tmp_path / "m")
    assert caught.value.types == [f"{__name__}.Foreign"]


def test_os_system_reference_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_pipeline(FunctionTransformer(func=os.system), pipeline)
    save_artifact(tmp_path / "m", model, metadata)
    loaded: list[Any] = []
    monkeypatch.setattr(skops.io, "loads", lambda *a, **k: loaded.append(a))
    with pytest.raises(UntrustedTypeError, match=r"posix\.system|nt\.system"):
        load_artifact(tmp_path / "m")
    assert loaded == []  # refused before skops built anything


def test_io_functions_inside_allowed_modules_are_refused(
    tmp_path: Path, metadata: ArtifactMetadata
) -> None:
    save_artifact(tmp_path / "m", FunctionTransformer(func=np.load), metadata)
    with pytest.raises(UntrustedTypeError, match="numpy"):
        load_artifact(tmp_path / "m")


def test_allow_list() -> None:
    allowed = artifacts._is_allowed
    assert allowed("sklearn.linear_model._logistic.LogisticRegression")
    assert allowed("numpy.ndarray")
    assert allowed("scipy.sparse._csr.csr_matrix")
    assert allowed("service.classifier.features.TextStats")
    assert allowed("builtins.frozenset")
    assert not allowed("builtins.eval")
    assert not allowed("builtins.len")
    assert not allowed("numpyevil.Thing")
    assert not allowed("scipy.io.loadmat")
    assert not allowed("service.app.create_app")
    assert not allowed("subprocess.Popen")


# --- corruption ----------------------------------------------------------------------


def member_data_offset(path: Path, name: str) -> tuple[int, int]:
    """Where a member's (compressed) data starts in the file, and its length."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = path.read_bytes()
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


@pytest.mark.parametrize("member", ["model.skops", "metadata.json"])
@pytest.mark.parametrize("where", [0.0, 0.25, 0.5, 0.75, 0.99])
def test_flipped_byte_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata, member: str, where: float
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)
    start, size = member_data_offset(path, member)
    data = bytearray(path.read_bytes())
    data[start + int(size * where)] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match="truncated or corrupt"):
        load_artifact(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata, keep: float
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptArtifactError):
        load_artifact(path)


def test_damaged_payload_with_matching_digest_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)
    parts = members(path)
    parts["model.skops"] = b"PK\x03\x04 not really skops"
    edit_metadata_parts = json.loads(parts["metadata.json"])
    edit_metadata_parts["payload_sha256"] = artifacts._sha256(parts["model.skops"])
    parts["metadata.json"] = json.dumps(edit_metadata_parts).encode()
    rewrite(path, parts)
    with pytest.raises(CorruptArtifactError, match="model payload"):
        load_artifact(path)


# --- tampering and signatures --------------------------------------------------------


def test_replaced_payload_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)
    parts = members(path)
    parts["model.skops"] = skops.io.dumps(LogisticRegression(C=123.0))
    rewrite(path, parts)
    with pytest.raises(TamperedArtifactError, match="sha256"):
        load_artifact(path)


def test_edited_metadata_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)

    def lower_threshold(envelope: dict[str, Any]) -> None:
        envelope["metadata"]["thresholds"]["spam"] = 0.99

    edit_metadata(path, lower_threshold, redigest=False, resign=False)
    with pytest.raises(TamperedArtifactError, match="metadata was edited"):
        load_artifact(path)


def test_signed_artifact_edited_with_recomputed_digests_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata, signing_key=KEY)

    def raise_metric(envelope: dict[str, Any]) -> None:
        envelope["metadata"]["metrics"]["roc_auc"] = 0.999

    edit_metadata(path, raise_metric, redigest=True, resign=False)
    with pytest.raises(TamperedArtifactError, match="signature does not match"):
        load_artifact(path, signing_key=KEY)


def test_wrong_key_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    save_artifact(tmp_path / "m", pipeline, metadata, signing_key=KEY)
    with pytest.raises(TamperedArtifactError, match="key"):
        load_artifact(tmp_path / "m", signing_key=b"another key")


def test_signed_artifact_without_key_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    save_artifact(tmp_path / "m", pipeline, metadata, signing_key=KEY)
    with pytest.raises(SignatureError, match="signed"):
        load_artifact(tmp_path / "m")


def test_unsigned_artifact_is_refused_when_a_key_is_given(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    save_artifact(tmp_path / "m", pipeline, metadata)
    with pytest.raises(SignatureError, match="not signed"):
        load_artifact(tmp_path / "m", signing_key=KEY)


def test_empty_key_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    with pytest.raises(ValueError, match="empty"):
        save_artifact(tmp_path / "m", pipeline, metadata, signing_key=b"")


# --- not artifacts -------------------------------------------------------------------


def test_not_artifacts(tmp_path: Path, pipeline: Pipeline) -> None:
    (tmp_path / "text").write_text("hello")
    (tmp_path / "bare.skops").write_bytes(skops.io.dumps(pipeline))
    (tmp_path / "empty").write_bytes(b"")
    for name in ("text", "bare.skops", "empty", "missing"):
        with pytest.raises(NotAnArtifactError):
            load_artifact(tmp_path / name)
    with pytest.raises(NotAnArtifactError, match="directory"):
        load_artifact(tmp_path)


def test_foreign_json_metadata_is_not_an_artifact(tmp_path: Path) -> None:
    rewrite(tmp_path / "m", {"metadata.json": b'{"format": "other"}', "model.skops": b""})
    with pytest.raises(NotAnArtifactError, match="format"):
        load_artifact(tmp_path / "m")


def test_every_refusal_is_an_artifact_error() -> None:
    for cls in (
        NotAnArtifactError,
        CorruptArtifactError,
        TamperedArtifactError,
        SignatureError,
        UntrustedTypeError,
        IncompatibleArtifactError,
    ):
        assert issubclass(cls, ArtifactError)


# --- versions ------------------------------------------------------------------------


def other_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) - 1 if int(minor) > 0 else int(minor) + 1}.3"


def test_other_sklearn_minor_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata, signing_key=KEY)
    old = other_minor(sklearn.__version__)

    def set_version(envelope: dict[str, Any]) -> None:
        envelope["metadata"]["sklearn_version"] = old

    edit_metadata(path, set_version, redigest=True, resign=True)
    with pytest.raises(IncompatibleArtifactError) as caught:
        load_artifact(path, signing_key=KEY)
    assert old in str(caught.value)
    assert sklearn.__version__ in str(caught.value)


def test_other_sklearn_patch_is_accepted(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)
    major, minor = sklearn.__version__.split(".")[:2]

    def set_version(envelope: dict[str, Any]) -> None:
        envelope["metadata"]["sklearn_version"] = f"{major}.{minor}.99"

    edit_metadata(path, set_version, redigest=True, resign=False)
    assert load_artifact(path)[1].sklearn_version == f"{major}.{minor}.99"


def test_future_format_version_is_refused(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    path = tmp_path / "m"
    save_artifact(path, pipeline, metadata)

    def bump(envelope: dict[str, Any]) -> None:
        envelope["format_version"] = 2

    edit_metadata(path, bump, redigest=False, resign=False)
    with pytest.raises(IncompatibleArtifactError, match="format version 2"):
        load_artifact(path)


def test_save_refuses_metadata_from_another_sklearn(
    tmp_path: Path, pipeline: Pipeline, metadata: ArtifactMetadata
) -> None:
    fields = metadata.to_dict() | {"sklearn_version": other_minor(sklearn.__version__)}
    with pytest.raises(ValueError, match="scikit-learn"):
        save_artifact(tmp_path / "m", pipeline, ArtifactMetadata.from_dict(fields))


# --- metadata ------------------------------------------------------------------------


def test_version_id() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    version = new_version_id(moment)
    assert version.startswith("cg-20250304-050607-")
    assert len(version) == len("cg-20250304-050607-") + 8
    assert new_version_id(moment) != version


def test_create_uses_utc() -> None:
    paris = timezone(timedelta(hours=2))
    created = ArtifactMetadata.create(
        training_size=1,
        training_fingerprint="x",
        metrics={},
        thresholds=THRESHOLDS,
        now=datetime(2025, 6, 1, 12, 0, 0, tzinfo=paris),
    )
    assert created.created_at == "2025-06-01T10:00:00+00:00"
    assert created.version.startswith("cg-20250601-100000-")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"version": "v1"}, "version"),
        ({"created_at": "yesterday"}, "ISO 8601"),
        ({"created_at": "2025-06-01T12:00:00+02:00"}, "UTC"),
        ({"training_size": -1}, "training_size"),
        ({"metrics": {"auc": float("nan")}}, "finite"),
        ({"thresholds": {"hold": 0.5, "spam": 0.9}}, "exactly"),
        ({"thresholds": {"hold": 0.9, "spam": 0.5, "discard": 0.99}}, "hold <= spam"),
        ({"thresholds": {"hold": 0.5, "spam": 0.9, "discard": 1.5}}, "<= 1"),
        ({"notes": {"pair": (1, 2)}}, "round-trip"),
        ({"notes": {"f": object()}}, "JSON"),
    ],
)
def test_metadata_validation(
    metadata: ArtifactMetadata, change: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        ArtifactMetadata(**(metadata.to_dict() | change))


def test_from_dict_refuses_unknown_and_missing_keys(metadata: ArtifactMetadata) -> None:
    with pytest.raises(ValueError, match="unknown \\['extra'\\]"):
        ArtifactMetadata.from_dict(metadata.to_dict() | {"extra": 1})
    partial = metadata.to_dict()
    del partial["metrics"]
    with pytest.raises(ValueError, match="missing \\['metrics'\\]"):
        ArtifactMetadata.from_dict(partial)
    with pytest.raises(ValueError, match="training_size must be an integer"):
        ArtifactMetadata.from_dict(metadata.to_dict() | {"training_size": "400"})


# --- speed ---------------------------------------------------------------------------


def test_a_few_megabytes_of_arrays_round_trip(tmp_path: Path, metadata: ArtifactMetadata) -> None:
    """Array-heavy estimators (weights, scalers, hashed features) load back exactly.

    How fast the bundled artifact loads is measured by ``bench/classifier_speed.py``.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 200_000))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(x, [0, 1] * 10)
    path = tmp_path / "big"
    save_artifact(path, model, metadata, signing_key=KEY)
    assert path.stat().st_size > 5_000_000
    estimator, _ = load_artifact(path, signing_key=KEY)
    np.testing.assert_array_equal(estimator.predict_proba(x), model.predict_proba(x))
