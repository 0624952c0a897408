"""vLLM's cache-shape flags: --mamba-cache-dtype, --mamba-ssm-cache-dtype (the dtypes of a Mamba / linear-attention
layer's states, so its page, a hybrid's block size and its capacity) and --disable-sliding-window (every sliding
layer attends in full, and the model's length is capped to the window). One place for their values by release,
their precedence over the config handlers, what each does to the spec, and the notes that say so.

The state dtypes (model_executor/layers/mamba/mamba_utils.py MambaStateDtypeCalculator; 0.10.2:47-61, 0.11.0:46-60,
0.32.0:97-110, 0.34.0:105-118 _mamba_state_dtype):
- the convolution state in --mamba-cache-dtype, 'auto' meaning the model dtype (get_kv_cache_torch_dtype);
- the temporal (SSM / recurrent) state in --mamba-ssm-cache-dtype, 'auto' meaning the conv state's dtype: so
  --mamba-cache-dtype float32 alone puts both states in float32.
- by layer: Mamba-1 / Mamba-2 mixers (Nemotron-H, Falcon-H1, Granite 4.0, Bamba, Zamba2, Jamba, Mamba) read both
  flags in every release that has them; the gated DeltaNet (Qwen3-Next, Qwen3.5) keeps both states in
  --mamba-cache-dtype up to 0.16.x (gated_delta_net_state_dtype takes no SSM dtype: 0.11.0:74-80, 0.16.0:79-85;
  qwen3_next.py 0.16.0:229-232) and reads both from 0.17.0 (mamba_utils.py 0.17.0:79-88, qwen3_next.py
  0.17.0:338-343); Kimi Delta Attention's recurrent state is float32 under 'auto' in every release
  (kda_state_dtype), and float32 whatever is asked up to 0.29.x (kda_state_dtype takes --mamba-cache-dtype alone:
  kda.py 0.20.0:95-97, mamba_utils.py 0.29.0:132-138, models/kimi_k3/nvidia/model.py 0.29.0:1660-1662); from
  0.30.0 Kimi-Linear's class (vllm.models.kimi_k3, nvidia/model.py 0.30.0:1674-1678, kda.py :545-549; 0.34.0
  model.py:1600-1604, kda.py:583-587) passes --mamba-ssm-cache-dtype too, and kda_state_dtype keeps float32 or
  bfloat16 as asked and raises "KDA recurrent state supports only auto, float32, and bfloat16" for float16
  (mamba_utils.py 0.30.0:133-147, met in VllmConfig.__post_init__'s hybrid config hook: kda_refusal). Not modelled:
  ROCm's class (kimi_k3/amd/linear.py, kda.py) passes the flag only from 0.33 (0.32.0 linear.py:1115-1117, 0.33.0
  :1142-1146); kvplan takes 0.30 on every platform. LFM2's short convolution has a conv state only
  (short_conv_state_dtype, 0.32.0:113-119).
- the config handlers (model_executor/models/config.py, run before the page size is set) touch the SSM dtype only,
  and only while it is 'auto': Nemotron-H's sets it to the config's mamba_ssm_cache_dtype or its default
  (vllm_mamba_state.NEMOTRON_H_SSM_HANDLER: 0.32.0:717-732 `if cache_config.mamba_ssm_cache_dtype == "auto"`),
  Qwen3.5's to the config's mamba_ssm_dtype (vllm_mamba_state.QWEN3_5_SSM_HANDLER: 0.32.0:853-877; an explicit flag
  wins, with a warning). No handler touches --mamba-cache-dtype, and none exists for Qwen3-Next or Falcon-H1
  (MODELS_CONFIG_MAP 0.32.0:1060-1120).

--disable-sliding-window (config/model.py ModelConfig; 0.11.0 / 0.20.0 / 0.32.0 / 0.33.0 / 0.34.0 lines):
- the derived max_model_len is capped to the config's sliding_window where that is smaller (_get_and_verify_max_len:
  0.11.0:1807-1811, 0.20.0:2064-2070, 0.32.0:2544-2550, 0.33.0:2562-2568, 0.34.0:2606-2612, max_len_key
  "sliding_window"), before the RoPE factor (skipped for "gemma3" model types: 0.32.0:2585); a longer
  --max-model-len is then refused as any length past the derived one (0.32.0:2639-2666);
- then hf_text_config.sliding_window = None (0.11.0:632-635, 0.20.0:679-682, 0.32.0:901-904, 0.34.0:934-937), so
  every layer that took its window from it attends in full: Gemma 2 / 3 (gemma2.py 0.32.0:156, gemma3.py :155),
  gpt-oss (gpt_oss.py :176), Llama / Mistral (llama.py :185-204, and CacheConfig.sliding_window from
  get_sliding_window for an all-sliding model: engine/arg_utils.py 0.32.0:2248-2254), Gemma 4 (gemma4.py :451);
  Llama 4's chunked layers read attention_chunk_size and stay chunked.
- kvplan refuses it where it does not model the result: Gemma 3n (its KV-sharing target moves with the window:
  gemma3n.py 0.32.0:359), MiMo-V2 (sliding_window_size, which the switch does not clear: mimo_v2.py :298, :375-388)
  and DeepSeek-V4 (its compressed window layers). A RoPE factor (linear, dynamic) scales the capped length by
  release as it scales the config's own: engines/vllm_rope_len.py (the window x factor from 0.12; 0.12-0.29's YaRN
  original x factor; 0.11.x refuses the pair, 0.11.0:1847-1855).
The flag is in arg_utils.py from 0.4.3 (not 0.4.2); kvplan models it from 0.11.0, the first release read."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError, RefusedInput, quote
from ..model.choices import refuse_spaces
from ..model.kinds import ChunkedAttention, FullAttention, LinearState, SharedKV, SlidingWindow
from ..model.precision import normalize_dtype_name
from .vllm_versions import parse_version, release_rule

# config/cache.py MambaDType, by the first release listing each set (argparse takes its choices from the Literal):
# 0.10.1:26 and 0.12.0:32 (auto, float32); 0.13.0:32 and 0.21.0:35 (+ float16); 0.22.0:35, 0.32.0:62, 0.34.0:175
# (+ bfloat16). The flags themselves first appear in 0.10.1 (engine/arg_utils.py; 0.10.0's has neither).
MAMBA_DTYPE_RULES = (((0, 22), ("auto", "float32", "float16", "bfloat16")),
                     ((0, 13), ("auto", "float32", "float16")),
                     ((0, 10, 1), ("auto", "float32")))
MAMBA_FIELDS = ("mamba_cache_dtype", "mamba_ssm_cache_dtype")
ALL_MAMBA_DTYPES = MAMBA_DTYPE_RULES[0][1]
GDN_READS_SSM_FLAG = (0, 17)  # gated_delta_net_state_dtype takes mamba_ssm_cache_dtype from 0.17.0 (see above)
KDA_READS_SSM_FLAG = (0, 30)  # Kimi-Linear's class passes it to kda_state_dtype from 0.30.0 (see above)
SSM_FLAG_FLAVORS = ("mamba", "mamba2")  # the Mamba mixers read it in every release with the flag
GDN_FLAVOR, KDA_FLAVOR = "gated-deltanet", "kda"
READS_SSM_SINCE = {GDN_FLAVOR: GDN_READS_SSM_FLAG, KDA_FLAVOR: KDA_READS_SSM_FLAG}
# 0.10.1's V0 Mamba-1 mixers (Jamba, Mamba: flavor "mamba") raise on float32 states (mamba_utils.py 0.10.1.1:27-38
# mamba1_state_dtype, met as the profile run builds MambaCacheManager: jamba.py 0.10.1.1:524-533); 0.10.2 takes it
# (mamba_utils.py 0.10.2:27-34): the first release that does
MAMBA1_FP32_SINCE = (0, 10, 2)
MAMBA1_FP32_REFUSAL = "fp32 state for mamba1 is not yet supported"
# the recurrent-state dtypes kda_state_dtype takes (mamba_utils.py 0.30.0:140-147); 'auto' is float32 there
KDA_SSM_DTYPES = ("auto", "float32", "bfloat16")
KDA_SSM_REFUSAL = "KDA recurrent state supports only auto, float32, and bfloat16; got {asked}"
# windowed layers whose --disable-sliding-window result kvplan does not model, by model_type (see the docstring)
UNMODELLED_SLIDING = {"gemma3n": "its KV-sharing layers take another layer's cache once the window is gone",
                      "gemma3n_text": "its KV-sharing layers take another layer's cache once the window is gone",
                      "mimo_v2_flash": "its sliding layers keep sliding_window_size, which the switch does not clear",
                      "mimo_v2": "its sliding layers keep sliding_window_size, which the switch does not clear"}


def mamba_dtype_choices(version: str) -> tuple:
    """The values vLLM `version`'s --mamba-cache-dtype / --mamba-ssm-cache-dtype take (MAMBA_DTYPE_RULES); () before
    0.10.1, which has neither flag."""
    return release_rule(MAMBA_DTYPE_RULES, version) or ()


def mamba_dtype(field: str, value) -> Optional[str]:
    """A --mamba-cache-dtype / --mamba-ssm-cache-dtype value as vLLM spells it (None: not given); FieldError naming
    `field` for a value no release takes, in any other case too: argparse matches its choices exactly (the MambaDType
    Literal, config/cache.py 0.34.0:175). The release's own list is checked by the engine (release_refusal)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else None
    if text not in ALL_MAMBA_DTYPES:  # " float32 " too: argparse compares as typed
        refuse_spaces(field, value, ALL_MAMBA_DTYPES)
        raise FieldError(field, f"must be one of {', '.join(ALL_MAMBA_DTYPES)}, in lower case (vLLM's values; "
                                f"bfloat16 from 0.22, float16 from 0.13), got {quote(value)}.")
    return text


