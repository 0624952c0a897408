"""Flags <-> fields: how the command line spells every field the core names (vLLM's flag where vLLM has one,
kvplan's earlier names as aliases), the help texts, and shell completion. The only module that knows a flag's
name, with the commands in app.py that declare them."""

from __future__ import annotations

from typing import Optional

from ..engines.vllm_bool_flags import NO_FORM_SINCE, field_negatives, negatives
from ..engines.vllm_underscore_flags import dashed
from ..errors import FieldError
from ..render import VERIFY_FORMATS, format_help

# field (as the core names it) -> the flag a user types (vLLM's spelling where vLLM has the flag)
FLAGS = {
    "model": "MODEL", "tp": "--tensor-parallel-size", "pp": "--pipeline-parallel-size",
    "context": "--max-model-len", "kv_dtype": "--kv-cache-dtype", "block_size": "--block-size",
    "kv_budget": "--kv-cache-memory-bytes", "gpu": "--gpu", "gpu_memory": "--gpu-memory",
    "gpu_util": "--gpu-memory-utilization", "max_num_batched_tokens": "--max-num-batched-tokens",
    "revision": "--revision", "min_concurrency": "--min-concurrency",
    "min_model_len": "--min-model-len", "file": "--file", "format": "--format",
    "engine": "--engine", "max_num_seqs": "--max-num-seqs", "pp_layer_partition": "--pp-layer-partition",
    "batch": "--batch", "quantization": "--quantization", "dtype": "--dtype", "input_len": "--input-len",
    "hub_timeout": "--hub-timeout", "enforce_eager": "--enforce-eager", "skip_mm_profiling": "--skip-mm-profiling",
    "language_model_only": "--language-model-only", "limit_mm_per_prompt": "--limit-mm-per-prompt",
    "mm_encoder_tp_mode": "--mm-encoder-tp-mode", "cpu_offload_gb": "--cpu-offload-gb",
    "num_gpu_blocks_override": "--num-gpu-blocks-override", "speculative_config": "--speculative-config",
    "dp": "--data-parallel-size", "dcp": "--decode-context-parallel-size",
    "dcp_interleave": "--cp-kv-cache-interleave-size", "pcp": "--prefill-context-parallel-size",
    "dcp_comm_backend": "--dcp-comm-backend", "dcp_q_replicate": "--dcp-q-replicate",
    "enable_expert_parallel": "--enable-expert-parallel",
    "enable_eplb": "--enable-eplb",
    "mm_processor_kwargs": "--mm-processor-kwargs", "eplb_config": "--eplb-config",
    "num_redundant_experts": "--num-redundant-experts", "gpus_per_node": "--gpus-per-node",
    "enable_lora": "--enable-lora", "max_loras": "--max-loras",
    "max_lora_rank": "--max-lora-rank", "lora_dtype": "--lora-dtype", "fully_sharded_loras": "--fully-sharded-loras",
    "runner": "--runner", "convert": "--convert", "pooler_config": "--pooler-config",
    "max_cudagraph_capture_size": "--max-cudagraph-capture-size",
    "cudagraph_capture_sizes": "--cudagraph-capture-sizes",
    "compilation_config": "--compilation-config", "optimization_level": "-O",
    "mamba_cache_dtype": "--mamba-cache-dtype", "mamba_ssm_cache_dtype": "--mamba-ssm-cache-dtype",
    "disable_sliding_window": "--disable-sliding-window",
    "enable_prefix_caching": "--enable-prefix-caching", "mamba_block_size": "--mamba-block-size",
    "enable_chunked_prefill": "--enable-chunked-prefill",
}
# every spelling of a field's flag; errors and suggestions use the one the user typed
ALIASES = {
    "tp": ("-tp", "--tensor-parallel-size", "--tp"), "pp": ("-pp", "--pipeline-parallel-size", "--pp"),
    "context": ("--max-model-len", "--context", "-c"), "kv_dtype": ("--kv-cache-dtype", "--kv-dtype"),
    "kv_budget": ("--kv-cache-memory-bytes", "--kv-budget"),
    "gpu_util": ("--gpu-memory-utilization", "--gpu-util", "--device-memory-utilization"),
    "dp": ("-dp", "--data-parallel-size", "--dp"), "dcp": ("-dcp", "--decode-context-parallel-size", "--dcp"),
    "dcp_interleave": ("--cp-kv-cache-interleave-size", "--dcp-kv-cache-interleave-size"),
    "pcp": ("-pcp", "--prefill-context-parallel-size", "--pcp"),
    "enable_expert_parallel": ("--enable-expert-parallel", "-ep"),
    "quantization": ("--quantization", "-q"),
    "compilation_config": ("--compilation-config", "-cc"), "optimization_level": ("-O", "--optimization-level"),
}
# vLLM's JSON-valued flags kvplan reads, whose dotted keys vLLM folds into the object (engines/vllm_dotted_flags.py:
# --speculative-config.method ngram): spelling -> the flag. -O.x is the compilation config's (up to vLLM 0.12)
JSON_FLAGS = {name: name for name in ("--speculative-config", "--eplb-config", "--pooler-config",
                                      "--limit-mm-per-prompt", "--mm-processor-kwargs", "--compilation-config")}
