"""A mistyped command is one line on stderr with the likely command, exit 2 (argparse printed its whole usage)."""

from __future__ import annotations

import pytest

from contree_tui.main import main


@pytest.mark.parametrize(("argv", "line"), [
    (["imagse"], "contree-tui: unknown command 'imagse' (did you mean contree-tui images? "
                 "contree-tui --help lists them)"),
    (["engine", "stauts"], "contree-tui engine: unknown command 'stauts' (did you mean contree-tui engine status? "
                           "contree-tui engine --help lists them)"),
    (["xyzzy"], "contree-tui: unknown command 'xyzzy' (contree-tui --help lists them)"),
])
def test_a_typo_is_one_line_naming_the_command_meant(argv: list[str], line: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_other_usage_errors_keep_argparse_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["images", "--bogus"])
    assert "usage:" in capsys.readouterr().err


def test_an_options_bad_choice_keeps_argparses_message_naming_the_option(capsys: pytest.CaptureFixture[str]
                                                                         ) -> None:
    """`--format tarball` is not an unknown command: argparse's line names the option and its choices."""
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "tag:busybox:latest", "--format", "tarball", "out.tar"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --format: invalid choice: 'tarball'" in err and "unknown command" not in err, err
