"""The ops, one module each (their public functions are exported by fp8quant)."""
