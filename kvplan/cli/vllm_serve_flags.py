"""vLLM's `vllm serve` flags that kvplan does not read, each in one of two classes, so a serve line pasted whole into
estimate, check or verify (or a deployments entry's key) is told what to do with each flag rather than given click's
nearest kvplan flag (`--load-format` is no `--format`):

- NO_EFFECT: the flag changes nothing kvplan plans (GPU memory, KV capacity, decode and prefill times): the HTTP
  server, logging and metrics, tokenizer and chat rendering, the host's processes, the waiting queue. run.py says
  "changes nothing kvplan plans; drop it" as for flags.VLLM_SERVER_FLAGS, the hand list this one extends.
- UNMODELLED: the flag changes what kvplan plans and kvplan does not model it (the model's config, kernels, buffers,
  the KV cache's layout or admission): "vLLM's --X changes <what> and kvplan does not model it", so nobody gets a
  plan silently without it.

Both exit 2. The flags: `vllm serve` of vLLM 0.5.5, 0.6.3.post1, 0.6.6, 0.7.3, 0.8.5, 0.9.2, 0.10.1, 0.32.0 and 0.34.0
(engine/arg_utils.py EngineArgs.add_cli_args and AsyncEngineArgs's, the frontend's cli_args.py make_arg_parser and
FrontendArgs, the serve subcommand's own in scripts.py / entrypoints/cli/serve.py before 0.10), frozen by
benchmarks/vllm_reference/serve_flags.py in tests/data/vllm_serve_flags.json, which tests/test_serve_flags_s78.py and
tests/test_serve_flags_old_s78.py check this module against (every flag of those releases is read by kvplan or
classified here, every flag here is one of those releases'). A flag's class holds for every release that has it; where
a flag does something in some releases only, its words say which. A value: True takes one, False a switch, "optional"
(get_kwargs's `bool | str | None`, --hf-token; StoreBoolean's true / false before 0.8.5) either. Imported only when a
flag or key is unknown: `kvplan estimate` starts without it."""

from __future__ import annotations

from typing import Optional

