"""The Mask R-CNN baselines (optional extra ``baselines``): embedding head, per-RoI kernel update, training, files."""

import numpy as np
import pytest

torchvision = pytest.importorskip(
    "torchvision", reason="torchvision is not installed: the Mask R-CNN baselines need the optional extra "
    "`baselines` (torch 2.14.1 + torchvision 0.29.1, in its own venv; see benchmarks/paper_table.py)")

import torch
from torchvision.ops import MultiScaleRoIAlign

from napari_semiconv import SemiconvError
from napari_semiconv.baselines import (
    BaselineConfig,
    TrainConfig,
    build_baseline,
    instance_target,
    load_baseline,
    make_optimizer,
    model_input,
    predict,
    save_baseline,
    train_step,
)
from napari_semiconv.baselines.semiconv import (
    LEVELS,
    EmbeddingHead,
    SemiConvConfig,
    kernel_update,
    roi_coordinates,
    scale_grad,
)
from napari_semiconv.model.io import read_model_file


def _crossing_worms(size=96):
    """Two bars crossing at right angles: an (2, size, size) bool stack whose masks overlap."""
    stack = np.zeros((2, size, size), bool)
    stack[0, 40:50, 10:86] = True
    stack[1, 12:80, 30:39] = True
    return stack


def _features(batch=2, channels=16, size=32):
    return {k: torch.randn(batch, channels, size >> i, size >> i) for i, k in enumerate([*LEVELS, "pool"])}


def test_embedding_head_gives_phi_on_every_mask_level():
    head = EmbeddingHead(in_channels=16, hidden=32, dim=8)
    feats = _features()
    phi = head(feats)
    assert tuple(phi) == LEVELS
    for k in LEVELS:
        assert phi[k].shape == (2, 8, *feats[k].shape[-2:])
    assert head.net[0].kernel_size == (1, 1) and head.net[2].kernel_size == (3, 3)


def test_gradient_into_the_fpn_is_scaled_by_a_tenth():
    x = torch.randn(3, 4, requires_grad=True)
    g = torch.randn(3, 4)
    y = scale_grad(x, 0.1)
    y.backward(g)
    assert torch.equal(y, x) and torch.allclose(x.grad, 0.1 * g)

    grads = {}
    for scale in (1.0, 0.1):
        torch.manual_seed(0)
        head = EmbeddingHead(in_channels=16, hidden=32, dim=8, grad_scale=scale)
        feats = {k: v.requires_grad_() for k, v in _features().items()}
        phi = head(feats)
        sum((v * torch.linspace(-1, 1, v.numel()).view_as(v)).sum() for v in phi.values()).backward()
        grads[scale] = ([feats[k].grad.clone() for k in LEVELS], [p.grad.clone() for p in head.parameters()])
    for full, tenth in zip(grads[1.0][0], grads[0.1][0]):
        assert full.abs().sum() > 0 and torch.allclose(tenth, 0.1 * full, atol=1e-7)
    for full, tenth in zip(grads[1.0][1], grads[0.1][1]):  # the head itself learns at full rate
        assert torch.allclose(full, tenth)


def test_u_hat_is_the_image_point_roi_align_samples():
    boxes = torch.tensor([[10.0, 20.0, 38.0, 76.0], [100.0, 40.0, 350.0, 300.0]])  # level 0 and level 2
    u = roi_coordinates(boxes, 28, 5, coord_scale=2.0)
    assert u.shape == (2, 5, 28, 28) and torch.all(u[:, 2:] == 0)
    assert u[0, 0, 0, 3] == pytest.approx((10 + 3.5) / 2) and u[0, 1, 5, 0] == pytest.approx((20 + 5.5 * 2) / 2)
    # feature maps whose value at each cell is that cell's image x (stride 4, 8, 16, 32): RoIAlign returns u_hat's x
    size = 512
    ramps = {k: (torch.arange(size >> (2 + i)).float() * (4 << i)).expand(1, 1, size >> (2 + i), -1).contiguous()
             for i, k in enumerate(LEVELS)}
    pooled = MultiScaleRoIAlign(list(LEVELS), 28, sampling_ratio=2)(ramps, [boxes], [(size, size)])
    assert torch.allclose(pooled[:, 0], u[:, 0] * 2.0, atol=1e-3)


