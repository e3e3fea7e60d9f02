"""The command bar's pure parts: what a line means (verbs), what completes a word, the history's walk and
search, the run settings `:cd` and `:env` change."""

from __future__ import annotations

from pathlib import Path

import pytest

from contree_tui.tui import verbs as v
from contree_tui.tui.command_log import CommandLog, Outcome
from contree_tui.tui.completion import (
    Kind,
    best_completion,
    complete_line,
    path_candidates,
    slot_for,
    split_image_path,
    static_candidates,
)
from contree_tui.tui.history import CommandHistory, HistoryWalk, ReverseSearch
from contree_tui.tui.model import Lineage, Snapshot
from contree_tui.tui.run_settings import RunSettings


@pytest.mark.parametrize(("line", "verb"), [
    ("echo hi", v.Shell("echo hi")),
    ("  ls -la  ", v.Shell("ls -la")),
    (": > /empty", v.Shell(": > /empty")),  # the shell's own `:` is not a verb
    (":;true", v.Shell(":;true")),
    (":import docker.io/library/alpine:3", v.Import("docker.io/library/alpine:3")),
    (":import oci:/srv/layouts/app:v2 app:v2", v.Import("oci:/srv/layouts/app:v2", "app:v2")),
    (":tag v1", v.Tag("v1")),
    (":untag", v.Untag(None)),
    (":untag v1", v.Untag("v1")),
    (":cd /usr/lib", v.Cd("/usr/lib")),
    (":cd", v.Cd(None)),
    (":env", v.Env()),
    (':env GREETING="hello world" B=', v.Env((("GREETING", "hello world"), ("B", "")))),
    (":env -GREETING A=1", v.Env((("A", "1"),), ("GREETING",))),
    (":disposable on", v.Disposable(True)),
    (":DISPOSABLE Off", v.Disposable(False)),
    (":parallel echo a ;; echo b;;echo 'c;d'", v.Parallel(("echo a", "echo b", "echo 'c;d'"))),
    (":download /etc/hostname", v.Download("/etc/hostname")),
    (":download /etc/hostname out/host", v.Download("/etc/hostname", "out/host")),
    (":sync on", v.Sync(True)),
    (":diff v1", v.Diff("v1", ".")),
    ("diff 3f2a9c1d v2", v.Diff("3f2a9c1d", "v2")),
    (":sync off", v.Sync(False)),
    (":cancel", v.Cancel()),
    (":wait", v.Wait()),
    (":wait all", v.Wait(everyone=True)),
    ("tag v1", v.Tag("v1")),  # a bare first word that is a verb is the verb
    ("env A=1", v.Env((("A", "1"),))),
    ("parallel a ;; b", v.Parallel(("a", "b"))),
    ("!tag v1", v.Shell("tag v1")),  # `!` forces the shell
    ("! env", v.Shell("env")),
    (" env", v.Shell("env")),  # so does a leading space
    ("Tag v1", v.Shell("Tag v1")),  # verbs are lower case, programs may not be
    ("tga v1", v.Shell("tga v1")),  # a near miss is still the shell's (ls is a near miss of nothing)
    ("tag=1; echo $tag", v.Shell("tag=1; echo $tag")),
])
def test_a_line_is_a_shell_command_or_a_verb(line: str, verb: v.Verb) -> None:
    assert v.parse_line(line) == verb


@pytest.mark.parametrize(("line", "reason", "usage"), [
    (":frobnicate", "unknown verb :frobnicate", "one of :import"),
    (":tag", ":tag takes 1 argument, got 0", ":tag NAME"),
    (":tag a b", ":tag takes 1 argument, got 2", ":tag NAME"),
    (":disposable maybe", "'maybe' is neither on nor off", ":disposable on|off"),
    (":sync", ":sync takes 1 argument, got 0", ":sync on|off"),
    (":diff", ":diff takes 1 to 2 arguments, got 0", ":diff A [B]"),
    (":env 1X=2", "'1X' is not a variable name", ":env"),
    (":env NOVALUE", "'NOVALUE' is not K=V", ":env"),
    (":env -", "removes nothing", ":env"),
    (":parallel", "give commands separated by ;;", ":parallel CMD"),
    (":parallel a ;; ;; b", "none may be empty", ":parallel CMD"),
    (":download", ":download takes 1 to 2 arguments, got 0", ":download PATH [DEST]"),
    (":cancel now", ":cancel takes 0 arguments, got 1", ":cancel"),
    (":import", ":import takes 1 to 2 arguments, got 0", ":import REF [TAG]"),
    (":import a b c", ":import takes 1 to 2 arguments, got 3", ":import REF [TAG]"),
    (":tag 'unterminated", "No closing quotation", ":tag NAME"),
    ("   ", "nothing to run", ""),
    ("!", "nothing to run", ""),
    (":tga", "unknown verb :tga (did you mean :tag?)", "one of :import"),
    ("cd /tmp && ls", ":cd takes 0 to 1 argument, got 3 (!cd /tmp && ls runs it in the shell)", ":cd"),
])
def test_bad_verbs_say_why_and_how(line: str, reason: str, usage: str) -> None:
    with pytest.raises(v.VerbError) as raised:
        v.parse_line(line)
    assert reason in raised.value.reason
    assert raised.value.usage.startswith(usage) or usage in raised.value.usage
    assert reason in str(raised.value) and "usage:" in str(raised.value) if usage else True


