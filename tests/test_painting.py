"""Painting the crossings: which pixels of an overlap patch each worm that meets it gets."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_semiconv.painting import CHANNELS, CROP, Painter, PainterNet, crops, paint, targets, windows

from .test_anchors import _crossing


def _says(logit: float) -> Painter:
    """A painter that gives every pixel it sees the same probability (sigmoid(logit))."""
    net = PainterNet()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.out.bias[0] = logit
    return Painter(net.eval(), 0.5)


def _scene():
    """Two straight worms crossing (test_anchors._crossing, 60 x 60) and a third apart: (3, 60, 60) bool worms, the
    crossing (60, 60) bool, and the worms as decoded: worm 0 holding only the crossing's upper half."""
    two = _crossing()[0].numpy()
    third = np.zeros((1, 60, 60), bool)
    third[0, 50:56, 5:40] = True
    truth = np.concatenate([two, third])
    multi = two.all(0)
    found = truth.copy()
    found[0] &= ~(multi & (np.arange(60)[:, None] >= 30))
    return truth, multi, found


def test_each_worm_holding_patch_pixels_is_paired_with_that_patch_in_a_window_around_it():
    _, multi, found = _scene()
    win = windows(found, multi)
    assert sorted(win.worm) == [0, 1] and set(win.patch) == {1} and win.side == CROP
    rows, cols = np.nonzero(multi)
    centre = win.corner + CROP / 2
    assert np.allclose(centre, [[rows.mean() + 0.5, cols.mean() + 0.5]] * 2, atol=1)  # windows beyond the image too
    x = crops(found, multi, found.any(0), np.zeros((60, 60), np.float32), win)
    assert x.shape == (2, len(CHANNELS), CROP, CROP)
    patch, given = x[:, CHANNELS.index("patch")], x[:, CHANNELS.index("given")]
    assert (patch.sum((1, 2)) == multi.sum()).all()
    assert sorted(given.sum((1, 2)).tolist()) == sorted([(found[k] & multi).sum() for k in win.worm])
    own, others = x[:, CHANNELS.index("own")], x[:, CHANNELS.index("others")]
    assert not (own * others).any() and not (own * patch).any()
    t = targets(_scene()[0][win.worm], win)
    assert (t.sum((1, 2)) == torch.tensor([_scene()[0][k].sum() for k in win.worm]).float()).all()


def test_the_painter_decides_the_patch_pixels_and_nothing_else():
    truth, multi, found = _scene()
    image = np.zeros((60, 60), np.float32)
    yes = paint(found, multi, found.any(0), image, _says(10.0))
    assert (yes[:2] == (found[:2] & ~multi) | multi).all()  # both crossing worms hold the whole crossing
    assert (yes[2] == found[2]).all() and (yes == truth).all()
    no = paint(found, multi, found.any(0), image, _says(-10.0))
    assert (no == found & ~multi).all()
    # at twice the training magnification the window is twice as wide and the answer is the same
    big = paint(found, multi, found.any(0), image, _says(10.0), scale=2.0)
    assert windows(found, multi, 2.0).side == 2 * CROP and (big == yes).all()


class _Repeats(PainterNet):
    """A painter net that answers what the reach rule gave the worm (its 'given' channel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20.0 * (x[:, CHANNELS.index("given")] - 0.5)


def test_each_answer_goes_back_where_it_was_asked():
    # worm 0 holds only the crossing's upper half: a window pasted back shifted, flipped or turned would change it
    _, multi, found = _scene()
    image = np.zeros((60, 60), np.float32)
    assert (paint(found, multi, found.any(0), image, Painter(_Repeats().eval())) == found).all()
    # at 2x the window is resized to the painter's and back: the half's edge may move by a row, no more
    big = paint(found, multi, found.any(0), image, Painter(_Repeats().eval()), scale=2.0)
    assert (big != found).sum() <= multi.sum(1).max() and (big[:, ~multi] == found[:, ~multi]).all()


def test_a_painter_round_trips_through_a_model_files_metadata():
    painter = _says(3.0)
    again = Painter.from_metadata(painter.to_metadata())
    assert again == painter and again != Painter(painter.net, 0.9) and again != _says(-3.0)
    x = torch.rand(2, len(CHANNELS), CROP, CROP)
    assert torch.allclose(again.net(x), painter.net(x))
    with pytest.warns(UserWarning, match="another kind"):
        assert Painter.from_metadata({"channels": ["image"]}) is None
    assert Painter.from_metadata(None) is None


def test_decoding_with_a_painter_gives_the_crossing_as_it_says():
    from napari_semiconv.decode import DecodeConfig, model_decode_config
    from napari_semiconv.finetune import _learned_parts
    from napari_semiconv.segment import decode_outputs

    from .test_joining import _piece_outputs, _straight_joiner

    out, ins = _piece_outputs()
    multi = ins.all(0)
    config = DecodeConfig(min_size=20, merge_threshold=0, joiner=_straight_joiner())
    shared = decode_outputs(out, replace(config, painter=_says(10.0))).instances
    assert len(shared) == 2 and all((w & multi).sum() == multi.sum() for w in shared)
    apart = decode_outputs(out, replace(config, painter=_says(-10.0)))
    assert len(apart.instances) == 2 and not (apart.instances & multi).any()
    assert set(np.unique(apart.labels[multi])) == {0}
    model = type("M", (), {"metadata": {"painter": _says(10.0).to_metadata()}})()
    assert model_decode_config(model).painter == _says(10.0)
    assert _learned_parts(model) == {"painter": model.metadata["painter"]}  # a fine-tuned model keeps it


def test_the_decoders_small_networks_answer_channels_last_as_they_do_contiguous():
    from napari_semiconv.joining import CHANNELS as JOINER_CHANNELS
    from napari_semiconv.joining import CROP as JOINER_CROP
    from napari_semiconv.joining import PAIR_FEATURES, Joiner, JoinerNet

    torch.manual_seed(0)
    for part, inputs in ((Painter(PainterNet().eval(), 0.5), (torch.rand(5, len(CHANNELS), CROP, CROP),)),
                         (Joiner(JoinerNet().eval(), 0.3), (torch.rand(5, len(JOINER_CHANNELS), JOINER_CROP, JOINER_CROP),
                                                            torch.randn(5, len(PAIR_FEATURES))))):
        with torch.no_grad():
            expected = torch.sigmoid(part.net(*inputs))
        conv = next(m for m in part.net.modules() if isinstance(m, torch.nn.Conv2d))
        assert not conv.weight.is_contiguous(memory_format=torch.channels_last)
        got = part.probability(*inputs)  # outside no_grad, as a caller may ask
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # laid out channels-last in place
        assert got.shape == expected.shape and not got.requires_grad
        assert torch.allclose(got, expected, atol=1e-5)
        with torch.no_grad():
            assert torch.allclose(torch.sigmoid(part.net(*inputs)), expected, atol=1e-5)  # layout changed, answers not
