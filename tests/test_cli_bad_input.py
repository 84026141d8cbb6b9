"""A bad-input corpus made here (nothing downloaded) through the real command line:
every case is one line ``error: ...`` naming the file, key or value, exit code 2, no
traceback, and nothing half-written (no run folder for a refused ``train``, a run's files
byte for byte unchanged after a refused ``sample`` / ``evaluate`` / ``--resume``).
Unusual but valid input (a JPEG named .png, mixed sizes, 10,000 files with one bad) trains.

The cases run in one subprocess (tests/cli_driver.py calls ``studio.cli.main`` per case):
one interpreter start instead of ~60 on two shared cores."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from .engine.procs import ENV, TINY

MARKER = "pwned.txt"  # what a pickle in the corpus would create if anything unpickled it


class Evil:
    """Unpickling this creates MARKER (stands for any code a pickle can run)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


IMAGES = """
[data]
source = "folder"
path = "{path}"
resolution = 8

[schedule]
family = "linear"
steps = 10

[method]
name = "ddpm"

[network]
kind = "unet"
base_channels = 8
channel_mults = [1]
num_res_blocks = 1
attention_resolutions = []

[train]
steps = 1
batch_size = 8
preview_every = 0
threads = 1
"""


def toy(steps: int = 20, **replace: str) -> str:
    text = TINY.format(steps=steps, checkpoint_every=10)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


class Corpus:
    """Files and command lines; ``expect[id] = (exit code, words the error line names,
    folder that must not exist afterwards, run whose digest must not change)``."""

    def __init__(self, root: Path):
        self.root = root
        self.cases: list[dict] = []
        self.expect: dict[str, tuple] = {}
        self.digests: dict[str, dict] = {}

    def add(self, case_id: str, argv: list, names: tuple[str, ...] = (), code: int = 2, untouched: Path | None = None):
        out = self.root / "out" / case_id
        argv = [str(a) for a in argv]
        if argv[0] == "train" and "--resume" not in argv:
            argv += ["--out", str(out)]
        self.cases.append({"id": case_id, "argv": argv, "cwd": str(self.root)})
        self.expect[case_id] = (code, names, out if code == 2 else None, untouched)
        if untouched is not None:
            self.digests[case_id] = digest(untouched)

    def config(self, name: str, text: str | bytes) -> Path:
        path = self.root / "configs" / f"{name}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def data_config(self, name: str, section: str) -> Path:
        return self.config(name, toy().replace('[data]\nsource = "toy"\nname = "8gaussians"\nn = 2000', "[data]\n" + section))


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def folder(root: Path, name: str, files: dict[str, bytes]) -> Path:
    path = root / "data" / name
    path.mkdir(parents=True)
    for fname, data in files.items():
        (path / fname).write_bytes(data)
    return path


