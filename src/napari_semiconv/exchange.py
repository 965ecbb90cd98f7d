"""Model exchange with bioimage.io: export a model as a bioimage.io model package, import one back.

A package (a zip, format_version 0.5 of the bioimage.io model spec, validated with ``bioimageio.spec``) holds:

- ``rdf.yaml``: the description: input ``image`` (1 channel, y, x; normalized by percentiles 1 to 99.8 as
  napari-semiconv does), output ``network_outputs`` (the network's raw outputs stacked as channels, named
  in the description, see :func:`output_channels`);
- ``weights_torchscript.pt``: :class:`BioimageioNet` compiled with ``torch.jit.script`` (runs at any image
  size; a traced module would be fixed to the size it was traced at);
- ``weights_state_dict.pt``: the same weights as a ``pytorch_state_dict`` (architecture
  ``napari_semiconv.exchange.BioimageioNet``, whose keyword arguments are the model's config);
- ``test_input.npy`` / ``test_output.npy``: a sample image and the model's outputs on it;
- ``README.md``: what the channels are and how instances are obtained (napari-semiconv's decoder: the
  clustering of the embedding into worms is not a network layer and bioimage.io cannot express it);
- ``napari_semiconv_model.pt``: the napari-semiconv model file itself (config, weights, metadata with the
  decoder thresholds), so that :func:`import_bioimageio` rebuilds the model exactly.

``bioimageio.spec`` (the extra ``bioimageio``) is needed to export; importing reads the zip/folder itself.
"""

import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .atomic import atomic_write, check_writable
from .decode import model_decoding
from .errors import SemiconvError
from .model.embedding import ModelConfig, SemiConvNet
from .model.io import FORMAT, read_model_file, save_model

MODEL_FILE = "napari_semiconv_model.pt"  # our own model file inside the package (an attachment)
TORCHSCRIPT_FILE = "weights_torchscript.pt"
STATE_DICT_FILE = "weights_state_dict.pt"
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
PERCENTILES = (1.0, 99.8)  # napari_semiconv.normalize.normalize's defaults
EPS = 1e-6  # bioimage.io's scale_range: (x - lo) / (hi - lo + eps)
MIN_TILE = 256  # smallest input side declared in the package (sizes MIN_TILE + n * step)
CITATION = {"text": "Novotny, Albanie, Larlus, Vedaldi. Semi-convolutional Operators for Instance Segmentation. "
                    "ECCV 2018", "doi": "10.48550/arXiv.1807.10712"}
INSTALL = "pip install 'napari-semiconv[bioimageio]'"


# --------------------------------------------------------------------------------------------- the network


def output_channels(config: ModelConfig) -> list[str]:
    """Names of the stacked output channels of a model of ``config`` (what :class:`BioimageioNet` returns)."""
    names = ["fg_logit"] + ([] if config.target == "flow" else ["seed_logit"])
    names += ["phi_x", "phi_y"] + [f"phi_a{i}" for i in range(2, config.dim)]
    names += ["phi_x2", "phi_y2"] if config.flow_pair else []  # the second flow of a paired flow model
    names += ["sigma"] if config.target == "anchor" else []
    names += [] if config.target == "eq5" else ["count_0", "count_1", "count_2plus"]
    return names


def stack_outputs(out, config: ModelConfig) -> torch.Tensor:
    """:class:`~.model.embedding.Outputs` -> ``(B, C, H, W)`` stacked as :func:`output_channels` names them."""
    parts = [out.fg_logit] + ([] if config.target == "flow" else [out.seed_logit]) + [out.phi]
    parts += [out.sigma] if config.target == "anchor" else []
    parts += [] if config.target == "eq5" else [out.count_logit]
    return torch.cat(parts, 1)


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """TorchScript twin of ``embedding.resize``: area to shrink, bilinear to enlarge, as is if equal."""
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    if h <= x.shape[-2] and w <= x.shape[-1]:
        return F.interpolate(x, size=[h, w], mode="area")
    return F.interpolate(x, size=[h, w], mode="bilinear", align_corners=False)