JSON_FLAGS.update({"-cc": "--compilation-config", "-O": "--compilation-config"})
# the single-dash spellings (-tp, -cc, -c, -q, -O): _spells tells -cc from -c with a value attached
_SHORT_FLAGS = frozenset(name for names in ALIASES.values() for name in names if not name.startswith("--")) | \
    frozenset(name for name in JSON_FLAGS if not name.startswith("--"))
# vLLM's negative spellings of its boolean flags (--no-enforce-eager; --disable-prefix-caching from 0.33), by the rule
# and releases of engines/vllm_bool_flags.py: read as the flag's last value (app._read_later_spellings), not declared,
# so --help keeps one line a flag; the release check is vllm_engine.refuse_switch
NEGATIVES = {field: tuple(field_negatives(field, FLAGS[field])) for field in NO_FORM_SINCE}
# those flags whose off differs from their absence (None: vLLM's default), declared as options of their own
SWITCH_OFF = {"enable_prefix_caching": "--no-enable-prefix-caching", "dcp_q_replicate": "--no-dcp-q-replicate",
              "enable_chunked_prefill": "--no-enable-chunked-prefill"}
# a flag's own spellings, which turn it on (-ep too)
SWITCH_ON = {field: ALIASES.get(field, (FLAGS[field],)) for field in NEGATIVES}
# an error on a flag whose off is a value names the spelling typed (off, an error on the flag on names the flag)
ALIASES.update({field: (*SWITCH_ON[field], *NEGATIVES[field]) for field in SWITCH_OFF})
# vLLM's later spellings of a flag (engines/vllm_engine.py SPELLING_SINCE says from which release), read as the flag
# itself (app._read_later_spellings) rather than declared: a third name would squeeze --help's option column at 80
# columns; each flag's help names them
LATER_SPELLINGS = {"--device-memory-utilization": "--gpu-memory-utilization"}
# Underscores: vLLM's parser reads `--max_model_len` as --max-model-len (engines/vllm_underscore_flags.py), so every
# long flag's name is read so before the later spellings (app._respelled), kvplan's own flags too: one rule for a line
# typed by the same hands, no flag of kvplan's has an underscore of its own to collide with, and the dashed name is
# the one --help shows. The release check (vllm_engine.refuse_underscore) judges vLLM's flags only: no `vllm serve`
# reads these, kvplan's own long names, so no release stops on them however they are spelled.
KVPLAN_OWN = frozenset({"--gpu", "--gpu-memory", "--gpus-per-node", "--min-concurrency", "--min-model-len", "--file",
                        "--format", "--engine", "--pp-layer-partition", "--batch", "--input-len", "--hub-timeout",
                        "--suggest", "--chart", "--context", "--kv-dtype", "--kv-budget", "--gpu-util", "--tp",
                        "--pp", "--dp", "--dcp", "--pcp"})
typed_args: list = []  # this run's arguments (set by run.main)
# vLLM's serve flags that change nothing kvplan plans (no memory, capacity or speed: the HTTP server, logging, the
# chat template and tool parsers, remote code, the seed), so a `vllm serve` line pasted whole is told what to drop:
# flag -> whether a value follows it (vLLM 0.32.0 entrypoints/launchers/cli_args.py FrontendArgs, engine/arg_utils.py;
# --disable-log-requests: 0.2.0-era engine/arg_utils.py)
VLLM_SERVER_FLAGS = {
    "--host": True, "--port": True, "--uds": True, "--root-path": True, "--api-key": True, "--ssl-keyfile": True,
    "--ssl-certfile": True, "--allowed-origins": True, "--uvicorn-log-level": True, "--served-model-name": True,
    "--chat-template": True, "--response-role": True, "--tool-call-parser": True, "--reasoning-parser": True,
    "--max-log-len": True, "--seed": True, "--download-dir": True, "--trust-remote-code": False,
    "--enable-auto-tool-choice": False, "--disable-log-stats": False, "--enable-log-requests": False,
    "--disable-log-requests": False, "--disable-uvicorn-access-log": False,
}
# those of them vLLM declares BooleanOptionalAction (so --no-trust-remote-code, and from 0.33 --disable-auto-tool-choice
# too: engines/vllm_bool_flags.py): --trust-remote-code from 0.9.0 (ModelConfig's bool, arg_utils.py 0.9.0:457),
# FrontendArgs' bools (entrypoints/openai/cli_args.py 0.10.2:82, :138, get_kwargs :187-189), --enable-log-requests and
# --disable-log-requests (arg_utils.py 0.10.1:1748-1755); --disable-log-stats stays store_true (0.34.0:1950-1953)
SERVER_SWITCHES = ("--trust-remote-code", "--enable-auto-tool-choice", "--disable-uvicorn-access-log",
                   "--enable-log-requests", "--disable-log-requests")


def server_flag(name: str) -> Optional[str]:
    """The flag of VLLM_SERVER_FLAGS that `name` spells (itself, or a negative of a switch: --no-trust-remote-code),
    or None."""
    if name in VLLM_SERVER_FLAGS:
        return name
    return next((switch for switch in SERVER_SWITCHES if name in negatives(switch)), None)


def unnegatable_server_flag(name: str) -> Optional[str]:
    """The flag of VLLM_SERVER_FLAGS that `name` negates where vLLM has no negative of it (--no-disable-log-stats,
    --enable-log-stats: --disable-log-stats is store_true; --no-host: --host takes a value), or None."""
    return next((flag for flag in VLLM_SERVER_FLAGS if flag not in SERVER_SWITCHES and name in negatives(flag)),
                None)