def test_every_verb_has_a_usage_and_describe_round_trips() -> None:
    for line in (":tag v1", ":untag", ":cd /tmp", ":env A=1 -B", ":disposable on", ":network off",
                 ":parallel a ;; b",
                 ":download /x y", ":sync off", ":cancel", ":wait", ":import alpine", ":import alpine:3 base",
                 ":diff v1 .", ":diff 3f2a9c1d a0b1", ":pipeline", ":pipeline p.py:f 30 --n=2",
                 ":pipeline p.py:f --image tag:py --force -- --force"):
        verb = v.parse_line(line)
        assert v.parse_line(v.describe(verb)) == verb
    assert set(v.VERBS) == {"import", "tag", "untag", "cd", "env", "disposable", "network", "parallel", "download",
                            "sync", "cancel", "wait", "diff", "pipeline"}


def test_the_intent_says_verb_or_shell_as_the_line_is_typed() -> None:
    assert v.intent("ta").startswith("shell:")
    assert v.intent("tag").startswith("verb: tag · :tag NAME")
    assert v.intent(":tag v").startswith("verb: tag")
    assert v.intent("!tag").startswith("shell: a program named tag")
    assert v.intent(" ls").startswith("shell: sh -c")
    assert v.intent(":tga") == "unknown verb :tga · did you mean :tag?"
    assert v.intent("").startswith("type a verb (import tag")


@pytest.mark.parametrize(("word", "near"), [
    ("tga", "tag"), ("tagg", "tag"), ("sycn", "sync"), ("downlaod", "download"), ("cdd", "cd"), ("wiat", "wait"),
    ("ls", None), ("xy", None), ("grep", None), ("tag", None), ("", None),
])
def test_a_near_miss_is_within_two_edits_and_fewer_than_its_letters(word: str, near: str | None) -> None:
    assert v.near_verb(word) == near


def test_a_forced_shell_command_describes_with_its_bang() -> None:
    assert v.describe(v.parse_line("!tag v1")) == "!tag v1"
    assert v.parse_line(v.describe(v.parse_line("!tag v1"))) == v.Shell("tag v1")
    assert v.describe(v.parse_line("ls")) == "ls"


# Completion --------------------------------------------------------------------------------------------

def test_slots_say_what_the_last_word_names() -> None:
    assert slot_for(":ta") == slot_for(":ta") and slot_for(":ta").kind is Kind.VERB  # type: ignore[union-attr]
    assert slot_for(":tag v") == v_slot(Kind.TAG, "v", 5)
    assert slot_for(":untag ") == v_slot(Kind.TAG, "", 7)
    assert slot_for(":cd /us") == v_slot(Kind.IMAGE_DIR, "/us", 4)
    assert slot_for(":download /etc/ho") == v_slot(Kind.IMAGE_PATH, "/etc/ho", 10)
    assert slot_for(":download /etc/hostname ou") == v_slot(Kind.LOCAL_PATH, "ou", 24)
    assert slot_for(":sync o") == v_slot(Kind.CHOICE, "o", 6)
    assert slot_for("cat /etc/pa") == v_slot(Kind.IMAGE_PATH, "/etc/pa", 4)
    assert slot_for("make OUT=/tm") == v_slot(Kind.IMAGE_PATH, "/tm", 9)
    assert slot_for(":parallel ls /u") == v_slot(Kind.IMAGE_PATH, "/u", 13)
    assert slot_for("cat pass") is None, "a relative word in a shell command may be anything"
    assert slot_for(":tag a b") is None
    assert slot_for(": > /x") == v_slot(Kind.IMAGE_PATH, "/x", 4)
    assert slot_for("") is None
    assert slot_for("ta") == v_slot(Kind.VERB, "ta", 0), "a bare first word may be a verb"
    assert slot_for("tag v") == v_slot(Kind.TAG, "v", 4)
    assert slot_for("!ta") is None, "a forced shell command's program is not completed"


def v_slot(kind: Kind, word: str, start: int):  # type: ignore[no-untyped-def]
    from contree_tui.tui.completion import Slot
    return Slot(kind, word, start)


def test_verbs_tags_and_choices_complete_to_the_line() -> None:
    slot = slot_for(":dis")
    assert slot is not None
    assert complete_line(":dis", slot, static_candidates(slot)) == ":disposable "
    slot = slot_for(":d")
    assert slot is not None
    assert complete_line(":d", slot, static_candidates(slot)) == ":diff ", "ambiguous: the first, tab narrows"
    slot = slot_for(":untag rel")
    assert slot is not None
    assert complete_line(":untag rel", slot, static_candidates(slot, ["release-1", "release-2", "v1"])) \
        == ":untag release-", "several matches: their common start"
    slot = slot_for(":sync of")
    assert slot is not None
    assert complete_line(":sync of", slot, static_candidates(slot)) == ":sync off"


