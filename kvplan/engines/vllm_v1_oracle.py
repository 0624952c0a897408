"""Which engine a vLLM release from 0.8 to 0.10.2 starts for a deployment: V1 (its default) or V0, to which
EngineArgs._is_v1_supported_oracle (engine/arg_utils.py) falls back, VLLM_USE_V1 unset, for what V1 did not take
yet (V0 leaves with 0.11). kvplan asks it once (v0_fallback) and plans a fallback by V0's rules
(v0_rules, era "v0"), or refuses in one line where it does not model V0's rules for it (V0_UNMODELLED).

The conditions on what kvplan takes (model, GPU, --kv-cache-dtype, the runner, -pp, --dtype, --cpu-offload-gb), in
the oracle's order, read in the wheels 0.8.0-0.8.5, 0.9.0, 0.9.1, 0.9.2, 0.10.0, 0.10.1.1 and 0.10.2; each a
_raise_or_fallback (V0, or a raise under VLLM_USE_V1=1) unless it says _warn_or_fallback (V0 unless VLLM_USE_V1=1):
- compute capability below 8.0 on CUDA ("Compute Capability < 8.0": T4, V100): 0.8.0:1474, 0.8.5:1353,
  0.9.2:1360, 0.10.1.1:1402; gone from 0.10.2's (CAPABILITY_FALLBACK).
- --kv-cache-dtype other than auto (KV_DTYPE_RULES), by release:
  0.8.0-0.8.1 always (0.8.0:1480-1483 "No Fp8 KV cache so far");
  0.8.2-0.9.2 unless an fp8 value on CUDA where FlashAttention 3 takes fp8 (0.8.2:1561-1574, 0.8.5:1359-1374,
  0.9.2:1366-1378; attention/utils/fa_utils.py 0.8.5:51-54, 0.9.2:66-68 flash_attn_supports_fp8: FA 3 and
  capability major 9, the Hopper GPUs), and on ROCm from 0.9.0 whatever the value (0.9.0:1264-1265: is_rocm);
  0.10.0-0.10.1 platform.is_kv_cache_dtype_supported (0.10.0:1355-1358): CUDA takes any value on capability 10.0
  (B200, GB200), fp8 ones on 9.x (platforms/cuda.py 0.10.0:459-470, 0.10.1.1:497-508), ROCm any (rocm.py
  0.10.0:459-460);
  0.10.2 the same with the model (cuda.py 0.10.2:522-561): an MLA model's default backend (FlashMLA, CUTLASS MLA on
  10.0) takes any value; else 10.0 any, fp8 values on 9.x, the others (none to 0.10.2) everywhere.
- --cpu-offload-gb other than 0: 0.8.0:1492-1496 to 0.8.2:1584-1588 (CPU_OFFLOAD_FALLBACK).
- a model dtype other than float16 / bfloat16 (--dtype float32): 0.8.0:1498-1503 to 0.9.1:1341-1346
  (DTYPE_FALLBACK).
- a pooling runner ("--task {task}": model_config.task not "generate"): 0.8.0:1513-1517 to 0.9.1:1348-1352
  (POOLING_FALLBACK); V1 pools from 0.9.2. V0's scheduler then runs a pooling model on its placeholder block
  manager (core/scheduler.py 0.8.0:442-445, 0.9.1:443-446: version "placeholder" for runner_type pooling), which
  kvplan does not model: refused (V0_UNMODELLED).
- a class SupportsV0Only (`not model_config.is_v1_compatible`: 0.8.0:1519, 0.9.2:1397, 0.10.1.1:1423, 0.10.2:1479)
  and, 0.9.2-0.10.1, any inner state (_warn_or_fallback "Mamba": 0.9.2:1403, 0.10.1.1:1429):
  vllm_mamba_v0.runs_v0, the Mamba / linear-attention models (the encoder-decoder classes kvplan refuses itself).
- pipeline parallelism with the default executor: 0.8.0-0.9.0 (vllm_v0_pp.pp_runs_v0: 0.8.0:1590 "PP", 0.8.5:1478,
  0.9.0:1378).
- a platform other than CUDA (an AMD GPU: ROCm): `not current_platform.is_cuda()` _warn_or_fallback 0.8.0:1598 to
  0.8.5:1493, then `not any((is_cuda(), is_tpu(), ...))` 0.9.0:1387, 0.9.1:1444; from 0.9.2 platform.default_v1
  (0.9.2:1492; interface.py 0.9.2:489-493: supports_v1, True on ROCm: rocm.py 0.9.2:397-399) keeps ROCm on V1.
Not asked (kvplan does not take them, or refuses them before these releases: engine.MODELLED_SINCE): LoRA
(_warn_or_fallback "LORA" to 0.8.2), speculative decoding (every method to 0.8.5, a draft model to 0.9.2), the
bitsandbytes / GGUF quantisations (to 0.8.2 / 0.8.5), the load formats, prompt adapters and embeds, the scheduler
flags, VLLM_ATTENTION_BACKEND.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .vllm_versions import behaviour, in_span, parse_version, release_rule

ORACLE = ((0, 8), (0, 11))  # [from, before): releases that choose between V1 and V0 (V0 removed in 0.11)
CAPABILITY_FALLBACK = ((0, 8), (0, 10, 2))  # [from, before): "Compute Capability < 8.0" (docstring)
CPU_OFFLOAD_FALLBACK = ((0, 8), (0, 8, 3))  # [from, before): --cpu-offload-gb (docstring)
DTYPE_FALLBACK = ((0, 8), (0, 9, 2))  # [from, before): V1_SUPPORTED_DTYPES bfloat16 / float16 (docstring)
POOLING_FALLBACK = ((0, 8), (0, 9, 2))  # [from, before): model_config.task not in ["generate"] (docstring)
ROCM_FALLBACK = ((0, 8), (0, 9, 2))  # [from, before): a platform other than CUDA falls back (docstring)
ROCM_KV_SINCE = (0, 9)  # ROCm takes any --kv-cache-dtype (arg_utils.py 0.9.0:1264-1265)
# which --kv-cache-dtype values V1 takes, newest first (docstring): "model" (0.10.2: MLA any; 10.0 any; fp8 on 9.x,
# the rest anywhere), "blackwell" (0.10.0-0.10.1: 10.0 any, fp8 on 9.x), "fa3" (0.8.2-0.9.2: fp8 on 9.x), "none"
KV_DTYPE_RULES = (((0, 10, 2), "model"), ((0, 10), "blackwell"), ((0, 8, 2), "fa3"), ((0, 8), "none"))
V1_DTYPES = ("bf16", "fp16")  # torch.bfloat16, torch.float16 (arg_utils.py 0.8.0:1498)
# 16-bit cache names the oracle reads as auto: 0.8-0.10.2's --kv-cache-dtype lists auto and fp8 spellings only
# (arg_utils.py 0.8.0:369; config.py 0.10.0:1609 CacheDType), so such a name is kvplan's own replan of `auto` (a
# remedy planned at the model's dtype by name), never a flag the user gave
AUTO_NAMES = ("bf16", "bfloat16", "fp16", "float16", "half")

# fallbacks whose V0 rules kvplan does not model: the reason's key, what is not modelled
V0_UNMODELLED = {"pooling": "V0's pooling runner (its scheduler's placeholder block manager)"}


def asked_kv_dtype(precision) -> str:
    """The --kv-cache-dtype the oracle reads for a model.precision.Precision: "auto" where asked so (a checkpoint's
    own cache format included: vLLM's flag stays auto) or where kvplan built it, else its spelling."""
    if precision is None or getattr(precision, "auto", False):
        return "auto"
    return getattr(precision, "spelling", "") or "auto"


def oracle_release(version: str) -> bool:
    """Whether vLLM `version` picks its engine by the oracle (ORACLE)."""
    return in_span(version, ORACLE)


def v1_takes_kv_dtype(kv_dtype: str, capability: tuple, version: str, mla: bool = False) -> bool:
    """Whether vLLM `version`'s V1 takes --kv-cache-dtype `kv_dtype` (not auto) on a GPU of `capability`
    (engine.vllm_engine._capability: () unknown, taken as Hopper's; vllm_sparse.ROCM for an AMD GPU), KV_DTYPE_RULES."""
    from .vllm_sparse import ROCM

    release = parse_version(version)
    if capability == ROCM:
        return release >= ROCM_KV_SINCE
    rule = release_rule(KV_DTYPE_RULES, version, "none")
    fp8 = kv_dtype.startswith("fp8")
    hopper = not capability or capability[0] == 9  # fa_utils.flash_attn_supports_fp8: FA 3, major 9
    blackwell = tuple(capability[:2]) == (10, 0)  # platform.is_device_capability(100)
    if rule == "model":
        return mla or blackwell or not fp8 or hopper
    if rule == "blackwell":
        return blackwell or (fp8 and hopper)
    return rule == "fa3" and fp8 and hopper


def v0_fallback(spec, version: str, pp: int = 1, kv_dtype: str = "auto", capability: tuple = (),
                flags=None) -> Optional[str]:
    """Why vLLM `version` serves `spec` on V0 by default (module docstring), in the oracle's order, as a key and
    words ("kv_dtype: --kv-cache-dtype fp8 (FlashAttention 3 takes fp8 on Hopper only)"); None where it runs V1, and
    for every release outside ORACLE (kvplan's era says which engine those run). `kv_dtype`: --kv-cache-dtype as asked
    ("auto" where not given); `capability`: the GPU's (vllm_engine._capability); `flags`: EngineFlags."""
    from ..model.kinds import MLALatent
    from .vllm_mamba_v0 import runs_v0
    from .vllm_pooling import pooling_runner
    from .vllm_sparse import ROCM
    from .vllm_v0_pp import pp_runs_v0

    if not oracle_release(version):
        return None
    rocm = capability == ROCM
    if not rocm and capability and capability[0] < 8 and in_span(version, CAPABILITY_FALLBACK):
        return f"capability: compute capability {'.'.join(map(str, capability[:2]))} (V1 needs 8.0 or later)"
    kv = (kv_dtype or "auto").strip().lower()
    if kv != "auto" and kv not in AUTO_NAMES:
        mla = any(isinstance(layer, MLALatent) for layer in spec.layers)
        if not v1_takes_kv_dtype(kv, capability, version, mla):
            return f"kv_dtype: --kv-cache-dtype {kv} (V1's attention backend here takes no such cache)"
    if getattr(flags, "cpu_offload_gb", None) and in_span(version, CPU_OFFLOAD_FALLBACK):
        return "cpu_offload_gb: --cpu-offload-gb"
    if spec.dtype not in V1_DTYPES and in_span(version, DTYPE_FALLBACK):
        return f"dtype: model dtype {spec.dtype} (V1 takes float16 and bfloat16 only)"
    if pooling_runner(spec, version) and in_span(version, POOLING_FALLBACK):
        return "pooling: the pooling runner (V1 pools from 0.9.2)"
    if runs_v0(spec, version):
        return "state: its Mamba state"
    if pp_runs_v0(version, pp):
        return f"pp: --pipeline-parallel-size {pp} (the default executor)"
    if rocm and in_span(version, ROCM_FALLBACK):
        return "platform: ROCm (V1 is experimental there)"
    return None


def v0_rules(spec, version: str, pp: int = 1, kv_dtype: str = "auto", capability: tuple = (), flags=None):
    """The rules vLLM `version` plans `spec` by where it falls back to V0 (v0_fallback: its states,
    its pipeline on 0.8.0-0.9.0, --kv-cache-dtype, the GPU, ...; its arguments): the release's own, but V0's engine
    (era "v0": attention-only blocks, "# cuda blocks" lines, V0's profile and reserves, V0's 256 sequences, its pp
    virtual engines); None elsewhere (the release's rules stand)."""
    if v0_fallback(spec, version, pp, kv_dtype, capability, flags) is None:
        return None
    return replace(behaviour(version), era="v0", tokens_rule="blocks", one_log_line=False, null_block_in_check=False,
                   concurrent_batches=False, graphs_subtracted=False, batch_defaults="v0.8")


def v0_data_parallel_refusal(spec, version: str, pp: int, dp, kv_dtype: str = "auto", capability: tuple = (),
                             flags=None):
    """The start refusal of --data-parallel-size `dp` > 1 where vLLM `version` runs `spec` at `pp` stages on V0
    (v0_fallback, its other arguments: its pipeline, its Mamba state, its cache dtype, ...), which
    launches no DP rank but waits for them all (vllm_v0_pp.py's docstring); None elsewhere. The remedy: the first
    release that runs it on V1, or -dp left out."""
    from .figures import Refusal

    asked = dict(pp=pp, kv_dtype=kv_dtype, capability=capability, flags=flags)
    reason = v0_fallback(spec, version, **asked) if (dp or 1) > 1 else None
    if reason is None:
        return None
    v1 = first_v1_release(spec, version, **asked)
    return Refusal(f"vLLM {version} serves this on its V0 engine for {reason_words(reason)}, which launches no "
                   f"data-parallel ranks: with --data-parallel-size {dp} each worker waits in "
                   f"init_distributed_environment for the {dp - 1} other DP rank(s) of a tp x pp x dp group that "
                   f"nothing starts, so the server never starts.", None, configuration=True, field="engine",
                   options=(f"vllm=={v1}",) if v1 else (), onward="newer",
                   also="leave --data-parallel-size out (one server a replica)",
                   remedy_flags=(("engine", "--engine"), ("dp", "--data-parallel-size")))


def reason_key(reason: Optional[str]) -> Optional[str]:
    """The condition a v0_fallback answer names ("kv_dtype", "state", "pp", ...)."""
    return None if reason is None else reason.split(":", 1)[0]


def reason_words(reason: str) -> str:
    """A v0_fallback answer's words, without its key."""
    return reason.split(": ", 1)[1]


def first_v1_release(spec, version: str, **asked) -> Optional[str]:
    """The first published release after `version` that serves `spec` on V1 for the deployment `asked`
    (v0_fallback's arguments), ORACLE's end at the latest."""
    from .vllm_releases import PUBLISHED

    release = parse_version(version)
    for name in PUBLISHED:
        later = parse_version(name)
        if later > release and name.count(".") == 2 and v0_fallback(spec, name, **asked) is None:
            return name
    return None


def v0_unmodelled(spec, version: str) -> Optional[str]:
    """What of V0 kvplan does not model where vLLM `version` falls back to it for `spec` whatever the GPU and the
    flags (V0_UNMODELLED: the pooling runner on 0.8.0-0.9.1), else None."""
    from .vllm_pooling import pooling_runner

    if oracle_release(version) and in_span(version, POOLING_FALLBACK) and pooling_runner(spec, version):
        return V0_UNMODELLED["pooling"]
    return None


def _unmodelled_words(spec, version: str, missing: str) -> str:
    first = ".".join(map(str, POOLING_FALLBACK[1]))
    return (f"vLLM {version} serves {spec.name}'s pooling runner on its V0 engine (V1 pools from {first}), and "
            f"kvplan does not model {missing}")


def v0_unmodelled_refusal(spec, version: str):
    """v0_unmodelled as a refusal of the release (field engine), naming the release that serves it on V1, so that a
    remedy never names such a release; None where the release is planned."""
    from .figures import Refusal

    missing = v0_unmodelled(spec, version)
    if missing is None:
        return None
    first = ".".join(map(str, POOLING_FALLBACK[1]))
    return Refusal(_unmodelled_words(spec, version, missing) + f"; vllm=={first} on runs it on V1.", None,
                   configuration=True, field="engine", options=(f"vllm=={first}",), onward="newer")


def refuse_v0_unmodelled(spec, version: Optional[str]) -> None:
    """Raise RefusedInput (field engine) where --engine asks for a release that falls back to V0 for `spec` where
    kvplan does not model V0's rules (v0_unmodelled, and vllm_mamba_v0.v0_state_unmodelled's V0 state caches):
    vLLM starts there, so kvplan plans nothing rather than a plan by V1's rules. A release whose registry does not
    list the architecture refuses it first (the engine's refusal to say)."""
    from ..errors import RefusedInput
    from .vllm_config_read import architectures_refusal, registry_names
    from .vllm_mamba_v0 import v0_state_unmodelled

    v0_state_unmodelled(spec, version)
    if version is None or architectures_refusal(registry_names(spec), version):
        return
    missing = v0_unmodelled(spec, version)
    if missing is not None:
        first = ".".join(map(str, POOLING_FALLBACK[1]))
        raise RefusedInput(_unmodelled_words(spec, version, missing) + f"; plan it with --engine vllm=={first} or "
                           "newer, which runs it on V1.", field="engine")
