import itertools
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

from napari_semiconv.data.sources import SyntheticSource
from napari_semiconv.model import ModelConfig, build_model, load_model
from napari_semiconv.train import TrainConfig, batch_from, batch_losses, train_iter, train_to_file

TINY = ModelConfig(width=8, depth=3)


def test_training_lowers_the_loss_on_a_fixed_crop():
    torch.manual_seed(0)
    sample = SyntheticSource(96)(np.random.default_rng(3))
    model = build_model(TINY)
    config = TrainConfig(steps=40, batch=2, crop=96, lr=3e-3, augment=False, warmup=1)
    losses = [p.losses["total"] for p in train_iter(model, lambda rng: sample, config)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert not model.training


def test_train_to_file_resume_and_cancel(tmp_path):
    out = tmp_path / "m.pt"
    config = TrainConfig(steps=6, batch=1, crop=64)
    source = SyntheticSource(64)
    seen = []

    def stop_after_4(p):
        seen.append(p.step)
        if p.step == 4:
            raise KeyboardInterrupt  # the user hits Ctrl-C during training

    try:
        train_to_file(build_model(TINY), source, config, out, checkpoint_every=2, progress=stop_after_4)
    except KeyboardInterrupt:
        pass
    assert not out.exists() and out.with_suffix(".ckpt").exists()  # no partial model, a checkpoint
    steps = []
    meta = train_to_file(build_model(TINY), source, config, out, checkpoint_every=2, resume=True,
                         progress=lambda p: steps.append(p.step))
    assert steps == [5, 6] and meta["steps"] == 6
    assert load_model(out).metadata["steps"] == 6
    assert out.with_suffix(".log.csv").read_text().count("\n") == 7  # header + 6 steps
    assert out.with_suffix(".log.png").stat().st_size > 1000
    assert not out.with_suffix(".ckpt").exists()


def test_time_budget_drives_the_cosine_schedule():
    # a seconds budget with far more steps than fit: the lr decays with the time used
    sample = SyntheticSource(64)(np.random.default_rng(4))
    config = TrainConfig(steps=100_000, seconds=10.0, batch=1, crop=64, lr=1e-3, warmup=1, augment=False)
    ticks = itertools.count()  # a fake clock: each reading is one second later
    progress = list(train_iter(build_model(TINY), lambda rng: sample, config, clock=lambda: float(next(ticks))))
    assert len(progress) == 5  # two readings per step, the budget checked before each
    assert progress[0].lr > 0.95e-3 and progress[-1].lr < 0.5e-3  # (by steps alone it would stay ~1e-3)
    assert all(a.lr >= b.lr for a, b in itertools.pairwise(progress))


def test_segmenting_lays_weights_channels_last_and_training_lays_them_back():
    from napari_semiconv.segment import SegmentConfig, segment

    model = build_model(TINY)
    sample = SyntheticSource(64)(np.random.default_rng(5))
    convs = [p for p in model.parameters() if p.dim() == 4]
    before = [p.detach().clone() for p in convs]
    segment(model, sample[0], SegmentConfig(keep_embedding=False))  # the CPU layout for a fast forward
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)
    assert all(torch.equal(p, b) for p, b in zip(convs, before))  # the same weights, laid out otherwise
    config = TrainConfig(steps=1, batch=1, crop=64, augment=False)
    list(train_iter(model, lambda rng: sample, config))
    assert all(p.is_contiguous() for p in convs)
    # validating between steps segments (channels-last); every step still trains on the contiguous layout
    layouts = []

    def step_losses(rng):
        layouts.append(all(p.is_contiguous() for p in convs))
        x, inss, vals, ancs = batch_from(lambda rng: sample, rng, config)
        return batch_losses(model, x, inss, vals, ancs, config)

    scene = SimpleNamespace(image=sample[0], instances=sample[1])
    progress = list(train_iter(model, None, replace(config, steps=3, val_every=1), [scene], step_losses=step_losses))
    assert all(p.val is not None for p in progress)
    assert layouts == [True, True, True]