def test_paths_complete_inside_the_snapshot_relative_to_the_cwd() -> None:
    word = split_image_path("/usr/li")
    assert (word.directory, word.typed_dir, word.base) == ("/usr", "/usr/", "li")
    word = split_image_path("bin/x", cwd="/usr")
    assert (word.directory, word.typed_dir, word.base) == ("/usr/bin", "bin/", "x")
    assert split_image_path("/").directory == "/"
    entries = [("lib", True), ("libexec", True), ("local", True), (".hidden", False), ("list", False)]
    assert path_candidates(split_image_path("/usr/li"), entries) == ["/usr/lib/", "/usr/libexec/", "/usr/list"]
    assert path_candidates(split_image_path("/usr/li"), entries, dirs_only=True) == ["/usr/lib/", "/usr/libexec/"]
    assert path_candidates(split_image_path("/usr/."), entries) == ["/usr/.hidden"]
    assert best_completion("/usr/lo", ["/usr/local/"]) == "/usr/local/"
    assert best_completion("/usr/x", ["/usr/local/"]) is None


# History ----------------------------------------------------------------------------------------------

def test_history_persists_skips_repeats_and_is_cut_to_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history"
    history = CommandHistory(path, limit=3)
    for line in ("a", "b", "b", "c", "multi\nline", ""):
        history.add(line)
    assert history.entries == ["b", "c", "multi line"]
    assert CommandHistory(path, limit=3).entries == ["b", "c", "multi line"], "read back by the next session"
    for n in range(10):
        history.add(f"x{n}")
    again = CommandHistory(path, limit=3)
    assert again.entries == ["x7", "x8", "x9"]
    assert len(path.read_text().splitlines()) == 3, "a file past twice the limit is cut back"


def test_an_unwritable_history_costs_persistence_not_the_session(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = CommandHistory(blocker / "history")  # a path under a regular file
    history.add("echo still here")
    assert history.entries == ["echo still here"]


def test_up_and_down_walk_from_the_draft_and_back() -> None:
    history = CommandHistory(None)
    for line in ("one", "two", "three"):
        history.add(line)
    walk = HistoryWalk(history, "draft")
    assert [walk.older(), walk.older(), walk.older(), walk.older()] == ["three", "two", "one", None]
    assert [walk.newer(), walk.newer(), walk.newer(), walk.newer()] == ["two", "three", "draft", None]


def test_reverse_search_narrows_and_goes_older() -> None:
    history = CommandHistory(None)
    for line in ("make build", "ls /", "make test", "echo done"):
        history.add(line)
    search = ReverseSearch(history, "typed")
    assert search.type("ma") == "make test"
    assert search.older() == "make build"
    assert search.older() == "make build", "no older match: the current one stays"
    assert search.type("ls") == "ls /"
    assert search.type("nothing") is None
    assert search.original == "typed"


# Settings, lineage tags, command log ----------------------------------------------------------------------

def test_cd_is_relative_to_the_current_directory_and_env_sets_and_removes() -> None:
    settings = RunSettings()
    assert settings.cd("/usr") == "/usr"
    assert settings.cd("lib/../bin") == "/usr/bin"
    assert settings.cd("..") == "/usr"
    assert settings.cd(None) is None
    assert settings.cd("app", default="/srv") == "/srv/app"
    assert settings.update_env((("A", "1"), ("B", "2")), ()) == []
    assert settings.update_env((), ("A", "Z")) == ["Z"]
    assert settings.env == {"B": "2"}
    assert settings.describe_env() == "B=2"


def test_a_tag_lives_on_one_snapshot() -> None:
    lineage = Lineage([Snapshot("a", None, "busybox:latest"), Snapshot("b", "a", "v1"), Snapshot("c", "a")])
    lineage.set_tags("c", ("v1", "v2"))
    assert lineage.get("c").tag == "v1, v2"  # type: ignore[union-attr]
    assert lineage.get("b").tag is None, "the tag moved"  # type: ignore[union-attr]
    assert lineage.tags() == ["busybox:latest", "v1", "v2"]
    lineage.set_tags("c", ())
    assert lineage.get("c").tag is None  # type: ignore[union-attr]


def test_command_log_entries_finish_later() -> None:
    from datetime import UTC, datetime
    log = CommandLog(max_entries=2)
    pending = log.record(datetime.now(UTC), "run", "sleep 1")
    assert pending.outcome is Outcome.PENDING
    pending.finish("exit 0", ok=True)
    log.record(datetime.now(UTC), "rollback", "u", "working abc")
    log.record(datetime.now(UTC), "verb", ":tag x", "bad", ok=False)
    assert [e.kind for e in log.entries] == ["rollback", "verb"]
    assert log.entries[-1].outcome is Outcome.FAILED
