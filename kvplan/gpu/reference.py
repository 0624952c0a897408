"""A straightforward dense reference of verify's forward pass, for the tests: float64, one sequence, one token
at a time, contiguous caches (Python lists), every expert a loop, MLA without absorption (sparse MLA over the
positions its lightning indexer ranks best, scored key by key), DeltaNet and KDA as their token recurrences,
Mamba-2 as its state recurrence head by head, RoPE as complex rotation, mxfp4 decoded bit by bit, fp8 linears
with their activations quantised (one scale a matrix) or not (block-scaled: what decode runs), Gemma 4's layers of
their own head shapes with its KV-sharing layers reading their target's list and its proportional rotation as the
cosine and sine of each pair, Gemma 3n's AltUp streams as lists of vectors mixed coefficient by coefficient. Same
weights (tp 1 shapes) as kvplan/gpu/model.py; written separately so that the two agree only if both are right."""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

from . import fp8

D = torch.float64


def _norm(x, w, eps, plus_one=False):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * ((1.0 + w) if plus_one else w)


def _rope(x, pos: int, theta: float, dim: int, interleaved: bool = False):
    """Rotate pairs (i, i + dim/2) of the first `dim` features by pos * theta^(-2i/dim); `interleaved`: pairs
    (2i, 2i + 1) (GPT-J style)."""
    half = dim // 2
    freqs = theta ** (-torch.arange(half, dtype=D) * 2 / dim)
    turn = torch.polar(torch.ones(half, dtype=D), pos * freqs)
    if interleaved:
        z = torch.complex(x[..., 0:dim:2], x[..., 1:dim:2]) * turn
        return torch.cat([torch.stack([z.real, z.imag], dim=-1).flatten(-2), x[..., dim:]], dim=-1)
    z = torch.complex(x[..., :half], x[..., half:dim]) * turn
    return torch.cat([z.real, z.imag, x[..., dim:]], dim=-1)


def _rotate_layer(x, pos: int, theta: float, shape):
    """A Gemma 4 layer's rotation (HeadShape.rope_type): "default" as _rope; "proportional" turns each pair (i, i +
    head_dim/2) of the whole head by pos * theta^(-2i/head_dim) for i < rope_dim/2 and leaves the other pairs as
    they are."""
    if shape.rope_type != "proportional":
        return _rope(x, pos, theta, shape.rope_dim)
    half = shape.head_dim // 2
    angles = torch.zeros(half, dtype=D)
    turned = torch.arange(shape.rope_dim // 2, dtype=D)
    angles[:len(turned)] = pos * theta ** (-2 * turned / shape.head_dim)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * torch.cos(angles) - b * torch.sin(angles), b * torch.cos(angles) + a * torch.sin(angles)],
                     dim=-1)


def _attend(q, cache: list, window, shape, sinks=None):
    """q [heads, head_dim] over the (k [kv_heads, head_dim], v [kv_heads, v_head_dim]) of `cache` (the last `window`
    where given) -> [heads x v_head_dim]: softmax of the scaled scores, with a sink s the head where given: p_j =
    e^(z_j) / (e^(s) + sum_i e^(z_i)), the sink adding to the denominator only."""
    h, kvh = q.shape[0], cache[0][0].shape[0]
    first = max(0, len(cache) - window) if window else 0
    keys = torch.stack([kk for kk, _ in cache[first:]])  # [positions, kv_heads, head_dim]
    values = torch.stack([vv for _, vv in cache[first:]])  # [positions, kv_heads, v_head_dim]
    out = torch.zeros(h, shape.v_head_dim, dtype=D)
    for head in range(h):
        kv = head // (h // kvh)
        scores = keys[:, kv] @ q[head] * shape.scale  # one score a position
        exps = torch.exp(scores - scores.max())
        denominator = exps.sum()
        if sinks is not None:
            denominator = denominator + torch.exp(sinks[head] - scores.max())
        out[head] = exps / denominator @ values[:, kv]  # the positions' values, each weighted by its probability
    return out.flatten()


def _layer_norm(x, w, b, eps):
    centred = x - x.mean()
    return centred / torch.sqrt((centred * centred).mean() + eps) * w + b