# flags of other commands that one command lacks, with what that command does instead
NOT_THIS_COMMAND = {
    ("verify", "--gpu"): "verify runs on the local GPU (`kvplan gpus` shows the one detected); drop it",
}
CHECK_MODEL_OPTIONS = ("pp", "gpu", "gpu_util", "kv_budget", "context", "kv_dtype", "min_concurrency", "min_model_len",
                       "revision",
                       "engine", "enforce_eager", "skip_mm_profiling", "language_model_only", "limit_mm_per_prompt",
                       "mm_encoder_tp_mode", "cpu_offload_gb", "num_gpu_blocks_override", "speculative_config",
                       "dp", "dcp", "dcp_interleave", "dcp_comm_backend", "dcp_q_replicate", "pcp",
                       "enable_expert_parallel",
                       "enable_eplb",
                       "mm_processor_kwargs", "eplb_config",
                       "num_redundant_experts", "block_size", "quantization", "dtype", "max_num_seqs",
                       "max_num_batched_tokens", "pp_layer_partition", "gpu_memory", "gpus_per_node", "enable_lora",
                       "max_loras", "max_lora_rank", "lora_dtype", "fully_sharded_loras", "runner", "convert",
                       "pooler_config", "max_cudagraph_capture_size", "cudagraph_capture_sizes",
                       "mamba_cache_dtype", "mamba_ssm_cache_dtype", "disable_sliding_window",
                       "enable_prefix_caching", "mamba_block_size", "compilation_config", "optimization_level",
                       "enable_chunked_prefill")


MODEL_HELP = "Hugging Face id (bundled spec first, then the Hub), a local config.json, or a model folder."
FORMAT_HELP = format_help()  # render.FORMATS: what every command but verify takes
VERIFY_FORMAT_HELP = format_help(VERIFY_FORMATS)
HUB_TIMEOUT_HELP = ("Seconds the Hugging Face Hub may take for MODEL, all requests together (default 10, or "
                    "KVPLAN_HUB_TIMEOUT); 404s and gated repos answer at once, 429/5xx are retried once.")

SUFFIXES = "vLLM's suffixes: k/m = 10^3/10^6, K/M = 2^10/2^20 (32K = 32,768; 32k = 32,000; 1M = 1,048,576)"
CONTEXT_HELP = (f"Tokens per request (vLLM's max model length). Default: the model's max_position_embeddings, "
                f"as vLLM; auto (or -1): the longest that fits, as vLLM's auto-fit. {SUFFIXES}.")
# check's: the length the deployment serves, auto-fit's too (--min-model-len gates what it fits)
CHECK_CONTEXT_HELP = (f"Tokens per request (vLLM's max model length). Default: the model's max_position_embeddings, "
                      f"as vLLM; auto (or -1, vLLM 0.14+): the longest that fits, as vLLM's auto-fit, checked at "
                      f"that length (--min-model-len sets the shortest it may fit). {SUFFIXES}.")
KV_DTYPE_HELP = ("KV-cache dtype, vLLM's values: auto (the model's dtype, or the one the checkpoint names where "
                 "the release reads it: a ModelOpt fp8 from vLLM 0.14, nvfp4 from 0.20; a compressed-tensors "
                 "kv_cache_scheme's fp8 from 0.15, in 0.15-0.21 whatever is asked), float16, bfloat16, fp8 "
                 "(fp8_e4m3's bytes; sparse MLA keeps fp8 and fp8_e4m3 apart as vLLM's backends do), fp8_e5m2, "
                 "fp8_inc, "
                 "fp8_per_token_head, int8_per_token_head, int4_per_token_head, nvfp4, "
                 "nvfp4_4over6, turboquant_k8v4, turboquant_4bit_nc, turboquant_k3v4_nc, turboquant_3bit_nc, "
                 "ultraquant_4bit, fp8_ds_mla, nvfp4_ds_mla; from vLLM 0.33 octave_k3v4, octave_k3v3, "
                 "octave_k3v3_compact (ROCm's).")
KV_BUDGET_HELP = ("KV-cache bytes per GPU; replaces the GPU budget, as vLLM 0.10.2+ (older releases have no such "
                  "flag). 10G = 10 GiB, 10g = 10^10 (vLLM's rule), or 10GiB / 80GB.")
GPU_UTIL_HELP = ("Fraction of GPU memory the engine may use (default: the engine's, 0.92 for vLLM 0.32, 1.0 for 0.34's "
                 "extensible KV cache); --device-memory-utilization is vLLM 0.31+'s other spelling.")
# the engine flags that change its budget (engines.EngineFlags), for estimate and check alike
ENFORCE_EAGER_HELP = ("As vLLM's --enforce-eager: no CUDA graphs, so vLLM 0.20+ reserves no graph memory (decode "
                      "times still assume graphs).")
SKIP_MM_PROFILING_HELP = ("As vLLM's --skip-mm-profiling (0.10.1+): no vision-tower pass in a multimodal model's "
                          "profile run.")
LANGUAGE_MODEL_ONLY_HELP = ("As vLLM's --language-model-only (0.17+; --limit-mm-per-prompt 0 for every modality does "
                            "the same): no vision tower, loaded or profiled.")