class _Backbone(nn.Module):
    """The U-Net's blocks (``UNet.down``, ``UNet.up``) with a TorchScript-compatible twin of ``UNet.forward``."""

    def __init__(self, down: nn.ModuleList, up: nn.ModuleList, depth: int):
        super().__init__()
        self.down = down
        self.up = up
        self.multiple = int(2**depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, m = x.shape[-2], x.shape[-1], self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph > 0 or pw > 0:
            if h >= ph and w >= pw:
                x = F.pad(x, [0, pw, 0, ph], mode="circular")
            else:
                x = F.pad(x, [0, pw, 0, ph], mode="replicate")
        skips: list[torch.Tensor] = []
        first = True
        for block in self.down:
            x = block(x if first else F.max_pool2d(x, 2))
            first = False
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=[skip.shape[-2], skip.shape[-1]], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x[:, :, :h, :w]


class BioimageioNet(nn.Module):
    """:class:`~.model.embedding.SemiConvNet` for bioimage.io: ``forward(x)`` -> one ``(B, C, H, W)`` tensor.

    Built from the model's config (``BioimageioNet(**config.to_dict())``, the package's ``pytorch_state_dict``
    architecture); its state dict is the SemiConvNet's (same keys). The forward is a TorchScript-compatible
    copy of ``SemiConvNet.forward`` (tests compare the two for every target) returning the outputs stacked as
    :func:`output_channels` names them; Psi is not among them (Psi = Phi + (x, y) / coord_scale in the first
    two channels for semi-convolutional models, so that tiles of an image agree on Phi).
    """

    def __init__(self, **config):
        super().__init__()
        cfg = ModelConfig(**config)
        net = SemiConvNet(cfg)
        self.backbone = _Backbone(net.backbone.down, net.backbone.up, cfg.depth)
        identity = nn.Identity  # placeholders (no parameters) for the heads a target has not
        self.seed_head = getattr(net, "seed_head", None) or identity()
        self.phi_head = net.phi_head
        self.log_sigma = net.log_sigma
        self.fg_head = getattr(net, "fg_head", None) or identity()
        self.sigma_head = getattr(net, "sigma_head", None) or identity()
        self.image_head = getattr(net, "image_head", None) or identity()
        self.count_head = getattr(net, "count_head", None) or identity()
        self.count_refiner = getattr(net, "count_refiner", None) or identity()
        self.refine_count = bool(cfg.count_refiner)
        self.kind = cfg.target
        self.dim = cfg.dim
        self.scale = float(cfg.input_scale)
        self.downsample = float(cfg.downsample)
        self.bound = float(cfg.offset_range / cfg.coord_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, s, kind = x.shape[-2], x.shape[-1], self.scale, self.kind
        full = x
        if kind != "eq5":
            full = _resize(x, max(1, math.ceil(h / s)), max(1, math.ceil(w / s)))
        f = self.downsample * s
        feats = self.backbone(_resize(x, max(1, math.ceil(h / f)), max(1, math.ceil(w / f))))
        parts: list[torch.Tensor] = []
        if kind != "flow":
            parts.append(self.seed_head(feats))
        parts.append(self.phi_head(feats))
        if kind == "anchor":
            parts.append(self.sigma_head(feats))
        elif kind == "eq5":
            parts.append(self.fg_head(feats))
        heads = _resize(torch.cat(parts, 1), h, w)
        seed, phi = heads, heads
        if kind != "flow":
            seed, phi = heads[:, :1], heads[:, 1 : 1 + self.dim]
        fg, count = heads, heads
        if kind == "eq5":
            fg = heads[:, -1:]
        else:
            up = _resize(feats, full.shape[-2], full.shape[-1])
            count = self.count_head(torch.cat([up, self.image_head(full)], 1))
            if self.refine_count:
                flow = _resize(phi[:, :2], full.shape[-2], full.shape[-1])
                count = self.count_refiner(torch.cat([full, count, flow], 1))
            count = _resize(count, h, w)
            fg = torch.logsumexp(count[:, 1:], 1, keepdim=True) - count[:, :1]
        sigma = heads
        if kind == "anchor":
            phi = torch.cat([self.bound * torch.tanh(phi[:, :2] / self.bound), phi[:, 2:]], 1)
            sigma = (self.log_sigma + heads[:, -1:]).exp() * s
        if kind != "flow" and s != 1.0:
            phi = phi * s
        outs = [fg]
        if kind != "flow":
            outs.append(seed)
        outs.append(phi)
        if kind == "anchor":
            outs.append(sigma)
        if kind != "eq5":
            outs.append(count)
        return torch.cat(outs, 1)


# ------------------------------------------------------------------------------------------------ export


def scale_range(image: np.ndarray) -> np.ndarray:
    """The package's preprocessing as bioimage.io runs it: percentiles 1 .. 99.8 of the plane -> 0 .. 1."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, PERCENTILES)
    return ((x - lo) / (hi - lo + EPS)).astype(np.float32)


def sample_image(size: int = MIN_TILE) -> np.ndarray:
    """A ``(size, size)`` float32 crop of napari-semiconv's first sample scene (brightfield worms)."""
    from .data.sources import SAMPLE_SEED0
    from .data.synthetic import FIELD, SceneConfig, make_scene

    size = min(size, *FIELD)
    window = ((FIELD[0] - size) // 2, (FIELD[1] - size) // 2, size, size)
    return make_scene(SAMPLE_SEED0, SceneConfig(style="brightfield"), window=window).image.astype(np.float32)


def _as_model(model) -> tuple[SemiConvNet, str]:
    """``model`` (a SemiConvNet, a model file, a registry name or None for the shipped one) on the CPU, and
    its name (the file's stem)."""
    if model is None or isinstance(model, (str, os.PathLike)):
        from .registry import resolve_model

        model = resolve_model(None if model is None else str(model), "cpu")
    if not isinstance(model, SemiConvNet):
        raise SemiconvError(f"only napari-semiconv models can be exported to bioimage.io, not a {type(model).__name__} "
                            "(e.g. a Mask R-CNN baseline)")
    net = SemiConvNet(model.config)  # a CPU copy: the caller's model (maybe on a GPU, in a dock) is left alone
    net.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    meta = dict(getattr(model, "metadata", {}))
    net.metadata = {k: v for k, v in meta.items() if k != "path"}
    return net.eval(), Path(str(meta.get("path", "model"))).stem


def _spec():
    try:
        from bioimageio import spec
    except ImportError:
        raise SemiconvError(f"exporting to bioimage.io needs bioimageio.spec: {INSTALL}") from None
    return spec


def _clean_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_+\- ()]+", "-", text).strip(" -")
    name = name if len(name) >= 5 else f"napari-semiconv {name}".strip()
    return name[:128]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _documentation(net: SemiConvNet, stem: str, channels: list[str], decode: dict) -> str:
    cfg, meta = net.config, net.metadata
    docs = {**_CHANNEL_DOC, **(_FLOW_DOC if cfg.target == "flow" else {})}
    rows = "\n".join(f"| {i} | `{c}` | {docs[c.rstrip('0123456789') if c.startswith('phi_a') else c]} |"
                     for i, c in enumerate(channels))
    if cfg.target == "flow":
        embedding = ("This is a **flow** model: `phi_x`, `phi_y` are a unit flow along each worm's body toward a "
                     f"fixed point on it; the decoder follows the flow for up to {cfg.flow_steps} one-pixel steps and "
                     "groups the pixels whose paths end together (`napari_semiconv.flow`)."
                     + (" `phi_x2`, `phi_y2` are a second flow: where two worms cross, each flow follows one of them, "
                        "and a path takes the one closer to its last step." if cfg.flow_pair else ""))
    else:
        psi = ("Psi = Phi + (x, y) / coord_scale in its first two dimensions (Phi unchanged in the others), added by "
               "napari-semiconv in the frame of the whole image, so that tiles agree" if cfg.semiconv else "Psi = Phi")
        bandwidth = (f"the scalar sigma = {float(net.sigma.detach()):.6g} (Psi units)" if cfg.target == "eq5"
                     else "the `sigma` channel")
        embedding = (f"Phi is in units of `coord_scale` = {cfg.coord_scale:g} pixels. The embedding of pixel (x, y) is "
                     f"{psi}. Pixels of one worm have nearby Psi; the kernel bandwidth is {bandwidth}.")
    thresholds = ", ".join(f"{k} = {v:g}" for k, v in decode.items()) or "the decoder's defaults"
    validation = meta.get("validation")
    scores = ((f"On its own validation images ({meta.get('data', 'see the model metadata')}), after decoding: "
               + ", ".join(f"{k} {v:.3f}" for k, v in validation.items() if isinstance(v, float)) + ".")
              if isinstance(validation, dict) and validation else "No validation scores were stored with this model.")
    return f"""# napari-semiconv model: {stem} ({cfg.target})

A semi-convolutional embedding network (Novotny, Albanie, Larlus, Vedaldi, ECCV 2018) for instance
segmentation of *C. elegans* and other touching, look-alike objects, exported by napari-semiconv
{__version__}.

## Input

One 2-D greyscale plane (axes batch, channel, y, x; one channel). The package declares sizes
{MIN_TILE} + n x {int(cfg.downsample * 2 ** cfg.depth)} pixels, but the network runs at any size. The plane is
normalized by its percentiles 1 and 99.8 (`scale_range`), as napari-semiconv does. Binary foreground
masks (the BBBC010 protocol) are mapped to 0/1 instead: segment those with napari-semiconv (`--binary`).

## Output: the network's raw outputs, not instances

`network_outputs` stacks the network's outputs as channels (logits are before any sigmoid or softmax):

| channel | name | meaning |
|---|---|---|
{rows}

{embedding}

**Instances come from napari-semiconv's decoder.** Grouping pixels into worms (seeded clustering of the
embedding, or following the flow) happens outside the network and cannot be expressed in bioimage.io.
To get worms, import this package into napari-semiconv (`napari-semiconv import-bioimageio THIS.zip`,
or *bioimage.io: import...* in the docks' model list) and segment with it. The decoder thresholds chosen
for this model travel with it: {thresholds}.

## Validation

{scores} The test input is a crop of napari-semiconv's first synthetic sample scene and the test output
the network's outputs on it: a reproducibility check, not a score. To validate on your own data, label
a few images, segment them with napari-semiconv and run `napari-semiconv evaluate --pred DIR --gt DIR`
(S(t), avS, AP).

## Configuration

```json
{json.dumps(cfg.to_dict(), indent=2)}
```
"""


_CHANNEL_DOC = {
    "fg_logit": "foreground logit: its sigmoid is P(the pixel belongs to a worm)",
    "seed_logit": "seed logit: its sigmoid is P(the pixel's embedding is near its worm's centre)",
    "phi_x": "embedding displacement Phi, x",
    "phi_y": "embedding displacement Phi, y",
    "phi_a": "embedding appearance dimension",
    "sigma": "kernel bandwidth per pixel (Psi units)",
    "count_0": "logit of no worm at the pixel",
    "count_1": "logit of one worm at the pixel",
    "count_2plus": "logit of two or more (overlapping) worms at the pixel",
}
_FLOW_DOC = {"phi_x": "unit flow along the body, x", "phi_y": "unit flow along the body, y",
             "phi_x2": "second unit flow (where two worms cross: the other worm's), x", "phi_y2": "second unit flow, y"}


def export_bioimageio(model, path: str | os.PathLike, *, name: str | None = None, description: str | None = None,
                      authors: list[str] | None = None, license: str = "BSD-3-Clause",
                      test_image: np.ndarray | None = None) -> Path:
    """Write ``model`` as a bioimage.io model package (a zip) at ``path``, atomically; returns ``path``.

    ``model``: a SemiConvNet, a model file, a registry name, or None for the shipped model. ``test_image``: a
    2-D plane for the test input (default: a crop of the first sample scene), cropped to a valid size. The
    package is validated with bioimageio.spec before it is written (SemiconvError if invalid), and the
    TorchScript weights are checked to reproduce the model's outputs.
    """
    spec = _spec()
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise SemiconvError(f"{path}: a bioimage.io package is a .zip file: give a name ending in .zip")
    check_writable(path)
    net, stem = _as_model(model)
    cfg = net.config
    step = int(cfg.downsample * 2**cfg.depth)
    size = step * math.ceil(MIN_TILE / step)
    image = sample_image(size) if test_image is None else _test_crop(test_image, size, step)
    x = torch.from_numpy(scale_range(image))[None, None]
    with torch.no_grad():
        expected = stack_outputs(net(x), cfg)
        scripted = torch.jit.script(_wrapper(net))
        got = scripted(x)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise SemiconvError("the TorchScript export does not reproduce the model's outputs "
                            f"(max difference {(got - expected).abs().max():.3g}): please report this")
    channels = output_channels(cfg)
    decode = model_decoding(net)
    with tempfile.TemporaryDirectory(prefix="semiconv-bioimageio-") as tmp:
        root = Path(tmp)
        torch.jit.save(scripted, str(root / TORCHSCRIPT_FILE))
        torch.save(net.state_dict(), root / STATE_DICT_FILE)
        save_model(net, root / MODEL_FILE, net.metadata)
        np.save(root / "test_input.npy", image[None, None])
        np.save(root / "test_output.npy", expected.numpy())
        tifffile.imwrite(root / "sample_input.tif", image[None, None])
        tifffile.imwrite(root / "sample_output.tif", expected.numpy())
        (root / "README.md").write_text(_documentation(net, stem, channels, decode), encoding="utf-8")
        rdf = _rdf(net, stem, root, channels, decode, step, size, name=name, description=description,
                   authors=authors, license=license)
        context = spec.ValidationContext(root=root, perform_io_checks=True)
        descr = spec.build_description(rdf, context=context)
        if isinstance(descr, spec.InvalidDescr):
            if {str(e.loc[0]) for e in descr.validation_summary.errors if e.loc} == {"license"}:
                raise SemiconvError(f"license {license!r} is not an SPDX license identifier: give one such as "
                                    "BSD-3-Clause, MIT or CC-BY-4.0")
            raise SemiconvError(f"the bioimage.io description is invalid: {_reason(descr)}")
        package = root / "package.zip"
        try:
            spec.save_bioimageio_package(descr, output_path=package)
        except ValueError as exc:
            raise SemiconvError(f"the bioimage.io package is invalid: {str(exc).splitlines()[0]}") from None
        atomic_write(path, lambda out: shutil.copyfile(package, out))
    return path


def _wrapper(net: SemiConvNet) -> BioimageioNet:
    wrapper = BioimageioNet(**net.config.to_dict())
    wrapper.load_state_dict(net.state_dict())
    return wrapper.eval()


def _test_crop(image, size: int, step: int) -> np.ndarray:
    from .normalize import check_image

    arr = check_image(image, "the test image").astype(np.float32)
    h, w = arr.shape
    if min(h, w) < size:
        raise SemiconvError(f"the test image is {h} x {w}: it needs at least {size} x {size} pixels")
    h, w = size + (h - size) // step * step, size + (w - size) // step * step
    return np.ascontiguousarray(arr[:h, :w])


def _reason(descr) -> str:
    """The first errors of an invalid description, on one line."""
    errors = descr.validation_summary.errors

    def short(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= 160 else text[:157] + "..."

    return "; ".join(short(f"{'.'.join(map(str, e.loc))}: {e.msg}") for e in errors[:3]) or "unknown reason"


def _rdf(net: SemiConvNet, stem: str, root: Path, channels: list[str], decode: dict, step: int, size: int, *, name, description,
         authors, license) -> dict:
    cfg, meta = net.config, net.metadata
    halo = size // 4
    space = [{"type": "space", "id": a, "size": {"min": size, "step": step}} for a in ("y", "x")]
    out_space = [{"type": "space", "id": a, "halo": halo, "size": {"tensor_id": "image", "axis_id": a}}
                 for a in ("y", "x")]
    torch_version = torch.__version__.split("+")[0]
    return {
        "format_version": _format_version(),
        "type": "model",
        "name": _clean_name(name or f"napari-semiconv {stem} ({cfg.target})"),
        "description": description or (
            f"Semi-convolutional embedding network ({cfg.target} target) for instance segmentation of C. elegans "
            "worms; outputs are raw network outputs, instances come from napari-semiconv's decoder"),
        "authors": [{"name": a} for a in (authors or [str(meta.get("author", "napari-semiconv"))])],
        "cite": [CITATION],
        "license": license,
        "tags": ["napari-semiconv", "instance-segmentation", "semi-convolutional", "c-elegans", "2d", "pytorch",
                 "torchscript", cfg.target],
        "documentation": {"source": str(root / "README.md")},
        "attachments": [{"source": str(root / MODEL_FILE), "sha256": _sha256(root / MODEL_FILE)}],
        "inputs": [{
            "id": "image",
            "description": "one greyscale plane",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["image"]}, *space],
            "test_tensor": {"source": str(root / "test_input.npy")},
            "sample_tensor": {"source": str(root / "sample_input.tif")},
            "data": {"type": "float32"},
            "preprocessing": [
                {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                {"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": PERCENTILES[0],
                                                 "max_percentile": PERCENTILES[1], "eps": EPS}},
            ],
        }],
        "outputs": [{
            "id": "network_outputs",
            "description": "raw network outputs stacked as channels (see the documentation)",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": channels}, *out_space],
            "test_tensor": {"source": str(root / "test_output.npy")},
            "sample_tensor": {"source": str(root / "sample_output.tif")},
            "data": {"type": "float32"},
        }],
        "weights": {
            "pytorch_state_dict": {
                "source": str(root / STATE_DICT_FILE),
                "architecture": {"callable": "BioimageioNet", "import_from": "napari_semiconv.exchange",
                                 "kwargs": cfg.to_dict()},
                "pytorch_version": torch_version,
                "comment": "needs napari-semiconv installed (pip install napari-semiconv)",
            },
            "torchscript": {
                "source": str(root / TORCHSCRIPT_FILE),
                "pytorch_version": torch_version,
                "parent": "pytorch_state_dict",
                "comment": "torch.jit.script of napari_semiconv.exchange.BioimageioNet (any input size)",
            },
        },
        "config": {"napari_semiconv": {
            "format": FORMAT,
            "model_file": MODEL_FILE,
            "version": __version__,
            "name": stem,
            "target": cfg.target,
            "channels": channels,
            "sigma": float(net.sigma.detach()),
            "decode": decode,
            "model_config": cfg.to_dict(),
        }},
    }


def _format_version() -> str:
    from bioimageio.spec.model.v0_5 import ModelDescr

    return ModelDescr.implemented_format_version


# ------------------------------------------------------------------------------------------------ import


class _Package:
    """A bioimage.io package's files, whether a zip, a folder or an rdf.yaml beside its files."""

    def __init__(self, source: str | os.PathLike):
        self.source = Path(source)
        self.zip = None
        if not self.source.exists():
            raise SemiconvError(f"{self.source} not found: give a bioimage.io package (.zip), its folder or its rdf.yaml")
        if self.source.is_dir():
            self.root = self.source
            rdf = next((n for n in RDF_NAMES if (self.root / n).is_file()), None)
        elif self.source.suffix.lower() in (".yaml", ".yml"):
            self.root, rdf = self.source.parent, self.source.name
        else:
            try:
                self.zip = zipfile.ZipFile(self.source)
            except (zipfile.BadZipFile, OSError) as exc:
                raise SemiconvError(f"{self.source} is not a readable bioimage.io package ({type(exc).__name__}: "
                                    f"{exc}): give the .zip exported by bioimage.io, its folder or its rdf.yaml") from None
            names = set(self.zip.namelist())
            rdf = next((n for n in RDF_NAMES if n in names), None)
        if rdf is None:
            self.close()
            raise SemiconvError(f"{self.source} has no rdf.yaml: it is not a bioimage.io package")
        self.rdf_name = rdf

    def read(self, name: str) -> bytes:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise SemiconvError(f"{self.source}: refusing the file name {name!r} (outside the package)")
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return (self.root / name).read_bytes()
        except (KeyError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise SemiconvError(f"{self.source}: cannot read {name} from the package ({type(exc).__name__}): "
                                "the package is incomplete or corrupt; export it again") from None
        except Exception as exc:  # noqa: BLE001, zlib.error, CRC mismatch (BadZipFile is raised for CRC)
            raise SemiconvError(f"{self.source}: {name} is corrupt in the package ({type(exc).__name__}); "
                                "export it again") from None

    def rdf(self) -> dict:
        text = self.read(self.rdf_name).decode("utf-8", errors="replace")
        try:
            data = _load_yaml(text)
        except SemiconvError:
            raise
        except Exception as exc:  # noqa: BLE001, any YAML error
            raise SemiconvError(f"{self.source}: {self.rdf_name} is not valid YAML ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise SemiconvError(f"{self.source}: {self.rdf_name} is not a bioimage.io description")
        return data

    def close(self):
        if self.zip is not None:
            self.zip.close()


def _load_yaml(text: str):
    try:
        import yaml
    except ImportError:
        try:
            from ruyaml import YAML
        except ImportError:
            raise SemiconvError(f"reading bioimage.io packages needs a YAML reader: {INSTALL}") from None
        return YAML(typ="safe").load(text)
    return yaml.safe_load(text)


def read_bioimageio(source: str | os.PathLike, device="cpu") -> SemiConvNet:
    """The napari-semiconv model inside the bioimage.io package ``source`` (zip, folder or rdf.yaml).

    The package must have been exported by napari-semiconv (it carries our model file as an attachment);
    SemiconvError otherwise, or if anything in it is corrupt. ``model.metadata`` is the stored metadata
    (decoder thresholds included) plus ``imported_from``.
    """
    package = _Package(source)
    try:
        rdf = package.rdf()
        ours = (rdf.get("config") or {}).get("napari_semiconv") if isinstance(rdf.get("config"), dict) else None
        if rdf.get("type") != "model" or not isinstance(ours, dict) or not ours.get("model_file"):
            what = f"a bioimage.io {rdf.get('type', 'resource')}" + (f" ({rdf['name']})" if rdf.get("name") else "")
            raise SemiconvError(f"{package.source} is {what} not exported by napari-semiconv (no "
                                "config.napari_semiconv.model_file): only napari-semiconv packages can be imported; "
                                "use that model with bioimage.io tools (e.g. bioimageio.core) instead")
        name = str(ours["model_file"])
        data = package.read(name)
        digest = next((a.get("sha256") for a in rdf.get("attachments") or []
                       if isinstance(a, dict) and Path(str(a.get("source", ""))).name == Path(name).name), None)
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise SemiconvError(f"{package.source}: {name} does not match its checksum in {package.rdf_name}: the "
                                "package is corrupt; export it again")
    finally:
        package.close()
    with tempfile.TemporaryDirectory(prefix="semiconv-import-") as tmp:
        model_path = Path(tmp) / MODEL_FILE
        model_path.write_bytes(data)
        try:
            payload = read_model_file(model_path)
        except SemiconvError:
            raise SemiconvError(f"{package.source}: the napari-semiconv model inside ({name}) is not readable: "
                                "the package is corrupt; export it again") from None
    try:
        model = SemiConvNet(ModelConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise SemiconvError(f"{package.source}: the weights do not match the stored config ({exc}); "
                            "this package may come from a newer napari-semiconv: update it") from None
    model.metadata = dict(payload.get("metadata", {}))
    model.metadata["imported_from"] = str(package.source)
    model.package_name = str(ours.get("name") or package.source.stem)  # the name it was exported with
    return model.to(device).eval()


def import_bioimageio(source: str | os.PathLike, *, name: str | None = None, out: str | os.PathLike | None = None):
    """Import the bioimage.io package ``source`` as a napari-semiconv model file; returns its path.

    With ``out`` the model is written there (atomically); otherwise it is added to the model registry
    (:class:`~.registry.Registry`) under ``name`` (default: the name it was exported with), made unique.
    """
    if out is not None:
        if Path(out).suffix != ".pt":
            raise SemiconvError(f"{out}: a napari-semiconv model file ends in .pt: give a name ending in .pt")
        out = check_writable(out)
    model = read_bioimageio(source)
    meta = {k: v for k, v in model.metadata.items() if k != "path"}
    if out is not None:
        return save_model(model, out, meta)
    from .registry import Registry

    return Registry().add(model, name or model.package_name, meta).path


def package_summary(path: str | os.PathLike) -> dict:
    """What a napari-semiconv bioimage.io package holds: its files and our config (for the CLI and tests)."""
    package = _Package(path)
    try:
        files = sorted(package.zip.namelist()) if package.zip else sorted(p.name for p in package.root.iterdir())
        return {"files": files, "napari_semiconv": package.rdf().get("config", {}).get("napari_semiconv", {})}
    finally:
        package.close()


def run_torchscript(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Run a package's TorchScript weights on its test input, preprocessed as the package says.

    Returns ``(outputs, expected)``: what the weights give and the package's test output.
    """
    package = _Package(path)
    try:
        scripted = torch.jit.load(io.BytesIO(package.read(TORCHSCRIPT_FILE)), map_location="cpu")
        image = np.load(io.BytesIO(package.read("test_input.npy")))
        expected = np.load(io.BytesIO(package.read("test_output.npy")))
    finally:
        package.close()
    x = torch.from_numpy(scale_range(image[0, 0]))[None, None]
    with torch.no_grad():
        return scripted(x).numpy(), expected
