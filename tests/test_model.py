import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_semiconv import SemiconvError
from napari_semiconv.model import ModelConfig, build_model, load_model, pick_device, save_model
from napari_semiconv.model.embedding import pixel_coordinates

SMALL = ModelConfig(width=4, depth=2, dim=5, downsample=1)


@pytest.mark.parametrize("shape", [(37, 51), (64, 64), (9, 130)])
def test_forward_any_shape_and_semiconv_offsets(shape):
    model = build_model(SMALL).eval()
    x = torch.rand(2, 1, *shape)
    out = model(x)
    assert out.psi.shape == (2, 5, *shape) and out.fg_logit.shape == (2, 1, *shape)
    delta = (out.psi - out.phi)[0].detach()
    u = pixel_coordinates(*shape, 5, SMALL.coord_scale)
    assert torch.allclose(delta, u)
    assert delta[0, 0, 1] - delta[0, 0, 0] == pytest.approx(1 / SMALL.coord_scale)  # x along columns
    assert delta[1, 1, 0] - delta[1, 0, 0] == pytest.approx(1 / SMALL.coord_scale)  # y along rows
    assert torch.all(delta[2:] == 0)


def test_convolutional_ablation_has_no_coordinates():
    model = build_model(ModelConfig(width=4, depth=2, semiconv=False)).eval()
    out = model(torch.rand(1, 1, 32, 40))
    assert torch.equal(out.psi, out.phi)


def test_tile_origin_shifts_coordinates():
    model = build_model(SMALL).eval()
    x = torch.rand(1, 1, 32, 32)
    a, b = model(x), model(x, origin=(10, 20))
    diff = (b.psi - a.psi)[0].detach()
    assert torch.allclose(diff[0], torch.full((32, 32), 20 / SMALL.coord_scale))
    assert torch.allclose(diff[1], torch.full((32, 32), 10 / SMALL.coord_scale))


def test_save_load_roundtrip(tmp_path):
    model = build_model(SMALL).eval()
    with torch.no_grad():
        model.log_sigma.fill_(-1.234)
    path = save_model(model, tmp_path / "m.pt", {"note": "x"})
    loaded = load_model(path)
    x = torch.rand(1, 1, 24, 24)
    assert torch.allclose(model(x).psi, loaded(x).psi)
    assert loaded.config == SMALL and loaded.metadata["note"] == "x"
    assert loaded.sigma.item() == pytest.approx(np.exp(-1.234), rel=1e-5)


