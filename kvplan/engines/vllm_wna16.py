"""vLLM's classes for an AWQ or GPTQ checkpoint (model_executor/layers/quantization/, read in 0.11.0-0.34.0): which
one claims the checkpoint, what its constructor refuses, and what Marlin refuses as the linear layers are built. The
name of the class is what VllmConfig's capability and dtype checks print (vllm_quant.py).

Which class (ModelConfig._verify_quantization asks each class's override_quantization_method):
- AWQ before 0.24, GPTQ before 0.22: AWQMarlinConfig / GPTQMarlinConfig claim the checkpoint where --quantization is
  unset, `marlin` or the Marlin name (awq_marlin.py 0.11.0:110-127, gptq_marlin.py 0.11.0:181-199; `awq` / `gptq` by
  name keep the plain class: "forcing awq") and is_awq_marlin_compatible / is_gptq_marlin_compatible pass:
  - the platform: CUDA (awq_marlin.py 0.11.0:167, gptq_marlin.py 0.11.0:225, 0.14.0:280 CUDA or CPU); ROCm too for
    AWQ from 0.19 (awq_marlin.py 0.19.0:312 is_cuda_alike), never for GPTQ;
  - the GPU: Marlin has no quant type below capability 80, 75 from 0.14 (utils/marlin_utils.py 0.11.0:46, 0.14.0:54);
    ROCm's capability is not asked (0.19.0 :49);
  - the fields: bits, group_size and zero_point (AWQ) / sym and desc_act (GPTQ) set and not null (awq_marlin.py
    0.11.0:174, gptq_marlin.py 0.11.0:232-234); AWQ's zero points leave Marlin uint4 alone (marlin_utils.py 0.11.0:61):
    4 bits with zero_point true; GPTQ's (bits, sym) (4, true) or (8, true) (gptq_marlin.py 0.11.0:73-74, Marlin's
    types :64); group_size -1, 32, 64 or 128 (MARLIN_SUPPORTED_GROUP_SIZES: marlin_utils.py 0.11.0:25 to 0.34.0:32).
  Else the plain class runs: AWQConfig takes 4 bits only (awq.py 0.11.0:41-44, 0.23.0:53-56), GPTQConfig 2, 3, 4 or 8
  (gptq.py 0.11.0:77-80, 0.21.0:92-95).
- AWQ from 0.24, GPTQ from 0.22: AutoAWQConfig / AutoGPTQConfig, whatever the GPU (each picks its kernel per layer):
  AutoAWQ takes 4 bits only (auto_awq.py 0.24.0:178-206, 0.32.0:182-210); AutoGPTQ (bits, sym) (4, true) or (8, true)
  (auto_gptq.py 0.22.0:100-101 and :155-158, 0.32.0 :100-101 and :152-155), from 0.30 no activation ordering within
  groups (desc_act true with group_size other than -1: utils/gptq_utils.py 0.30.0:28-37, called first in AutoGPTQConfig
  .__init__, auto_gptq.py 0.30.0:118), for the config and every `dynamic` rule but "-:" ones, which takes the config's
  desc_act and group_size where it sets none, matching a module or not (:39-48; desc_act_refusal); each linear layer
  then asks Marlin for the group size (AutoGPTQLinearMethod.__init__ verify_marlin_supported: auto_gptq.py
  0.22.0:311-320, 0.34.0:317-331; marlin_utils.py 0.22.0:139-143).
Every constructor reads its keys with get_from_keys, which refuses a missing one before anything else ("Cannot find
any of [...] in the model's quantization config.": base_config.py 0.11.0:120-126, 0.32.0:182-189). These refusals come
from get_quant_config (VllmConfig._get_quantization_config), before the capability check; Marlin's as the model is
built, module by module where GPTQModel `dynamic` rules give modules bits, group sizes or sym of their own
(layer_refusal; model/gptq_dynamic.py). The shapes Marlin pads or falls back on are not checked.

A checkpoint whose quant_method names a class itself (no override claims it: each asks quant_method awq / gptq) runs
that class: awq_marlin AWQMarlinConfig to 0.23 (bits, group_size and zero_point read; bits 4 or 8: awq_marlin.py
0.11.0:49-69, :98-101; 4 only from 0.12: 0.23.0 :173-175, :195-198) and AutoAWQConfig from 0.24 (__init__.py
0.24.0:142); gptq_marlin GPTQMarlinConfig to 0.21 (bits, group_size, desc_act, sym; (bits, sym) (4, true) or (8, true):
gptq_marlin.py 0.11.0:127-129, :168-171) and AutoGPTQConfig from 0.22 (__init__.py 0.22.0:156), with AutoGPTQ's checks
(constructor); inc INCConfig, Intel Gaudi's FP8 class to 0.14.1, whose from_config raises AssertionError (inc.py
0.11.0:28-29), and AutoRound's from 0.15.0 (INC_SINCE); moe_wna16 MoeWNA16Config, which reads the checkpoint's
quant_method as its linear layers' method and refuses any but gptq and awq (moe_wna16.py 0.11.0:88-102, 0.34.0:118-132):
a checkpoint naming moe_wna16 itself is always refused. AWQMarlinConfig's constructor also asks Marlin for its type
(uint4; uint8 too in 0.11.x) with zero points or without, as zero_point says, then the group (_awq_marlin_refusal).

Two checkpoint formats have classes of their own to 0.15.1 (FORMAT_CLASSES_LAST; format_method), whose overrides come
first in _verify_quantization's list (config/model.py 0.11.0:905-919, 0.14.1:880-895, 0.15.0:892-907: bitblas,
gptq_marlin_24, then gptq_marlin) and claim the checkpoint whatever its quant_method where --quantization is unset, gptq
or their own name:
- BitBLASConfig ("bitblas") for checkpoint_format "bitblas" or a true is_bitblas_format (bitblas.py 0.11.0:147-163,
  0.14.1:161-177). Its own get_from_keys has defaults (0.11.0 :125-132; group_size -1, desc_act and sym false:
  :135-144), so no key is missing; it takes bits 1, 2, 4 or 8 and sym false or true (:77-86; utils/bitblas_utils.py
  0.11.0:25-26). It imports the bitblas package first (:47-61), which vLLM does not install: kvplan takes it installed.
- GPTQMarlin24Config ("gptq_marlin_24") for checkpoint_format "marlin_24" (gptq_marlin_24.py 0.11.0:113-127,
  0.14.1:115-130): it reads bits and group_size only (get_from_keys, :107-111), takes bits 4 or 8 (uint4b8 / uint8b128)
  and group_size -1 or 128 (:28-63). Its linear layers' shape checks are not read.
Both are deprecated in 0.14.x and 0.15.x (vllm_quant.DEPRECATED) and gone from 0.16.0 (no bitblas.py,
gptq_marlin_24.py): such a checkpoint is then read as any GPTQ one (gptq.py 0.16.0:157-158 reads checkpoint_format for
gptq_v2 only), whose layers ask for qweight, qzeros and scales (auto_gptq.py 0.32.0:427-429) where the checkpoint holds
Marlin 2:4's B_24, B_meta and s (gptq_marlin_24.py 0.14.1:274-277) or BitBLAS's qweight, scales and zeros (bitblas.py
0.14.1:355-357): loading fails whatever keys are added, so kvplan refuses it (gone_format).
"""

