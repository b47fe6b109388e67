import pytest
from pydantic import BaseModel

from automatos import CycleError, StructuredOutputError
from automatos.llm import ManagedLLM, Message, complete_structured, extract_json
from automatos.llm.structured import pydantic_parser
from automatos.settings import LLMSettings
from automatos.testing import Fault, ScriptedLLM


class Answer(BaseModel):
    name: str
    score: float


SCHEMA = Answer.model_json_schema()
ASK = [Message("user", "rate it")]


async def test_valid_json_first_time() -> None:
    llm = ScriptedLLM(['{"name": "x", "score": 0.5}'])
    result = await complete_structured(llm, ASK, pydantic_parser(Answer), json_schema=SCHEMA)
    assert result.value == Answer(name="x", score=0.5)
    assert len(result.completions) == 1
    assert llm.calls[0].json_schema == SCHEMA


@pytest.mark.parametrize(
    "text",
    [
        'Sure! ```json\n{"name": "x", "score": 1}\n```',
        '```\n{"name": "x", "score": 1}```',
        'Here you go: {"name": "x", "score": 1}',
    ],
)
def test_json_is_found_in_prose_and_fences(text: str) -> None:
    assert Answer.model_validate_json(extract_json(text)).name == "x"


async def test_broken_json_is_repaired_once_with_the_error_shown() -> None:
    llm = ScriptedLLM([Fault.malformed_json('{"name": "x", "sco'), '{"name": "x", "score": 2}'])
    result = await complete_structured(llm, ASK, pydantic_parser(Answer), json_schema=SCHEMA)
    assert result.value.score == 2
    assert len(result.completions) == 2
    repair = llm.calls[1].messages
    assert repair[-2].role == "assistant"
    assert repair[-2].content.startswith('{"name"')
    assert "could not be used" in repair[-1].content
    assert "invalid JSON" in repair[-1].content


async def test_a_second_failure_is_a_typed_error() -> None:
    llm = ScriptedLLM(['{"name": 1}', '{"score": "high"}'])
    with pytest.raises(StructuredOutputError, match="score") as info:
        await complete_structured(llm, ASK, pydantic_parser(Answer), json_schema=SCHEMA)
    assert info.value.raw == '{"score": "high"}'


async def test_an_engine_error_from_the_parser_is_kept() -> None:
    def parse(text: str) -> str:
        raise CycleError(["a", "b", "a"])

    llm = ScriptedLLM(["x", "y"])
    with pytest.raises(CycleError):
        await complete_structured(llm, ASK, parse, json_schema=None)
    assert "a -> b -> a" in llm.calls[1].messages[-1].content


async def test_transient_faults_inside_structured_calls_are_retried() -> None:
    llm = ScriptedLLM([Fault.rate_limit(0), Fault.server_error(), '{"name": "x", "score": 3}'])
    wrapped = ManagedLLM(llm, LLMSettings(backoff_base_s=0.001, backoff_max_s=0.001))
    result = await complete_structured(wrapped, ASK, pydantic_parser(Answer), json_schema=SCHEMA)
    assert result.value.score == 3
