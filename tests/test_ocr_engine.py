"""The tesseract adapter's second pass for CJK (issue 15): with Latin or Cyrillic models beside a CJK
one, images where CJK was seen are read again by the CJK models alone, and the better reading wins."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gui_recorder.text.engine import TesseractEngine, merge_cjk

CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def word(x, text, confidence, y=0, w=40, h=30):
    return (x, y, w, h, text, confidence)


def test_a_cjk_word_replaces_latin_letters_read_with_less_confidence():
    mixed = [word(0, "gr-", 91), word(98, "Am", 79), word(186, "配置", 96)]
    cjk = [word(98, "日", 93), word(186, "配置", 96)]
    assert [w[4] for w in sorted(merge_cjk(mixed, cjk))] == ["gr-", "日", "配置"]


def test_cyrillic_read_with_more_confidence_than_the_cjk_pass_stays():
    mixed = [word(0, "журнал", 95, w=120)]
    cjk = [word(10, "米", 60, w=30)]
    assert [w[4] for w in merge_cjk(mixed, cjk)] == ["журнал"]


def test_a_cjk_word_where_the_mixed_pass_read_nothing_is_added_and_far_words_are_kept():
    mixed = [word(0, "Brücke", 90, w=100)]
    cjk = [word(300, "密", 85)]
    assert sorted(w[4] for w in merge_cjk(mixed, cjk)) == ["Brücke", "密"]


def test_the_second_pass_runs_only_beside_other_models():
    assert TesseractEngine(lang="eng+deu+rus+chi_sim").cjk_lang == "chi_sim"
    assert TesseractEngine(lang="jpn+eng").cjk_lang == "jpn"
    assert TesseractEngine(lang="chi_sim").cjk_lang is None
    assert TesseractEngine(lang="eng+deu").cjk_lang is None


def test_real_tesseract_reads_both_scripts_of_one_image():
    image = Image.new("RGB", (700, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.text((12, 10), "Prüfung Schlüssel", font=ImageFont.truetype(LATIN_FONT, 27), fill="black")
    draw.text((12, 64), "服务器 配置 权限", font=ImageFont.truetype(CJK_FONT, 27, index=2), fill="black")
    text = " ".join(line.text for line in TesseractEngine(lang="eng+deu+chi_sim").read(np.array(image)[:, :, ::-1]))
    for expected in ("Prüfung", "Schlüssel", "服务器", "配置", "权限"):
        assert expected in text, text