LIMIT_MM_HELP = ("As vLLM's --limit-mm-per-prompt ('{\"image\": 2, \"video\": 0}' or image=2,video=0): items a "
                 "prompt, which bound the profile run's dummy items; 0 for every modality the tower serves (image; "
                 "Qwen-VL: image and video) leaves it out (0.15+: not loaded) and its pass. vLLM's dummy options "
                 "('{\"video\": {\"count\": 1, \"num_frames\": 8, \"width\": 1280, \"height\": 720}}', image "
                 "width / height) cap the Qwen-VL dummy item. Default: vLLM's, 999 items a modality.")
MM_ENCODER_TP_HELP = ("As vLLM's --mm-encoder-tp-mode (0.10.2+): weights (the vision tower split over the TP ranks, "
                      "the default) or data (every rank holds the whole tower and runs its share of the images; "
                      "Llama 4 and the Qwen VL models, others fall back to weights).")
MM_PROCESSOR_KWARGS_HELP = ("As vLLM's --mm-processor-kwargs (JSON, e.g. '{\"max_pixels\": 1003520}'): the Qwen-VL "
                             "processors' size limits (max_pixels, min_pixels, size.longest_edge / shortest_edge, "
                             "flat or under images_kwargs / videos_kwargs) size the profile run's dummy image and "
                             "video; Gemma 4's max_soft_tokens (70 to 1120) sizes an image's tokens (vLLM 0.21+); "
                             "other keys reach only the processor, so they change nothing here.")
CPU_OFFLOAD_HELP = ("As vLLM's --cpu-offload-gb (0.5.3+): GiB of each GPU's decoder-layer weights held in CPU "
                    "memory, which the KV cache gains (Model Runner V2 before 0.28 ignores it); decode times do "
                    "not count reading them back. Default 0.")
GPU_BLOCKS_OVERRIDE_HELP = ("As vLLM's --num-gpu-blocks-override: the KV cache holds exactly this many blocks of "
                            "every cache group, whatever the budget leaves; vLLM does not check it against free "
                            "memory, so a pool the budget cannot hold fails to allocate.")
SPECULATIVE_HELP = ("As vLLM 0.32's --speculative-config ('{\"method\": \"mtp\", \"num_speculative_tokens\": 1}'): "
                    "ngram and suffix add no weights; mtp adds the model's MTP modules' weights and their KV "
                    "layers, a draft model or Llama EAGLE head (\"model\": ID) its weights and KV layers; Mamba "
                    "states widen for the draft tokens. Decode speed-ups (acceptance) are not modelled.")
DP_HELP = ("As vLLM's --data-parallel-size (0.9+): engine replicas of TP GPUs each, every one with its own KV "
           "cache, scheduler and max_num_seqs; the figures are one replica's (what its log prints), the total "
           "resident requests D times them. An MoE model's experts span all D x TP GPUs (vLLM's FusedMoE). "
           "Default 1.")
DCP_HELP = ("As vLLM's --decode-context-parallel-size (0.10.2+): D of the TP ranks share each request's KV "
            "cache, a token on each in turn, so it holds D times the tokens (MLA's cache is otherwise whole on every "
            "rank); D divides TP; a GQA model needs TP / KV heads >= D. Default 1.")
DCP_INTERLEAVE_HELP = ("As vLLM's --cp-kv-cache-interleave-size / --dcp-kv-cache-interleave-size (0.11.1+): tokens "
                       "a DCP rank keeps in a row; must divide the block size. Default 1.")
DCP_COMM_BACKEND_HELP = ("As vLLM's --dcp-comm-backend (0.18+): how the DCP ranks merge their partial attention "
                         "outputs: ag_rs (all-gather of LSEs + reduce-scatter, vLLM's default) or a2a (one "
                         "all-to-all; two before 0.21). Decode / prefill times only.")
DCP_Q_REPLICATE_HELP = ("As vLLM's --dcp-q-replicate / --no-dcp-q-replicate (0.29+): each DCP rank computes its "
                        "group's whole MLA query (q_b_proj over TP / DCP) and skips decode's query all-gather; "
                        "DeepSeek-V2/V3-style MLA models only (others ignore it); more weights a rank. Default off.")
PCP_HELP = ("As vLLM's --prefill-context-parallel-size (0.12+; starts from 0.27, MLA models only): P copies of the "
            "TP x PP GPUs in one engine, each keeping the whole cache (per-GPU figures as pcp 1), routed experts "
            "split over TP x P; decode / prefill times not modelled. With -dcp 1 only. Default 1.")
EP_HELP = ("As vLLM's --enable-expert-parallel / -ep (0.9+): each of the TP x DP GPUs holds its share of the routed "
           "experts whole (experts / ranks, the first ranks one more); attention, shared experts and embeddings "
           "stay split over TP. vLLM refuses it on a model without experts.")
EPLB_HELP = ("As vLLM's --enable-eplb (with -ep; modelled from 0.24): E + redundant experts, (E + R) / (TP x DP) a "
             "GPU; EPLB's state (one MoE layer's experts again, maps, load window) in the weights, its profile step "
             "(an all-gather of EP x one layer's largest expert tensor) in the profile peak.")
EPLB_CONFIG_HELP = ("As vLLM's --eplb-config (0.10.2+), JSON: '{\"num_redundant_experts\": 32}'; window_size and "
                    "communicator count too (nixl: no profile reservation; unnamed: torch_gloo, vLLM without NIXL).")
