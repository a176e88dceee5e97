"""An independent reference for llama.cpp's forward pass: a seeded random llama model written with
upstream's gguf-py, one file per weight type, and its logits computed in float64 numpy from the
weights gguf-py dequantizes. Nothing here calls ggml: what a CPU variant's kernels compute is
compared against this (tests/test_cpu_dispatch.py, tests/test_cross.py), not against another ggml build.

The model: 2 layers, 256-wide embedding (one K-quant super-block), 4 query heads over 2 KV heads
(GQA), SwiGLU FFN of 512, a SentencePiece-style vocabulary. The forward pass is llama.cpp's graph
for the `llama` architecture written out plainly: RMSNorm, RoPE of adjacent pairs (rope type
NORM), causal softmax attention, SwiGLU, a final RMSNorm and the output matrix.

Weights are drawn as raw blocks for the quantized types (random quants, a scale per block set so
every type has about the same spread): nothing is quantized by llama.cpp, so the reference side
never runs ggml code, and the model file is the whole input of both sides."""
import os
import shutil
import sys

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX = 256, 4, 2, 512, 2, 64
N_WORDS = 64
EPS, ROPE_BASE = 1e-5, 10000.0  # what write_random_llama() writes, and llama's default rope base
WEIGHT_STD = 0.05
# Two comparisons per model, each a largest normalized mean squared error (nmse()):
# BOUNDS: every position's logits against the plain float64 forward pass. ggml rounds a matrix
#   product's input to the activation format of the weight type (fp16, Q8_0, Q8_K), keeps the KV
#   cache in fp16 and accumulates attention in fp16; once attention mixes positions, a value that
#   lands on the other side of a rounding step moves by one quantum, so quantized models differ by
#   about 1e-4 here with correct kernels.
# FIRST_BOUNDS: the first position (attention over one token is the value itself) against the
#   forward pass that rounds exactly as those formats define: what is left is summation order
#   (measured about 1e-14), so a kernel that is wrong anywhere shows. F16 allows fp16 accumulation
#   (Arm's FP16 vector arithmetic sums in half precision).
BOUNDS = {"F32": 1e-5, "F16": 1e-4, "Q8_0": 5e-3, "Q4_0": 5e-3, "Q4_K": 5e-3, "Q6_K": 5e-3}
FIRST_BOUNDS = {"F32": 1e-9, "F16": 1e-4, "Q8_0": 1e-9, "Q4_0": 1e-9, "Q4_K": 1e-9, "Q6_K": 1e-9}
# a prompt of fixed ids: <s> then words spread over the vocabulary (token ids, not text: no
# tokenizer between the two sides)
PROMPT = [1, 259, 300, 271, 318, 262, 290, 307, 265, 301, 280, 322]

# where each quantized type keeps its per-block scales: (byte offset in the block, multiplier of the
# base scale; Q4_K: d, and dmin at 7.5 d, which centres its weights)
_SCALES = {"Q8_0": [(0, 1.0)], "Q4_0": [(0, 1.0)], "Q4_K": [(0, 1.0), (2, 7.5)], "Q6_K": [(208, 1.0)]}


def import_gguf(gguf_py_folder):
    """upstream's gguf-py (the folder holding the `gguf` package) imported; needs numpy."""
    if gguf_py_folder not in sys.path:
        sys.path.insert(0, gguf_py_folder)
    import gguf
    return gguf


