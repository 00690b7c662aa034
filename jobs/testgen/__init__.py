"""Test generation for changed functions without tests: the hypothesis ghostwriter, offline, and an optional
OpenAI-compatible LLM backend; every generated test is run before it is offered."""
