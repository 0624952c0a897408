# Session 15 call 5: launches that read whole pages where the default reads rows (B1 128K with all 8 KV heads of a
# token in one copy over many splits; 64q/4kv with page runs), then the standing table against FlashInfer and SDPA
# on this machine (.peers carried).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
clean() { grep "^| \|read bandwidth" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, stages=None, kv_per_cta=None, heads_per_warp=None//; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, lazy_rescale=None, heads_in_m=None, page_runs=False, max_registers=None, trace=False, launcher=.driver.//; s/, trace=False, launcher=.driver.//'; }
timeout 60 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B1 128K,B1 32K" \
  --variants "kv_per_cta=8 num_splits=66;kv_per_cta=8 num_splits=128;kv_per_cta=8 num_splits=132;kv_per_cta=8 num_splits=264" 2>&1 | clean | tee $OUT/sweep.txt
timeout 50 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "64q/4kv B16 16K,64q/4kv B64 4K" \
  --variants "kv_per_cta=4;page_runs=True kv_per_cta=4;page_runs=True kv_per_cta=4 num_splits=33;page_runs=True kv_per_cta=4 num_splits=66" 2>&1 | clean | tee -a $OUT/sweep.txt
timeout 400 python3 benchmarks/kernel_device_run.py env bench > $OUT/run.txt 2>&1
tail -40 $OUT/run.txt