def release_refusal(flags, version: str) -> None:
    """FieldError naming the flag where vLLM `version`'s argparse does not take the value asked, with its values."""
    choices = mamba_dtype_choices(version)
    for field in MAMBA_FIELDS:
        asked = getattr(flags, field, None)
        if asked is not None and choices and asked not in choices:
            raise FieldError(field, f"{asked} is not a choice of vLLM {version}; it takes {', '.join(choices)}.")


def reads_ssm_flag(flavor: str, version: str) -> bool:
    """Whether a state layer of `flavor` keeps its temporal state in --mamba-ssm-cache-dtype in vLLM `version`."""
    since = READS_SSM_SINCE.get(flavor)
    return flavor in SSM_FLAG_FLAVORS or (since is not None and parse_version(version) >= since)


def has_kda(spec) -> bool:
    return any(layer.flavor == KDA_FLAVOR for layer in spec.linear_layers)


def kda_refusal(spec, version: str):
    """vLLM `version`'s ValueError for a --mamba-ssm-cache-dtype Kimi Delta Attention does not keep (float16, from
    0.30: KDA_SSM_DTYPES), as a configuration refusal (figures.Refusal) on that flag; None otherwise."""
    from .figures import Refusal

    asked = asked_ssm_dtype(spec, version)
    if not has_kda(spec) or asked in KDA_SSM_DTYPES:
        return None
    flag = (("mamba_ssm_cache_dtype", "--mamba-ssm-cache-dtype"),)
    return Refusal(KDA_SSM_REFUSAL.format(asked=asked), None, configuration=True, field="mamba_ssm_cache_dtype",
                   remedy="vLLM accepts --mamba-ssm-cache-dtype auto, float32 or bfloat16 for Kimi Delta Attention",
                   remedy_flags=flag)