REDUNDANT_HELP = ("As vLLM 0.9.2-0.11.2's --num-redundant-experts (0.12+ take --eplb-config); kvplan models EPLB from "
                  "0.24, so it is refused with an engine that old.")
ENABLE_LORA_HELP = ("As vLLM's --enable-lora (modelled from 0.12): the LoRA manager's adapter slots, stacked A/B "
                    "buffers of every module the model class wraps, max_loras x rank in lora_dtype, built at load "
                    "beside the weights; priced for dense Llama, Mistral, Qwen2/3, Gemma 2 and Phi-3 classes.")
MAX_LORAS_HELP = ("As vLLM's --max-loras (with --enable-lora): adapters a batch may use at once, the GPU slots "
                  "(default 1).")
MAX_LORA_RANK_HELP = ("As vLLM's --max-lora-rank (with --enable-lora): the slots' rank, one of 1, 8, 16, 32, 64, 128, "
                      "256, 320, 512 (default 16).")
LORA_DTYPE_HELP = ("As vLLM's --lora-dtype (with --enable-lora): auto (the model's dtype, the default), float16 or "
                   "bfloat16.")
FULLY_SHARDED_LORAS_HELP = ("As vLLM's --fully-sharded-loras (with --enable-lora): the S-LoRA split, column layers' "
                            "A by rank and row layers' B by output over the TP ranks (tp must divide the rank).")
RUNNER_HELP = ("As vLLM's --runner: auto (the architecture's, or pooling by a Sentence Transformers modules.json; "
               "the default), generate, or pooling (no LM head, the pooler's profile pass; a generating class "
               "converted by --convert). Where the class cannot, vLLM's refusal.")
CONVERT_HELP = ("As vLLM's --convert: auto (the default), none, embed, classify (a score head, not priced), or "
                "reward (vLLM 0.11-0.15; embed from 0.13): the pooling adapter for a generating class; from vLLM 0.22 "
                "it picks the pooling runner under --runner auto. mm_encoder_only (vLLM 0.14-0.15): a text model is "
                "served as with none; a multimodal one's encoder-only instance is not planned.")
POOLER_CONFIG_HELP = ("As vLLM's --pooler-config, a JSON object ('{\"pooling_type\": \"MEAN\"}'): its pooling type "
                      "(pooling_type; from vLLM 0.14 seq_pooling_type / tok_pooling_type) comes before the Sentence "
                      "Transformers module's and the class's, and MEAN, CLS or STEP turn chunked prefill and prefix "
                      "caching off; its other fields change nothing kvplan prices.")
MAMBA_CACHE_DTYPE_HELP = ("As vLLM's --mamba-cache-dtype (0.10.1+): auto (the model dtype, the default), float32, "
                          "float16 (0.13+), bfloat16 (0.22+): a Mamba / linear-attention layer's convolution state, "
                          "and its SSM state too while --mamba-ssm-cache-dtype is auto; the state page sets a "
                          "hybrid's block size and capacity.")
MAMBA_SSM_CACHE_DTYPE_HELP = ("As vLLM's --mamba-ssm-cache-dtype (0.10.1+; same values): the temporal (SSM) state "
                              "only. auto: --mamba-cache-dtype's, unless the model's config handler sets it "
                              "(Nemotron-H: its config's, else float32 from 0.20; Qwen3.5: its mamba_ssm_dtype); "
                              "gated DeltaNet reads it from vLLM 0.17, Kimi Delta Attention from 0.30 (auto "
                              "float32; bfloat16 or float32 only, vLLM refuses float16).")
DISABLE_SLIDING_WINDOW_HELP = ("As vLLM's --disable-sliding-window (modelled from 0.11): every sliding-window layer "
                               "attends in full and the model's length is capped to the window (Gemma 3: 1024, "
                               "gpt-oss: 128 tokens), so a longer --max-model-len is refused, as vLLM refuses it.")
PREFIX_CACHING_HELP = ("As vLLM's --enable-prefix-caching / --no-enable-prefix-caching (default: vLLM's, on but "
                       "for attention-free models, and for Mamba hybrids before 0.28). Off, a hybrid keeps one "
                       "Mamba state of max_model_len a request; on, a state a block (0.15+; 0.11.1-0.14 only the "
                       "classes with Mamba prefix caching, vLLM turns it off for the others, as up to 0.11.0 for "
                       "all).")
CHUNKED_PREFILL_HELP = ("As vLLM's --enable-chunked-prefill / --no-enable-chunked-prefill (0.5.3-0.8.4: "
                        "--enable-chunked-prefill false; --disable-chunked-prefill from 0.33). Off, vLLM raises "
                        "max_num_batched_tokens to at least max_model_len (a whole prompt a step), which the profile "
                        "run covers; V1 keeps it on for a generating model before 0.11.1.")
MAMBA_BLOCK_SIZE_HELP = ("As vLLM's --mamba-block-size (0.11.1+), tokens: only with prefix caching on (vLLM refuses "
                         "it otherwise); the base of the Mamba block in \"all\" mode (Jamba, Nemotron-H, Granite 4, "
                         "Bamba, Falcon-H1, Zamba2 in 0.11.1-0.27), which it raises the attention block to; in "
                         "\"align\" mode vLLM uses the attention block instead.")
