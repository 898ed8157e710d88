"""Local attention on CPU: masked full T x T vs banded blocks (ModernBERT-base: 12 heads x 64, window 128)."""
import math, time, sys
import numpy as np, tensorflow as tf
from keras import ops
from kbert.models.modernbert.backbone import banded_attention, window_keep, _masked_softmax

def full(q, k, v, m):
    T = tf.shape(q)[2]
    scores = tf.matmul(q, k, transpose_b=True) / 8.0
    keep = tf.logical_and(tf.cast(m, tf.bool)[:, None, None, :], window_keep(T, 128)[None, None])
    return tf.matmul(_masked_softmax(scores, keep, "float32"), v)

spec = [tf.TensorSpec((None, 12, None, 64))] * 3 + [tf.TensorSpec((None, None), tf.int32)]
fns = {"full": tf.function(full, input_signature=spec), "banded": tf.function(lambda q, k, v, m: banded_attention(q, k, v, m, 64), input_signature=spec)}
rng = np.random.default_rng(0)
for T in [int(t) for t in sys.argv[1:]]:
    q, k, v = (tf.constant(rng.normal(size=(1, 12, T, 64)).astype("float32")) for _ in range(3))
    m = tf.ones((1, T), tf.int32)
    for f in fns.values():
        f(q, k, v, m)  # trace + warm
    times = {n: [] for n in fns}
    reps = 3 if T >= 8192 else 5
    for _ in range(reps):  # interleaved A, B, A, B
        for n, f in fns.items():
            t = time.perf_counter(); f(q, k, v, m).numpy(); times[n].append(time.perf_counter() - t)
    med = {n: float(np.median(t)) * 1000 for n, t in times.items()}
    d = float(np.abs(fns["full"](q, k, v, m).numpy() - fns["banded"](q, k, v, m).numpy()).max())
    print(f"T={T}: full {med['full']:.1f} ms, banded {med['banded']:.1f} ms, full/banded {med['full']/med['banded']:.2f}x, max diff {d:.1e}", flush=True)