from __future__ import annotations

from typing import Optional

from .vllm_versions import parse_version, release_rule

AUTO_SINCE = {"awq": (0, 24), "gptq": (0, 22)}  # __init__.py 0.24.0:141 "awq": AutoAWQConfig, 0.22.0:155 "gptq"
MARLIN_MIN = (((0, 14), 75, "0.14.0 utils/marlin_utils.py:54"), ((0, 11), 80, "0.11.0 utils/marlin_utils.py:46"))
ROCM_MARLIN_SINCE = {"awq": (0, 19)}  # awq_marlin.py 0.19.0:312; GPTQ: gptq_marlin.py 0.21.0:285 CUDA or CPU only
MARLIN_GROUPS = (-1, 32, 64, 128)
MARLIN_TYPES = {"awq": ((4, True),), "gptq": ((4, True), (8, True))}  # (bits, zero_point) / (bits, sym)
# the keys each constructor reads with get_from_keys, in its order (awq.py 0.11.0:74-76, gptq.py 0.11.0:119-121,
# auto_awq.py 0.24.0:238-240, auto_gptq.py 0.22.0:197-200)
REQUIRED_KEYS = {
    "awq": (("w_bit", "bits"), ("q_group_size", "group_size"), ("zero_point",)),
    "auto_awq": (("w_bit", "bits"), ("q_group_size", "group_size"), ("zero_point",)),
    "gptq": (("bits",), ("group_size",), ("desc_act",)),
    "auto_gptq": (("bits",), ("group_size",), ("desc_act",), ("sym",)),
    "gptq_marlin_24": (("bits",), ("group_size",)),
    "awq_marlin": (("bits",), ("group_size",), ("zero_point",)),
    "gptq_marlin": (("bits",), ("group_size",), ("desc_act",), ("sym",)),
    "moe_wna16": (("quant_method",), ("bits",), ("group_size",)),
}
INC_SINCE = (0, 15)  # AutoRound's INCConfig (inc.py 0.15.0:33-107); before, Intel Gaudi's (inc.py 0.11.0, 0.14.1)
MOE_WNA16_LINEAR = ("gptq", "awq")  # the linear methods MoeWNA16Config takes (moe_wna16.py 0.11.0:94-102)
GPTQ_BITS = (2, 3, 4, 8)
BOOLEAN_KEYS = ("zero_point", "sym", "desc_act")  # of REQUIRED_KEYS, those a checkpoint sets true or false
# the last release with the classes that claim a checkpoint by its format (the docstring), and the first without
# (bitblas.py and gptq_marlin_24.py unchanged from 0.14.1 in 0.15.0 and 0.15.1; quantization/__init__.py 0.15.0:148-150)
FORMAT_CLASSES_LAST, FORMAT_CLASSES_GONE = "0.15.1", (0, 16)
MARLIN24_BITS, MARLIN24_GROUPS = (4, 8), (-1, 128)  # gptq_marlin_24.py 0.11.0:28-31, :44-47
BITBLAS_BITS, BITBLAS_SYM = (1, 2, 4, 8), (False, True)  # utils/bitblas_utils.py 0.11.0:25-26
DESC_ACT_REFUSED_SINCE = (0, 30)