def _e4m3_image(x):
    """x [..., D] as an indexer stores it: e4m3 values times one power-of-two scale a row, the scale the least
    power of two at or above max(|x|, 1e-4) / 448 (so that the row's largest value fits e4m3's 448)."""
    amax = x.abs().amax(-1, keepdim=True).clamp(min=1e-4)
    scale = 2.0 ** torch.ceil(torch.log2(amax / 448.0))
    return (x / scale).to(torch.float8_e4m3fn).to(D) * scale


def _fp4(code: int) -> float:
    sign = -1.0 if code & 8 else 1.0
    exponent, mantissa = (code >> 1) & 3, code & 1
    magnitude = mantissa * 0.5 if exponent == 0 else 2.0 ** (exponent - 1) * (1 + mantissa / 2)
    return sign * magnitude


def decode_mxfp4(blocks, scales):
    values = torch.tensor([_fp4(c) for c in range(16)], dtype=D)
    low, high = values[(blocks & 15).long()], values[(blocks >> 4).long()]
    out = torch.empty(*blocks.shape[:-1], blocks.shape[-1] * 2, dtype=D)
    out[..., 0::2], out[..., 1::2] = low, high
    scale = 2.0 ** (scales.to(D) - 127)
    return (out.unflatten(-1, (scales.shape[-1], 32)) * scale[..., None]).flatten(-2)


def _act(name, x):
    if name == "relu2":
        return x.clamp(min=0) ** 2
    if name == "gelu_tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return x / (1 + torch.exp(-x))


class _W8A8:
    """An fp8 weight matrix: its e4m3 values times the weight scale, and what it multiplies quantised to e4m3 at
    the static input scale first (kvplan/gpu/fp8.py)."""

    def __init__(self, values):
        self.w = values.to(D) * fp8.WEIGHT_SCALE

    def __matmul__(self, x):
        return self.w @ (fp8.quantize(x).to(D) * fp8.INPUT_SCALE)


