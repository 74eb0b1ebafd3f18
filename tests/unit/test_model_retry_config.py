from __future__ import annotations

import pytest

from ocrbatch.config import RunConfig
from ocrbatch.errors import ConfigError
from ocrbatch.model import Block, JobStatus, Line, PageText, Word, check_job_transition
from ocrbatch.retry import RetryPolicy


def test_page_text_round_trips_through_its_dict_form() -> None:
    w = Word("hello", (1, 2, 30, 12), 0.93, polygon=((1, 2), (30, 2), (30, 12), (1, 12)))
    page = PageText(
        "hello",
        0.93,
        100,
        50,
        (Block((Line((w,), (1, 2, 30, 12), 0.9),), (0, 0, 40, 20)),),
        dpi=300.0,
    )
    assert PageText.from_dict(page.to_dict()) == page
    assert [x.text for x in page.words] == ["hello"]


def test_job_transitions() -> None:
    assert check_job_transition(JobStatus.RUNNING, JobStatus.PAUSED)
    assert check_job_transition(JobStatus.PAUSED, JobStatus.RUNNING)
    assert not check_job_transition(JobStatus.CANCELLED, JobStatus.RUNNING)
    assert not check_job_transition(JobStatus.PENDING, JobStatus.COMPLETED)


def test_retry_policy_backs_off_exponentially_and_stops() -> None:
    p = RetryPolicy(max_retries=3, backoff=1.0, backoff_max=3.0, jitter=0.0)
    assert [p.decide(True, n).delay for n in range(3)] == [1.0, 2.0, 3.0]  # type: ignore[union-attr]
    assert p.decide(True, 3) is None
    assert p.decide(False, 0) is None  # a corrupt file fails the same way every time


def test_retry_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(max_retries=5, backoff=2.0, jitter=0.25)
    delays = [p.decide(True, 1).delay for _ in range(200)]  # type: ignore[union-attr]
    assert min(delays) >= 3.0 and max(delays) <= 5.0 and len(set(delays)) > 1


def test_config_formats_always_include_jsonl_and_reject_unknown() -> None:
    assert RunConfig(formats="csv,txt").format == ("jsonl", "csv", "txt")
    with pytest.raises(ValueError, match="unknown format"):
        RunConfig(formats="docx")


def test_result_key_depends_on_engine_options_not_on_runtime_settings() -> None:
    a = RunConfig(engine_options={"lang": "eng"}, workers=1)
    b = RunConfig(engine_options={"lang": "eng"}, workers=8, timeout=5)
    c = RunConfig(engine_options={"lang": "deu"})
    assert a.result_key() == b.result_key() != c.result_key()


def test_make_config_reports_a_bad_engine_option_in_one_line() -> None:
    from ocrbatch.service import make_config

    # In the CLI's words: the option's name, what is wrong, what was given.
    with pytest.raises(ConfigError, match=r"^--psm: .* less than or equal to 13 \(given: 99\)$"):
        make_config({"engine_options": {"psm": 99}})
    with pytest.raises(
        ConfigError, match=r"^--format: unknown format 'text' .*\(given: 'jsonl,text'\)"
    ):
        make_config(format="jsonl,text")
    with pytest.raises(ConfigError, match=r"^--engine-opt bogus \(tesseract engine\): "):
        make_config({"engine_options": {"bogus": 1}})
    with pytest.raises(ConfigError, match="unknown engine 'nope'"):
        make_config({"engine": "nope"})


def test_distributed_mode_without_ray_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from ocrbatch.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"needs Ray.*pip install 'ocrbatch\[ray\]'"):
        make_executor("distributed", 2, timeout=1.0, recycle_after=0)


def test_tesseract_shortcuts_reach_the_auto_engines_tesseract() -> None:
    from ocrbatch.service import make_config

    cfg = make_config(engine="auto", lang="eng", psm=6)
    assert cfg.engine_options["tesseract"] == {"lang": "eng", "psm": 6}
    with pytest.raises(ConfigError, match=r"^--lang apply to the tesseract and auto engines"):
        make_config(engine="fake", lang="eng")
