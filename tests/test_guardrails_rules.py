"""Guardrail rules: what they match, what cannot be saved, and a rule that cannot hang the relay."""

from __future__ import annotations

import time

import pytest

from gui_recorder.errors import PolicyRuleError
from gui_recorder.guardrails.rules import Rule, RuleSet, Scope, check_combination, compile_pattern
from gui_recorder.guardrails.typed import TypedGuard

from gui_recorder.protocol import Parser
from support.keys import CTRL, RETURN, keystroke

TIMEOUT_MS = 20


def rule(kind: str, value: list[str], action: str = "alert", source: str = "any", **kw) -> Rule:
    return Rule(name=kw.pop("name", f"{kind}:{value[0]}"), pattern=compile_pattern(kind, value, TIMEOUT_MS),
                action=action, source=source, **kw)


@pytest.mark.parametrize("line", ["shutdown /s /t 0", "format c: /q", "FORMAT D:", "diskpart",
                                  "net user eve S3cret! /add", "vssadmin delete shadows /all /quiet",
                                  "Stop-Computer -Force", "rm -rf /", "sudo rm -fr ~/x", "rm -r -f /srv"])
def test_the_destructive_windows_preset_matches_each_command(line):
    rules = RuleSet([rule("preset", ["destructive-windows-commands"])], TIMEOUT_MS)
    assert rules.match(line, "typed"), line


@pytest.mark.parametrize("line", ["echo formatted", "the shutdowns list", "net user eve", "rm -i old.txt",
                                  "vssadmin list shadows", "information", "Get-Computer"])
def test_the_preset_leaves_harmless_lines_alone(line):
    rules = RuleSet([rule("preset", ["destructive-windows-commands"])], TIMEOUT_MS)
    assert not rules.match(line, "typed"), line


def test_words_match_whole_words_case_insensitively_and_phrases_across_spaces():
    rules = RuleSet([rule("words", ["drop table", "passwd"])], TIMEOUT_MS)
    assert [h.matched for h in rules.match("psql -c 'DROP   TABLE users'", "typed")] == ["DROP   TABLE"]
    assert rules.match("passwd root", "screen")
    assert not rules.match("mypasswdfile", "typed"), "a word inside another word is not a match"


def test_sources_and_scopes_select_the_rules_that_apply():
    typed_only = rule("words", ["secret"], source="typed", name="t")
    screen_only = rule("words", ["secret"], source="screen", name="s")
    vendors = rule("words", ["secret"], scope=Scope(roles=("vendor",), connections=("prod",)), name="v")
    rules = RuleSet([typed_only, screen_only, vendors], TIMEOUT_MS)
    assert [h.rule.name for h in rules.match("a secret", "typed")] == ["t", "v"]
    assert [h.rule.name for h in rules.match("a secret", "screen")] == ["s", "v"]
    assert [r.name for r in rules.scoped("bob", "operator", "prod").rules] == ["t", "s"]
    assert [r.name for r in rules.scoped("eve", "vendor", "prod").rules] == ["t", "s", "v"]
    assert [r.name for r in rules.scoped("eve", "vendor", "test").rules] == ["t", "s"]
    tagged = RuleSet([rule("words", ["secret"], scope=Scope(tags=("prod", "pci")), name="p")], TIMEOUT_MS)
    assert [r.name for r in tagged.scoped("eve", "vendor", "db1", ("pci", "eu")).rules] == ["p"]
    assert tagged.scoped("eve", "vendor", "db1", ("test",)).rules == []
    assert tagged.scoped("eve", "vendor", "db1").rules == []
    assert Scope.from_dict(Scope(tags=("prod",)).to_dict()) == Scope(tags=("prod",))
    assert Scope.from_dict({"connections": ["a"]}).tags == ()  # policies saved before tags were a scope


@pytest.mark.parametrize("kind,value,why", [
    ("regex", ["(unclosed"], "does not compile"),
    ("regex", ["a" * 513], "at most 512"),
    ("regex", ["(a+)+$"], "catastrophic backtracking"),
    ("regex", ["(x+x+)+y"], "catastrophic backtracking"),
    ("regex", [r"(\w+\s?)+$"], "catastrophic backtracking"),
    ("preset", ["no-such-preset"], "unknown preset"),
    ("words", [" "], "1 to 200 characters"),
])
def test_unsafe_or_invalid_rules_are_refused_at_save_time(kind, value, why):
    with pytest.raises(PolicyRuleError, match=why):
        compile_pattern(kind, value, TIMEOUT_MS)


def test_block_is_only_for_typed_text():
    with pytest.raises(PolicyRuleError, match="typed"):
        check_combination("screen", "block")
    check_combination("typed", "block")
    check_combination("any", "block")