def mamba1_fp32_refusal(spec, version: str):
    """vLLM `version`'s ValueError for a float32 --mamba-cache-dtype / --mamba-ssm-cache-dtype on a Mamba-1 mixer
    before MAMBA1_FP32_SINCE, as a configuration refusal on the flag asked; None otherwise."""
    from .figures import Refusal

    asked = [field for field in MAMBA_FIELDS if getattr(spec, field, "") == "float32"]
    if not asked or parse_version(version) >= MAMBA1_FP32_SINCE or \
            not any(layer.flavor == "mamba" for layer in spec.linear_layers):
        return None
    flag = "--" + asked[0].replace("_", "-")
    return Refusal(MAMBA1_FP32_REFUSAL, None, configuration=True, field=asked[0],
                   remedy=f"vLLM {version} keeps a Mamba-1 state in the model dtype only: {flag} auto, or "
                          f"vllm=={'.'.join(map(str, MAMBA1_FP32_SINCE))} or later",
                   remedy_flags=((asked[0], flag),))


def conv_state_dtype(spec) -> str:
    """kvplan's dtype name of the convolution state: --mamba-cache-dtype, 'auto' (or not given) the model dtype."""
    asked = getattr(spec, "mamba_cache_dtype", "") or "auto"
    return spec.dtype if asked == "auto" else normalize_dtype_name(asked)


def reads_ssm(spec, version: str) -> bool:
    """Whether some state layer of `spec` keeps its temporal state in --mamba-ssm-cache-dtype in vLLM `version`."""
    return any(reads_ssm_flag(flavor, version) for flavor in {layer.flavor for layer in spec.linear_layers})


def asked_ssm_dtype(spec, version: str) -> str:
    """--mamba-ssm-cache-dtype as `spec`'s state layers read it in `version`: 'auto' where none of them reads it."""
    asked = getattr(spec, "mamba_ssm_cache_dtype", "") or "auto"
    return asked if reads_ssm(spec, version) else "auto"


# ---- the spec as the flags leave it --------------------------------------------------------------------------

