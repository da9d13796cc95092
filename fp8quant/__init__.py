"""fp8quant: FP8 activation quantization for LLM inference.

    q, scale = fp8quant.per_token_quant_fp8(x)

x: (..., H) float16 / bfloat16 / float32; q: float8_e4m3fn codes of x's shape; scale: float32
(..., 1), with x ~= q.float() * scale. fp8quant.reference defines the numbers; every backend
matches it bit for bit. One module per op under fp8quant/ops (docs/adding-an-op.md).
"""

__version__ = "0.1.0"

from .ops.per_token import per_token_quant_fp8  # noqa: E402
from .ops.per_token_group import per_token_group_quant_fp8  # noqa: E402
from .ops.per_tensor import per_tensor_quant_fp8  # noqa: E402
from .ops.rms_norm_quant import rms_norm_quant_fp8  # noqa: E402
from .ops.silu_and_mul_quant import silu_and_mul_quant_fp8  # noqa: E402

__all__ = [
    "per_token_quant_fp8", "per_token_group_quant_fp8", "per_tensor_quant_fp8", "rms_norm_quant_fp8",
    "silu_and_mul_quant_fp8", "__version__",
]
