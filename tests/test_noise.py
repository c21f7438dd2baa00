"""The known third-party noise is silenced narrowly: the one message, not its neighbours."""

import logging
import warnings

from peftlab.noise import KNOWN, quiet_known_noise


def test_only_the_known_messages_are_silenced(caplog):
    quiet_known_noise()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger="bitsandbytes.backends.cpu.ops"):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ...", "x")
        logger.warning("Something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["Something else went wrong"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_known_noise()  # catch_warnings reset the filters: install them again inside
        warnings.warn(
            "`is_gradient_checkpointing` is deprecated and will be removed in v6.",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("`something_else` is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["`something_else` is deprecated"]


def test_quieting_twice_adds_no_second_filter():
    quiet_known_noise()
    quiet_known_noise()
    for noise in KNOWN:
        if not noise.source.startswith("warnings:"):
            assert len(logging.getLogger(noise.source).filters) == 1, noise.source


def test_captured_transformers_log_keeps_the_lines_and_restores_the_handlers(capfd):
    from transformers.utils import logging as hf_logging

    from peftlab.noise import captured_transformers_log

    logger = hf_logging.get_logger("transformers.modeling_utils")
    before = list(logging.getLogger("transformers").handlers)
    with captured_transformers_log() as log:
        logger.warning("a LOAD REPORT line\nMISMATCH row")
    assert log.lines == ["a LOAD REPORT line", "MISMATCH row"]
    assert "LOAD REPORT" not in capfd.readouterr().err
    assert logging.getLogger("transformers").handlers == before  # the library's own handlers are back


def test_the_checkpointing_cache_line_is_silenced_on_both_releases_loggers(caplog):
    quiet_known_noise()
    for source in ("transformers.utils.generic", "transformers.models.opt.modeling_opt"):
        logger = logging.getLogger(source)
        with caplog.at_level(logging.WARNING, logger=source):
            logger.warning(
                "`use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`."
            )
            logger.warning("`use_cache=True` is something else")
    assert [r.getMessage() for r in caplog.records] == ["`use_cache=True` is something else"] * 2
