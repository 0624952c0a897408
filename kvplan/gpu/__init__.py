"""Everything that needs the GPU stack (torch, pynvml): detection, measurement, verify's forward pass. The only
package outside kernels/ that imports them, always inside functions, so importing kvplan stays light."""
