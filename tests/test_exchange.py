"""bioimage.io model packages: export (validated by bioimageio.spec, offline), TorchScript twin, import back."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from napari_semiconv.cli import main
from napari_semiconv.decode import model_thresholds
from napari_semiconv.errors import SemiconvError
from napari_semiconv.exchange import (
    BioimageioNet,
    export_bioimageio,
    import_bioimageio,
    output_channels,
    package_summary,
    read_bioimageio,
    run_torchscript,
    scale_range,
    stack_outputs,
)
from napari_semiconv.model import ModelConfig, build_model, load_model, save_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.registry import Registry

spec = pytest.importorskip("bioimageio.spec")

THRESHOLDS = {"fg_threshold": 0.45, "kernel_threshold": 0.35, "merge_threshold": 0.25}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Export and validation must work offline: any HTTP request bioimageio.spec tries fails the test."""
    import httpx

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:2])
        raise httpx.ConnectError("no network in tests")

    monkeypatch.setattr(httpx, "request", refuse)
    monkeypatch.setattr(httpx, "stream", refuse)
    monkeypatch.setattr(httpx.Client, "send", refuse)
    yield
    assert not calls, f"bioimageio.spec tried the network: {calls}"


def tiny(target="eq5", seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(ModelConfig.for_target(target, width=8, depth=2, **kw)).eval()
    with torch.no_grad():  # non-zero heads (anchor/flow start with zero offsets)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.metadata = {"decode": dict(THRESHOLDS), "data": "synthetic", "date": "2026-01-01"}
    return model


def validate(path):
    """bioimageio.spec's own validation of the package, with its file checks (hashes, test tensors)."""
    descr = spec.load_description(path, perform_io_checks=True)
    summary = descr.validation_summary
    assert not isinstance(descr, spec.InvalidDescr), summary.format()
    assert summary.status != "failed" and not summary.errors, summary.format()
    assert descr.type == "model" and str(descr.format_version).startswith("0.5")
    return descr


def same_model(a, b):
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("target", ["eq5", "anchor", "flow", "paired flow", "count-refined flow"])
@pytest.mark.parametrize("scale", [1.0, 1.37])
def test_torchscript_twin_is_the_network_at_any_size(target, scale):
    model = tiny(target.split()[-1], input_scale=scale, **({"flow_pair": True} if "paired" in target else {}),
                 **({"count_refiner": True} if "refined" in target else {}))
    wrapper = BioimageioNet(**model.config.to_dict())
    wrapper.load_state_dict(model.state_dict())  # the same keys as SemiConvNet's
    scripted = torch.jit.script(wrapper.eval())
    for shape in [(1, 1, 64, 64), (2, 1, 70, 51), (1, 1, 9, 13)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = stack_outputs(model(x), model.config)
            got = scripted(x)
        assert got.shape == (shape[0], len(output_channels(model.config)), *shape[2:])
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("target", ["eq5", "anchor", "flow"])
def test_export_validates_reproduces_and_imports_back_exactly(target, tmp_path):
    model = tiny(target)
    path = export_bioimageio(model, tmp_path / "pkg" / "tiny.zip", authors=["A. Tester"])
    descr = validate(path)
    assert [str(t.id) for t in descr.inputs] == ["image"] and [str(t.id) for t in descr.outputs] == ["network_outputs"]
    assert {"torchscript", "pytorch_state_dict"} <= {k for k, v in descr.weights if v is not None}
    summary = package_summary(path)
    assert {"rdf.yaml", "README.md", "test_input.npy", "test_output.npy", "weights_torchscript.pt",
            "napari_semiconv_model.pt"} <= set(summary["files"])
    ours = summary["napari_semiconv"]
    assert ours["target"] == target and ours["channels"] == output_channels(model.config)
    assert ours["decode"] == THRESHOLDS
    with zipfile.ZipFile(path) as z:
        readme = z.read("README.md").decode()
    assert "napari-semiconv's decoder" in readme and "## Validation" in readme

    outputs, expected = run_torchscript(path)  # the TorchScript weights on the test input give the test output
    assert outputs.shape == expected.shape == (1, len(output_channels(model.config)), 256, 256)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)

    with zipfile.ZipFile(path) as z, z.open("weights_state_dict.pt") as f:
        state = torch.load(io.BytesIO(f.read()), weights_only=True)
    assert state.keys() == model.state_dict().keys()

    back = load_model(import_bioimageio(path, out=tmp_path / "back.pt"))
    same_model(model, back)
    assert model_thresholds(back) == THRESHOLDS
    assert back.metadata["data"] == "synthetic" and back.metadata["imported_from"] == str(path)


def test_shipped_model_exports_validates_and_imports_into_the_registry(tmp_path, shipped, capsys):
    assert DEFAULT_MODEL.is_file()
    path = tmp_path / "default.zip"
    assert main(["export-bioimageio", str(path)]) == 0  # no model given: the shipped one
    assert json.loads(capsys.readouterr().out)["model"] == "shipped default"
    assert package_summary(path)["napari_semiconv"]["name"] == "default"
    validate(path)
    outputs, expected = run_torchscript(path)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    with zipfile.ZipFile(path) as z, z.open("test_input.npy") as f:
        image = np.load(io.BytesIO(f.read()))[0, 0]
    with torch.no_grad():  # the test output is the shipped network's own, on the normalized test input
        direct = stack_outputs(shipped(torch.from_numpy(scale_range(image))[None, None]), shipped.config)
    np.testing.assert_allclose(direct.numpy(), expected, rtol=1e-5, atol=1e-5)

    saved = import_bioimageio(path)
    assert saved.parent == Registry().root and saved.stem == "default"
    same_model(shipped, load_model(saved))
    assert model_thresholds(load_model(saved)) == model_thresholds(shipped)
    assert import_bioimageio(path).stem == "default-2"  # never overwrites


def test_import_from_a_folder_or_its_rdf_yaml(tmp_path):
    model = tiny("anchor")
    image = np.random.default_rng(0).integers(0, 4000, (300, 290)).astype(np.uint16)  # cropped to 296 x 288
    path = export_bioimageio(model, tmp_path / "a.zip", test_image=image)
    validate(path)
    assert run_torchscript(path)[1].shape[-2:] == (296, 288)
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(path).extractall(folder)
    same_model(model, read_bioimageio(folder))
    same_model(model, read_bioimageio(folder / "rdf.yaml"))
    assert import_bioimageio(folder / "rdf.yaml", name="my model").stem == "my_model"


def _rewrite(src, dst, change):
    """Copy the zip ``src`` to ``dst`` with ``change(name, data) -> data`` applied to every member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))
    return dst


def test_bad_packages_give_clear_errors(tmp_path):
    path = export_bioimageio(tiny(), tmp_path / "ok.zip")
    data = path.read_bytes()
    cases = {
        "truncated.zip": (lambda p: p.write_bytes(data[: len(data) // 2]), "not a readable bioimage.io package"),
        "text.zip": (lambda p: p.write_text("hello"), "not a readable bioimage.io package"),
        "missing.zip": (lambda p: None, "not found"),
    }
    for name, (make, said) in cases.items():
        make(tmp_path / name)
        with pytest.raises(SemiconvError, match=said):
            import_bioimageio(tmp_path / name)
    foreign = _rewrite(path, tmp_path / "foreign.zip", lambda n, d: d.replace(b"napari_semiconv:", b"someone_else:")
                       if n == "rdf.yaml" else d)
    with pytest.raises(SemiconvError, match="not exported by napari-semiconv"):
        import_bioimageio(foreign)
    no_rdf = tmp_path / "no_rdf.zip"
    with zipfile.ZipFile(no_rdf, "w") as z:
        z.writestr("weights.pt", b"x")
    with pytest.raises(SemiconvError, match="no rdf.yaml"):
        import_bioimageio(no_rdf)
    tampered = _rewrite(path, tmp_path / "tampered.zip",
                        lambda n, d: d[:-100] + bytes(100) if n == "napari_semiconv_model.pt" else d)
    with pytest.raises(SemiconvError, match="checksum"):
        import_bioimageio(tampered)
    pickled = tmp_path / "pickled.pt"  # a model file with code in it is refused (weights-only loading)
    torch.save({"format": "napari-semiconv-model/1", "x": print}, pickled)
    swapped = _rewrite(path, tmp_path / "swapped.zip", lambda n, d: pickled.read_bytes()
                       if n == "napari_semiconv_model.pt" else d.replace(b"sha256", b"sha256x") if n == "rdf.yaml" else d)
    with pytest.raises(SemiconvError, match="not readable"):
        import_bioimageio(swapped)
    with pytest.raises(SemiconvError, match=r"\.zip"):
        export_bioimageio(tiny(), tmp_path / "pkg.tar")
    with pytest.raises(SemiconvError, match="license"):
        export_bioimageio(tiny(), tmp_path / "lic.zip", license="no such license")
    with pytest.raises(SemiconvError, match="at least 256"):
        export_bioimageio(tiny(), tmp_path / "small.zip", test_image=np.ones((100, 100)))
    assert not (tmp_path / "lic.zip").exists() and not (tmp_path / "small.zip").exists()
    assert not Registry().files()


def test_cli_round_trip(tmp_path, capsys):
    model_file = save_model(tiny("flow"), tmp_path / "mine.pt", {"decode": THRESHOLDS})
    out = tmp_path / "mine.zip"
    assert main(["export-bioimageio", str(model_file), str(out), "--author", "A. Tester"]) == 0
    assert json.loads(capsys.readouterr().out)["package"] == str(out)
    validate(out)
    assert main(["import-bioimageio", str(out), "--name", "zoo"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "zoo"
    same_model(load_model(model_file), load_model(Registry().find("zoo")))
    assert main(["export-bioimageio", "zoo", str(tmp_path / "again.zip")]) == 0  # a registry name
    capsys.readouterr()
    assert main(["import-bioimageio", str(tmp_path / "again.zip"), "--out", str(tmp_path / "again.pt")]) == 0
    capsys.readouterr()
    same_model(load_model(model_file), load_model(tmp_path / "again.pt"))
    assert model_thresholds(load_model(tmp_path / "again.pt")) == THRESHOLDS

    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    for argv in (["import-bioimageio", str(bad)], ["export-bioimageio", "no-such-model", str(tmp_path / "x.zip")],
                 ["import-bioimageio", str(out), "--out", str(tmp_path / "x.txt")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("napari-semiconv: error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.txt").exists()

