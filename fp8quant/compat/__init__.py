"""Drop-in entry points with vLLM's (`fp8quant.compat.vllm`) and SGLang's (`fp8quant.compat.sglang`)
signatures: switch by changing an import. Where our numbers differ from the peer's, each module's
docstring says so."""
