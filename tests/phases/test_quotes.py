from hypothesis import given
from hypothesis import strategies as st

from automatos.phases.quotes import CUT_MARK, fit_quotes


def test_short_outputs_stay_whole_and_long_ones_share_the_rest() -> None:
    texts = ["a" * 100, "b" * 5000, "c" * 5000]
    fitted = fit_quotes(texts, total=2100, each=10_000)
    assert fitted[0] == "a" * 100
    assert fitted[1] == "b" * 1000 + CUT_MARK
    assert fitted[2] == "c" * 1000 + CUT_MARK


def test_the_per_output_limit_holds_when_the_total_is_not_reached() -> None:
    assert fit_quotes(["x" * 50, "y"], total=1000, each=10) == ["x" * 10 + CUT_MARK, "y"]


def test_what_fits_is_left_alone() -> None:
    texts = ["one", "two", ""]
    assert fit_quotes(texts, total=6, each=3) == texts


@given(
    texts=st.lists(st.text(max_size=300), max_size=30),
    total=st.integers(0, 3000),
    each=st.integers(0, 500),
)
def test_the_budget_always_holds_and_nothing_is_cut_needlessly(
    texts: list[str], total: int, each: int
) -> None:
    fitted = fit_quotes(texts, total, each)
    kept = [f.removesuffix(CUT_MARK) if f != t else f for f, t in zip(fitted, texts, strict=True)]
    assert sum(len(k) for k in kept) <= max(total, 0)
    for k, t in zip(kept, texts, strict=True):
        assert t.startswith(k) and len(k) <= each
    if sum(min(len(t), each) for t in texts) <= total:  # fits: only the per-output cut
        assert all(len(k) == min(len(t), each) for k, t in zip(kept, texts, strict=True))
    else:  # the budget is used, but for what equal shares cannot divide
        assert sum(len(k) for k in kept) > total - len(texts)