def last_before(first: tuple) -> tuple:
    """A release of the minor before `first` (x.y.0, which every minor past 0.15 publishes): the older release a
    remedy may name where the rule from `first` refuses more."""
    return first[0], first[1] - 1, 0


# the rules that refuse more from their release: AutoAWQ / AutoGPTQ's classes, AutoGPTQ's activation ordering
LAST_BEFORE = tuple(last_before(first) for first in (*AUTO_SINCE.values(), DESC_ACT_REFUSED_SINCE))

MISSING_KEY = "Cannot find any of {keys} in the model's quantization config."
AWQ_BITS = "Currently, only 4-bit weight quantization is supported for AWQ, but got {bits} bits."
GPTQ_BITS_REFUSAL = "Currently, only 2/3/4/8-bit weight quantization is supported for GPTQ, but got {bits} bits."
AUTO_AWQ_BITS = ("Unsupported num_bits = {bits}. Supported: 4. For 8-bit AWQ, use Marlin backend by setting "
                 "backend='awq:marlin' or backend='marlin'.")
AUTO_GPTQ_TYPE = "Unsupported quantization config: bits={bits}, sym={sym}"  # GPTQMarlinConfig's words too
AWQ_MARLIN_BITS = "Unsupported num_bits = {bits}. Supported num_bits = dict_keys({kept})"
# AWQMarlinConfig's TYPE_MAP: uint4 and uint8 in 0.11.x (awq_marlin.py 0.11.0:46-49), uint4 only from 0.12
# (0.12.0:72-74, 0.23.0:173-175)
AWQ_MARLIN_TYPES = (((0, 12), {4: "uint4"}), ((0, 11), {4: "uint4", 8: "uint8"}))
# the types Marlin takes with zero points (AWQ's) and without (utils/marlin_utils.py 0.11.0:59-67, 0.23.0:75-83)
MARLIN_ZP_TYPES = {True: "[ScalarType.uint4]",
                   False: "[ScalarType.uint4b8, ScalarType.uint8b128, ScalarType.float8_e4m3fn, "
                          "ScalarType.float4_e2m1f]"}
MARLIN_TYPE = ("Marlin does not support weight_bits = {type}. Only types = {types} are supported (for group_size = "
               "{group}, device_capability = {cc}, zp = {zp}).")
MOE_WNA16_METHOD = "moe_wna16 only support gptq and awq."
INC_GAUDI = ("vLLM {version}'s inc is Intel Gaudi's FP8 class, whose from_config raises AssertionError: AutoRound "
             "checkpoints run as inc from vLLM 0.15.0.")