def test_kernel_update_is_s_plus_log_k():
    torch.manual_seed(1)
    s, psi, sigma = torch.randn(3, 2, 5, 5), torch.randn(3, 8, 5, 5), torch.tensor(0.7)
    s_hat, log_k = kernel_update(s, psi, sigma)
    for r in range(3):
        for c in range(2):
            p = torch.softmax(s[r, c].flatten(), 0)
            seed = psi[r].flatten(1) @ p  # (8,) expected embedding under softmax(s)
            k = torch.exp(-torch.linalg.vector_norm(psi[r].flatten(1) - seed[:, None], dim=0) / sigma)
            assert torch.allclose(s_hat[r, c].flatten(), s[r, c].flatten() + torch.log(k), atol=1e-6)
            assert torch.allclose(log_k[r, c].flatten(), torch.log(k), atol=1e-6)


def test_semiconv_heads_update_the_mask_logits_with_the_kernel():
    torch.manual_seed(2)
    model = build_baseline(BaselineConfig(semiconv=SemiConvConfig())).eval()
    heads = model.roi_heads
    feats = model.backbone(torch.randn(1, 1, 96, 96))
    boxes, shapes = [torch.tensor([[8.0, 30.0, 90.0, 60.0], [20.0, 5.0, 50.0, 85.0]])], [(96, 96)]
    with torch.no_grad():
        s_hat, log_k, psi = heads.mask_logits(feats, boxes, shapes)
        s = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(feats, boxes, shapes)))
        phi = heads.psi_roi_pool(heads.embedding(feats), boxes, shapes)
    assert s_hat.shape == s.shape == (2, 2, 28, 28) and psi.shape == (2, 8, 28, 28)
    assert torch.allclose(psi, phi + roi_coordinates(boxes[0], 28, 8, 64.0))
    assert torch.allclose(s_hat, s + kernel_update(s, psi, heads.sigma)[1]) and torch.all(log_k <= 0)


def test_instance_target_keeps_overlaps():
    stack = _crossing_worms()
    target = instance_target(np.concatenate([stack, np.zeros((1, 96, 96), bool)]))
    assert target["boxes"].tolist() == [[10, 40, 86, 50], [30, 12, 39, 80]]
    assert target["labels"].tolist() == [1, 1] and target["masks"].dtype == torch.uint8
    assert (target["masks"].sum(0) == 2).sum() == 10 * 9  # the crossing belongs to both worms
    assert instance_target(np.zeros((0, 8, 8), bool))["boxes"].shape == (0, 4)


