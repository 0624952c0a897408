"""Replays the CUDA caching allocator's traffic of vLLM 0.5.1's profile forward for DeepSeek-V2-Lite at TP 2 (rank 0,
163,840 tokens, fp16), tensor by tensor as deepseek_v2.py 0.5.1:150-330, fused_moe.py 0.5.1:402-525,
rotary_embedding.py 0.5.1:685-723 and attention/backends/flash_attn.py 0.5.1:302-339 allocate them (no compute: the
allocator sees only sizes and order). Prints the peak allocated and the reserved memory the profile leaves, which
vLLM 0.5.1's worker.py:178-189 counts (init_free - free after the run: reserved, not allocated). A check, not a
rule: kvplan does not model the allocator's segments.

    python benchmarks/a16_replay/replay_v051_deepseek_v2_lite.py [memory fraction]

Session 76 on an H100 (torch 2.11.0+cu130), alike with the fraction 0.366 (about the 29 GiB an L40 rank has free):
max allocated 6.887 GiB (layer 0's dense MLP: 45,120 B a token), reserved 12.082 GiB after layer 0 and to the end."""
import torch

M, H, HL, QK, NOPE, ROPE, V, LORA = 163840, 2048, 8, 192, 128, 64, 128, 512
DENSE, MOE, SHARED, K, E, CHUNK, LAYERS = 10944 // 2, 1408 // 2, 2816 // 2, 6, 64, 65536, 27
if len(__import__("sys").argv) > 1:
    torch.cuda.set_per_process_memory_fraction(float(__import__("sys").argv[1]))
dev = "cuda"


def a(*shape, dtype=torch.float16):
    return torch.empty(*shape, dtype=dtype, device=dev)


def rotary(x):  # x: [M, h, 64] view; gptj rotate, fp16 cache
    h = x.shape[1]
    cos_sin = a(M, 64)
    cos, sin = a(M, 64), a(M, 64)
    neg = a(M, h, 32); st = a(M, h, 32, 2); del neg
    p1 = a(M, h, 64); p2 = a(M, h, 64); out = a(M, h, 64); del p1, p2, st
    return out


def attention(hn):
    q = a(M, HL * QK)
    latent = a(M, LORA + ROPE)
    tmp = a(M, LORA); kva = a(M, LORA); del tmp
    kv = a(M, HL * (NOPE + V))
    q_pe = rotary(q.view(M, HL, QK)[..., NOPE:])
    k_pe = rotary(latent.view(M, 1, LORA + ROPE)[..., LORA:])
    k = a(M, HL * QK)
    qp = a(M, HL * 256)
    kp = a(M, HL * 256); del k
    vp = a(M, HL * 256)
    output = a(M, HL * 256)
    fo = a(M, HL * 256); lse = a(HL, M, dtype=torch.float32); del fo, lse
    ao = a(M, HL * V); del output
    o = a(M, H)
    del q, latent, kva, kv, q_pe, k_pe, qp, kp, vp, ao
    return o


def dense_mlp(x):
    gu = a(M, 2 * DENSE); act = a(M, DENSE); down = a(M, H); del gu, act
    return down


def moe(hn):
    sgu = a(M, 2 * SHARED); sact = a(M, SHARED); shared = a(M, H); del sgu, sact
    router = a(M, E)
    scores = a(M, E); gmax = a(M, 1); gidx = a(M, 1, dtype=torch.int64); gmask = a(M, 1)
    smask = a(M, E); sb = a(M, E, dtype=torch.bool); nb = a(M, E, dtype=torch.bool); tmp = a(M, E)
    w = a(M, K); ids64 = a(M, K, dtype=torch.int64)
    del scores, gmax, gidx, gmask, smask, sb, nb, tmp
    ids = a(M, K, dtype=torch.int32); del ids64
    c1, c2, c3 = a(CHUNK, K, 2 * MOE), a(CHUNK * K, MOE), a(CHUNK, K, H)
    sorted_ids = None
    for begin in range(0, M, CHUNK):
        n = min(CHUNK, M - begin)
        new = a(n * K + E * 63, dtype=torch.int32); eids = a((n * K + E * 63) // 64 + 1, dtype=torch.int32)
        sorted_ids = new
        del eids
    del c1, c2, c3, sorted_ids
    scaled = a(M, H); final = a(M, H); del scaled, shared, router, w, ids
    return final


torch.cuda.empty_cache()
torch.cuda.reset_peak_memory_stats()
ids, pos = a(M, dtype=torch.int64), a(M, dtype=torch.int64)
mask = a(M, dtype=torch.bool); masked = a(M, dtype=torch.int64); emb = a(M, H); del mask, masked
residual, hidden = emb, a(M, H)
peaks = []
for layer in range(LAYERS):
    o = attention(hidden); del hidden
    hidden = dense_mlp(o) if layer == 0 else moe(o); del o
    peaks.append((layer, torch.cuda.max_memory_allocated() / 2**30, torch.cuda.memory_reserved() / 2**30))
del residual
rows = a(256, H); logits = a(256, 51200)  # pruned rows, this rank's logits (the driver's sampler ~0.6 GiB more)
GiB = 2**30
print("layer0 after: alloc peak %.3f reserved %.3f" % peaks[0][1:])
print("layer1 after: alloc peak %.3f reserved %.3f" % peaks[1][1:])
print("end: max allocated %.3f GiB, reserved %.3f GiB, torch %s" % (torch.cuda.max_memory_allocated() / GiB,
      torch.cuda.memory_reserved() / GiB, torch.__version__))