def _random_blocks(gguf, np, rng, qtype, rows, cols):
    """rows x cols weights of quantized type `qtype` as raw blocks: random quants, scales chosen so
    the dequantized weights have a standard deviation near WEIGHT_STD, varying per block."""
    t = gguf.GGMLQuantizationType[qtype]
    block, size = gguf.GGML_QUANT_SIZES[t]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    # quants symmetric around zero: a mean offset in every weight would add one large common term
    # to all logits, which hides errors in a normalized comparison
    if qtype == "Q8_0":  # int8 in [-127, 127]
        raw[:, 2:] = rng.integers(-127, 128, (n_blocks, 32), dtype=np.int8).view(np.uint8)
    if qtype == "Q4_0":  # (q - 8) * d: nibbles 1..15
        lo, hi = rng.integers(1, 16, (2, n_blocks, 16), dtype=np.uint8)
        raw[:, 2:] = lo | (hi << 4)
    if qtype == "Q6_K":  # int8 sub-block scales: keep them in [-64, 64)
        raw[:, 192:208] = rng.integers(-64, 64, (n_blocks, 16), dtype=np.int8).view(np.uint8)
    for offset, mult in _SCALES[qtype]:  # unit scale first, to measure the spread
        raw[:, offset:offset + 2] = np.full((n_blocks, 1), mult, np.float16).view(np.uint8)
    unit = gguf.dequantize(raw, t)
    base = WEIGHT_STD / float(unit.std())
    jitter = 1.0 + 0.1 * rng.standard_normal((n_blocks, 1))
    for offset, mult in _SCALES[qtype]:
        raw[:, offset:offset + 2] = (base * mult * jitter).astype(np.float16).view(np.uint8)
    return raw.reshape(rows, cols // block * size)


def bench_models():
    """bench/make_model.py as a module: its write_random_llama() writes the oracle's models too."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "make_model.py")
    spec = importlib.util.spec_from_file_location("bench_make_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_model(gguf, np, path, qtype, seed=7):
    """A llama GGUF whose weight matrices (embedding and output included) are all of type qtype
    (F32, F16, Q8_0, Q4_0, Q4_K, Q6_K), norms F32. The same seed and type give the same file."""
    rng = np.random.default_rng(seed)

    def matrix(w, name, rows, cols):  # ggml's ne = [cols, rows]
        if qtype in ("F32", "F16"):
            values = (WEIGHT_STD * rng.standard_normal((rows, cols))).astype(np.float32)
            w.add_tensor(name, values.astype(np.float16) if qtype == "F16" else values)
        else:
            w.add_tensor(name, _random_blocks(gguf, np, rng, qtype, rows, cols),
                         raw_dtype=gguf.GGMLQuantizationType[qtype])

    def norm(name):  # not ones: a wrong norm weight must show
        return (1.0 + 0.2 * rng.standard_normal(N_EMBD)).astype(np.float32)

    bench_models().write_random_llama(gguf, np, path, f"oracle-{qtype.lower()}", None, N_EMBD, N_HEAD, N_HEAD_KV,
                                      N_FF, N_LAYER, N_CTX, N_WORDS, matrix, norm)
    return path


def weights(gguf, np, path):
    """Every tensor of the GGUF as a float64 array shaped (rows, cols), dequantized by gguf-py, and
    each tensor's type name: ({name: array}, {name: "Q4_K"})."""
    values, types = {}, {}
    for t in gguf.GGUFReader(path).tensors:
        v = gguf.dequantize(t.data, t.tensor_type).astype(np.float64)
        values[t.name] = v.reshape([int(n) for n in reversed(t.shape)]) if len(t.shape) > 1 else v.reshape(-1)
        types[t.name] = t.tensor_type.name
    return values, types


def _q8_0(np, x):
    """Activations as ggml's CPU backend multiplies them with Q8_0/Q4_0 weights (published block
    format Q8_0: 32 values, int8 quants, scale amax/127 stored as fp16)."""
    b = x.reshape(*x.shape[:-1], -1, 32)
    d = np.abs(b).max(-1, keepdims=True) / 127.0
    q = np.trunc(b / np.where(d == 0, 1, d) + np.copysign(0.5, b))  # roundf: ties away from zero
    return (q * d.astype(np.float16).astype(np.float64)).reshape(x.shape)


def _q8_k(np, x):
    """Activations for K-quant weights (Q8_K: 256 values, the largest-magnitude one maps to -127,
    int8 quants, fp32 scale)."""
    b = x.reshape(*x.shape[:-1], -1, 256).astype(np.float32)
    big = np.take_along_axis(b, np.abs(b).argmax(-1)[..., None], -1)
    iscale = np.float32(-127.0) / np.where(big == 0, 1, big)
    q = np.minimum(np.rint(iscale * b), 127)
    return (q.astype(np.float64) / iscale.astype(np.float64)).reshape(x.shape)


# the activation format ggml's CPU backend converts a matrix product's input to, per weight type
ACTIVATIONS = {"F32": lambda np, x: x, "F16": lambda np, x: x.astype(np.float16).astype(np.float64),
               "Q8_0": _q8_0, "Q4_0": _q8_0, "Q4_K": _q8_k, "Q6_K": _q8_k}


def forward(np, w, tokens, types=None, n_head=N_HEAD, n_head_kv=N_HEAD_KV, eps=EPS, base=ROPE_BASE):
    """The logits of every position (len(tokens) x vocab, float64) of the llama graph over
    weights `w` (from weights()). With `types` (from weights()) the inputs of each matrix product
    are first rounded to the activation format ggml's CPU backend uses for that weight type
    (ACTIVATIONS), and keys, values and queries to fp16 (the KV cache's type): what is then left
    between the two sides is accumulation order, not a format."""
    def rms_norm(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    def mm(x, name):
        if types:
            x = ACTIVATIONS[types[name]](np, x)
        return x @ w[name].T

    def f16(x):
        return x.astype(np.float16).astype(np.float64) if types else x

    n = len(tokens)
    x = w["token_embd.weight"][tokens]
    n_embd = x.shape[1]
    head = n_embd // n_head
    # RoPE, rope type NORM: dimensions (2i, 2i+1) rotate by pos * base^(-2i/head)
    angle = np.arange(n)[:, None] * base ** (-np.arange(0, head, 2) / head)[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]

    def rope(v):  # v: (n, heads, head)
        even, odd = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    causal = np.triu(np.full((n, n), -np.inf), 1)
    n_layer = sum(1 for k in w if k.endswith("attn_norm.weight"))
    for layer in range(n_layer):
        p = f"blk.{layer}."
        h = rms_norm(x, w[p + "attn_norm.weight"])
        q = f16(rope(mm(h, p + "attn_q.weight").reshape(n, n_head, head)))
        k = f16(rope(mm(h, p + "attn_k.weight").reshape(n, n_head_kv, head)))
        v = f16(mm(h, p + "attn_v.weight").reshape(n, n_head_kv, head))
        group = n_head // n_head_kv  # query head j reads KV head j // group
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head) + causal
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attn = np.einsum("hqk,khd->qhd", scores / scores.sum(axis=-1, keepdims=True), v).reshape(n, n_embd)
        x = x + mm(attn, p + "attn_output.weight")
        h = rms_norm(x, w[p + "ffn_norm.weight"])
        gate, up = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
        x = x + mm(gate / (1.0 + np.exp(-gate)) * up, p + "ffn_down.weight")
    return mm(rms_norm(x, w["output_norm.weight"]), "output.weight")


def nmse(np, got, ref):
    """Normalized mean squared error: sum((got - ref)^2) / sum(ref^2)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(((got - ref) ** 2).sum() / (ref ** 2).sum())


def corrupt_scale(gguf, np, src, dst, tensor, row, factor=64.0):
    """A copy of model src at dst with the scale of the first block of `row` of `tensor` multiplied
    by `factor` (one quantized block: 32 or 256 weights). Returns dst."""
    shutil.copyfile(src, dst)
    t = next(t for t in gguf.GGUFReader(src).tensors if t.name == tensor)
    qtype = t.tensor_type.name
    row_bytes = t.data.shape[-1]
    offset, _ = _SCALES[qtype][0]
    at = int(t.data_offset) + row * row_bytes + offset
    with open(dst, "r+b") as f:
        f.seek(at)
        scale = np.frombuffer(f.read(2), np.float16)[0]
        f.seek(at)
        f.write(np.array([float(scale) * factor], np.float16).tobytes())
    assert os.path.getsize(dst) == os.path.getsize(src)
    return dst