DESC_ACT = ("GPTQ group activation ordering (desc_act=True) is no longer supported. Use a checkpoint with static "
            "activation ordering or desc_act=False.")
DYNAMIC_DESC_ACT = ("GPTQ group activation ordering (desc_act=True) is no longer supported, but is enabled by dynamic "
                    "rule {key}. Use a checkpoint with static activation ordering or desc_act=False.")
MARLIN_GROUP = "Marlin does not support group_size = {group}. Only group_sizes = [-1, 32, 64, 128] are supported."
# quant_type is None for bits other than 4 and 8 (gptq_marlin_24.py 0.11.0:44-57)
MARLIN24_TYPE = ("Marlin_24 does not support quant_type = None. Only weight_bits = [ScalarType.uint4b8, "
                 "ScalarType.uint8b128] are supported.")
MARLIN24_GROUP = "Marlin_24 does not support group_size = {group}. Only group_sizes = [-1, 128] are supported."
BITBLAS_BITS_REFUSAL = "BitBLAS does not support weight_bits = {bits}. Only weight_bits = [1, 2, 4, 8] are supported."
BITBLAS_SYM_REFUSAL = "BitBLAS does not support is_sym = {sym}. Only sym = [False, True] are supported."


def field(spec, *keys):
    """The first of `keys` the checkpoint's quantization_config sets (get_from_keys' order), else None."""
    fields = dict(getattr(spec, "quantization_fields", ()))
    return next((fields[key] for key in keys if key in fields), None)


def _has(spec, key: str) -> bool:
    return key in dict(getattr(spec, "quantization_fields", ()))


def format_method(spec, asked: Optional[str], version: str) -> Optional[str]:
    """The class that claims the checkpoint by its format (FORMAT_CLASSES_LAST on: none), by its vLLM name, under
    --quantization `asked` (None: unset); None where neither does."""
    if parse_version(version) > parse_version(FORMAT_CLASSES_LAST):
        return None
    form = field(spec, "checkpoint_format")
    if (form == "bitblas" or field(spec, "is_bitblas_format")) and asked in (None, "gptq", "bitblas"):
        return "bitblas"
    return "gptq_marlin_24" if form == "marlin_24" and asked in (None, "gptq", "gptq_marlin_24") else None


def gone_format(spec, asked: Optional[str], version: str) -> Optional[str]:
    """The class that claimed this GPTQ checkpoint by its format to FORMAT_CLASSES_LAST (format_method) where
    `version` no longer has it (FORMAT_CLASSES_GONE on), by its vLLM name; None otherwise."""
    if parse_version(version) < FORMAT_CLASSES_GONE or getattr(spec, "quantization", "") != "gptq":
        return None
    return format_method(spec, asked, FORMAT_CLASSES_LAST)


def wna16_method(spec, checkpoint: str, asked: Optional[str], capability, version: str) -> str:
    """The class that claims an AWQ / GPTQ `checkpoint` under --quantization `asked` (None: unset) on a GPU of
    `capability` (vllm_sparse.ROCM for an AMD GPU; (): unknown, no Marlin) in `version`, by its vLLM name."""
    if parse_version(version) >= AUTO_SINCE[checkpoint]:
        return f"auto_{checkpoint}" if asked in (None, checkpoint, f"{checkpoint}_marlin", "marlin") else asked
    takes = asked in (None, "marlin", f"{checkpoint}_marlin")
    return f"{checkpoint}_marlin" if takes and marlin_claims(spec, checkpoint, capability, version) else \
        asked or checkpoint


def marlin_claims(spec, checkpoint: str, capability, version: str) -> bool:
    """is_awq_marlin_compatible / is_gptq_marlin_compatible: the platform, the GPU and the checkpoint's fields."""
    from .vllm_sparse import is_rocm_platform

    if is_rocm_platform(capability):
        since = ROCM_MARLIN_SINCE.get(checkpoint)
        if since is None or parse_version(version) < since:
            return False
    elif len(tuple(capability or ())) != 2 or \
            capability[0] * 10 + capability[1] < release_rule(MARLIN_MIN, version, 80):
        return False
    return _marlin_fields(spec, checkpoint)


