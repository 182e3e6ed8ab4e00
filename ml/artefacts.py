"""Model artefacts: skops files plus JSON metadata under ``MODEL_DIR`` (default ``data/models``).

Layout: ``<root>/<name>/<version>/model.skops`` and ``metadata.json``; ``<root>/<name>/latest.json``
names the newest version. skops (not pickle) so loading never executes arbitrary code: only
types from scikit-learn, numpy, scipy and this package are accepted. Artefacts are never
committed (``data/`` and ``*.skops`` are gitignored).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sklearn
import skops
import skops.io as sio

DEFAULT_MODEL_DIR = "data/models"
# Module prefixes whose types a model of ours may contain.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "ml.", "builtins.", "collections.")


def model_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR).expanduser()


@dataclass(frozen=True)
class Artefact:
    name: str
    version: str
    path: Path
    metadata: dict[str, Any]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(
    obj: Any, metadata: dict[str, Any], name: str = "churn", root: str | Path | None = None
) -> Artefact:
    """Write ``obj`` with skops and its metadata as a new version (training cutoff plus a hash
    of the file) and make it the latest."""
    payload = sio.dumps(obj)
    digest = hashlib.sha256(payload).hexdigest()[:12]
    label = str(metadata.get("train_cutoff", "model")).replace("-", "")
    version = f"{name}-{label}-{digest}"
    directory = model_root(root) / name / version
    full = {
        **metadata,
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _atomic_write(directory / "model.skops", payload)
    _atomic_write(directory / "metadata.json", json.dumps(full, indent=2, default=str).encode())
    _atomic_write(
        model_root(root) / name / "latest.json", json.dumps({"version": version}).encode()
    )
    return Artefact(name, version, directory, full)


def latest_metadata(name: str = "churn", root: str | Path | None = None) -> dict[str, Any] | None:
    """The metadata.json of the latest version, without loading the model; None if there is none."""
    pointer = model_root(root) / name / "latest.json"
    if not pointer.exists():
        return None
    version = json.loads(pointer.read_text())["version"]
    path = model_root(root) / name / str(version) / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else None


def load(
    name: str = "churn", version: str | None = None, root: str | Path | None = None
) -> tuple[Any, Artefact]:
    """Load a saved model (the latest unless ``version`` is given) and check it is usable here."""
    base = model_root(root) / name
    if version is None:
        pointer = base / "latest.json"
        if not pointer.exists():
            raise FileNotFoundError(
                f"no {name} model in {base}: materialise ml/{name}_model first "
                "(or set MODEL_DIR to where models are kept)"
            )
        version = json.loads(pointer.read_text())["version"]
    directory = base / str(version)
    model_file = directory / "model.skops"
    if not model_file.exists():
        raise FileNotFoundError(f"model file {model_file} is missing")
    metadata = json.loads((directory / "metadata.json").read_text())
    trained_with = str(metadata.get("sklearn_version", ""))
    if trained_with.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise RuntimeError(
            f"{model_file} was trained with scikit-learn {trained_with} but this environment has "
            f"{sklearn.__version__}; retrain it (materialise ml/{name}_model)"
        )
    payload = model_file.read_bytes()
    if hashlib.sha256(payload).hexdigest() != metadata.get("sha256"):
        raise RuntimeError(f"{model_file} does not match the checksum in its metadata.json")
    untrusted = sio.get_untrusted_types(data=payload)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise RuntimeError(f"{model_file} contains types that are not trusted: {foreign}")
    obj = sio.loads(payload, trusted=untrusted)
    return obj, Artefact(name, str(version), directory, metadata)