@pytest.mark.parametrize("semiconv", [False, True])
def test_one_training_step_gives_finite_losses(semiconv):
    torch.manual_seed(3)
    model = build_baseline(BaselineConfig(semiconv=SemiConvConfig() if semiconv else None))
    stack = _crossing_worms()
    image, target = model_input(stack.any(0).astype(np.uint8), binary=True), instance_target(stack)
    optimizer = make_optimizer(model, TrainConfig())
    before = [p.detach().clone() for p in model.roi_heads.parameters()]
    losses = train_step(model, optimizer, [image], [target], clip=10.0)
    expected = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg", "total"}
    if semiconv:
        expected |= {"loss_embedding", "loss_kernel"}
        assert losses["loss_embedding"] > 0 and losses["loss_kernel"] > 0
    assert set(losses) == expected and all(np.isfinite(v) for v in losses.values())
    assert losses["total"] == pytest.approx(sum(v for k, v in losses.items() if k != "total"), rel=1e-5)
    after = list(model.roi_heads.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after))  # every head (embedding, sigma) learned


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(4)
    config = BaselineConfig(semiconv=SemiConvConfig(dim=6), input="binary", score_threshold=0.0)
    model = build_baseline(config)
    with torch.no_grad():
        model.roi_heads.log_sigma.fill_(-1.234)
    path = save_baseline(model, tmp_path / "m.pt", {"steps": 7})
    loaded = load_baseline(path)
    assert loaded.config == config and loaded.metadata["steps"] == 7
    assert loaded.roi_heads.sigma.item() == pytest.approx(np.exp(-1.234), rel=1e-5)
    image = _crossing_worms().any(0).astype(np.uint8)
    (m0, s0), (m1, s1) = predict(model, image), predict(loaded, image)
    assert len(s0) > 0 and m0.shape == (len(s0), 96, 96) and m0.dtype == bool
    assert np.array_equal(m0, m1) and np.allclose(s0, s1) and np.all(np.diff(s0) <= 0)
    with pytest.raises(SemiconvError, match="napari-semiconv"):  # our U-Net loader refuses it ...
        read_model_file(path)
    other = tmp_path / "other.pt"
    torch.save({"format": "napari-semiconv-model/1"}, other)
    with pytest.raises(SemiconvError, match="not a Mask R-CNN baseline file"):  # ... and this loader ours
        load_baseline(other)


def test_cli_segment_with_a_baseline_file_writes_the_same_files(tmp_path, capsys):
    """``segment --model BASELINE.pt``: labels, (N, H, W) stack and CSV as for our models; no embedding."""
    import tifffile

    from napari_semiconv.cli import main
    from napari_semiconv.data.sources import TEST_SEED0
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.decode import DecodeConfig
    from napari_semiconv.registry import resolve_model
    from napari_semiconv.segment import SegmentConfig, segment

    torch.manual_seed(0)
    path = save_baseline(build_baseline(BaselineConfig(semiconv=SemiConvConfig(), score_threshold=0.0)),
                         tmp_path / "baseline.pt")
    scene = make_scene(TEST_SEED0 + 3, SceneConfig(style="brightfield"), window=(150, 200, 128, 128))
    tifffile.imwrite(tmp_path / "scene.tif", scene.image)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "scene.tif"), "--out", str(out), "--model", str(path),
                 "--min-size", "1", "--quiet"]) == 0
    labels = tifffile.imread(out / "scene_labels.tif")
    stack = tifffile.imread(out / "scene_instances.tif")
    csv = (out / "scene_instances.csv").read_text().splitlines()
    assert labels.dtype == np.uint16 and labels.shape == (128, 128)
    assert stack.dtype == np.uint8 and stack.ndim == 3 and stack.shape[1:] == (128, 128) and len(stack) > 0
    assert len(csv) == len(stack) + 1 and csv[0].startswith("label,score,area")
    assert (out / "segment_summary.csv").is_file()

    model = resolve_model(str(path), "cpu", baselines=True)  # what the CLI and the Segment dock load
    result = segment(model, scene.image, SegmentConfig(decode=DecodeConfig(min_size=1)))
    assert np.array_equal(result.labels, labels) and len(result.instances) == len(stack)
    assert result.scores.shape == (len(stack),) and np.all(np.diff(result.scores) <= 0)
    assert result.embedding is None and result.displacement is None and "Mask R-CNN" in result.absent
    assert result.foreground.shape == (128, 128) and np.array_equal(result.foreground > 0, labels > 0)
    single = segment(model, scene.image, SegmentConfig(decode=DecodeConfig(min_size=1, overlap=False)))
    disjoint = single.instances.to_stack()
    assert disjoint.sum(0).max() <= 1 and single.labels.max() == len(disjoint) == len(single.scores)
    assert np.array_equal(single.labels > 0, labels > 0)
    for refused in (SegmentConfig(binary=True), SegmentConfig(tta=True)):
        with pytest.raises(SemiconvError, match="baseline"):
            segment(model, scene.image, refused)
    with pytest.raises(SemiconvError, match="Mask R-CNN baseline model"):  # e.g. finetune: not for our models
        resolve_model(str(path), "cpu")
