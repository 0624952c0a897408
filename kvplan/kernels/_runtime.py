"""Device side plumbing shared by the decode plans: availability, device facts, loading cubins, launching.

Launches go straight to the driver's ``cuLaunchKernelEx`` through ctypes with arguments packed once per
plan (a run only rewrites the pointers that changed), which keeps an eager call's host time in the tens
of microseconds; ``KernelOptions(launcher="cuda.core")`` keeps cuda.core's launch as the reference path.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

from . import build, configs


class KernelUnavailableError(RuntimeError):
    """The CUDA kernel cannot run here (no CUDA device, no cuda.core/NVRTC, no CUDA headers, an NVRTC older than the
    GPU).

    ``str(err)`` is the reason; callers may fall back to ``reference_paged_decode_attention``.
    """


_lock = threading.RLock()
_reason: list = []  # cached kernel_unavailable_reason() result


def kernel_unavailable_reason() -> str | None:
    """None when the NVRTC kernels can run in this process, else a one-sentence reason."""
    with _lock:
        if _reason:
            return _reason[0]
        reason = None
        try:
            import torch
        except ImportError:
            reason = "torch is not installed"
        else:
            if not torch.cuda.is_available():
                reason = "no CUDA device (torch.cuda.is_available() is False)"
        if reason is None:
            try:
                build._import_cuda_core()
                build.nvrtc_version()
                build.cuda_include_dir()
                reason = build.arch_unsupported(*torch.cuda.get_device_capability())
            except build.NVRTCUnavailableError as exc:
                reason = str(exc)
        _reason.append(reason)
        return reason


def kernel_backend() -> str:
    """Return "nvrtc" when the CUDA kernel is usable, otherwise the reason it is not."""
    reason = kernel_unavailable_reason()
    return "nvrtc" if reason is None else reason


def require_kernel(what: str = "the CUDA decode kernel") -> None:
    reason = kernel_unavailable_reason()
    if reason is not None:
        raise KernelUnavailableError(f"{what} is unavailable: {reason}")


# ---------------------------------------------------------------------------------------------
# device facts


@dataclass(frozen=True)
class Device:
    index: int
    arch: str
    sm_count: int
    smem_optin: int
    smem_per_sm: int
    regs_per_sm: int
    mem_bw: float = 0.0  # peak DRAM bytes/s from memory clock x bus width (0: unknown)


_devices: dict[int, Device] = {}


def device_info(index: int) -> Device:
    d = _devices.get(index)
    if d is None:
        with _lock:
            import torch

            cc = build._import_cuda_core()
            major, minor = torch.cuda.get_device_capability(index)
            dev = cc.Device(index)
            dev.set_current()
            p = dev.properties
            d = Device(
                index=index,
                arch=f"sm_{major}{minor}",
                sm_count=int(p.multiprocessor_count),
                smem_optin=int(p.max_shared_memory_per_block_optin),
                smem_per_sm=int(p.max_shared_memory_per_multiprocessor),
                regs_per_sm=int(p.max_registers_per_multiprocessor),
                mem_bw=_peak_bw(p),
            )
            _devices[index] = d
    return d


def _peak_bw(p) -> float:
    try:  # kHz x 2 (double data rate) x bus bytes
        return float(p.memory_clock_rate) * 1e3 * 2 * float(p.global_memory_bus_width) / 8
    except Exception:
        return 0.0


def device_index(device) -> int:
    """Index of ``device`` (int, "cuda:1", torch.device; None = the current device)."""
    import torch

    if device is None:
        return torch.cuda.current_device()
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    try:
        d = torch.device(device)
    except (TypeError, RuntimeError):
        raise ValueError(f"device must be a CUDA device (int, 'cuda:N' or torch.device), got {device!r}") from None
    if d.type != "cuda":
        raise ValueError(f"device must be a CUDA device, got {d}")
    return d.index if d.index is not None else torch.cuda.current_device()


# ---------------------------------------------------------------------------------------------
# loading


@dataclass
class Loaded:
    obj: object
    kernels: dict  # name -> cuda.core Kernel
    functions: dict  # name -> CUfunction address (driver launcher)
    regs: dict  # name -> registers per thread
    arch: str = ""  # what it was compiled for: decides programmatic dependent launch (configs.pdl_enabled)


_loaded: dict[tuple, Loaded] = {}


def _check_driver(result, what: str):
    err = result[0] if isinstance(result, tuple) else result
    if int(err) != 0:
        raise RuntimeError(f"{what} failed: {err}")
    return result


def load(config, dev: Device) -> Loaded:
    """Compile (or take from the cache) and load ``config`` on ``dev``; large dynamic smem allowed."""
    key = (config, dev.index)
    ld = _loaded.get(key)
    if ld is not None:
        return ld
    with _lock:
        ld = _loaded.get(key)
        if ld is not None:
            return ld
        cc = build._import_cuda_core()
        from cuda.bindings import driver

        cubin = build.compile_cubin(config, dev.arch)
        obj = cc.ObjectCode.from_cubin(cubin, name=config.name)
        attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        static_attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES
        kernels, functions, regs = {}, {}, {}
        for i, name in enumerate(config.kernels):
            k = obj.get_kernel(name)
            h = k.handle
            if isinstance(h, driver.CUkernel):
                func = _check_driver(driver.cuKernelGetFunction(h), "cuKernelGetFunction")[1]
            else:
                func = h
            # every kernel may take dynamic shared memory up to what its static shared memory leaves of the
            # opt-in maximum (the driver refuses a larger limit; the first kernel of a config has none)
            static = _check_driver(driver.cuFuncGetAttribute(static_attr, func), "cuFuncGetAttribute")[1]
            limit = dev.smem_optin - int(static)
            if isinstance(h, driver.CUkernel):
                _check_driver(driver.cuKernelSetAttribute(attr, limit, h, driver.CUdevice(dev.index)),
                              "cuKernelSetAttribute")
            else:
                _check_driver(driver.cuFuncSetAttribute(h, attr, limit), "cuFuncSetAttribute")
            kernels[name] = k
            functions[name] = int(func)
            try:
                regs[name] = int(k.attributes[dev.index].num_regs)
            except Exception:
                regs[name] = 255
        ld = Loaded(obj, kernels, functions, regs, dev.arch)
        _loaded[key] = ld
        return ld


def occupancy(ld: Loaded, name: str, dev: Device, threads: int, smem: int) -> int:
    """CTAs per SM of kernel ``name`` at ``threads`` threads and ``smem`` bytes of dynamic shared memory."""
    n = 0
    try:
        n = int(ld.kernels[name].occupancy.max_active_blocks_per_multiprocessor(threads, smem))
    except Exception:
        n = 0
    if n <= 0:  # estimate from the limits
        by_smem = dev.smem_per_sm // (smem + 1024)
        by_regs = dev.regs_per_sm // (max(ld.regs.get(name, 255), 1) * threads)
        n = max(1, min(by_smem, by_regs, 2048 // threads, 32))
    return n


# ---------------------------------------------------------------------------------------------
# launching


class _AttrValue(ctypes.Union):
    _fields_ = [("pad", ctypes.c_char * 64), ("i", ctypes.c_int), ("p", ctypes.c_void_p)]


class _LaunchAttribute(ctypes.Structure):  # CUlaunchAttribute (cuda.h)
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4), ("value", _AttrValue)]


class _LaunchConfig(ctypes.Structure):  # CUlaunchConfig (cuda.h)
    _fields_ = [("gridDimX", ctypes.c_uint), ("gridDimY", ctypes.c_uint), ("gridDimZ", ctypes.c_uint),
                ("blockDimX", ctypes.c_uint), ("blockDimY", ctypes.c_uint), ("blockDimZ", ctypes.c_uint),
                ("sharedMemBytes", ctypes.c_uint), ("hStream", ctypes.c_void_p),
                ("attrs", ctypes.POINTER(_LaunchAttribute)), ("numAttrs", ctypes.c_uint)]


_PROGRAMMATIC_STREAM_SERIALIZATION = 6  # CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
_libcuda = None


def _driver_launch_fn():
    global _libcuda
    if _libcuda is None:
        lib = ctypes.CDLL("libcuda.so.1")
        fn = lib.cuLaunchKernelEx
        fn.argtypes = [ctypes.POINTER(_LaunchConfig), ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                       ctypes.c_void_p]
        fn.restype = ctypes.c_int
        _libcuda = (lib, fn)
    return _libcuda[1]


_C_TYPES = {"u64": ctypes.c_uint64, "i32": ctypes.c_int32, "f32": ctypes.c_float,
            "tmap": ctypes.c_uint64 * 16,  # a CUtensorMap passed by value (__grid_constant__)
            "tmap4": ctypes.c_uint64 * 64}  # four of them


def encode_tensor_map(address: int, dims, strides, box, swizzle: int = 128, l2_promotion: int = 3,
                      elem_bytes: int = 2) -> bytes:
    """A CUtensorMap (128 bytes) over 16-bit (or, ``elem_bytes=1``, 8-bit) elements: ``dims`` innermost first,
    ``strides`` in bytes of dims 1.., ``box`` the copy's extent per dim; ``swizzle`` 0, 32, 64 or 128 bytes, L2
    promotion (CUtensorMapL2promotion: 3 = 256 bytes), out-of-bounds zero-filled."""
    lib = ctypes.CDLL("libcuda.so.1")
    fn = lib.cuTensorMapEncodeTiled
    rank = len(dims)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
                   ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
                   ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    buf = ctypes.create_string_buffer(128 + 64)  # the driver's CUtensorMap is 64-byte aligned
    at = (ctypes.addressof(buf) + 63) & ~63
    # CU_TENSOR_MAP_DATA_TYPE_UINT8 / UINT16, CU_TENSOR_MAP_SWIZZLE_NONE / 32B / 64B / 128B
    dtype, mode = {1: 0, 2: 1}[elem_bytes], {0: 0, 32: 1, 64: 2, 128: 3}[swizzle]
    err = fn(at, dtype, rank, address, (ctypes.c_uint64 * rank)(*dims), (ctypes.c_uint64 * (rank - 1))(*strides),
             (ctypes.c_uint32 * rank)(*box), (ctypes.c_uint32 * rank)(*([1] * rank)), 0, mode, l2_promotion, 0)
    if err:
        raise RuntimeError(f"cuTensorMapEncodeTiled failed with CUresult {err} ({_error_name(err)})")
    return ctypes.string_at(at, 128)


class PreparedLaunch:
    """One kernel with its argument list packed once; ``args[i].value = ...`` then ``launch(stream)``.

    ``arg_types``: "u64" | "i32" | "f32" per kernel parameter; ``pdl`` None: the package's default for the arch
    the kernel was compiled for (every kernel of the package waits for the one before it, kvp_pdl.cuh). Not
    thread-safe (a plan holds a lock).
    """

    def __init__(self, ld: Loaded, name: str, arg_types, block: int, smem: int, pdl: bool | None, launcher: str):
        if pdl is None:
            pdl = configs.pdl_enabled(ld.arch)
        self.args = [_C_TYPES[t]() for t in arg_types]
        self._kernel = ld.kernels[name]
        self._launcher = launcher
        self._block, self._smem, self._pdl = block, smem, pdl
        if launcher == "driver":
            self._fn = _driver_launch_fn()
            self._func = ctypes.c_void_p(ld.functions[name])
            self._params = (ctypes.c_void_p * len(self.args))(*[ctypes.addressof(a) for a in self.args])
            self._attr = _LaunchAttribute()
            self._attr.id = _PROGRAMMATIC_STREAM_SERIALIZATION
            self._attr.value.i = 1
            c = _LaunchConfig()
            c.gridDimX = c.gridDimY = c.gridDimZ = 1
            c.blockDimX, c.blockDimY, c.blockDimZ = block, 1, 1
            c.sharedMemBytes = smem
            c.attrs = ctypes.pointer(self._attr)
            c.numAttrs = 1 if pdl else 0
            self._cfg = c
            self._cfg_ref = ctypes.byref(c)
        else:
            self._cc_configs: dict = {}

    def launch(self, grid: tuple, stream: int) -> None:
        if self._launcher == "driver":
            c = self._cfg
            c.gridDimX, c.gridDimY, c.gridDimZ = grid
            c.hStream = stream
            err = self._fn(self._cfg_ref, self._func, self._params, None)
            if err:
                raise RuntimeError(f"cuLaunchKernelEx failed with CUresult {err} ({_error_name(err)})")
            return
        cc = build._import_cuda_core()
        cfg = self._cc_configs.get(grid)
        if cfg is None:
            kw = dict(grid=grid, block=self._block, shmem_size=self._smem)
            try:
                cfg = cc.LaunchConfig(programmatic_stream_serialization=self._pdl, **kw)
            except TypeError:  # cuda.core without the PDL option: a plain launch is just as correct
                cfg = cc.LaunchConfig(**kw)
            self._cc_configs[grid] = cfg
        cc.launch(_cc_stream(stream), cfg, self._kernel, *self.args)


def _error_name(err: int) -> str:
    try:
        from cuda.bindings import driver

        return str(driver.cuGetErrorName(driver.CUresult(err))[1])
    except Exception:
        return "?"


class _TorchStream:
    """A raw stream handle in the ``__cuda_stream__`` protocol (cuda.core launcher)."""

    __slots__ = ("handle",)

    def __init__(self, handle: int):
        self.handle = handle

    def __cuda_stream__(self):
        return (0, self.handle)


_streams: dict[int, object] = {}


def _cc_stream(handle: int):
    s = _streams.get(handle)
    if s is None:
        cc = build._import_cuda_core()
        if handle == 0 and hasattr(cc, "LEGACY_DEFAULT_STREAM"):
            s = cc.LEGACY_DEFAULT_STREAM
        elif hasattr(cc.Stream, "from_handle"):
            s = cc.Stream.from_handle(handle)
        else:
            s = _TorchStream(handle)
        if len(_streams) > 64:
            _streams.clear()
        _streams[handle] = s
    return s


def current_stream_handle(torch, index: int) -> int:
    """torch's current stream on device ``index`` as a raw handle (the cheap private call when present)."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return raw(index)
    return torch.cuda.current_stream(index).cuda_stream


def per_device(make):
    """``get(index)``: ``make(index)`` once per GPU index, thread-safe (a module's prepared launches on each GPU)."""
    made: dict = {}
    lock = threading.Lock()

    def get(index: int):
        with lock:
            if index not in made:
                made[index] = make(index)
            return made[index]

    return get


def launch_on(torch, index: int, launch: PreparedLaunch, values, grid: tuple) -> None:
    """Pack ``values`` into ``launch``'s arguments and launch it on torch's current stream of GPU ``index``, in
    that GPU's context (a module is loaded into one device's context). Not thread-safe: callers hold a lock."""
    for arg, v in zip(launch.args, values):
        arg.value = v
    with torch.cuda.device(index):
        launch.launch(grid, current_stream_handle(torch, index))
