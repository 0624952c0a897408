# Nsight Compute on the MLA decode kernel (16 heads, B32 8K, the default launch): where its warps stall, by SASS
# instruction (the generic recipe on the MLA one-launch script).      Device: bash benchmarks/sessions/mla_ncu_device.sh
bash benchmarks/ncu_kernel_device.sh kvp_mla_decode benchmarks/probes/mla_one_launch.py "$@"