def build_data_cases(c: Corpus) -> None:
    root, rng = c.root, np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    png, jpg = png_bytes(img), png_bytes(img, "JPEG")

    def images(case_id: str, path: Path, names: tuple[str, ...], code: int = 2) -> None:
        c.add(case_id, ["train", c.config(case_id, IMAGES.format(path=path))], names, code)

    images("truncated-png", folder(root, "tpng", {"cut.png": png[: len(png) // 2]}), ("cut.png",))
    images("truncated-jpeg", folder(root, "tjpg", {"cut.jpg": jpg[: len(jpg) // 2]}), ("cut.jpg",))
    images("text-named-png", folder(root, "txt", {"notes.png": b"shopping list\n"}), ("notes.png",))
    images("empty-folder", folder(root, "empty", {}), (str(root / "data" / "empty"),))
    images("folder-missing", root / "data" / "nowhere", ("nowhere",))
    # valid but unusual: trains (exit 0)
    images("jpeg-named-png", folder(root, "jpegpng", {"photo.png": jpg, "b.png": png}), (), code=0)
    sizes = {f"{i}.png": png_bytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for i, (h, w) in enumerate([(9, 30), (64, 8), (8, 8), (33, 17)])}
    images("mixed-sizes", folder(root, "mixed", sizes), (), code=0)
    many = root / "data" / "many"
    many.mkdir()
    tiny = png_bytes(np.full((8, 8), 7, np.uint8))
    for i in range(9_999):
        (many / f"{i:05d}.png").write_bytes(tiny)
    (many / "99999.png").write_bytes(tiny[:20])  # the one bad file, read last
    images("10000-files-one-bad", many, ("99999.png",), code=0)

    arrays = root / "data" / "arrays"
    arrays.mkdir()

    def array(case_id: str, value, names: tuple[str, ...], suffix: str = ".npy", key: str | None = None, pickled: bool = False):
        path = arrays / f"{case_id}{suffix}"
        if suffix == ".npz":
            np.savez(path, **value)
        elif isinstance(value, bytes):
            path.write_bytes(value)
        else:
            np.save(path, value, allow_pickle=pickled)
        keyline = f'\nkey = "{key}"' if key else ""
        c.add(case_id, ["train", c.data_config(case_id, f'source = "array"\npath = "{path}"{keyline}')], names or (path.name,))

    points = rng.normal(size=(50, 2)).astype(np.float32)
    array("npy-nan", np.where(np.arange(50)[:, None] == 7, np.nan, points), ("npy-nan.npy", "NaN"))
    array("npy-inf", np.where(np.arange(16 * 64).reshape(16, 8, 8) == 5, np.inf, 0.5).astype(np.float32), ("npy-inf.npy", "infinite"))
    array("npy-1d", np.arange(10.0), ("npy-1d.npy", "(10,)"))
    array("npy-5d", np.zeros((2, 1, 3, 4, 5)), ("npy-5d.npy", "(2, 1, 3, 4, 5)"))
    array("npy-object", np.array([1, "a", None], dtype=object), ("npy-object.npy",), pickled=True)
    array("npy-pickle-runs-code", np.array([Evil(str(root / MARKER))], dtype=object), ("npy-pickle-runs-code.npy",), pickled=True)
    array("npy-strings", np.array([["a", "bc"], ["d", "e"]]), ("npy-strings.npy", "dtype"))
    array("npy-truncated", png[:0] + b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100, 2), }" + b" " * 40 + b"\n" + b"\0" * 16,
          ("npy-truncated.npy",))
    array("npz-wrong-key", {"images": points}, ("'nope'", "images"), suffix=".npz", key="nope")
    array("npy-empty", np.zeros((0, 2), np.float32), ("npy-empty.npy",))
    array("array-wrong-suffix", b"1,2\n3,4\n", ("array-wrong-suffix.csv",), suffix=".csv")

    h5 = root / "data" / "h5"
    h5.mkdir()
    good = h5 / "good.h5"
    with h5py.File(good, "w") as f:
        f["train/images"] = rng.integers(0, 256, (8, 8, 8), dtype=np.uint8)
        f["train/names"] = np.array([[b"a", b"b"], [b"c", b"d"]], dtype=h5py.string_dtype())
    c.add("hdf5-wrong-key", ["train", c.data_config("h5key", f'source = "hdf5"\npath = "{good}"\nkey = "train/imgs"')], ("train/imgs", "train/images"))
    c.add("hdf5-string-dtype", ["train", c.data_config("h5str", f'source = "hdf5"\npath = "{good}"\nkey = "train/names"')], ("train/names", "dtype"))
    cut = h5 / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    c.add("hdf5-truncated", ["train", c.data_config("h5cut", f'source = "hdf5"\npath = "{cut}"\nkey = "train/images"')], ("cut.h5",))
    text = h5 / "text.h5"
    text.write_text("not hdf5")
    c.add("hdf5-not-hdf5", ["train", c.data_config("h5txt", f'source = "hdf5"\npath = "{text}"')], ("text.h5",))


CONFIG_CASES = [
    # (id, replacements in the tiny toy config, words the error names)
    ("unknown-section", {"[train]": "[trian]\nsteps = 3\n[train]"}, ("trian",)),
    ("unknown-data-key", {'n = 2000': 'n = 2000\ncolour = "red"'}, ("colour",)),
    ("unknown-schedule-key", {"steps = 50": "steps = 50\nbeta_max = 0.1"}, ("beta_max",)),
    ("unknown-method-key", {'name = "ddpm"': 'name = "ddpm"\nloss = "l1"'}, ("loss",)),
    ("unknown-network-key", {"depth = 1": "depth = 1\nwidth = 3"}, ("width",)),
    ("unknown-train-key", {"seed = 3": "seed = 3\nepochs = 2"}, ("epochs",)),
    ("unknown-sample-key", {"threads = 1": 'threads = 1\n\n[sample]\ntemperature = 0.5'}, ("temperature",)),
    ("steps-string", {"steps = 20": 'steps = "many"'}, ("steps", "many")),
    ("lr-string", {"lr = 2e-3": 'lr = "fast"'}, ("lr", "fast")),
    ("batch-float", {"batch_size = 64": "batch_size = 1.5"}, ("batch_size", "1.5")),
    ("seed-bool", {"seed = 3": "seed = true"}, ("seed",)),
    ("hidden-string", {"hidden = 32": 'hidden = "big"'}, ("hidden", "big")),
    ("steps-list", {"steps = 20": "steps = [1, 2]"}, ("steps",)),
    ("lr-zero", {"lr = 2e-3": "lr = 0.0"}, ("lr",)),
    ("lr-negative", {"lr = 2e-3": "lr = -1.0"}, ("lr",)),
    ("lr-nan", {"lr = 2e-3": "lr = nan"}, ("lr", "nan")),
    ("lr-inf", {"lr = 2e-3": "lr = inf"}, ("lr", "inf")),
    ("steps-zero", {"steps = 20": "steps = 0"}, ("steps",)),
    ("batch-zero", {"batch_size = 64": "batch_size = 0"}, ("batch_size",)),
    ("warmup-negative", {"warmup = 10": "warmup = -1"}, ("warmup",)),
    ("held-out-too-big", {"n = 2000": "n = 2000\nheld_out = 0.7"}, ("held_out",)),
    ("ema-decay-one", {"seed = 3": "seed = 3\nema_decay = 1.0"}, ("ema_decay",)),
    ("device-tpu", {"seed = 3": 'seed = 3\ndevice = "tpu"'}, ("device", "tpu")),
    ("unknown-method", {'name = "ddpm"': 'name = "ddim"'}, ("ddim",)),
    ("unknown-network", {'kind = "mlp"': 'kind = "resnet"'}, ("resnet",)),
    ("unknown-family", {'family = "linear"': 'family = "cosinus"'}, ("cosinus",)),
    ("unknown-sampler", {"threads = 1": 'threads = 1\n\n[sample]\nsampler = "magic"'}, ("magic",)),
    ("unknown-source", {'source = "toy"': 'source = "csv"'}, ("csv",)),
    ("unknown-toy", {'name = "8gaussians"': 'name = "circles"'}, ("circles",)),
    ("normalisation-unknown", {"n = 2000": 'n = 2000\nnormalisation = "zscore"'}, ("normalisation", "zscore")),
    ("beta-end-ge-1", {"steps = 50": "steps = 50\nbeta_end = 1.5"}, ("beta_end",)),
    ("beta-start-zero", {"steps = 50": "steps = 50\nbeta_start = 0.0"}, ("beta_start",)),
    ("schedule-steps-zero", {"steps = 50": "steps = 0"}, ("steps",)),
    ("custom-log-snr-rises", {'family = "linear"\nsteps = 50': 'family = "custom"\npoints = [[0.0, 5.0], [0.5, 6.0], [1.0, -5.0]]'},
     ("log-SNR", "decreasing")),
    ("hidden-zero", {"hidden = 32": "hidden = 0"}, ("hidden",)),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Corpus, dict]:
    root = tmp_path_factory.mktemp("corpus")
    c = Corpus(root)
    # two real runs whose networks differ (hidden 32 / 48), trained in parallel subprocesses
    runs = {name: root / "runs" / name for name in ("a", "b")}
    procs = [subprocess.Popen([sys.executable, "-m", "studio", "train", c.config(f"run_{name}", toy(**({"hidden = 32": "hidden = 48"} if name == "b" else {}))),
                               "--out", str(path)], env=ENV, stderr=subprocess.PIPE, text=True) for name, path in runs.items()]
    build_data_cases(c)
    for case_id, replace, names in CONFIG_CASES:
        c.add(case_id, ["train", c.config(case_id, toy(**replace))], names)
    c.add("toml-syntax", ["train", c.config("syntax", "[train\nsteps = 3\n")], ("syntax.toml",))
    c.add("toml-not-utf8", ["train", c.config("latin1", b'[data]\nsource = "toy"\nname = "caf\xe9"\n')], ("latin1.toml",))
    c.add("config-missing", ["train", root / "configs" / "absent.toml"], ("absent.toml",))
    c.add("cli-steps-negative", ["train", c.config("ok", toy()), "--steps", "-3"], ("steps", "-3"))
    c.add("schedule-beta-ge-1", ["schedule", "linear", "beta_end=1.0"], ("beta_end",))
    c.add("schedule-rising-log-snr", ["schedule", "custom", "points=[[0.0, 5.0], [0.5, 6.0], [1.0, -5.0]]"], ("log-SNR",))
    c.add("schedule-unknown", ["schedule", "cosinus"], ("cosinus",))
    c.add("schedule-unknown-param", ["schedule", "linear", "betaend=0.1"], ("betaend",))
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    a, b = runs["a"], runs["b"]
    ckpts = root / "ckpts"
    ckpts.mkdir()
    other = ckpts / "other_net.safetensors"
    other.write_bytes(sorted((b / "checkpoints").glob("*.safetensors"))[-1].read_bytes())
    whole = sorted((a / "checkpoints").glob("*.safetensors"))[-1].read_bytes()
    (ckpts / "cut.safetensors").write_bytes(whole[: len(whole) // 2])
    import torch

    torch.save({"net": Evil(str(root / MARKER))}, ckpts / "evil.pt")
    with open(ckpts / "evil.npy", "wb") as f:  # a pickle under an array's name
        pickle.dump(Evil(str(root / MARKER)), f)
    np.save(ckpts / "wrong_shape.npy", np.zeros((10, 3), np.float32))
    c.add("checkpoint-of-another-network", ["sample", a, "--n", "4", "--checkpoint", other], ("other_net.safetensors", "does not match"), untouched=a)
    c.add("checkpoint-truncated", ["sample", a, "--n", "4", "--checkpoint", ckpts / "cut.safetensors"], ("cut.safetensors",), untouched=a)
    c.add("checkpoint-pickle-pt", ["sample", a, "--n", "4", "--checkpoint", ckpts / "evil.pt"], ("evil.pt",), untouched=a)
    c.add("reference-pickle", ["evaluate", a, "--n", "8", "--reference", ckpts / "evil.npy"], ("evil.npy",), untouched=a)
    c.add("reference-wrong-shape", ["evaluate", a, "--n", "8", "--reference", ckpts / "wrong_shape.npy"], ("wrong_shape.npy",), untouched=a)
    c.add("sample-not-a-run", ["sample", root / "data", "--n", "4"], (str(root / "data"),))
    # a run whose newest checkpoint is another network's: resume refuses, the run stays as it was
    import shutil

    swapped = root / "runs" / "swapped"
    shutil.copytree(a, swapped)
    latest = sorted((swapped / "checkpoints").glob("*.safetensors"))[-1]
    latest.write_bytes(other.read_bytes())
    c.add("resume-from-another-network", ["train", swapped, "--resume", "--steps", "40"], (latest.name, "does not match"), untouched=swapped)

    cases_file, results_file = root / "cases.json", root / "results.json"
    cases_file.write_text(json.dumps(c.cases))
    proc = subprocess.run([sys.executable, "-m", "tests.cli_driver", str(cases_file), str(results_file)], env=ENV,
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    return c, json.loads(results_file.read_text())


CASE_IDS = (
    ["truncated-png", "truncated-jpeg", "text-named-png", "empty-folder", "folder-missing", "jpeg-named-png", "mixed-sizes",
     "10000-files-one-bad", "npy-nan", "npy-inf", "npy-1d", "npy-5d", "npy-object", "npy-pickle-runs-code", "npy-strings",
     "npy-truncated", "npz-wrong-key", "npy-empty", "array-wrong-suffix", "hdf5-wrong-key", "hdf5-string-dtype",
     "hdf5-truncated", "hdf5-not-hdf5"]
    + [case[0] for case in CONFIG_CASES]
    + ["toml-syntax", "toml-not-utf8", "config-missing", "cli-steps-negative", "schedule-beta-ge-1", "schedule-rising-log-snr",
       "schedule-unknown", "schedule-unknown-param", "checkpoint-of-another-network", "checkpoint-truncated",
       "checkpoint-pickle-pt", "reference-pickle", "reference-wrong-shape", "sample-not-a-run", "resume-from-another-network"]
)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_corpus_case(corpus, case_id):
    c, results = corpus
    code, names, out, untouched = c.expect[case_id]
    r = results[case_id]
    assert r["escaped"] is None, r["escaped"]
    assert "Traceback" not in r["stderr"], r["stderr"]
    assert r["code"] == code, r["stderr"]
    errors = [ln for ln in r["stderr"].splitlines() if ln.startswith("error:")]
    if code == 2:
        assert len(errors) == 1, r["stderr"]
        for word in names:
            assert word in errors[0], (word, errors[0])
        assert not out.exists(), f"{case_id} left {sorted(p.name for p in out.rglob('*'))}"
    else:
        assert not errors, r["stderr"]
        for word in names:  # a skipped file is named in a warning
            assert word in r["stderr"], r["stderr"]
    if untouched is not None:
        assert digest(untouched) == c.digests[case_id]
    assert not (c.root / MARKER).exists(), "a pickle in the corpus was unpickled"


@pytest.mark.slow
def test_corpus_is_complete(corpus):
    c, results = corpus
    assert sorted(results) == sorted(CASE_IDS) == sorted(c.expect)