def test_a_backtracking_rule_at_run_time_stops_at_its_time_limit():
    # Saved without the save-time probe (e.g. an older row): the time limit still holds at run time.
    import regex

    slow = Rule(name="slow", pattern=regex.compile(r"(\w+\s?)+$"))
    rules = RuleSet([slow, rule("words", ["rm"])], TIMEOUT_MS)
    started = time.perf_counter()
    hits = rules.match("rm " + "word " * 400 + "!", "typed")
    elapsed = time.perf_counter() - started
    assert [h.rule.name for h in hits] == ["words:rm"], "the slow rule is skipped, the others still run"
    assert rules.timeouts == 1
    print(f"a catastrophic regex stopped after {elapsed * 1000:.1f} ms (limit {TIMEOUT_MS} ms)")


def _keys(text: str):
    return Parser().feed_text("".join(keystroke(c) for c in text))


def test_the_typed_guard_withholds_the_enter_of_a_blocked_line_and_its_release():
    guard = TypedGuard(RuleSet([rule("preset", ["destructive-windows-commands"], action="block")], TIMEOUT_MS))
    verdicts = [guard.key(ins) for ins in _keys("shutdown /s\n")]
    assert all(v.forward for v in verdicts[:-2]), "the characters themselves go on"
    press, release = verdicts[-2:]
    assert not press.forward and press.withheld and press.hits[0].text == "shutdown /s"
    assert not release.forward and not release.hits
    # The line is still on the target's prompt: erase it and type another, which goes through.
    erase = [guard.key(ins) for ins in Parser().feed_text("".join(keystroke("\b") for _ in range(11)))]
    assert all(v.forward for v in erase)
    ok = [guard.key(ins) for ins in _keys("echo fine\n")]
    assert all(v.forward for v in ok) and not any(v.hits for v in ok)


def test_alert_rules_let_the_line_through_and_chords_do_not_submit():
    guard = TypedGuard(RuleSet([rule("words", ["passwd"], action="alert")], TIMEOUT_MS))
    verdicts = [guard.key(ins) for ins in _keys("passwd\n")]
    assert all(v.forward for v in verdicts)
    assert [h.rule.name for h in verdicts[-2].hits] == ["words:passwd"]
    # Ctrl+Enter is a chord, not a submission: nothing is checked.
    chord = Parser().feed_text("".join(keystroke(c) for c in "passwd") +
                               f"3.key,{len(str(CTRL))}.{CTRL},1.1;3.key,5.{RETURN},1.1;")
    assert not any(guard.key(ins).hits for ins in chord)


def test_screen_rules_are_not_checked_on_typed_lines():
    guard = TypedGuard(RuleSet([rule("words", ["shutdown"], action="terminate", source="screen")], TIMEOUT_MS))
    assert not guard.rules
    assert all(guard.key(ins).forward for ins in _keys("shutdown\n"))


def test_what_is_checked_is_what_follows_the_last_line_erase_unless_yanked_back():
    from gui_recorder.guardrails.typed import submitted_text

    assert submitted_text("shutdown /s<Ctrl+U>echo ok") == "echo ok"
    assert submitted_text("rm -rf /<Ctrl+C><Esc>ls") == "ls"
    assert submitted_text("shutdown /s<Ctrl+U>echo <Ctrl+Y>") == "shutdown /s<Ctrl+U>echo <Ctrl+Y>"
    assert submitted_text("plain") == "plain"


def test_merged_rules_find_the_same_hits_as_each_rule_alone():
    rules = [rule("preset", ["destructive-windows-commands"], name="p"), rule("words", ["passwd"], name="w"),
             rule("regex", [r"(ab)\1"], name="backref"), rule("regex", [r"curl\s+\S+evil"], name="r")]
    merged, alone = RuleSet(rules, TIMEOUT_MS).prepare(), RuleSet(rules, TIMEOUT_MS)
    assert [r.name for r in merged._alone] == ["backref"], "a group reference is never merged"
    for line in ("shutdown /s", "passwd; rm -rf /", "abab", "curl http://evil", "ls -l", "ab"):
        assert [(h.rule.name, h.matched) for h in merged.match(line, "typed")] == \
            [(h.rule.name, h.matched) for h in alone.match(line, "typed")], line


def test_clipboard_rules_read_a_text_paste_when_its_stream_ends():
    import base64

    from gui_recorder.guardrails.clipboard import ClipboardGuard
    from gui_recorder.protocol import Instruction

    guard = ClipboardGuard(RuleSet([rule("words", ["BEGIN PRIVATE KEY"], source="clipboard", name="key"),
                                    rule("words", ["BEGIN PRIVATE KEY"], source="screen", name="screen")],
                                   TIMEOUT_MS))
    pasted = "-----BEGIN PRIVATE KEY-----\nMIIB..."
    half = len(pasted) // 2
    assert guard.instruction(Instruction("clipboard", "3", "text/plain")) == []
    assert guard.instruction(Instruction("blob", "3", base64.b64encode(pasted[:half].encode()).decode())) == []
    assert guard.instruction(Instruction("blob", "3", base64.b64encode(pasted[half:].encode()).decode())) == []
    hits = guard.instruction(Instruction("end", "3"))
    assert [h.rule.name for h in hits] == ["key"] and hits[0].source == "clipboard"
    assert guard.instruction(Instruction("clipboard", "4", "image/png")) == []
    assert guard.instruction(Instruction("end", "4")) == [], "only text is read"
