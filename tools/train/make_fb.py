#!/usr/bin/env python3
"""Write tools/train/mel_fb_64x257.npy with librosa (run with /opt/venvs/nemo3/bin/python).

The GPU machine has no librosa, so the QuartzNet filterbank travels as this small file. Also
checks features.slaney_mel_filterbank (numpy transcription, used for other sizes) against
librosa and against NeMo's own ``fb`` buffer.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    import librosa

    import features

    fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=0, fmax=8000, norm="slaney").astype(np.float32)
    np.save(features.FB_NPY, fb)
    print(f"wrote {features.FB_NPY} {fb.shape} {fb.dtype} sum={fb.sum(dtype=np.float64):.5f}")
    for sr, n_fft, n_mels in ((16000, 512, 64), (16000, 512, 80), (8000, 256, 40)):
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0, fmax=sr / 2, norm="slaney")
        mine = features.slaney_mel_filterbank(sr, n_fft, n_mels)
        d = np.abs(ref - mine).max()
        print(f"numpy slaney vs librosa sr={sr} n_fft={n_fft} n_mels={n_mels}: max abs diff {d:.3g}")
        assert d < 1e-7, d
    # check values of docs/FRONTEND.md
    assert abs(fb[0, 1] - 0.01451128) < 1e-7 and abs(fb[0, 2] - 0.01407551) < 1e-7, fb[0, :4]
    assert np.count_nonzero(fb[0]) == 2
    print("docs/FRONTEND.md check values ok: row 0 =", fb[0, 1], fb[0, 2])


if __name__ == "__main__":
    main()