# (a) flag -> value; a comment says why where it is not plain (a server, logging or host matter)
NO_EFFECT = {
    "--aggregate-engine-logging": False,
    "--allow-credentials": False,
    "--allow-deprecated-quantization": False,  # it only lets a deprecated --quantization start
    "--allowed-headers": True,
    "--allowed-local-media-path": True,
    "--allowed-media-domains": True,
    "--allowed-methods": True,
    "--anthropic-disabled-thinking-effort": True,
    "--api-server-count": True,  # API server processes on the host; the engine's GPUs are the same
    "--cache-aware-admission-threshold": True,  # the order requests are admitted in, not how many fit
    "--cache-aware-admission-window": True,  # the order requests are admitted in, not how many fit
    "--chat-template-content-format": True,
    "--checkpoint-prepare-on-startup": False,  # process checkpointing under sleep mode, after the plan's startup
    "--code-revision": True,
    "--cohere-format": True,
    "--cohere-is-reasoning-model": False,
    "--cpu-distributed-timeout-seconds": True,
    "--cudagraph-metrics": False,  # counters of the graphs run
    "--custom-histogram-buckets": True,
    "--data-parallel-address": True,
    "--data-parallel-backend": True,
    "--data-parallel-external-lb": False,  # how requests reach the -dp ranks, not what a rank holds
    "--data-parallel-hybrid-lb": False,  # how requests reach the -dp ranks, not what a rank holds
    "--data-parallel-multi-port-external-lb": False,  # how requests reach the -dp ranks, not what a rank holds
    "--data-parallel-rank": True,  # which -dp rank this process is, not what a rank holds
    "--data-parallel-rpc-port": True,
    "--data-parallel-size-local": True,  # how many of the -dp ranks run on this node; each rank's plan is the same
    "--data-parallel-start-rank": True,  # which -dp ranks this node runs, not what a rank holds
    "--data-parallel-supervisor-port": True,
    "--default-chat-template-kwargs": True,
    "--default-mm-loras": True,  # adapters loaded into the --max-loras slots kvplan plans
    # the platform vLLM runs on: auto and cuda are the GPU kvplan plans (--gpu names it); the others are told
    # apart in UNMODELLED_VALUES
    "--device": True,
    "--device-ids": True,  # which GPUs, not what each holds
    "--disable-access-log-for-endpoints": True,
    # vLLM's help: cascade attention was removed and the flag has no effect (0.32, 0.34)
    "--disable-cascade-attn": False,
    "--disable-chunked-mm-input": False,  # how a multimodal item is split across steps, not the profile or the cache
    "--disable-fastapi-docs": False,
    "--disable-frontend-multiprocessing": False,
    "--disable-mm-preprocessor-cache": False,  # a cache in host memory
    # a one-number all-reduce between -dp ranks each step, on Gloo instead of NCCL
    "--disable-nccl-for-dp-synchronization": False,
    # how the worker processes are launched (mp, ray), not what they hold; but see UNMODELLED_VALUES (-pp, 0.8-0.9)
    "--distributed-executor-backend": True,
    "--distributed-timeout-seconds": True,
    "--dp-supervisor-probe-failure-threshold": True,
    "--dp-supervisor-probe-interval-s": True,
    "--dp-supervisor-probe-timeout-s": True,
    "--dp-sync-interval": True,  # how often -dp ranks agree that they finished, not what a rank holds
    "--enable-ep-weight-filter": False,  # which expert files a rank reads from disk; it holds the same experts
    "--enable-fault-tolerance": False,
    # the API server's late-interaction scoring kernel; the engine's budget is the same
    "--enable-flash-late-interaction": False,
    "--enable-force-include-usage": False,
    "--enable-layerwise-nvtx-tracing": False,  # profiler markers around the model's calls
    "--enable-log-deltas": False,
    "--enable-log-outputs": False,
    "--enable-logging-iteration-details": False,
    "--enable-mfu-metrics": False,
    "--enable-nccl-comm-suspend": False,  # sleep mode's memory, after the plan's startup
    "--enable-offline-docs": False,
    "--enable-per-request-metrics": False,
    "--enable-prompt-tokens-details": False,
    "--enable-reasoning": False,  # with --reasoning-parser: how the API server splits out a reply's reasoning
    "--enable-request-id-headers": False,
    "--enable-scale-out": False,
    "--enable-server-load-tracking": False,
    "--enable-shm-tensor-arena": False,  # host shared memory for inputs on their way to the workers
    "--enable-ssl-refresh": False,
    "--enable-tokenizer-info-endpoint": False,
    "--engine-use-ray": False,  # the engine in a Ray actor of its own (0.5), not what the GPUs hold
    "--eplb-log-balancedness": False,  # a log line; kvplan reads --enable-eplb and --num-redundant-experts
    "--eplb-step-interval": True,  # when the experts are rebalanced, not how many a rank holds
    "--exclude-tools-when-tool-choice-none": False,
    "--expand-tools-even-if-tool-choice-none": False,
    "--expert-placement-strategy": True,  # which experts a rank holds, not how many
    "--fail-on-environ-validation": False,
    "--fault-tolerance-config": True,
    "--fingerprint-mode": True,
    "--fingerprint-value": True,
    "--generation-config": True,  # the default sampling parameters of a request
    "--grpc": False,
    "--grpc-port": True,
    "--guided-decoding-disable-additional-properties": False,
    "--guided-decoding-disable-any-whitespace": False,
    "--guided-decoding-disable-fallback": False,
    "--h11-max-header-count": True,
    "--h11-max-incomplete-event-size": True,
    "--headless": False,  # engines without the API server; each engine's plan is the same
    "--headless-client-handshake-address": True,
    "--hf-token": "optional",
    "--ignore-patterns": True,  # files the loader skips; the model's weights are the same
    "--interleave-mm-strings": False,
    "--io-processor-plugin": True,
    "--jit-monitor-mode": True,
    "--jit-monitor-verbose": False,
    "--kv-cache-metrics": False,  # sampled counters of the blocks
    "--kv-cache-metrics-sample": True,
    "--kv-events-config": True,  # events about blocks published to the host
    # how the weights are read (dummy: random values of the same shapes); ipc_cache is told apart below
    "--load-format": True,
    "--log-config-file": True,
    "--log-error-stack": False,
    "--log-level": True,
    "--logging-config": True,
    "--logprobs-mode": True,  # what a request's logprobs return, computed only for requests asking for them
    # a long prompt's share of a step beside others, as --long-prefill-token-threshold
    "--long-prefill-token-threshold-adaptive": False,
    "--lora-modules": True,  # adapters loaded into the --max-loras slots kvplan plans
    "--master-addr": True,
    "--master-port": True,
    "--max-cpu-loras": True,  # adapters kept in host memory
    # a cap on what a request may ask; the profile run samples without it (gpu_model_runner.py 0.32.0:5954
    # max_num_logprobs=None; 0.34.0 v1/worker/gpu/model_runner.py:1039-1062 a fixed warmup), and -1 only blocks
    # --enable-batch-sharded-sampling (config/vllm.py 0.32.0:3050-3053)
    "--max-logprobs": True,
    "--max-num-queued-reqs": True,  # the waiting queue (requests past it get HTTP 503), not the running ones
    "--max-num-queued-tokens": True,  # the waiting queue (requests past it get HTTP 503), not the running ones
    "--max-parallel-loading-workers": True,
    "--middleware": True,
    "--mm-encoder-fp8-scale-path": True,  # scales for --mm-encoder-attn-dtype fp8, which is named apart
    "--mm-encoder-fp8-scale-save-margin": True,  # scales for --mm-encoder-attn-dtype fp8, which is named apart
    "--mm-encoder-fp8-scale-save-path": True,  # scales for --mm-encoder-attn-dtype fp8, which is named apart
    "--mm-hasher-algorithm": True,
    "--mm-processor-cache-gb": True,  # a cache in host memory
    "--mm-processor-cache-type": True,  # a cache in host memory
    "--mm-shm-cache-max-object-size-mb": True,  # a cache in host memory
    "--mm-tensor-ipc": True,  # how inputs travel between host processes
    "--model-loader-extra-config": True,  # options of the loader --load-format picks
    # when multi-step's tokens reach the client, not the steps that make them (a value 0.6.3-0.7.3 StoreBoolean,
    # a switch from 0.8.5)
    "--multi-step-stream-outputs": "optional",
    # how many nodes the ranks span; each rank's plan is the same (kvplan's --gpus-per-node places them)
    "--nnodes": True,
    "--node-rank": True,
    "--numa-bind": False,  # host CPU pinning
    "--numa-bind-cpus": True,  # host CPU pinning
    "--numa-bind-nodes": True,  # host CPU pinning
    "--override-generation-config": True,  # the default sampling parameters of a request
    "--override-neuron-config": True,  # AWS Neuron devices only
    "--per-request-spec-decode-metrics": True,
    "--prefix-caching-hash-algo": True,
    "--prefix-match-unit": True,  # where a prefix-cache hit may land (the hashing), not the blocks
    "--profiler-config": True,  # the torch profiler, run only when asked through the API
    "--prompt-adapters": True,  # adapters loaded into the prompt-adapter slots (--enable-prompt-adapter is named apart)
    "--pt-load-map-location": True,
    # the fp8 KV cache's scales on ROCm, read from a file (model_runner.py 0.6.6:1141-1154): their values, not the
    # cache's bytes
    "--quantization-param-path": True,
    "--ray-workers-use-nsight": False,
    "--reasoning-config": True,  # the markers of a reasoning model's thinking
    "--reasoning-effort-map": True,
    "--reasoning-parser-plugin": True,
    "--renderer-num-workers": True,  # host threads
    "--return-tokens-as-token-ids": False,
    "--safetensors-load-strategy": True,
    "--safetensors-prefetch-block-size": True,
    "--safetensors-prefetch-num-threads": True,
    # whether a prompt's whole length must fit before it starts, not how many fit at full length
    "--scheduler-reserve-full-isl": False,
    "--show-hidden-metrics-for-version": True,
    "--shuffle-safetensors-files": False,
    "--shutdown-timeout": True,
    "--skip-tokenizer-init": False,
    "--sleep-mode-backend": True,  # sleep mode's memory, after the plan's startup (--enable-sleep-mode is named apart)
    # sleep mode's memory, after the plan's startup (--enable-sleep-mode is named apart)
    "--sleep-mode-offload-cudagraph": False,
    # sleep mode's memory, after the plan's startup (--enable-sleep-mode is named apart)
    "--sleep-preserve-parameter-names": True,
    "--sse-keep-alive-interval": True,
    "--ssl-ca-certs": True,
    "--ssl-cert-reqs": True,
    "--ssl-ciphers": True,
    "--stream-interval": True,  # how often tokens are streamed to the client, not the steps that make them
    "--structured-outputs-config": True,  # only requests asking for structured output pay its grammar masks
    "--swap-space": True,  # host memory for V0's swapped-out requests, not the GPU's
    "--tokenizer": True,
    "--tokenizer-mode": True,
    "--tokenizer-pool-extra-config": True,  # tokenizer processes on the host
    "--tokenizer-pool-size": True,  # tokenizer processes on the host (Ray)
    "--tokenizer-pool-type": True,  # tokenizer processes on the host
    "--tokenizer-revision": True,
    "--tokens-only": False,
    "--tool-parser-plugin": True,
    "--tool-server": True,
    "--tool-strict-level": True,
    "--trust-request-chat-template": False,
    "--trust-request-mm-kwargs": False,  # a request's own processor options, which the profile run never sees
    "--use-tqdm-on-load": False,
    "--video-pruning-method": True,  # the algorithm --video-pruning-rate uses, which is named apart
    "--watchdog-config": True,
    "--worker-extension-cls": True,  # methods added to the worker for remote calls
    "--worker-use-ray": False,  # --distributed-executor-backend ray: how the workers are launched, not what they hold
}
# vLLM 0.5-0.7's speculative flags, which 0.8 folded into --speculative-config (kvplan models that from 0.32 only)
FOLDED = "vLLM 0.8 folded the flag into --speculative-config"
ACCEPTED = "so the tokens a speculative step keeps"
# (b) flag -> (value, what it changes): "vLLM's FLAG changes WHAT and kvplan does not model it"
UNMODELLED = {
    "--additional-config": (True, "settings handed to the platform's own code (any of its memory or kernels)"),
    "--all2all-backend": (True,
        "the MoE all-to-all kernels of expert parallelism, whose buffers and step time differ from the default "
        "all-gather / reduce-scatter's"),
    "--async-scheduling": (False,
        "the batches in flight (so a sliding-window request's blocks) and the step's host gaps (kvplan takes the "
        "release's default)"),
    "--attention-backend": (True, "the attention kernels, which can set the KV block size and the decode step time"),
    "--attention-config": (True,
        "the attention kernels and their options, which can set the KV block size and the decode step time"),
    "--aux-output-config": (True, "auxiliary outputs (routed experts) kept in buffers of their own"),
    "--calculate-kv-scales": (False, "the attention step, which computes the fp8 KV-cache scales in the forward pass"),
    "--collect-detailed-traces": (True, "the step time (it traces the model's forward with blocking calls)"),
    "--config-format": (True,
        "the config the model's shape is read from (Mistral's params.json rather than config.json)"),
    "--cpu-offload-params": (True,
        "which parameters --cpu-offload-gb moves to the CPU, so the weights left on the GPU"),
    "--cuda-graph-sizes": (True,
        "the batch sizes given CUDA graphs (the graph memory; --cudagraph-capture-sizes from vLLM 0.11.1)"),
    "--dbo-decode-token-threshold": (True, "when dual batch overlap splits a step in two, so the step time"),
    "--dbo-prefill-token-threshold": (True, "when dual batch overlap splits a step in two, so the step time"),
    "--diffusion-config": (True, "the decoding (a diffusion LLM's blocks of tokens a step)"),
    "--disable-async-output-proc": (False,
        "the decode step time (V0's output processing overlapped with the next step)"),
    "--disable-custom-all-reduce": (False,
        "the tensor-parallel all-reduce (NCCL in place of the custom kernel and its IPC buffers), so the memory "
        "outside torch and the step time"),
    "--disable-hybrid-kv-cache-manager": (False,
        "the KV cache of a model with sliding-window or linear-attention layers (every layer cached at full "
        "length), so its bytes per token and block groups"),
    "--disable-logprobs-during-spec-decoding": ("optional",
        "the speculative step (logprobs of the proposed tokens computed or not), so its time"),
    "--ec-manager-config": (True, "the encoder cache (multimodal embeddings kept on the GPU)"),
    "--ec-transfer-config": (True, "the encoder cache, with a connector moving it between instances"),
    "--elastic-ep-max-dp-size": (True, "elastic expert parallelism's groups, so the experts a rank holds"),
    "--enable-batch-sharded-sampling": (False,
        "the sampler's share of the memory profile (each tensor-parallel rank samples a slice of the batch)"),
    "--enable-cumem-allocator": (False,
        "the allocator of the weights and the KV cache (vLLM's cuMem pool), so what the memory profile sees"),
    "--enable-dbo": (False, "the step (two overlapped microbatches, dual batch overlap), its time and its buffers"),
    "--enable-elastic-ep": (False,
        "expert parallelism (stateless groups whose ranks join and leave), so the experts a rank holds"),
    "--enable-extensible-kv-cache": (False,
        "how the KV cache is sized (the extensible cache, after graph capture; kvplan takes the release's "
        "default)"),
    "--enable-flashinfer-autotune": (False, "the kernels decode runs (FlashInfer's autotuning at warmup)"),
    "--enable-hc-sp": (False, "the step time (HyperConnection work shared over the tensor-parallel ranks)"),
    "--enable-lora-bias": (False, "the LoRA slots (a bias per adapter layer)"),
    "--enable-mamba-cache-stochastic-rounding": (False,
        "the Mamba state update's work each step (stochastic rounding)"),
    "--enable-mamba-shared-prefix-checkpoint": (False, "the Mamba state blocks prefix caching keeps"),
    "--enable-mixed-moe-lora-format": (False, "the MoE LoRA slots (the 2D wrapper for every expert layer)"),
    "--enable-mm-embeds": (False,
        "what the vision tower sees (requests may bring their own embeddings), so its profile"),
    "--enable-moe-shared-loras": (False, "the MoE LoRA slots (shared expert factors)"),
    "--enable-multimodal-encoder-data-parallel": (False,
        "where the vision tower runs (whole on every rank; --mm-encoder-tp-mode data from vLLM 0.10.2)"),
    "--enable-prompt-adapter": (False, "the prompt-adapter slots on the GPU"),
    "--enable-prompt-embeds": (False, "the model's inputs (prompt embeddings), with the runner's buffers for them"),
    "--enable-return-routed-experts": (False,
        "auxiliary outputs (each token's routed experts) kept in buffers of their own"),
    "--enable-sleep-mode": (False,
        "the allocator of the weights and the KV cache (vLLM's cuMem pool), so what the memory profile sees"),
    "--enable-tower-connector-lora": (False, "the LoRA slots (adapters on the vision tower and connector too)"),
    "--enable-trace-replay": (False, "the memory outside the cache (a trace buffer a request)"),
    "--engram-config": (True, "the weights (n-gram embedding tables and their sharding)"),
    "--eplb-window-size": (True,
        "EPLB's load window, per-layer expert loads over that many steps kept on each GPU (0.9.2-0.10.1; kvplan "
        "prices it as --eplb-config's window_size from 0.24)"),
    "--gdn-prefill-backend": (True, "the gated DeltaNet prefill kernels, so the time to first token"),
    "--hf-config-path": (True, "the config the model's shape is read from"),
    "--hf-overrides": (True, "the model's config (its layers, heads, lengths)"),
    "--ir-op-priority": (True, "the kernels vLLM's IR lowers ops to, so the step time"),
    "--kda-decode-backend": (True, "the Kimi Delta Attention decode kernels, so the decode step time"),
    "--kda-prefill-backend": (True, "the Kimi Delta Attention prefill kernels, so the time to first token"),
    "--kernel-config": (True, "the kernels (MoE, linear, FlashInfer autotuning), so the step time"),
    "--kv-cache-dtype-skip-layers": (True,
        "the KV bytes per token (the layers named keep an unquantised cache under --kv-cache-dtype)"),
    "--kv-offloading-backend": (True,
        "the KV cache (an offload tier in CPU memory, with its connector and staging buffers)"),
    "--kv-offloading-size": (True,
        "the KV cache (an offload tier in CPU memory, with its connector and staging buffers)"),
    "--kv-sharing-fast-prefill": (False,
        "the prefill of KV-sharing layers (they skip the prompt's tokens), so the time to first token"),
    "--kv-transfer-config": (True,
        "the KV cache (a connector: disaggregated prefill or offloading, with buffers and an admission of its "
        "own)"),
    "--linear-backend": (True, "the linear layers' GEMM kernels, so the step time"),
    "--logits-processors": (True, "the sampler (processors of its own in every step and in the profile run)"),
    "--long-lora-scaling-factors": (True,
        "the rotary embedding under LoRA (a cos/sin cache for each long-context scaling factor: lora/layers.py "
        "0.6.6:1126-1145)"),
    "--lora-extra-vocab-size": (True, "the LoRA slots (the extra vocabulary's embeddings)"),
    "--lora-target-modules": (True, "the LoRA slots (adapters on the modules named only)"),
    "--mamba-backend": (True, "the Mamba kernels, so the step time"),
    "--mamba-cache-mode": (True,
        "the Mamba state blocks (none, align, all; kvplan derives the mode from --enable-prefix-caching)"),
    "--mamba-cache-philox-rounds": (True, "the Mamba state update's work each step (its random numbers)"),
    "--mamba-ssu-algorithm": (True, "the Mamba state update kernel, so the decode step time"),
    "--max-lora-cls-labels": (True, "the LoRA slots (classification heads' outputs)"),
    "--max-num-active-seqs": (True, "the resident concurrency (running requests capped below --max-num-seqs)"),
    "--max-num-inflight-kv-loads": (True, "the admission of requests whose KV blocks a connector loads"),
    "--max-num-scheduled-tokens": (True,
        "the tokens a step schedules (below --max-num-batched-tokens), so the prefill chunks and the tokens in "
        "flight"),
    "--max-prompt-adapter-token": (True, "the prompt-adapter slots on the GPU (the tokens of each)"),
    "--max-prompt-adapters": (True, "the prompt-adapter slots on the GPU"),
    # V0's decode graphs cover sequences up to it (model_runner.py 0.6.6:754-762) and are captured after the KV cache
    # is sized (worker.py 0.6.6:177-257, then initialize_cache :260-275 -> capture_model :1401): no KV bytes change.
    # V1 never reads it (0.10.1: only worker/model_runner.py and V0's attention backends)
    "--max-seq-len-to-capture": (True,
        "the longest sequence decode CUDA graphs cover under V0 (a step past it runs eagerly), so V0's decode step "
        "time (V0 captures its graphs after sizing the KV cache; V1 does not read it)"),
    "--media-io-kwargs": (True, "how a request's media decode (a video's frames), so the vision tower's work"),
    "--mm-device-do-normalize": (True, "where the vision inputs are normalised (on the GPU)"),
    "--mm-encoder-attn-backend": (True, "the vision tower's attention kernels, so its profile and time"),
    "--mm-encoder-attn-dtype": (True, "the vision tower's attention (fp8), so its profile and time"),
    "--mm-encoder-only": (False, "the engine (the language model skipped: a disaggregated encoder with no KV cache)"),
    "--mm-ipc-gpu-memory-gb": (True, "the KV-cache budget (GPU memory set aside for the API server's multimodal work)"),
    "--mm-processor-device": (True, "where the multimodal processor runs (on the GPU, outside the engine's budget)"),
    "--model-class-overrides": (True, "the model's implementation class"),
    "--model-impl": (True, "the model's implementation (vLLM's or Transformers'), whose memory and speed differ"),
    "--moe-backend": (True, "the MoE kernels, so their workspace and the step time"),
    "--monokernel": (False, "the decode step (layers run as one persistent kernel)"),
    "--ngram-prompt-lookup-max": (True, f"the n-gram proposer (its longest match), {ACCEPTED}"),
    "--ngram-prompt-lookup-min": (True, f"the n-gram proposer (its shortest match), {ACCEPTED}"),
    # V0's can_append_slots (core/block_manager.py 0.6.6:205-230); V1 takes its lookahead from the speculative config
    # only (v1/core/sched/scheduler.py 0.10.1:146-151)
    "--num-lookahead-slots": (True,
        "the KV slots a sequence holds ahead of its tokens in V0's scheduler (V1 holds the speculative config's only)"),
    # multi-step: lookahead slots max(--num-lookahead-slots, steps - 1) (engine/arg_utils.py 0.6.6:1161-1167,
    # 0.8.5:1187-1194); the runner profiles and captures as the base runner (multi_step_model_runner.py
    # 0.6.6:665-672), so no memory of its own; V1 falls back to V0 for it (arg_utils.py 0.8.5:1327-1330)
    "--num-scheduler-steps": (True,
        "V0's multi-step scheduling (a decoding sequence holds KV slots for the steps ahead, and the host's gaps "
        "between steps shrink; vLLM 0.8-0.9 leave V1 for V0 for it)"),
    "--num-speculative-tokens": (True,
        f"speculative decoding (the tokens a step proposes, with KV slots held ahead for them; {FOLDED})"),
    "--offload-backend": (True,
        "the weights on the GPU (layers offloaded to the CPU and prefetched), so the memory and the step time"),
    "--offload-group-size": (True,
        "the weights on the GPU (layers offloaded to the CPU and prefetched), so the memory and the step time"),
    "--offload-num-in-group": (True,
        "the weights on the GPU (layers offloaded to the CPU and prefetched), so the memory and the step time"),
    "--offload-params": (True,
        "the weights on the GPU (layers offloaded to the CPU and prefetched), so the memory and the step time"),
    "--offload-prefetch-step": (True,
        "the weights on the GPU (layers prefetched ahead), so the memory and the step time"),
    "--override-attention-dtype": (True, "the attention's dtype"),
    "--override-pooler-config": (True, "the pooler (--pooler-config from vLLM 0.10.2)"),
    "--performance-mode": (True,
        "the CUDA graphs and kernels (tuned for latency or throughput), so the graph memory and the step time"),
    "--prefill-schedule-interval": (True, "when prefill runs (every Nth step), so the time to first token"),
    "--prefix-cache-retention-interval": (True, "the sliding-window and Mamba blocks prefix caching keeps"),
    # bitsandbytes only; the quantisation config read from the adapter (weight_utils.py 0.6.6:151-159)
    "--qlora-adapter-name-or-path": (True, "the weights (bitsandbytes 4-bit, quantised as the QLoRA adapter says)"),
    "--quantization-config": (True, "the weights' bytes (a quantisation per layer kind, with layers left out)"),
    "--replayssm-buffer-len": (True, "the Mamba state (ReplaySSM's history rows)"),
    "--return-sampling-mask": (False, "the sampler's output (a vocabulary-wide mask a sample)"),
    "--rope-scaling": (True, "the model's config (its rope and the longest context)"),
    "--rope-theta": (True, "the model's config (its rope)"),
    "--scheduler-cls": (True, "the scheduler (a class of your own in place of vLLM's)"),
    "--sparse-indexer-topk-backend": (True, "the sparse indexer's top-k kernels, so the decode step time"),
    "--spec-decoding-acceptance-method": (True,
        f"the speculative step's acceptance (rejection or typical-acceptance sampling), {ACCEPTED}"),
    "--specialize-active-lora": (False,
        "the CUDA graphs (captured for each count of active adapters), so the graph memory"),
    "--speculative-disable-by-batch-size": (True,
        f"speculative decoding (off past that many requests), so the step time ({FOLDED})"),
    "--speculative-disable-mqa-scorer": (False,
        "the speculative step's scorer (batch expansion in place of the MQA scorer), its time and memory"),
    "--speculative-draft-tensor-parallel-size": (True,
        f"the draft model's sharding (its weights and KV cache per GPU; {FOLDED})"),
    "--speculative-max-model-len": (True,
        f"speculative decoding (off for sequences longer than it), so the step time ({FOLDED})"),
    "--speculative-model": (True,
        f"speculative decoding (a draft model's weights and KV cache beside the target's, and the step; {FOLDED})"),
    "--speculative-model-quantization": (True, f"the draft model's weights (their quantisation; {FOLDED})"),
    "--swa-bounded-replay": (False, "the sliding-window blocks prefix caching keeps and the prefill after a hit"),
    "--task": (True, "the model's task (--runner / --convert from vLLM 0.10.2)"),
    "--typical-acceptance-sampler-posterior-alpha": (True, f"the typical-acceptance sampler, {ACCEPTED}"),
    "--typical-acceptance-sampler-posterior-threshold": (True,
        f"the typical-acceptance sampler, {ACCEPTED}"),
    "--ubatch-size": (True, "the step (dual batch overlap's microbatches), its time and its buffers"),
    "--use-fp64-gumbel": (False, "the sampler (float64 noise), so the step time"),
    "--use-replayssm": (False, "the Mamba decode kernel and its state history"),
    # V1 and V2 admit alike; V2 keeps a sliding-window request's blocks otherwise (engines/vllm_v0_admission.py);
    # from 0.6.3 V2 is the default (engine/arg_utils.py 0.6.3:110) and a store_true flag cannot turn it off
    "--use-v2-block-manager": (False,
        "a sliding-window request's KV blocks before vLLM 0.6.3 (V0's block manager v2 in place of v1; from 0.6.3 "
        "v2 is the default and the flag does nothing)"),
    "--video-pruning-rate": (True, "a video's tokens (some pruned), so the vision tower's profile"),
    "--watermark": (True, "the resident concurrency (a share of the KV blocks kept free when admitting)"),
    "--watermark-config": (True, "the sampler (text watermarking in every step)"),
    "--weight-transfer-config": (True, "the memory outside the cache (a weight-transfer channel for RL)"),
    "--worker-cls": (True, "the GPU worker, which runs the memory profile"),
}
# Flags any value of which but the default sends vLLM 0.8-0.10 from V1 to V0 (EngineArgs._is_v1_supported_oracle,
# _raise_or_fallback, VLLM_USE_V1 unset), whose budget, blocks and admission kvplan plans by V0's rules only where it
# asks the oracle itself (engines/vllm_v1_oracle.py): engine/arg_utils.py 0.8.5:1307 (--logits-processor-pattern),
# :1312 (--preemption-mode), :1323 (--scheduling-policy, to 0.9.1:1275), :1333 (--scheduler-delay-factor), :1342
# (--guided-decoding-backend other than V1's, to 0.10.0:1335-1339), :1409-1413 (partial prefills), :1419
# (--otlp-traces-endpoint, to 0.10.1:1444); 0.10.2:1445, :1450, :1461, :1490. Before 0.8 V0 runs anyway; from 0.11
# there is no V0.
V0_SENT = "(any value but its default sends vLLM {releases} from its V1 engine to V0)"
UNMODELLED.update({
    "--guided-decoding-backend": (True,
        "the engine " + V0_SENT.format(releases="0.8.0-0.10.0") + "; else only structured-output requests use it"),
    "--logits-processor-pattern": (True, "the engine " + V0_SENT.format(releases="0.8-0.10")),
    "--max-long-partial-prefills": (True,
        "the engine " + V0_SENT.format(releases="0.8-0.10") + ", and V0's prefills beside others"),
    "--max-num-partial-prefills": (True,
        "the engine " + V0_SENT.format(releases="0.8-0.10") + ", and V0's prefills beside others (past 1 it sets "
        "--long-prefill-token-threshold to 4% of --max-model-len)"),
    "--otlp-traces-endpoint": (True, "the engine " + V0_SENT.format(releases="0.8.0-0.10.1")),
    "--preemption-mode": (True, "the engine " + V0_SENT.format(releases="0.8-0.10")),
    "--scheduler-delay-factor": (True,
        "the engine " + V0_SENT.format(releases="0.8-0.10") + ", and how long V0 holds a prompt back"),
    "--scheduling-policy": (True, "the engine " + V0_SENT.format(releases="0.8.0-0.9.1")),
    # V1 caps each request's tokens a step at it, a lone request's prefill chunks too (v1/core/sched/scheduler.py
    # 0.10.1:209-212, :412-415; 0.30.0:661-662); from 0.31.0 (:611-619) a lone request is exempt; V0 caps only beside
    # other prefills (core/scheduler.py 0.7.3:353-370)
    "--long-prefill-token-threshold": (True,
        "the time to first token under V1 up to vLLM 0.30 (a lone prompt's prefill chunks are capped at it, below "
        "--max-num-batched-tokens)"),
})
# the switches vLLM declares BooleanOptionalAction in some release (get_kwargs's bool fields, engine/arg_utils.py
# 0.34.0:383-385): they have --no-X, and from 0.33 --disable-X for --enable-X (engines/vllm_bool_flags.py); the other
# switches are store_true, whose negative vLLM stops on too
NEGATABLE = frozenset({
    "--allow-credentials", "--allow-deprecated-quantization", "--async-scheduling", "--calculate-kv-scales",
    "--checkpoint-prepare-on-startup", "--cohere-is-reasoning-model", "--cudagraph-metrics",
    "--data-parallel-external-lb", "--data-parallel-hybrid-lb", "--disable-cascade-attn",
    "--disable-chunked-mm-input", "--disable-custom-all-reduce", "--disable-fastapi-docs",
    "--disable-frontend-multiprocessing", "--disable-hybrid-kv-cache-manager", "--disable-mm-preprocessor-cache",
    "--disable-nccl-for-dp-synchronization", "--enable-batch-sharded-sampling", "--enable-cumem-allocator",
    "--enable-dbo", "--enable-elastic-ep", "--enable-ep-weight-filter", "--enable-extensible-kv-cache",
    "--enable-fault-tolerance", "--enable-flash-late-interaction", "--enable-flashinfer-autotune",
    "--enable-force-include-usage", "--enable-hc-sp", "--enable-layerwise-nvtx-tracing", "--enable-log-deltas",
    "--enable-log-outputs", "--enable-logging-iteration-details", "--enable-lora-bias",
    "--enable-mamba-cache-stochastic-rounding", "--enable-mamba-shared-prefix-checkpoint", "--enable-mfu-metrics",
    "--enable-mixed-moe-lora-format", "--enable-mm-embeds", "--enable-moe-shared-loras",
    "--enable-multimodal-encoder-data-parallel", "--enable-nccl-comm-suspend", "--enable-offline-docs",
    "--enable-per-request-metrics", "--enable-prompt-adapter", "--enable-prompt-embeds",
    "--enable-prompt-tokens-details", "--enable-reasoning", "--enable-request-id-headers",
    "--enable-return-routed-experts", "--enable-scale-out", "--enable-server-load-tracking",
    "--enable-shm-tensor-arena", "--enable-sleep-mode", "--enable-ssl-refresh", "--enable-tokenizer-info-endpoint",
    "--enable-tower-connector-lora", "--enable-trace-replay", "--eplb-log-balancedness",
    "--exclude-tools-when-tool-choice-none", "--fail-on-environ-validation",
    "--guided-decoding-disable-additional-properties", "--guided-decoding-disable-any-whitespace",
    "--guided-decoding-disable-fallback", "--interleave-mm-strings", "--jit-monitor-verbose", "--kv-cache-metrics",
    "--kv-sharing-fast-prefill", "--log-error-stack", "--long-prefill-token-threshold-adaptive",
    "--mm-encoder-only", "--monokernel", "--multi-step-stream-outputs", "--numa-bind", "--ray-workers-use-nsight",
    "--return-sampling-mask", "--return-tokens-as-token-ids", "--scheduler-reserve-full-isl",
    "--shuffle-safetensors-files", "--skip-tokenizer-init", "--sleep-mode-offload-cudagraph",
    "--specialize-active-lora", "--swa-bounded-replay", "--tokens-only", "--trust-request-chat-template",
    "--trust-request-mm-kwargs", "--use-fp64-gumbel", "--use-replayssm", "--use-tqdm-on-load",
})
# vLLM's short spellings of these flags
SHORT = {
    "-ac": "--attention-config", "-asc": "--api-server-count", "-dc": "--diffusion-config",
    "-dpa": "--data-parallel-address", "-dpb": "--data-parallel-backend", "-dpe": "--data-parallel-external-lb",
    "-dph": "--data-parallel-hybrid-lb", "-dpl": "--data-parallel-size-local",
    "-dpm": "--data-parallel-multi-port-external-lb", "-dpn": "--data-parallel-rank",
    "-dpp": "--data-parallel-rpc-port", "-dpr": "--data-parallel-start-rank", "-n": "--nnodes", "-r": "--node-rank",
    "-spec-draft-tp": "--speculative-draft-tensor-parallel-size",  # 0.5-0.7
}
# a value of a NO_EFFECT flag that changes what kvplan plans: (flag, value) -> what it changes
UNMODELLED_VALUES = {
    # LoadConfig.load_format (config/load.py 0.34.0:29-60): the daemon's weights come over CUDA IPC, not loaded by
    # the worker, so the memory the profile counts as weights differs
    ("--load-format", "ipc_cache"): "the weights (mapped from `vllm preload`'s daemon over CUDA IPC)",
    # V1 -> V0 (engine/arg_utils.py 0.8.4:1360-1361 tensorizer and sharded_state; 0.9.0:1198, 0.10.2:1439
    # sharded_state)
    ("--load-format", "sharded_state"): "the engine " + V0_SENT.format(releases="0.8-0.10").replace(
        "any value but its default", "this load format"),
    ("--load-format", "tensorizer"): "the engine " + V0_SENT.format(releases="0.8.0-0.8.5").replace(
        "any value but its default", "this load format"),
    # -pp > 1 runs V1 with it, where kvplan plans V0's pipeline stages for the default executor (vllm_v0_pp.py):
    # engine/arg_utils.py 0.8.4:1545-1547, 0.8.5:1479 ray only (0.8.0:1590 V0 whatever the executor); 0.9.0:1378-1380
    # ray, mp, external_launcher
    **{("--distributed-executor-backend", backend): f"the engine under -pp > 1 (vLLM {releases} run V1 with it, V0 "
       "with the default executor, which kvplan plans)" for backend, releases in (
        ("ray", "0.8.4-0.9.0"), ("mp", "0.9.0"), ("external_launcher", "0.9.0"))},
    # DEVICE_OPTIONS (engine/arg_utils.py 0.6.6:33-42; config.py 0.9.2:2369 Device): the platforms other than a GPU's
    **{("--device", device): f"the device ({name} in place of the CUDA GPU kvplan plans)" for device, name in (
        ("cpu", "the CPU"), ("neuron", "AWS Neuron"), ("openvino", "OpenVINO"), ("tpu", "a TPU"),
        ("xpu", "an Intel GPU"), ("hpu", "Intel Gaudi"))},
}
# EngineArgs spec_method / spec_model / spec_tokens (engine/arg_utils.py 0.34.0:1900-1904, :2142-2144) fold into the
# speculative config: flag -> its key there
SPEC_KEYS = {"--spec-method": "method", "--spec-model": "model", "--spec-tokens": "num_speculative_tokens"}
# vLLM's spellings of what kvplan reads under another name: spelling -> what to write instead
ELSEWHERE = {
    "--model": "vLLM's --model is MODEL here; give the model as the command's argument",
    "-sc": "vLLM's -sc is --speculative-config; write that",
    # ModelConfig raises at startup for it (config.py 0.5.5:161-163, 0.6.3.post1:154-156; the flag ends with 0.6.3)
    "--max-context-len-to-capture": "vLLM's --max-context-len-to-capture stops vLLM at startup (\"`max_context_len_to_"
                                    "capture` is deprecated. Use `max_seq_len_to_capture` instead.\"); leave it out",
    "--config": "vLLM's --config reads more serve flags from a YAML file, which kvplan does not read; give them here "
                "as flags",
    **{flag: f"vLLM's {flag} is the speculative config's {key}; write --speculative-config '{{\"{key}\": ...}}'"
       for flag, key in SPEC_KEYS.items()},
}
# ELSEWHERE's sentences where a deployments entry writes otherwise (in_file)
ELSEWHERE_IN_FILE = {
    "--config": "vLLM's --config reads more serve flags from a YAML file, which kvplan does not read; give them in "
                "this entry as keys",
    **{flag: f"vLLM's {flag} is the speculative config's {key}; write speculative_config: {{{key}: ...}}"
       for flag, key in SPEC_KEYS.items()},
}


