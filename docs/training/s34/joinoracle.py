"""Joining headroom of the shipped piece model (session 34: its pool of joinings, rescorer choice and painter): session
22's oracle (docs/training/s22/joinoracle.py: the pieces joined by the model's joiner, by the truth at the joiner's
candidate arm pairs, by the truth there and wherever two pieces touch, grouped by their true worm; with the shipped
rescorer's cut and without; validation scenes VAL_SEED0 + 700 / 1700 + i) run on today's decoder. That script swaps
``decode.join``, which the decoder no longer calls: here ``decode.join_readings`` gives the swapped joining at every
joining probability (one joining: the rescorer then only cuts), and the model's own pool where the joiner is the model's.
usage: python docs/training/s34/joinoracle.py N"""
import runpy

import numpy as np

import napari_semiconv.decode as dec
from napari_semiconv.joining import join

pool = dec.join_readings


def readings(pieces, multi, image, joiner, thresholds):
    if dec.join is join:  # the model's own joiner: its pool, as shipped
        return pool(pieces, multi, image, joiner, thresholds)
    return np.stack([dec.join(pieces, multi, image, joiner)] * len(thresholds))


dec.join_readings = readings
runpy.run_path("docs/training/s22/joinoracle.py", run_name="__main__")
