"""skops artefacts: round trip, metadata, refusal of tampered or foreign files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ml import artefacts, churn, data
from tests.ml import synthetic


@pytest.fixture(scope="module")
def trained() -> tuple[dict, object]:
    con = duckdb.connect()
    synthetic.build(con, customers=300, seed=8)
    dataset = churn.build_dataset(con, dt.date(2025, 7, 1), 90)
    model, value = churn.fit_churn(dataset, random_state=1)
    return {"churn": model, "value": value}, data.churn_features(con, dt.date(2025, 10, 1))


def test_round_trip_keeps_predictions_and_writes_metadata(trained, tmp_path: Path) -> None:
    models, features = trained
    saved = artefacts.save(
        models,
        {"train_cutoff": "2025-07-01", "features": list(churn.MODEL_FEATURES)},
        root=tmp_path,
    )
    assert saved.version.startswith("churn-20250701-")
    loaded, artefact = artefacts.load(root=tmp_path)
    assert artefact.version == saved.version
    np.testing.assert_array_equal(
        churn.churn_probability(models["churn"], features),
        churn.churn_probability(loaded["churn"], features),
    )
    metadata = json.loads((saved.path / "metadata.json").read_text())
    assert metadata["sklearn_version"] and metadata["features"] == list(churn.MODEL_FEATURES)
    newer = artefacts.save(models, {"train_cutoff": "2025-07-01"}, root=tmp_path)
    assert artefacts.load(root=tmp_path)[1].version == newer.version
    assert artefacts.load(version=saved.version, root=tmp_path)[1].version == saved.version


def test_model_dir_comes_from_the_environment(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "elsewhere"))
    saved = artefacts.save(trained[0], {"train_cutoff": "2025-07-01"})
    assert saved.path.is_relative_to(tmp_path / "elsewhere")


def test_missing_or_tampered_artefacts_are_refused(trained, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="materialise ml/churn_model first"):
        artefacts.load(root=tmp_path)
    saved = artefacts.save(trained[0], {"train_cutoff": "2025-07-01"}, root=tmp_path)
    model_file = saved.path / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"x")
    with pytest.raises(RuntimeError, match="checksum"):
        artefacts.load(root=tmp_path)


def test_a_model_from_another_sklearn_version_is_refused(trained, tmp_path: Path) -> None:
    saved = artefacts.save(trained[0], {"train_cutoff": "2025-07-01"}, root=tmp_path)
    metadata_file = saved.path / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["sklearn_version"] = "0.24.2"
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(RuntimeError, match="retrain"):
        artefacts.load(root=tmp_path)
