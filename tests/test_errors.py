from automatos import errors


def test_every_error_descends_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AutomatosError)


def test_retryable_flags() -> None:
    assert errors.is_retryable(errors.RateLimitedError("x", retry_after=1))
    assert errors.is_retryable(errors.ProviderUnavailableError("x"))
    assert errors.is_retryable(errors.LLMTimeoutError("x"))
    assert errors.is_retryable(errors.SubtaskTimeoutError("x"))
    assert not errors.is_retryable(errors.ProviderRequestError("x"))
    assert not errors.is_retryable(errors.StructuredOutputError("x"))
    assert not errors.is_retryable(errors.ConfigurationError("x"))
    assert not errors.is_retryable(errors.CycleError(["a", "b", "a"]))
    assert not errors.is_retryable(errors.WorkflowCancelledError("x"))
    assert not errors.is_retryable(ValueError("a bug is not retried"))


def test_messages_name_the_problem() -> None:
    assert "a -> b -> a" in str(errors.CycleError(["a", "b", "a"]))
    assert "x -> y, z" in str(errors.DanglingDependencyError({"x": ["y", "z"]}))
    assert "p, q" in str(errors.DuplicateSubtaskError(["p", "q"]))
