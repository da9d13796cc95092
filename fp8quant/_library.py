"""Defining an op once: its two torch.library ops, their fake kernels, and the public call with its
eager fast path.

An op that writes outputs (codes, scales, ...) is two ops of the "fp8quant" library:
``fp8quant::<name>(<inputs>) -> (Tensor, ...)``, which allocates its outputs, and
``fp8quant::<name>_out(<first input>, Tensor(a1!) out, ..., <other inputs>) -> ()``, which writes
the caller's (the schema's (a1!) lets torch.compile functionalize it). An op module gives three
functions over the inputs in schema order:

- ``check(*inputs, outs)``: every static check (no data read), also run on fake tensors;
- ``allocate(*inputs)``: new output tensors;
- ``run(*inputs, outs, outputs_given)``: checks that read data (overlap), then the backend.

An input the op writes in place (the fused RMSNorm's residual) is declared in the schema as
``Tensor(r!)`` and its position given in ``mutated``: its version counter is bumped after a call.

The ops are defined with torch.library.Library and schemas written out, not with
torch.library.custom_op, whose Python layers (an autograd kernel, an aliasing check, version bumps)
cost a call through torch.ops, which is what compiled code makes, 15-25 us more on an H200's host
(docs/design.md). No autograd formula is registered, as for vLLM's and SGLang's ops: the public
call runs the op under no_grad when an input requires grad, so its outputs never do.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional, Sequence

import torch

LIBRARY = torch.library.Library("fp8quant", "DEF")
OPS: dict[str, "QuantOp"] = {}  # every op, by name (tests run the library checks over all of them)


def mark_written(*tensors: torch.Tensor) -> None:
    """Bump the version counters of outputs a kernel wrote through data pointers, which autograd
    cannot see (a no-op for inference tensors). One tensor per call: increment_version takes a
    sequence only since torch 2.5."""
    for t in tensors:
        torch.autograd.graph.increment_version(t)


def dispatcher_not_needed(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether an eager call may run the op's implementation directly rather than through torch.ops:
    its first tensor is on a CUDA device, nothing is tracing (torch.compile, export), no Python
    dispatch or torch-function mode is active (fake tensors, profilers' and users' modes), every
    tensor is a plain torch.Tensor and none needs autograd. There the dispatcher only forwards the
    call (~2.7 us on an H200's host); everywhere else, CPU and meta tensors too, calls go through
    the registered ops."""
    return (
        tensors[0].is_cuda
        and not torch.compiler.is_compiling()
        and torch._C._len_torch_dispatch_stack() == 0
        and torch._C._len_torch_function_stack() == 0
        and all(type(t) is torch.Tensor and not t.requires_grad for t in tensors)
    )


class QuantOp:
    """An op with outputs, defined as `name` and `name_out` (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        inputs_schema: str,
        outputs: Sequence[str],
        check: Callable,
        allocate: Callable,
        run: Callable,
        mutated: Sequence[int] = (),
    ):
        self.name, self.outputs, self.mutated = name, tuple(outputs), tuple(mutated)
        self.check, self.allocate, self.run = check, allocate, run
        first, rest = inputs_schema.split(", ", 1)
        written = ", ".join(f"Tensor(a{i + 1}!) {o}" for i, o in enumerate(self.outputs))
        LIBRARY.define(f"{name}({inputs_schema}) -> ({', '.join('Tensor' for _ in self.outputs)})")
        LIBRARY.define(f"{name}_out({first}, {written}, {rest}) -> ()")
        for op_name, impl, fake in (
            (name, self._functional, self._functional_fake),
            (f"{name}_out", self._out, self._out_fake),
        ):
            # One implementation for every device: `run` picks the backend from the inputs.
            LIBRARY.impl(op_name, impl, "CompositeExplicitAutograd")
            torch.library.register_fake(f"fp8quant::{op_name}", fake, lib=LIBRARY)
        self.functional_op = getattr(torch.ops.fp8quant, name).default
        self.out_op = getattr(torch.ops.fp8quant, f"{name}_out").default
        # Defaults of the inputs, for calls through torch.ops that leave trailing ones out.
        self._defaults = [a.default_value if a.has_default_value() else None for a in self.functional_op._schema.arguments]
        OPS[name] = self

    def _inputs(self, args: tuple) -> tuple:
        return (*args, *self._defaults[len(args):])

    def _functional(self, *args):
        args = self._inputs(args)
        self.check(*args, outs=(None,) * len(self.outputs))
        outs = self.allocate(*args)
        self.run(*args, outs=outs, outputs_given=False)
        self._mark_mutated(args)
        return outs

    def _mark_mutated(self, inputs: tuple) -> None:
        mark_written(*(inputs[i] for i in self.mutated if inputs[i] is not None))

    def _functional_fake(self, *args):
        args = self._inputs(args)
        self.check(*args, outs=(None,) * len(self.outputs))
        return self.allocate(*args)

    def _split_out(self, args: tuple) -> tuple[tuple, tuple]:
        n = len(self.outputs)
        return self._inputs((args[0], *args[1 + n :])), tuple(args[1 : 1 + n])

    def _out(self, *args):
        inputs, outs = self._split_out(args)
        self.check(*inputs, outs=outs)
        self.run(*inputs, outs=outs, outputs_given=True)
        mark_written(*outs)
        self._mark_mutated(inputs)

    def _out_fake(self, *args):
        inputs, outs = self._split_out(args)
        self.check(*inputs, outs=outs)

    def _complete(self, inputs: tuple, outs: tuple) -> tuple:
        if all(o is not None for o in outs):
            return outs
        new = self.allocate(*inputs)
        return tuple(o if o is not None else n for o, n in zip(outs, new))

    def __call__(self, inputs: tuple, outs: tuple[Optional[torch.Tensor], ...]) -> tuple:
        """The public call: the checks first (the same errors on every device and while tracing),
        then the implementation directly where nothing needs the dispatcher, else through torch.ops."""
        self.check(*inputs, outs=outs)
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
        given = [o for o in outs if o is not None]
        if dispatcher_not_needed(tensors + given):
            if len(given) != len(outs):
                outs = self._complete(inputs, outs)
            self.run(*inputs, outs=outs, outputs_given=bool(given))
            mark_written(*given)  # as the _out op does through the dispatcher
            self._mark_mutated(inputs)
            return outs
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors + given)
        with torch.no_grad() if needs_grad else contextlib.nullcontext():
            if not given:
                return self.functional_op(*inputs)
            outs = self._complete(inputs, outs)
            self.out_op(inputs[0], *outs, *inputs[1:])
            return outs