def with_cache_flags(spec, flags):
    """`spec` carrying the Mamba dtypes asked (ModelSpec.mamba_cache_dtype / mamba_ssm_cache_dtype, read by
    vllm_mamba_state.ssm_state_dtype) and, with --disable-sliding-window, its sliding layers full and its length
    capped to the window (without_sliding_window)."""
    cache, ssm = getattr(flags, "mamba_cache_dtype", None), getattr(flags, "mamba_ssm_cache_dtype", None)
    if cache or ssm:
        spec = replace(spec, mamba_cache_dtype=cache or "", mamba_ssm_cache_dtype=ssm or "")
    # a KDA layer's float32 is vLLM's 'auto': an explicit flag unfixes it (vllm_mamba_state.ssm_state_dtype says, by
    # release, which dtype it then keeps)
    if ssm and ssm != "auto":
        spec = replace(spec, layers=tuple(replace(layer, ssm_bytes=0) if _dtype_from_flag(layer) else layer
                                          for layer in spec.layers))
    if getattr(flags, "disable_sliding_window", False):
        spec = without_sliding_window(spec)
        # marked for 0.11's refusal beside a RoPE scaling (vllm_rope_len.py), and for a list of windows, whose length
        # check then fails in the releases that cannot read it (vllm_window_list.list_refusal)
        if getattr(spec, "rope_factors", ()) or getattr(spec, "window_list", ()):
            spec = replace(spec, sliding_window_disabled=True)
    return spec


def _dtype_from_flag(layer) -> bool:
    return isinstance(layer, LinearState) and layer.flavor in READS_SSM_SINCE and layer.ssm_bytes != 0


def config_window(spec) -> Optional[int]:
    """The config's sliding_window as vLLM's get_sliding_window reads it: the window of the spec's sliding layers
    (their own field; None where none slides, which covers use_sliding_window false: transformers then leaves it
    None)."""
    windows = {layer.sliding_window for layer in spec.layers if plain_sliding(layer)}
    if windows and any(getattr(spec, "window_list", ())):  # a list's smallest (get_min_sliding_window, config.py
        return min(window for window in spec.window_list if window)  # 0.6.4:1997-2002), the layers' or not
    return min(windows) if windows else None


def plain_sliding(layer) -> bool:
    return isinstance(layer, SlidingWindow) and not isinstance(layer, ChunkedAttention)


def without_sliding_window(spec):
    """`spec` as vLLM serves it with --disable-sliding-window: each sliding layer a full-attention layer of its own
    shape, and the model's length capped to the window where that is shorter (length_key 'sliding_window'; each
    release's view multiplies it by the RoPE factor: vllm_rope_len.rope_view); a model with no sliding layer is
    unchanged. RefusedInput (on the flag) for the layouts kvplan does not model (UNMODELLED_SLIDING,
    DeepSeek-V4's window layers)."""
    why = UNMODELLED_SLIDING.get(spec.model_type)
    if why is None and any(getattr(layer, "kind", "").startswith("v4") for layer in spec.layers):
        why = "its compressed window layers are not plain sliding layers"
    if why is not None:  # on the flag's own key in a deployments file (commands/check/served.py spec_for)
        raise RefusedInput(f"--disable-sliding-window is not modelled for {spec.name} ({spec.model_type}): {why}; "
                           f"leave it off.", (("disable_sliding_window", "--disable-sliding-window"),),
                           "disable_sliding_window")
    window = config_window(spec)
    if window is None:
        return spec
    layers = tuple(_full(layer) if plain_sliding(layer) else _unwindowed_reader(layer) for layer in spec.layers)
    capped = spec.max_position_embeddings is None or window < spec.max_position_embeddings
    if not capped:
        return replace(spec, layers=layers)
    return replace(spec, layers=layers, max_position_embeddings=window, length_key="sliding_window",
                   config_length=spec.max_position_embeddings)


def _unwindowed_reader(layer):
    """A KV-sharing layer (Gemma 4's) attends as its target does: in full once its sliding target is (vLLM clears the
    one sliding_window every layer reads, gemma4.py 0.32.0:451); any other layer as it is."""
    if isinstance(layer, SharedKV) and plain_sliding(layer.target):
        return replace(layer, target=_full(layer.target))
    return layer


def _full(layer: SlidingWindow) -> FullAttention:
    """The layer with no window: FullAttention with every field it shares with the sliding layer."""
    shared = {name: getattr(layer, name) for name in FullAttention.__dataclass_fields__
              if FullAttention.__dataclass_fields__[name].init}
    return FullAttention(**shared)