def test_bad_model_files(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a torch file" * 10)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(SemiconvError, match="not a readable"):
        load_model(corrupt)
    with pytest.raises(SemiconvError, match="not a napari-semiconv model"):
        load_model(foreign)
    with pytest.raises(SemiconvError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(SemiconvError):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SemiconvError, match="no CUDA"):
            pick_device("cuda")


KILL_DURING_SAVE = r"""
import os, sys, torch
from napari_semiconv.model import ModelConfig, build_model, save_model
real_save = torch.save
def slow_save(obj, fh, *a, **k):
    real_save(obj, fh, *a, **k)
    print("WRITING", flush=True)
    os.kill(os.getpid(), 9)  # die after the bytes hit the temp file, before the rename
torch.save = slow_save
save_model(build_model(ModelConfig(width=4, depth=2, dim=5, sigma_init=0.9)), sys.argv[1])
"""


def test_killed_save_leaves_previous_model(tmp_path):
    path = tmp_path / "model.pt"
    save_model(build_model(SMALL), path, {"generation": 1})
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "WRITING" in proc.stdout
    model = load_model(path)
    assert model.metadata["generation"] == 1 and model.config == SMALL


def test_written_files_respect_the_umask(tmp_path):
    import os

    from napari_semiconv.atomic import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
    finally:
        os.umask(old)
    assert path.read_text() == "x" and (path.stat().st_mode & 0o777) == 0o644


def test_input_scale_sees_a_magnified_image_as_the_original():
    """A model with input_scale 2 on a 2x magnified image gives the original's outputs, displacements x2."""
    config = ModelConfig(width=4, depth=2, dim=5, downsample=2)
    model = build_model(config).eval()
    wide = build_model(ModelConfig(**{**config.to_dict(), "input_scale": 2.0})).eval()
    wide.load_state_dict(model.state_dict())
    x = torch.rand(1, 1, 32, 48)
    big = x.repeat_interleave(2, -2).repeat_interleave(2, -1)  # every worm twice as wide and long
    with torch.no_grad():
        a, b = model(x), wide(big)
    assert b.psi.shape == (1, 5, 64, 96)
    assert wide.sigma.item() == pytest.approx(2 * model.sigma.item())
    pool = torch.nn.functional.avg_pool2d
    assert torch.allclose(pool(b.fg_logit, 2), a.fg_logit, atol=0.05)
    assert torch.allclose(pool(b.phi, 2), 2 * a.phi, atol=0.1)
    assert not torch.allclose(pool(model(big).phi, 2), 2 * a.phi, atol=0.1)  # without the scale: not so


def test_test_time_augmentation_is_equivariant_and_maps_vectors_back():
    """With TTA the outputs on a flipped / rotated image are the flipped / rotated outputs (vectors turned
    with them); without it a random net is not equivariant."""
    import numpy as np

    from napari_semiconv.segment import _forward

    torch.manual_seed(0)
    model = build_model(ModelConfig(width=4, depth=2, dim=4, target="anchor")).eval()
    with torch.no_grad():
        model.phi_head[-1].weight.normal_(0, 0.5)  # non-zero offsets
    x = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    whole = slice(0, 48)
    with torch.no_grad():
        a = _forward(model, x, whole, whole, tta=True)
        b = _forward(model, np.ascontiguousarray(np.rot90(x)), whole, whole, tta=True)  # a quarter turn
        plain = _forward(model, x, whole, whole), _forward(model, np.ascontiguousarray(np.rot90(x)), whole, whole)
    rot = lambda t: torch.rot90(t, 1, (-2, -1))
    assert torch.allclose(b["fg"], rot(a["fg"]), atol=1e-5)
    # a displacement (dx, dy) on the image turns into (dy, -dx) on the quarter-turned image
    assert torch.allclose(b["phi"][0], rot(a["phi"][1]), atol=1e-4)
    assert torch.allclose(b["phi"][1], -rot(a["phi"][0]), atol=1e-4)
    assert not torch.allclose(plain[1]["phi"][0], rot(plain[0]["phi"][1]), atol=1e-3)


def test_refine_blocks_start_as_the_model_without_them_and_learn(tmp_path):
    """A flow model given dilated refinement blocks first computes what its donor did; the blocks train and
    a file with them round-trips, while a file without them (older models) still loads as refine 0."""
    plain = build_model(ModelConfig.for_target("flow", width=4, depth=2)).eval()
    path = save_model(plain, tmp_path / "plain.pt")
    payload = torch.load(path, weights_only=True)
    del payload["config"]["refine"]  # a file written before the field existed
    torch.save(payload, path)
    assert load_model(path).config.refine == 0
    with torch.no_grad():  # the donor's flow head is no longer zero, so the comparison means something
        plain.phi_head[-1].weight.normal_()
    refined = build_model(ModelConfig.for_target("flow", width=4, depth=2, refine=2))
    refined.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(1, 1, 40, 48)
    assert torch.equal(refined.eval()(x).phi, plain(x).phi)
    out = refined.train()(x)
    (out.phi.square().sum() + out.count_logit.sum()).backward()
    assert refined.refine.blocks[1][-1].weight.grad.abs().sum() > 0
    loaded = load_model(save_model(refined, tmp_path / "refined.pt"))
    assert loaded.config.refine == 2 and torch.allclose(loaded(x).phi, refined.eval()(x).phi)


@pytest.mark.parametrize("target", ["flow", "anchor", "eq5"])
def test_widened_model_computes_what_the_narrow_one_did(target):
    """Widening copies channels group by group (GroupNorm statistics kept), so before the symmetry-breaking
    noise the wider model's outputs equal the trained one's; with it the copies differ."""
    from napari_semiconv.model.widen import channel_map, widen

    narrow = build_model(ModelConfig.for_target(target, width=4, depth=3, max_width=16,
                                                **({"refine": 1} if target == "flow" else {}))).eval()
    with torch.no_grad():
        for p in narrow.parameters():  # zero-initialised heads would make the comparison empty
            p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(1, 1, 40, 52)
    a = narrow(x)
    b = widen(narrow, 8, noise=0).eval()(x)
    assert b.phi.shape == a.phi.shape and torch.allclose(a.phi, b.phi, rtol=1e-4, atol=1e-4)
    assert torch.allclose(a.fg_logit, b.fg_logit, rtol=1e-4, atol=1e-3)
    wide = widen(narrow, 8, noise=0.01)
    assert not torch.equal(*wide.backbone.down[0][0].weight.detach()[[0, 4]])  # copies of channel 0 learn apart
    assert list(channel_map(16, 32)[:8]) == [0, 1, 2, 3, 4, 5, 6, 7] and list(channel_map(32, 64)[:8]) == [0, 1, 2, 3] * 2
    with pytest.raises(ValueError, match="cannot widen"):
        channel_map(16, 24)


def test_count_refiner_starts_as_its_donor_learns_and_round_trips(tmp_path):
    """A flow model given a count refiner first computes its donor's count logits (the refiner's last layer is
    zero); a step on a count loss changes them, the file round-trips, and non-flow models refuse a refiner."""
    from napari_semiconv.model.widen import with_count_refiner

    torch.manual_seed(0)
    plain = build_model(ModelConfig.for_target("flow", width=4, depth=2)).eval()
    with torch.no_grad():  # the donor's flow head is no longer zero: the refiner reads the flow
        plain.phi_head[-1].weight.normal_()
    refined = with_count_refiner(plain)
    x = torch.rand(2, 1, 40, 52)
    before = plain(x)
    assert torch.equal(refined.eval()(x).count_logit, before.count_logit)
    opt = torch.optim.SGD(refined.count_refiner.parameters(), lr=0.1)
    target = (x[:, 0] > 0.5).long() * 2  # anything the refiner can learn: counts 2 where the image is bright
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(refined.train()(x).count_logit, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = refined.eval()(x).count_logit
    assert not torch.allclose(after, before.count_logit)
    assert torch.equal(refined(x).phi, before.phi)  # only the count logits change
    loaded = load_model(save_model(refined, tmp_path / "refined.pt"))
    assert loaded.config.count_refiner and torch.equal(loaded(x).count_logit, after)
    with pytest.raises(ValueError, match="flow models"):
        ModelConfig.for_target("anchor", count_refiner=True)
    with pytest.raises(ValueError, match="without one"):
        with_count_refiner(refined)


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_vectors_turn_with_their_field(k, flip):
    """A gradient field seen on a flipped / turned view of its scalar field is the gradient of that view
    (dihedral_vectors), and the TTA's way back (_undo, _undo_vectors) returns the original vectors."""
    from napari_semiconv.segment import _undo, _undo_vectors, dihedral, dihedral_vectors

    y, x = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    f = 0.3 * x**2 + 0.7 * y + 0.1 * x * y  # rows y, columns x
    grad = torch.stack([0.6 * x + 0.1 * y, 0.7 + 0.1 * x])  # (dx, dy), exact for a quadratic
    view = dihedral(f, k, flip)
    turned = dihedral_vectors(dihedral(grad, k, flip), k, flip)
    dx = (view[1:-1, 2:] - view[1:-1, :-2]) / 2
    dy = (view[2:, 1:-1] - view[:-2, 1:-1]) / 2
    torch.testing.assert_close(turned[:, 1:-1, 1:-1], torch.stack([dx, dy]))
    torch.testing.assert_close(_undo_vectors(_undo(turned, k, flip), k, flip), grad)