def _marlin_fields(spec, checkpoint: str) -> bool:
    """The fields each check reads by its own key (.get, no w_bit alias), none null, and a type and group Marlin has."""
    second = "zero_point" if checkpoint == "awq" else "sym"
    keys = ("bits", "group_size", second) + (("desc_act",) if checkpoint == "gptq" else ())
    values = [field(spec, key) for key in keys]
    if any(value is None for value in values):
        return False
    bits, group, flag = values[:3]
    # Python's (4, 1) == (4, True): vLLM's dict lookups match as this does; AWQ's check asks truthiness
    return (bits, bool(flag) if checkpoint == "awq" else flag) in MARLIN_TYPES[checkpoint] and group in MARLIN_GROUPS


def constructor(method: Optional[str], version: str) -> Optional[str]:
    """The class vLLM `version` builds for `method` by its name: awq_marlin and gptq_marlin are AutoAWQConfig /
    AutoGPTQConfig from AUTO_SINCE (the docstring)."""
    base = (method or "").removesuffix("_marlin")
    if base != method and base in AUTO_SINCE and parse_version(version) >= AUTO_SINCE[base]:
        return f"auto_{base}"
    return method


def class_refusal(spec, method: str, version: str, capability=()) -> Optional[str]:
    """What the constructor of `method`'s class refuses of the checkpoint's quantization_config (get_quant_config,
    before the capability check): a missing key, then the bits (and AutoGPTQ's activation ordering, AWQ Marlin's
    Marlin check on a GPU of `capability`); None if none."""
    if method == "inc" and parse_version(version) < INC_SINCE:
        return INC_GAUDI.format(version=version)
    method = constructor(method, version)
    missing = missing_keys(spec, method)
    if missing:
        return MISSING_KEY.format(keys=list(missing[0]))
    if method == "moe_wna16":  # the checkpoint's own quant_method is the linear layers'
        return None if getattr(spec, "quantization", "") in MOE_WNA16_LINEAR else MOE_WNA16_METHOD
    bits = field(spec, "w_bit", "bits") if method in ("awq", "auto_awq") else field(spec, "bits")
    if method in ("gptq_marlin_24", "bitblas"):
        return _format_class_refusal(spec, method, bits)
    if method == "awq_marlin":
        return _awq_marlin_refusal(spec, bits, capability, version)
    if method == "gptq_marlin":
        sym = field(spec, "sym")
        return None if (bits, sym) in MARLIN_TYPES["gptq"] else AUTO_GPTQ_TYPE.format(bits=bits, sym=sym)
    if method == "awq" and bits != 4:
        return AWQ_BITS.format(bits=bits)
    if method == "auto_awq" and bits != 4:
        return AUTO_AWQ_BITS.format(bits=bits)
    if method == "gptq" and bits not in GPTQ_BITS:
        return GPTQ_BITS_REFUSAL.format(bits=bits)
    if method != "auto_gptq":
        return None
    group, sym = field(spec, "group_size"), field(spec, "sym")
    if parse_version(version) >= DESC_ACT_REFUSED_SINCE:
        refused = desc_act_refusal(spec, group)
        if refused:
            return refused
    return None if (bits, sym) in MARLIN_TYPES["gptq"] else AUTO_GPTQ_TYPE.format(bits=bits, sym=sym)


def _awq_marlin_refusal(spec, bits, capability, version: str) -> Optional[str]:
    """AWQMarlinConfig's constructor, to 0.23 (awq_marlin.py 0.11.0:64-72, 0.23.0:195-205): the bits by TYPE_MAP,
    then verify_marlin_supported(quant_type, group_size, has_zp=zero_point) (utils/marlin_utils.py 0.11.0:70-112,
    0.23.0:113-145): the type among those Marlin takes with zero points or without, then the group. The types are
    asked only of a known CUDA GPU (none below MARLIN_MIN); ROCm's capability is not in the catalog."""
    from .vllm_sparse import is_rocm_platform

    types = release_rule(AWQ_MARLIN_TYPES, version, {})
    if bits not in types:
        return AWQ_MARLIN_BITS.format(bits=bits, kept=list(types))
    group, zero_point = field(spec, "group_size"), field(spec, "zero_point")
    if len(tuple(capability or ())) == 2 and not is_rocm_platform(capability):
        cc = capability[0] * 10 + capability[1]
        taken = MARLIN_ZP_TYPES[bool(zero_point)] if cc >= release_rule(MARLIN_MIN, version, 80) else "[]"
        if types[bits] not in taken.replace("ScalarType.", "").strip("[]").split(", "):
            return MARLIN_TYPE.format(type=types[bits], types=taken, group=group, cc=cc, zp=zero_point)
    return None if group in MARLIN_GROUPS else MARLIN_GROUP.format(group=group)