class Reference:
    def __init__(self, arch, weights: dict, shards: int = 1):
        """`shards`: the TP ranks of the run compared with, each taking its activation-sparse MLP gate's statistics
        over its own share of the gate (Gemma 3n: vLLM keeps them local to a rank)."""
        assert arch.tp == 1
        self.a, self.shards = arch, shards
        scaled = {k[:-len("_scale")] for k in weights if k.endswith("_scale") and k[:-len("_scale")] in weights}
        self.w = {k: _W8A8(v) if v.dtype == fp8.E4M3 else v.to(D) for k, v in weights.items()
                  if v.dtype != torch.uint8 and k not in scaled and k[:-len("_scale")] not in scaled}
        for name in scaled:  # block-scaled fp8: the e4m3 values times their block's scale, the input as it is
            self.w[name] = fp8.dequantize_blocks(weights[name], weights[name + "_scale"], D)
        for name in [k for k, v in weights.items() if k.endswith("_blocks")]:
            base = name[: -len("_blocks")]
            self.w[base] = decode_mxfp4(weights[name], weights[base + "_scales"])
        self.cache = {i: [] for i in range(len(arch.layers))}
        self.keys = {i: [] for i in range(len(arch.layers))}  # a sparse layer's indexer keys, dequantised
        self.chosen = None  # positions the current token attends, from the last layer that ran its indexer
        self.pos = 0

    def _mlp(self, x, gate_up, down):
        h = gate_up @ x
        if self.a.gated_mlp:
            half = h.shape[0] // 2
            h = _act(self.a.activation, h[:half]) * h[half:]
        else:
            h = _act(self.a.activation, h)
        return down @ h

    def _ffn(self, x, w, moe: bool):
        a = self.a
        if not moe:
            return self._mlp(x, w["mlp.gate_up"], w["mlp.down"])
        out = torch.zeros_like(x)
        for p, e in route_reference(a.routing, a.top_k, (w["router"] @ x).tolist(), w.get("router_correction"),
                                    w.get("router_bias")):
            if a.routing.on_input:
                out += self._mlp(p * x, w["w13"][e], w["w2"][e])
            else:
                out += p * self._mlp(x, w["w13"][e], w["w2"][e])
        if a.shared_intermediate:
            shared = self._mlp(x, w["shared.gate_up"], w["shared.down"])
            if a.shared_gate:
                shared = shared / (1 + torch.exp(-(w["shared_gate"] @ x)))
            out += shared
        return out

    def _attention(self, x, w, layer, cache):
        """One token through softmax attention with the layer's own heads: keys hd wide, values vd (MiMo-V2), v
        times value_scale before it is cached, and a sink s the head where the layer has them: p_j = e^(z_j) /
        (e^(s) + sum_i e^(z_i)), the sink adding to the denominator only."""
        a, p, shape = self.a, self.pos, self.a.attention(layer)
        hd, vd, h, kvh = shape.head_dim, shape.v_head_dim, shape.heads, shape.kv_heads
        y = w["qkv"] @ x + (w["qkv_bias"] if a.qkv_bias else 0)
        q, y = y[:h * hd].view(h, hd), y[h * hd:]
        if a.attn_output_gate:
            gate, y = y[:h * hd], y[h * hd:]
        k, v = y[:kvh * hd].view(kvh, hd), y[kvh * hd:].view(kvh, vd) * a.value_scale
        if a.qk_norm:
            q, k = (_norm(q, w["q_norm"], a.norm_eps, a.norm_plus_one),
                    _norm(k, w["k_norm"], a.norm_eps, a.norm_plus_one))
        if a.whole_qk_norm:  # one norm over all of q's heads at once, one over all of k's
            q = _norm(q.flatten(), w["q_norm"], a.norm_eps).view(h, hd)
            k = _norm(k.flatten(), w["k_norm"], a.norm_eps).view(kvh, hd)
        pairs = a.rope_style == "gptj"
        theta, rot = layer.rope_theta, shape.rope_dim
        q, k = _rope(q, p, theta, rot, pairs), _rope(k, p, theta, rot, pairs)
        cache.append((k, v))
        out = _attend(q, cache, layer.window, shape, w["sinks"] if shape.sinks else None)
        if a.attn_output_gate:
            out = out / (1 + torch.exp(-gate))
        return w["o"] @ out

    def _mla(self, x, w, layer, cache):
        a, p = self.a, self.pos
        h, nope, rope, rank, vd = a.heads, a.qk_nope_dim, a.qk_rope_dim, a.kv_lora_rank, a.v_head_dim
        q_c = None
        if a.q_lora_rank:
            q_c = _norm(w["q_a"] @ x, w["q_a_norm"], a.norm_eps)
            q = w["q_b"] @ q_c
        else:
            q = w["q"] @ x
        q = q.view(h, nope + rope)
        turn = (lambda y: _rope(y, p, layer.rope_theta, rope)) if a.mla_rope else (lambda y: y)  # Kimi Linear: NoPE
        q = torch.cat([q[:, :nope], turn(q[:, nope:])], dim=-1)
        kv = w["kv_a"] @ x
        cache.append((_norm(kv[:rank], w["kv_a_norm"], a.norm_eps), turn(kv[rank:])))
        if a.index_topk and layer.keys is not None:
            self.chosen = self._indexer(x, q_c, w, layer)
        attended = [cache[j] for j in self.chosen] if a.index_topk else cache
        kv_b = w["kv_b"].view(h, nope + vd, rank)
        latents = torch.stack([c for c, _ in attended])  # [positions, rank]
        rotated = torch.stack([kr for _, kr in attended])  # [positions, rope]
        out = []
        for head in range(h):  # each position's latent up-projected to the head's key (+ its rope part) and value
            keys = torch.cat([latents @ kv_b[head, :nope].T, rotated], dim=-1)
            values = latents @ kv_b[head, nope:].T
            probs = torch.softmax(keys @ q[head] * a.attn_scale, dim=0)
            out.append(probs @ values)
        return w["o"] @ torch.cat(out)

    def _indexer(self, x, q_c, w, layer) -> list:
        """DeepSeek sparse attention's lightning indexer for the current token: its key joins the layer's keys; each
        earlier key j scores sum over heads h of weights_h / sqrt(dim x heads) x relu(q_h . k_j); the index_topk
        best positions, or all while there are no more."""
        a, p = self.a, self.pos
        dim, heads = a.index_dim, a.index_heads
        kw = w["idx_wk_w"] @ x
        k = _layer_norm(kw[:dim], w["idx_k_norm"], w["idx_k_norm_bias"], 1e-6)
        keys = self.keys[layer.index]
        keys.append(_e4m3_image(_rope(k, p, layer.rope_theta, a.qk_rope_dim)))
        if len(keys) <= a.index_topk:
            return list(range(len(keys)))
        q = _e4m3_image(_rope((w["idx_wq_b"] @ q_c).view(heads, dim), p, layer.rope_theta, a.qk_rope_dim))
        weights = kw[dim:] / math.sqrt(dim * heads)
        scores = [float(sum(weights[h] * torch.clamp(q[h] @ k_j, min=0) for h in range(heads))) for k_j in keys]
        return sorted(range(len(keys)), key=lambda j: -scores[j])[:a.index_topk]

    def _deltanet(self, x, w, cache):
        a = self.a
        nk, nv, dk, dv, kernel = a.lin_key_heads, a.lin_value_heads, a.lin_key_dim, a.lin_value_dim, a.conv_kernel
        if not cache:
            cache += [torch.zeros(a.conv_dim, kernel - 1, dtype=D), torch.zeros(nv, dk, dv, dtype=D)]
        y = w["qkvz"] @ x
        mixed, z = y[:a.conv_dim], y[a.conv_dim:].view(nv, dv)
        ba = w["ba"] @ x
        beta = 1 / (1 + torch.exp(-ba[:nv]))
        g = -torch.exp(w["A_log"]) * torch.log1p(torch.exp(ba[nv:] + w["dt_bias"]))
        window = torch.cat([cache[0], mixed[:, None]], dim=1)
        cache[0] = window[:, 1:]
        conv = (window * w["conv"]).sum(-1)
        conv = conv / (1 + torch.exp(-conv))
        q, k, v = conv[:nk * dk].view(nk, dk), conv[nk * dk:2 * nk * dk].view(nk, dk), conv[2 * nk * dk:].view(nv, dv)
        out = torch.zeros(nv, dv, dtype=D)
        for head in range(nv):
            kh = head // (nv // nk)
            qq = q[kh] / q[kh].norm() / math.sqrt(dk)
            kk = k[kh] / k[kh].norm()
            s = cache[1][head] * math.exp(g[head])
            s = s + torch.outer(kk, beta[head] * (v[head] - s.T @ kk))
            cache[1][head] = s
            o = s.T @ qq
            o = o / torch.sqrt((o * o).mean() + a.norm_eps) * w["o_norm"]
            out[head] = o * z[head] / (1 + torch.exp(-z[head]))
        return w["o"] @ out.flatten()

    def _kda(self, x, w, cache):
        """Kimi Delta Attention token by token, channel by channel of the gate (vLLM 0.32.0
        kimi_gdn_linear_attn.py, fused_recurrent.py fused_recurrent_kda_packed_decode_kernel read by hand)."""
        a = self.a
        heads, dim, kernel = a.lin_key_heads, a.lin_key_dim, a.conv_kernel
        width = heads * dim
        if not cache:
            cache += [torch.zeros(3 * width, kernel - 1, dtype=D), torch.zeros(heads, dim, dim, dtype=D)]
        y = w["in_proj"] @ x
        mixed, beta_raw, f_a = y[:3 * width], y[3 * width:3 * width + heads], y[3 * width + heads:]
        raw_gate = (w["f_b"] @ f_a).view(heads, dim) + w["dt_bias"].view(heads, dim)
        out_gate = (w["g_b"] @ (w["g_a"] @ x)).view(heads, dim)
        window = torch.cat([cache[0], mixed[:, None]], dim=1)
        cache[0] = window[:, 1:]
        conv = (window * w["conv"]).sum(-1)
        conv = conv / (1 + torch.exp(-conv))
        q, k, v = (conv[i * width:(i + 1) * width].view(heads, dim) for i in range(3))
        out = torch.zeros(heads, dim, dtype=D)
        for head in range(heads):
            qq = q[head] / torch.sqrt((q[head] ** 2).sum() + 1e-6) / math.sqrt(dim)
            kk = k[head] / torch.sqrt((k[head] ** 2).sum() + 1e-6)
            rate = math.exp(float(w["A_log"][head]))
            if a.kda_gate_lower_bound:
                log_decay = a.kda_gate_lower_bound / (1 + torch.exp(-rate * raw_gate[head]))
            else:
                log_decay = -rate * torch.log1p(torch.exp(raw_gate[head]))  # softplus, one key channel each
            s = cache[1][head] * torch.exp(log_decay)[:, None]  # [key, value]: row d decays by its own rate
            beta = 1 / (1 + math.exp(-float(beta_raw[head])))
            s = s + torch.outer(kk, beta * (v[head] - s.T @ kk))
            cache[1][head] = s
            o = s.T @ qq
            o = o / torch.sqrt((o * o).mean() + 1e-5) * w["o_norm"]  # FusedRMSNormGated's eps, not the model's
            out[head] = o / (1 + torch.exp(-out_gate[head]))
        return w["o"] @ out.flatten()

    def _mamba(self, x, w, cache):
        a = self.a
        heads, p, groups, n = a.mamba_heads, a.mamba_head_dim, a.mamba_groups, a.ssm_state
        inner, kernel = heads * p, a.conv_kernel
        if not cache:
            cache += [torch.zeros(a.conv_dim, kernel - 1, dtype=D), torch.zeros(heads, p, n, dtype=D)]
        y = w["in_proj"] @ x
        z, xbc, dt = y[:inner], y[inner:inner + a.conv_dim], y[inner + a.conv_dim:]
        window = torch.cat([cache[0], xbc[:, None]], dim=1)
        cache[0] = window[:, 1:]
        conv = (window * w["conv"]).sum(-1) + (w["conv_bias"] if a.conv_bias else 0)
        conv = conv / (1 + torch.exp(-conv))
        xs = conv[:inner].view(heads, p)
        bs, cs = conv[inner:inner + groups * n].view(groups, n), conv[inner + groups * n:].view(groups, n)
        out = torch.zeros(heads, p, dtype=D)
        for head in range(heads):
            g = head // (heads // groups)
            step = math.log1p(math.exp(float(dt[head] + w["dt_bias"][head])))  # softplus
            decay = math.exp(-step * math.exp(float(w["A_log"][head])))
            cache[1][head] = decay * cache[1][head] + step * torch.outer(xs[head], bs[g])
            out[head] = cache[1][head] @ cs[g] + w["D"][head] * xs[head]
        gated = (out.flatten() * z / (1 + torch.exp(-z))).view(groups, -1)
        normed = gated / torch.sqrt((gated * gated).mean(-1, keepdim=True) + a.norm_eps)
        return w["o"] @ (normed.flatten() * w["o_norm"])

    def _mamba1(self, x, w, cache):
        a = self.a
        inner, n, rank, kernel = a.mamba1_inner, a.ssm_state, a.mamba_dt_rank, a.conv_kernel
        if not cache:
            cache += [torch.zeros(inner, kernel - 1, dtype=D), torch.zeros(inner, n, dtype=D)]
        y = w["in_proj"] @ x
        xs, z = y[:inner], y[inner:]
        window = torch.cat([cache[0], xs[:, None]], dim=1)
        cache[0] = window[:, 1:]
        conv = (window * w["conv"]).sum(-1) + (w["conv_bias"] if a.conv_bias else 0)
        conv = conv / (1 + torch.exp(-conv))
        p = w["x_proj"] @ conv
        parts = ((p[:rank], "dt_norm"), (p[rank:rank + n], "b_norm"), (p[rank + n:], "c_norm"))
        if a.mamba1_norm == "none":  # Mamba: dt, B and C as x_proj gives them
            dt, bs, cs = (v for v, _ in parts)
        else:  # Falcon-Mamba's norms have no weight (a weight of ones)
            dt, bs, cs = (_norm(v, w.get(name, torch.ones_like(v)), a.mamba1_norm_eps) for v, name in parts)
        dt = w["dt_proj"] @ dt + w["dt_bias"]
        out = torch.zeros(inner, dtype=D)
        for ch in range(inner):
            step = math.log1p(math.exp(float(dt[ch])))  # softplus
            decay = torch.exp(-step * torch.exp(w["A_log"][ch]))
            cache[1][ch] = decay * cache[1][ch] + step * conv[ch] * bs
            out[ch] = cache[1][ch] @ cs + w["D"][ch] * conv[ch]
        return w["o"] @ (out * z / (1 + torch.exp(-z)))

    # ---- Gemma 4 (vLLM 0.32.0 gemma4.py; the shapes: kvplan/verify/arch.py, its Gemma 4 section) -------------

    def _per_layer_inputs(self, token: int, x):
        """[layers, width]: (norm(projection of x / sqrt(hidden)) + the token's table row x sqrt(width)) / sqrt(2)."""
        a, w = self.a, self.w
        n, width = len(a.layers), a.per_layer_input
        row = w["ple_embed"][token if token < a.per_layer_vocab else 0].view(n, width) * math.sqrt(width)
        projected = _norm((w["ple_model_proj"] @ x / math.sqrt(a.hidden)).view(n, width), w["ple_proj_norm"],
                          a.norm_eps)
        return (projected + row) / math.sqrt(2)

    def _gemma4_attention(self, x, w, layer):
        """One token through a Gemma 4 attention layer of its HeadShape: a KV-sharing layer (layer.reads) projects
        q only and attends over the keys and values its target stored at this position and before."""
        a, shape = self.a, self.a.attention(layer)
        h, kvh, hd = shape.heads, shape.kv_heads, shape.head_dim

        def turn(t):
            return _rotate_layer(t, self.pos, layer.rope_theta, shape)

        if layer.reads is None:
            y = w["qkv"] @ x
            k, v = y[h * hd:(h + kvh) * hd].view(kvh, hd), y[(h + kvh) * hd:].view(kvh, shape.v_head_dim)
            v = v / torch.sqrt((v * v).mean(-1, keepdim=True) + a.norm_eps)  # v_norm: no weight
            self.cache[layer.cache].append((turn(_norm(k, w["k_norm"], a.norm_eps)), v))
            cache, q = self.cache[layer.cache], y[:h * hd]
        else:
            cache, q = self.cache[layer.reads], w["q"] @ x
        q = turn(_norm(q.view(h, hd), w["q_norm"], a.norm_eps))
        return w["o"] @ _attend(q, cache, layer.window, shape)

    def _gemma4_moe(self, x, w):
        """The router on x RMS-normed (no weight) / sqrt(hidden) x its per-dimension scale: softmax over every
        expert, the top k renormalised, each weight times the expert's scale; the experts on x's own pre-norm."""
        a = self.a
        routed = x / torch.sqrt((x * x).mean() + a.norm_eps) / math.sqrt(a.hidden) * w["router_norm"]
        y = _norm(x, w["moe_pre_norm"], a.norm_eps)
        out = torch.zeros_like(x)
        for p, e in route_reference(a.routing, a.top_k, (w["router"] @ routed).tolist()):
            out += p * float(w["router_per_expert"][e]) * self._mlp(y, w["w13"][e], w["w2"][e])
        return out

    def _gemma4_step(self, token: int):
        a, w, eps = self.a, self.w, self.a.norm_eps
        x = w["embed"][token] * a.embed_scale
        inputs = self._per_layer_inputs(token, x) if a.per_layer_input else None
        for layer in a.layers:
            lw = {k.split(".", 2)[2]: v for k, v in w.items() if k.startswith(f"layers.{layer.index}.")}
            x = x + _norm(self._gemma4_attention(_norm(x, lw["attn_norm"], eps), lw, layer), lw["post_attn_norm"], eps)
            h = self._mlp(_norm(x, lw["ffn_norm"], eps), lw["mlp.gate_up"], lw["mlp.down"])
            if layer.ffn == "moe":
                h = _norm(h, lw["mlp_post_norm"], eps) + _norm(self._gemma4_moe(x, lw), lw["moe_post_norm"], eps)
            x = x + _norm(h, lw["post_ffn_norm"], eps)
            if inputs is not None:
                gate = _act("gelu_tanh", lw["ple_gate"] @ x) * inputs[layer.index]
                x = x + _norm(lw["ple_proj"] @ gate, lw["ple_norm"], eps)
            x = x * lw["layer_scalar"]
        self.pos += 1
        logits = (w.get("lm_head", w["embed"]) @ _norm(x, w["norm"], eps))[:a.vocab]
        return a.logit_softcap * torch.tanh(logits / a.logit_softcap) if a.logit_softcap else logits

    # ---- Gemma 3n (vLLM 0.32.0 gemma3n.py, gemma3n_mm.py; the shapes: kvplan/verify/arch.py, its Gemma 3n
    # section). The model dtype's constants rounded here as vLLM's buffers hold them ----------------------------

    def _held(self, value: float) -> float:
        return float(torch.tensor(value, dtype=torch.float16 if self.a.dtype == "fp16" else torch.bfloat16))

    def _gemma3n_per_layer_inputs(self, token: int, x):
        """[layers, width]: (norm(projection of x) + the token's table row x sqrt(width)) x rsqrt(2); the projection
        normed alone where the table is not read (Gemma3nForCausalLM)."""
        a, w = self.a, self.w
        n, width = len(a.layers), a.per_layer_input
        projected = _norm((w["ple_model_proj"] @ x).view(n, width), w["ple_proj_norm"], a.norm_eps)
        if not a.per_layer_table:
            return projected
        row = w["ple_embed"][token if token < a.per_layer_vocab else 0].view(n, width) * self._held(math.sqrt(width))
        return (projected + row) * self._held(1 / math.sqrt(2))

    def _gemma3n_mlp(self, x, w, sparsity: float):
        """The gated tanh-GELU MLP; at sparsity s > 0 each shard's gate less (its mean + its population std x the
        standard normal's s-quantile), floored at 0, first."""
        h = w["mlp.gate_up"] @ x
        gate, up = h[:h.shape[0] // 2], h[h.shape[0] // 2:]
        if sparsity:
            z = NormalDist().inv_cdf(sparsity)
            kept = []
            for part in gate.chunk(self.shards):
                mean = part.mean()
                std = torch.sqrt(((part - mean) ** 2).mean())
                kept.append(torch.clamp(part - (mean + z * std), min=0.0))
            gate = torch.cat(kept)
        return w["mlp.down"] @ (_act("gelu_tanh", gate) * up)

    def _gemma3n_layer(self, streams: list, w: dict, layer, per_layer_input) -> list:
        """One layer over the N streams (vectors): predict, attention + Laurel + MLP on the active prediction,
        correct, the per-layer input gated into every stream but the first."""
        a, eps, n, act = self.a, self.a.norm_eps, self.a.altup_inputs, self.a.altup_active
        scale = self._held(1 / a.hidden)

        def router(v):
            return torch.tanh(w["altup_router"] @ (_norm(v, w["altup_router_norm"], eps) * scale))

        mix = (w["altup_prediction"] @ router(streams[act])).view(n, n)  # row i: how stream i is predicted
        predicted = [streams[i] + sum(mix[i, j] * streams[j] for j in range(n)) for i in range(n)]
        active = predicted[act]
        normed = _norm(active, w["attn_norm"], eps)
        laurel = normed + _norm(w["laurel_right"] @ (w["laurel_left"] @ normed), w["laurel_norm"], eps)
        attn = _norm(self._gemma4_attention(normed, w, layer), w["post_attn_norm"], eps)
        x = (attn + active + laurel) / math.sqrt(2)
        x = x + _norm(self._gemma3n_mlp(_norm(x, w["ffn_norm"], eps), w, layer.sparsity), w["post_ffn_norm"], eps)
        weights = w["altup_correction"] @ router(x) + 1
        corrected = [predicted[i] + weights[i] * (x - active) for i in range(n)]
        gate = _act("gelu_tanh", w["ple_gate"] @ (corrected[act] * w["altup_output_scale"])) * per_layer_input
        added = _norm(w["ple_proj"] @ gate, w["ple_norm"], eps)
        return [v if i == 0 else v + added for i, v in enumerate(corrected)]

    def _gemma3n_step(self, token: int):
        a, w, eps = self.a, self.w, self.a.norm_eps

        def magnitude(v):
            return torch.sqrt((v * v).mean())

        x = w["embed"][token] * self._held(math.sqrt(a.hidden))
        inputs = self._gemma3n_per_layer_inputs(token, x)
        streams = [x]
        for i in range(a.altup_inputs - 1):
            y = w[f"altup_proj.{i}"] @ x
            streams.append(y * magnitude(x) / magnitude(y))
        for layer in a.layers:
            lw = {k.split(".", 2)[2]: v for k, v in w.items() if k.startswith(f"layers.{layer.index}.")}
            streams = self._gemma3n_layer(streams, lw, layer, inputs[layer.index])
        outs = [streams[0]]
        for i in range(1, a.altup_inputs):
            y = w[f"altup_unembed.{i - 1}"] @ streams[i]
            outs.append(y * magnitude(streams[0]) / magnitude(y))
        self.pos += 1
        logits = (w["embed"] @ _norm(sum(outs) / len(outs), w["norm"], eps))[:a.vocab]
        return a.logit_softcap * torch.tanh(logits / a.logit_softcap)

    def step(self, token: int):
        """Logits [vocab] after feeding `token` at the next position."""
        a, w = self.a, self.w
        if a.is_gemma4:
            return self._gemma4_step(token)
        if a.is_gemma3n:
            return self._gemma3n_step(token)
        x = w["embed"][token] * a.embed_scale
        for layer in a.layers:
            lw = {k.split(".", 2)[2]: v for k, v in w.items() if k.startswith(f"layers.{layer.index}.")}
            cache = self.cache[layer.index]
            if layer.mixer != "none":
                h = _norm(x, lw["attn_norm"], a.norm_eps, a.norm_plus_one)
                if layer.mixer == "attention":
                    h = self._attention(h, lw, layer, cache)
                elif layer.mixer == "mla":
                    h = self._mla(h, lw, layer, cache)
                elif layer.mixer == "mamba":
                    h = self._mamba(h, lw, cache)
                elif layer.mixer == "mamba1":
                    h = self._mamba1(h, lw, cache)
                elif layer.mixer == "kda":
                    h = self._kda(h, lw, cache)
                else:
                    h = self._deltanet(h, lw, cache)
                if a.sandwich_norms:
                    h = _norm(h, lw["post_attn_norm"], a.norm_eps, a.norm_plus_one)
                x = x + h
            if layer.ffn != "none":
                h = self._ffn(_norm(x, lw["ffn_norm"], a.norm_eps, a.norm_plus_one), lw, layer.ffn == "moe")
                if a.sandwich_norms:
                    h = _norm(h, lw["post_ffn_norm"], a.norm_eps, a.norm_plus_one)
                x = x + h
        self.pos += 1
        x = _norm(x, w["norm"], a.norm_eps, a.norm_plus_one)
        return (w.get("lm_head", w["embed"]) @ x)[:a.vocab]


def route_reference(r, top_k: int, logits: list, correction=None, logit_bias=None) -> list:
    """[(weight, expert)] of one token's router `logits` by Routing `r` (kvplan/model/routing.py), expert by
    expert in Python floats."""
    if r.logit_bias:
        logits = [v + float(b) for v, b in zip(logits, logit_bias)]
    if r.scoring == "softmax":
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        scores = [v / sum(exps) for v in exps]
    else:
        scores = [1 / (1 + math.exp(-v)) for v in logits]
    choose = [s + float(b) for s, b in zip(scores, correction)] if r.correction_bias else list(scores)
    size = len(choose) // r.groups
    runs = [sorted(choose[g * size:(g + 1) * size], reverse=True) for g in range(r.groups)]
    group_score = [run[0] + run[1] if r.correction_bias and r.grouped else run[0] for run in runs]
    allowed = sorted(range(r.groups), key=lambda g: -group_score[g])[:r.topk_groups]
    candidates = [e for g in allowed for e in range(g * size, (g + 1) * size)]
    chosen = sorted(candidates, key=lambda e: -choose[e])[:top_k]
    total = sum(scores[e] for e in chosen) if r.renormalize else 1.0
    return [(scores[e] / total * r.scale, e) for e in chosen]
