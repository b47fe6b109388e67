"""Test doubles shipped with the package, for your tests as well as ours."""

from automatos.testing.scripted import Fault, Rule, ScriptedCall, ScriptedLLM, tool_call

__all__ = ["Fault", "Rule", "ScriptedCall", "ScriptedLLM", "tool_call"]