def desc_act_refusal(spec, group) -> Optional[str]:
    """normalize_and_validate_gptq_desc_act, first in AutoGPTQConfig's constructor from DESC_ACT_REFUSED_SINCE
    (gptq_utils.py 0.30.0:23-48, 0.34.0 the same): the config's desc_act with a group other than -1, then every
    `dynamic` rule but "-:" ones, matching a module or not, by its desc_act and group_size or the config's."""
    desc_act = field(spec, "desc_act")
    if desc_act and group != -1:
        return DESC_ACT
    for key, overrides in getattr(spec, "dynamic_overrides", ()):
        rule = {"desc_act": desc_act, "group_size": group, **dict(overrides)}
        if rule["desc_act"] and rule["group_size"] != -1:
            return DYNAMIC_DESC_ACT.format(key=repr(key))
    return None


def _format_class_refusal(spec, method: str, bits) -> Optional[str]:
    """GPTQMarlin24Config's and BitBLASConfig's constructors (the docstring): the bits, then the group size or the
    symmetry (BitBLAS reads a missing sym as false)."""
    if method == "gptq_marlin_24":
        group = field(spec, "group_size")
        return MARLIN24_TYPE if bits not in MARLIN24_BITS else \
            MARLIN24_GROUP.format(group=group) if group not in MARLIN24_GROUPS else None
    sym = field(spec, "sym") if _has(spec, "sym") else False
    return BITBLAS_BITS_REFUSAL.format(bits=bits) if bits not in BITBLAS_BITS else \
        BITBLAS_SYM_REFUSAL.format(sym=sym) if sym not in BITBLAS_SYM else None


def missing_keys(spec, method: str) -> tuple:
    """The groups of keys (one of each group will do) `method`'s constructor reads that the checkpoint's
    quantization_config lacks, in its order: the first is class_refusal's MISSING_KEY."""
    return tuple(keys for keys in REQUIRED_KEYS.get(method, ())
                 if not any(_has(spec, key) or key == "quant_method" for key in keys))


def layer_refusal(method: str, spec, version: str) -> Optional[str]:
    """What a GPTQ checkpoint's linear modules refuse as the model is built, module by module (spec.module_settings:
    each module's bits, group_size and sym under the `dynamic` rules; the config's own without rules):
    override_config refuses a type the class lacks, in its constructor's words (gptq_utils.py 0.11.0:36-51 GPTQ
    Marlin's TYPE_MAP and GPTQ's 2 / 3 / 4 / 8, 0.32.0:76-80 AutoGPTQ's), then AutoGPTQ's and GPTQ Marlin's linear
    methods ask Marlin for the group size (verify_marlin_supported: gptq_marlin.py 0.11.0:284-286, auto_gptq.py
    0.22.0:311-320). The config's own type was checked by the constructor (class_refusal), and every catalog CUDA GPU
    is past 7.5."""
    made = constructor(method, version)
    config = (field(spec, "bits"), field(spec, "group_size"), field(spec, "sym"))
    for bits, group, sym in getattr(spec, "module_settings", ()) or (config,):
        if made == "gptq" and bits not in GPTQ_BITS:
            return GPTQ_BITS_REFUSAL.format(bits=bits)
        if made not in ("auto_gptq", "gptq_marlin"):
            continue
        if (bits, sym) not in MARLIN_TYPES["gptq"]:
            return AUTO_GPTQ_TYPE.format(bits=bits, sym=sym)
        if group not in MARLIN_GROUPS:
            return MARLIN_GROUP.format(group=group)
    return None


def boundaries() -> set:
    """The releases (2- or 3-tuples) at which a rule here changes, and the last ones before (LAST_BEFORE)."""
    firsts = set(AUTO_SINCE.values()) | set(ROCM_MARLIN_SINCE.values()) | {row[0] for row in MARLIN_MIN}
    lasts = set(LAST_BEFORE) | {parse_version(FORMAT_CLASSES_LAST)}
    return firsts | {DESC_ACT_REFUSED_SINCE, FORMAT_CLASSES_GONE, INC_SINCE} | lasts