# verify's words for the engine flags whose measurement it changes (the others' help is estimate's)
VERIFY_ENFORCE_EAGER_HELP = ("As vLLM's --enforce-eager: no CUDA graphs, so the plan reserves no graph memory (vLLM "
                             "0.20+); verify captures none and times decode eagerly, as vLLM runs it (not judged: "
                             "the planner's decode estimate assumes graphs).")
VERIFY_GRAPHS = " Verify captures its decode graphs at the sizes this leaves."
VERIFY_COMPILATION = (" Verify: where the release leaves cudagraph_mode NONE (given, -O0's, or by a rule of vLLM's: a "
                      "piecewise mode below VLLM_COMPILE, splitting_ops [] with PIECEWISE, a pooling model's "
                      "PIECEWISE downgrade before either, stock torch.compile from 0.32, use_cudagraph false) it "
                      "captures no decode graph and times decode eagerly, as --enforce-eager, naming that rule as the "
                      "plan's graph term does; the other modes change the plan's graph term only (verify captures the "
                      "whole decode step).")
VERIFY_MAMBA_DTYPE = (" Verify refuses a pair its forward holds in one tensor (Mamba-1 keeps the convolution and SSM "
                      "states in one dtype there; Kimi's KDA a float32 SSM state only); estimate plans it.")
VERIFY_WINDOW = " Verify's forward pass then attends in full in those layers."
# the flags that change capacity besides the engine's (estimate and check alike)
GPU_MEMORY_HELP = ("Override the GPU's memory (80GB, 79.2GiB, 80G = 80 GiB, or bytes; default: the catalog's, "
                   "`kvplan gpus`); kvplan's own flag. A number without a unit is bytes, refused below 1 MiB (40 "
                   "means 40 bytes: write 40GiB).")
GPUS_PER_NODE_HELP = ("GPUs of one node (kvplan's flag; default: the catalog's, `kvplan gpus`: 8, GH200 4, GB200 72): "
                      "the remedies keep a tensor-parallel group within it and put pipeline stages across nodes. "
                      "A larger -tp is planned and noted (vLLM runs TP across nodes, slowly).")
MAX_NUM_BATCHED_TOKENS_HELP = ("Tokens of the largest forward pass (default: what vLLM picks for the GPU, 8192 on "
                               "H100/H200, raised to the largest media item of a multimodal prefix LM such as Gemma 4 "
                               f"31B); {SUFFIXES}.")
MAX_NUM_SEQS_HELP = "Most sequences the engine runs at once (default: what vLLM picks for the GPU, 1024 on H100/H200)."
PP_PARTITION_HELP = ("Layers per stage, like VLLM_PP_LAYER_PARTITION (e.g. 31,30; default: vLLM's split, "
                     "get_pp_indices).")
QUANTIZATION_HELP = ("Serve the weights quantised as vLLM's --quantization: fp8 or mxfp4 (online, from 16-bit "
                     "weights), awq or gptq (a checkpoint quantised so). Default: the checkpoint's own.")
DTYPE_HELP = "Model dtype as vLLM's --dtype: auto (the default), half, float16, bfloat16, float, float32."
REVISION_HELP = ("Hub revision: a branch, tag, 40-hex commit or refs/pr/N (default: the bundled spec where there is "
                 "one, else main).")
DEFAULT_GPU_HELP = "GPU from `kvplan gpus` (nvidia-smi's name or an alias); default: the detected GPU, else H100."


def _in_typed_case(names, incomplete: str) -> list:
    """`names` that start with `incomplete` in any case, each spelled so that it starts with `incomplete` as typed:
    typer keeps only completions that do (typer/core.py compat_autocompletion), while --gpu and a bundled id take any
    case. `h1` completes to h100-80gb-sxm, `H1` to H100-80GB-SXM."""
    out = []
    for name in names:
        if not name.lower().startswith(incomplete.lower()):
            continue
        out.append(name if name.startswith(incomplete) else name.lower() if incomplete.islower()
                   else incomplete + name[len(incomplete):])
    return out


def _complete_gpu(incomplete: str) -> list:
    from ..plan.catalog import CATALOG

    return _in_typed_case([g.name for g in CATALOG], incomplete)


def _complete_kv_dtype(incomplete: str) -> list:
    from ..model.precision import VLLM_KV_DTYPES

    # as vLLM spells them only (model/choices.py: FP8 is refused), so no case-folding as --gpu's
    return [name for name in ("auto", *VLLM_KV_DTYPES) if name.startswith(incomplete)]


def _complete_model(incomplete: str) -> list:
    from ..model.sources import bundled_files

    return _in_typed_case([p.stem.replace("--", "/") for p in bundled_files()], incomplete)


