"""The calculation a short task asks for, read from its own words."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatos.phases.evaluate.sums import claims_result, gives, numbers_in, sum_in


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("What is 17 * 23?", 391),
        ("What is 17 x 23?", 391),
        ("What is 17 × 23?", 391),
        ("What is 144 / 12?", 12),
        ("What is 1000 - 387?", 613),
        ("What is 3 * (4 + 5)?", 27),
        ("What is 45 divided by 5?", 9),
        ("What is 6 times 7?", 42),
        ("Calculate 18 * 5.", 90),
        ("How much is 15% of 80?", 12),
        ("What is the square root of 169?", 13),
        ("What is 2 to the power of 10?", 1024),
        ("What is 2^8?", 256),
    ],
)
def test_the_result_of_the_sum_a_task_asks_for(text: str, value: float) -> None:
    found = sum_in(text)
    assert found is not None and found.value == pytest.approx(value)


@pytest.mark.parametrize(
    "text",
    [
        "Write 3-5 sentences about cats.",  # a range, not a subtraction
        "In which year did World War II end?",
        "What is 1 / 0?",
        "What is 10 ** 10 ** 10?",  # no question anyone asks: not worked out
        "What is 2 + 2 and what is 3 * 3?",  # two sums: no one result
        "Explain in 120 words, with 3 examples and 2 diagrams, how 4 + 4 relates to the "
        "way 8 bits make a byte in a computer.",  # a long text: a number in it is data
        "What is the capital of France?",
    ],
)
def test_no_sum_where_there_is_no_one_sum_to_do(text: str) -> None:
    assert sum_in(text) is None


def test_an_answer_gives_the_result_as_it_is_written() -> None:
    assert numbers_in("It is 10,000 - 387 = 9,613 (or -5).") == {"10000", "387", "9613", "5"}
    assert gives(391, {"17", "23", "391"}) and not gives(391, {"17", "23", "69"})
    assert gives(12.5, {"12.5"}) and gives(1 / 3, {"0.33"}) and not gives(1 / 3, {"0"})
    assert gives(-42, numbers_in("The answer is -42."))
    asked = sum_in("What is 17 * 23?")
    assert asked is not None
    assert claims_result("17 * 23 = 50", numbers_in("17 * 23 = 50"), asked)
    assert claims_result("It is 50.", {"50"}, asked)
    # Its own numbers are no claim: "17 and 23 are both prime".
    assert not claims_result("17 and 23 are both prime.", {"17", "23"}, asked)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_has_no_sum_or_a_finite_result(text: str) -> None:
    found = sum_in(text)
    assert found is None or found.value == found.value  # not NaN