class Flag:
    """What kvplan says of one vLLM flag spelling: `flag` (the long name), `negated` (a --no- / --disable- form),
    `value` (as NO_EFFECT's), `unmodelled` (what it changes, or None: it changes nothing), `instead` (ELSEWHERE's
    sentence, or None), `negatable` (whether vLLM has a negative of it)."""

    def __init__(self, flag: str, negated: bool, value, unmodelled: Optional[str], instead: Optional[str] = None):
        self.flag, self.negated, self.value, self.unmodelled, self.instead = flag, negated, value, unmodelled, instead
        self.negatable = flag in NEGATABLE


def vllm_flag(name: str, typed_value: Optional[str] = None) -> Optional[Flag]:
    """The vLLM flag `name` spells (a long or short name, a negative of a switch, a JSON flag's dotted key:
    --kv-transfer-config.kv_connector), or None where it is no flag of `vllm serve` this module knows.
    `typed_value`: the value given with it, for UNMODELLED_VALUES."""
    from ..engines.vllm_bool_flags import negatives

    name = SHORT.get(name, name)
    if name in ELSEWHERE:
        return Flag(name, False, True, None, ELSEWHERE[name])
    base = name.partition(".")[0]  # vLLM folds --x.key value into --x's JSON object
    if base != name and (base in UNMODELLED or base in NO_EFFECT) and _value(base) is True:
        name = base
    if name in UNMODELLED:
        value, what = UNMODELLED[name]
        return Flag(name, False, value, what)
    if name in NO_EFFECT:
        return Flag(name, False, NO_EFFECT[name], UNMODELLED_VALUES.get((name, typed_value)))
    for flag in (*NO_EFFECT, *UNMODELLED):  # a negative: of a switch, or of a flag taking a value (vLLM has none)
        if name in negatives(flag):
            return Flag(flag, True, _value(flag), UNMODELLED[flag][1] if flag in UNMODELLED else None)
    return None