def flag(field: str) -> str:
    """The flag for `field`, as vLLM spells it (suggestions teach vLLM's names)."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def typed(field: str) -> str:
    """The flag for `field` as the user typed it in this run (an error names what they wrote: --max_model_len too),
    else vLLM's. Where two spellings were typed (-c 8K --max-model-len 0) the last is the one whose value was read, as
    click keeps an option's last value; the arguments after `--` are MODEL's, not flags."""
    return typed_spelling(ALIASES.get(field, (flag(field),)), as_typed=True, dotted=True) or flag(field)


def typed_spelling(spellings, as_typed: bool = False, dotted: bool = False) -> Optional[str]:
    """Which of an option's `spellings` the user typed last in this run (the one whose value click read), or None;
    `as_typed`: the name as typed (--max_model_len, where the spelling is --max-model-len); `dotted`: a JSON flag's
    dotted key counts, said by the flag it was typed under (-O.level=0: -O, the compilation config before 0.12)."""
    options = typed_args[:typed_args.index("--")] if "--" in typed_args else typed_args
    for arg in reversed(options):
        spelling = next((s for s in spellings if _spells(arg, s)), None)
        if spelling is not None:
            return arg.partition("=")[0] if as_typed and arg.startswith("--") else spelling
        head = dashed(arg).partition("=")[0].split(".")[0] if dotted and "." in arg.partition("=")[0] else None
        if head is not None and JSON_FLAGS.get(head) in spellings:
            return arg.partition("=")[0].split(".")[0] if as_typed else head
    return None


def as_typed(name: str) -> str:
    """The flag name `name` (as click read it: --max-model-len) as the user typed it last (--max_model_len)."""
    return typed_spelling((name,), as_typed=True) or name


def _spells(arg: str, spelling: str) -> bool:
    """Whether the argument `arg` is the flag `spelling`: alone, with `=value` (its name's underscores read as
    dashes, as vLLM reads them), or a one-letter flag with its value attached (-c8K, -qfp8: click reads the rest of
    the argument as the value)."""
    attached = len(spelling) == 2 and spelling[0] == "-" and spelling[1] != "-" and len(arg) > 2
    arg = dashed(arg)
    if attached and any(arg.startswith(other) for other in _SHORT_FLAGS if len(other) > 2):
        attached = False  # -cc..., -tp, -dcp: a flag of its own, not -c / -t / -d with a value attached
    return arg == spelling or arg.startswith(spelling + "=") or (attached and arg.startswith(spelling))
MAX_CAPTURE_HELP = ("As vLLM's --max-cudagraph-capture-size (0.11.1+): the largest batch, in tokens, given a CUDA "
                    "graph (default: min(2 x max_num_seqs x (1 + speculative tokens) (0.13+), 512); 1024 on "
                    "B200-class GPUs from 0.28; gpt-oss 1024); changes the graph counts the CUDA-graph term reports.")
COMPILATION_CONFIG_HELP = ("As vLLM's --compilation-config / -cc (0.6.5+; -cc from 0.12, -O before), a JSON object; "
                           "kvplan reads cudagraph_mode (0.10.1+: NONE captures no graph, so no graph term, as "
                           "--enforce-eager; PIECEWISE, FULL, FULL_DECODE_ONLY, FULL_AND_PIECEWISE the default), "
                           "cudagraph_capture_sizes and max_cudagraph_capture_size (as the flags; not both ways) and "
                           "mode / level (below 3 drops the piecewise graphs), and the deprecated use_cudagraph "
                           "(false: no graphs, 0.9.1-0.11.0; a plan vLLM runs on V0 keeps its graphs) and "
                           "full_cuda_graph (true: FULL, 0.10.1-0.11.0). Other fields vLLM takes change nothing here "
                           "and are ignored; vLLM's dotted keys work too (--compilation-config.cudagraph_mode NONE).")
OPTIMIZATION_LEVEL_HELP = ("As vLLM's -O / --optimization-level (0.12+): 0 (no compilation, no CUDA graphs), 1 "
                           "(PIECEWISE graphs), 2 (the default) or 3 (FULL_AND_PIECEWISE); -O3, -O 3 and -O=3 alike. "
                           "Before vLLM 0.12 -O is the compilation config: its level, or a JSON object (in "
                           "0.10.1-0.11 a level below 3 captures no CUDA graphs).")
CAPTURE_SIZES_HELP = ("As vLLM's --cudagraph-capture-sizes (0.11.1+): the batch sizes, in tokens, given CUDA graphs. "
                      "vLLM takes them space-separated (--cudagraph-capture-sizes 1 2 4 8); here quote that list "
                      "('1 2 4 8') or join it with commas (1,2,4,8).")


def loose_capture_sizes(args: list) -> list:
    """The bare numbers typed after --cudagraph-capture-sizes's value: vLLM's own spelling (a list[int] flag with
    nargs="+", engine/arg_utils.py 0.34.0:258, :1854-1855), `--cudagraph-capture-sizes 1 2 4 8` unquoted, which
    click would read as more MODEL arguments; [] where there are none (the arguments after `--` are MODEL's)."""
    import re

    options = args[:args.index("--")] if "--" in args else list(args)
    for index, arg in enumerate(options):
        if arg == "--cudagraph-capture-sizes" or arg.startswith("--cudagraph-capture-sizes="):
            rest = options[index + (1 if "=" in arg else 2):]
            stray = [word for word in rest[:next((i for i, w in enumerate(rest)
                                                  if not re.fullmatch(r"[0-9]+,?", w)), len(rest))]]
            if stray:
                return stray
    return []


def valued_switches(args: list) -> list:
    """`args` with a boolean flag's value spellings (engines/vllm_bool_flags.py VALUE_FORMS: `--enable-chunked-prefill
    false`, `--enable-chunked-prefill=True`, as vLLM 0.5.3-0.8.4 reads them) written as the flag or its SWITCH_OFF
    option; the release check is app.refuse_later_spellings's. Another value after `=` is refused, as StoreBoolean
    refuses it ("Expected 'true' or 'false'"), naming the spellings of the release --engine names
    (vllm_bool_flags.bad_value_refusal)."""
    from ..engines.vllm_bool_flags import BOOLEAN_VALUES, VALUE_FORMS, bad_value_refusal

    valued = {FLAGS[field]: field for field in VALUE_FORMS}
    out, index = [], 0
    while index < len(args):
        name, equals, value = args[index].partition("=")
        following = args[index + 1] if index + 1 < len(args) else ""
        if name in valued and not equals and following.lower() in BOOLEAN_VALUES:
            value, equals, index = following, "=", index + 1
        if name in valued and equals:
            if value.lower() not in BOOLEAN_VALUES:
                raise FieldError(valued[name], bad_value_refusal(valued[name], name, value, _engine_release(args)))
            out.append(name if value.lower() == "true" else SWITCH_OFF[valued[name]])
        else:
            out.append(args[index])
        index += 1
    return out


def _engine_release(args: list) -> Optional[str]:
    """The vLLM release the --engine among `args` names (the command's default, vllm, where none is), for a sentence
    read before click has read --engine; None where it names no release (none, or a name whose own error comes
    later)."""
    from ..engines.vllm_engine import _release

    engine = None
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name == "--engine":
            engine = value if equals else args[index + 1] if index + 1 < len(args) else None
    try:
        return _release(engine)
    except FieldError:
        return None


def typed_value_form(field: str) -> Optional[str]:
    """`field`'s flag as typed with a value in this run (`--enable-chunked-prefill false`), the last one, or None."""
    from ..engines.vllm_bool_flags import BOOLEAN_VALUES

    options = typed_args[:typed_args.index("--")] if "--" in typed_args else typed_args
    found = None
    for index, arg in enumerate(options):
        name, equals, value = dashed(arg).partition("=")
        following = options[index + 1] if index + 1 < len(options) else ""
        if name == FLAGS[field] and (equals or following.lower() in BOOLEAN_VALUES):
            found = arg if equals else f"{arg} {following}"
    return found


def boolean_typed(on: bool, off: bool):
    """A vLLM flag and its declared off option (SWITCH_OFF: --enable-prefix-caching / --no-enable-prefix-caching,
    --dcp-q-replicate / --no-dcp-q-replicate, whose bool | None field arg_utils.py 0.32.0:378-380 gives a
    BooleanOptionalAction), two options here (one column of --help each): None where neither is given.
    last_switches has left at most one of them, the last typed."""
    return True if on else False if off else None


def switch_spellings(declared) -> dict:
    """{spelling: (field, on)} of every boolean flag among `declared` (a command's option names): the flag's own
    spellings (-ep too) on, its NEGATIVES off."""
    found = {}
    for field, spelled_off in NEGATIVES.items():
        if FLAGS[field] in declared:
            found.update({**{spelling: (field, True) for spelling in SWITCH_ON[field]},
                          **{spelling: (field, False) for spelling in spelled_off}})
    return found


def last_switches(args: list, switches: dict) -> list:
    """`args` with each boolean flag's spellings (`switches`, switch_spellings) cut to its last, as vLLM's argparse
    keeps the last one typed (BooleanOptionalAction sets the field at each; engine/arg_utils.py 0.34.0:1420-1426):
    on, the flag; off, its SWITCH_OFF option, or nothing where off is the flag left out."""
    last = {}
    for arg in args:
        if arg in switches:
            field, on = switches[arg]
            last.pop(field, None)  # the order of the flags kept: the last typed last
            last[field] = on
    kept = [arg for arg in args if arg not in switches]
    return kept + [FLAGS[field] if on else SWITCH_OFF[field] for field, on in last.items()
                   if on or field in SWITCH_OFF]


# Abbreviations (ABBREVIATIONS): vLLM's parsers are argparse's with allow_abbrev at its default, True (no release sets
# it: FlexibleArgumentParser, utils/argparse_utils.py 0.32.0-0.34.0, utils.py before), so `vllm serve --max-model 8192`
# runs as --max-model-len 8192 where no other flag of that release begins so, and stops ("ambiguous option") where
# several do. click takes none. kvplan takes none either, and names the whole flag (exit 2): whether a beginning is
# unique depends on all of the release's flags (262 named in engine/arg_utils.py 0.34.0 alone, with their --no- forms
# and the server's besides), not kvplan's: --enable-l is --enable-lora here, ambiguous in 0.34.0 (--enable-lora,
# --enable-layerwise-nvtx-tracing, --enable-logging-iteration-details, --enable-log-requests: arg_utils.py
# 0.34.0:1629, :1732, :1740, :3297), --cpu too (--cpu-offload-gb, --cpu-offload-params,
# --cpu-distributed-timeout-seconds: :1489-1491, :1199), so reading beginnings would pass lines vLLM stops on, and
# kvplan's own --gpu-memory begins vLLM's --gpu-memory-utilization (:1404). Writing the whole name is one edit that
# every release takes.
def whole_flags(prefix: str, names) -> list:
    """The flags among `names` that `prefix` begins (argparse's abbreviations: `--max-model` for --max-model-len), in
    order; [] where `prefix` is no flag's beginning or is a whole flag."""
    if not prefix.startswith("-") or not prefix.strip("-") or prefix in names:  # `--=5`: no name, no flag's beginning
        return []
    return sorted(name for name in names if name.startswith(prefix))
