"""--enable-prefix-caching on V0 where CacheConfig holds a sliding window: vLLM refuses it before anything starts.

CacheConfig._verify_prefix_caching raises NotImplementedError("Prefix caching is not supported with sliding window.
Run with --disable-sliding-window to use prefix caching.") where prefix caching is on and its sliding_window is set:
every release up to 0.7.3 (config.py 0.5.5:579-586, 0.6.3:644-651, 0.7.3:1104-1111), and from 0.8 on V0 only (`and
not envs.VLLM_USE_V1`: config.py 0.8.0:1175-1177, 0.8.5:1415-1417, 0.9.2:1605-1607; config/cache.py 0.10.1:188-190,
0.10.2:186-188; V0 leaves with 0.11). The window CacheConfig gets is ModelConfig.get_sliding_window() (engine/
arg_utils.py 0.5.5:801, 0.6.3:917, 0.7.3:1143, 0.8.5:1133: vllm_v0_chunked.sliding_window_read, which leaves out the
windows --disable-sliding-window and the release's own rules turn off or move to interleaved_sliding_window); from
0.10.1 only where the model is not interleaved (full and sliding layers both: arg_utils.py 0.10.1:1102-1107,
transformers_utils/config.py 0.10.1:291-299 is_interleaved). V0 keeps prefix caching off by default, so only the
flag gets here."""

from __future__ import annotations

from ..errors import FieldError
from .vllm_versions import parse_version

WINDOW_OF_ALL_SLIDING_SINCE = (0, 10, 1)  # CacheConfig's window only for a model whose every layer slides
WORDS = ("Prefix caching is not supported with sliding window. Run with --disable-sliding-window to use prefix "
         "caching.")


def v0_window_refusal(spec, asked, version: str, v0: bool) -> None:
    """FieldError where vLLM `version`'s V0 (`v0`: the plan runs V0's engine) refuses prefix caching `asked` on
    for `spec`, whose CacheConfig holds a sliding window (module docstring)."""
    from .vllm_cache_flags import plain_sliding
    from .vllm_v0_chunked import sliding_window_read

    if not (asked and v0 and sliding_window_read(spec, version)):
        return
    interleaved = not all(plain_sliding(layer) for layer in spec.layers)
    if interleaved and parse_version(version) >= WINDOW_OF_ALL_SLIDING_SINCE:
        return  # CacheConfig gets no window
    raise FieldError("enable_prefix_caching", f"is refused by vLLM {version}'s V0 engine for this model, whose "
                                              f"sliding window its CacheConfig holds (NotImplementedError: "
                                              f"\"{WORDS}\", config.py CacheConfig._verify_prefix_caching); leave it "
                                              f"out, or pick a release that runs it on V1.")