NOTHING = "changes nothing kvplan plans (memory, capacity, speed); drop it"


def consequence(known: Flag) -> str:
    """What a flag does to the plan, in the words after "vLLM's --X ": NOTHING, or what it changes unmodelled."""
    return f"changes {known.unmodelled} and kvplan does not model it" if known.unmodelled else NOTHING


def in_file(known: Flag, keys: dict) -> str:
    """What a deployments entry is told of its key that spells vLLM's `known` flag: the command line's sentence
    ("vLLM's --X changes ..."), pointing at the entry's own spellings: ELSEWHERE_IN_FILE's, and every other flag it
    names that kvplan reads as that flag's key (`keys`: flag -> key, --cudagraph-capture-sizes ->
    cudagraph_capture_sizes). The flag the sentence is about stays vLLM's name."""
    import re

    if known.flag in ELSEWHERE_IN_FILE:
        return ELSEWHERE_IN_FILE[known.flag]
    said = known.instead or f"vLLM's {known.flag} {consequence(known)}"
    head, subject, rest = said.partition(known.flag)
    return head + subject + re.sub(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", lambda found: keys.get(found[0], found[0]), rest)


def _value(flag: str):
    return UNMODELLED[flag][0] if flag in UNMODELLED else NO_EFFECT[flag]


def flag_names() -> set:
    """Every long and short name this module classifies (negatives left out)."""
    return {*NO_EFFECT, *UNMODELLED, *SHORT, *ELSEWHERE}
