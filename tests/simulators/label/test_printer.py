"""The ZPL printer model, driven through ``feed`` with explicit time (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest
from barcode import EAN13
from PIL import Image

from protocols.zpl import NEED_DATA, AnswerParser, HostIdentification, HostStatus, build_label, render_label
from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator
from simulators.label.render import LabelRenderer, ean13_modules, find_font

WEIGHED = {
    "name": "Свинина шейка охлаждённая",
    "weight_kg": "1.234",
    "price_per_kg": "459.90",
    "packed": "2026-11-26",
    "best_before": "2026-11-29",
    "item_code": 123,
}


def hs(sim: LabelPrinterSimulator, now: float) -> HostStatus:
    parser = AnswerParser()
    parser.receive_data(sim.feed(b"~HS", now))
    event = parser.next_event()
    assert isinstance(event, HostStatus)
    assert parser.next_event() is NEED_DATA
    return event


def job(copies: int = 1) -> bytes:
    return render_label(build_label("weighed", WEIGHED), copies=copies)


def test_prints_at_the_configured_rate_and_counts_down() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=10, render=False))
    sim.feed(job(5), 0.0)
    st = hs(sim, 0.0)  # the batch started: out of the buffer, nothing printed yet
    assert st.formats_in_buffer == 0 and st.labels_remaining == 5
    st = hs(sim, 0.25)  # 2.5 labels' worth of time
    assert st.formats_in_buffer == 0 and st.labels_remaining == 3
    st = hs(sim, 1.0)
    assert st.idle
    assert [(p.copies_requested, p.copies_printed) for p in sim.printed] == [(5, 5)]


def test_jobs_are_held_while_paused_and_print_after_resume() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=0, render=False))
    sim.feed(b"~PP", 0.0)
    sim.feed(job(2) + job(1), 0.1)
    st = hs(sim, 5.0)
    assert st.paused and st.formats_in_buffer == 2 and sim.printed == []
    sim.feed(b"~PS", 6.0)
    assert hs(sim, 6.0).idle
    assert [p.copies_printed for p in sim.printed] == [2, 1]


def test_paper_out_mid_batch_keeps_the_count_and_resumes_after_reload() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=0, paper_labels=3, render=False))
    sim.feed(job(5), 0.0)
    st = hs(sim, 0.0)
    assert st.paper_out and st.labels_remaining == 2 and st.faults == ("paper_out",)
    sim.set_paper(100)
    assert hs(sim, 1.0).idle
    assert sim.printed[0].copies_printed == 5 and sim.paper_left == 98


def test_cancel_all_drops_the_rest() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=0, paper_labels=1, render=False))
    sim.feed(job(4) + job(2), 0.0)
    assert hs(sim, 0.0).labels_remaining == 3
    sim.feed(b"~JA", 0.1)
    sim.set_paper(None)
    st = hs(sim, 0.2)
    assert st.idle and not st.paper_out
    assert [(p.copies_printed, p.cancelled) for p in sim.printed] == [(1, True), (0, True)]


def test_head_open_and_ribbon_out_flags() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(render=False))
    sim.set_head_open(True)
    sim.set_ribbon_out(True)
    assert hs(sim, 0).faults == ("head_open", "ribbon_out")


def test_buffer_full_drops_formats() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(buffer_formats=2, render=False))
    sim.set_paused(True)
    sim.feed(job() * 3, 0)
    st = hs(sim, 0)
    assert st.buffer_full and st.formats_in_buffer == 2 and sim.dropped_formats == 1


def test_hi_and_unknown_commands_and_partial_format() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(dpi=300, render=False))
    parser = AnswerParser(b"~HI")
    parser.receive_data(sim.feed(b"~HI", 0))
    info = parser.next_event()
    assert isinstance(info, HostIdentification) and info.dpi == 300
    sim.feed(b"^XA^MMT^FO1,1^FDa^FS", 0)
    assert hs(sim, 0).partial_format
    sim.feed(b"^XZ~WC^XA^XZ", 0)
    assert "^MM" in sim.unknown_commands and "~WC" in sim.unknown_commands


def test_png_preview_is_written_with_real_ean13_bars(tmp_path: Path) -> None:
    sim = LabelPrinterSimulator(
        LabelPrinterConfig(labels_per_second=0, out_dir=tmp_path, width_mm=58, height_mm=60)
    )
    sim.feed(job(2), 0.0)
    [printed] = sim.printed
    assert printed.png is not None and printed.png.exists()
    assert (tmp_path / "label-0001.zpl").read_bytes().startswith(b"^XA^CI28")
    assert ("EAN-13", "2200123012340") in printed.barcodes
    assert "Масса нетто: 1,234 кг" in printed.texts
    image = Image.open(printed.png)
    assert image.size == (464, 480)
    # Find the ^BE origin and check every module column against python-barcode's encoding.
    fo = render_label(build_label("weighed", WEIGHED)).split(b"^BY2")[0].rsplit(b"^FO", 1)[1]
    x0, y0 = (int(v) for v in fo.split(b","))
    modules = EAN13("220012301234").build()[0]
    assert modules == ean13_modules("220012301234")
    row = y0 + 10
    seen = "".join("1" if image.getpixel((x0 + (9 + i) * 2, row)) == 0 else "0" for i in range(95))
    assert seen == modules


def test_renderer_font_has_cyrillic_or_says_so() -> None:
    renderer = LabelRenderer()
    assert renderer.font_path == find_font()
    if renderer.font_path is None:
        pytest.skip("no DejaVuSans on this machine: previews use Pillow's default font (no Cyrillic)")
    out = renderer.render(
        tuple(
            __import__("protocols.zpl", fromlist=["tokenize"]).tokenize(
                "^XA^CI28^FO10,10^A0N,30,30^FH_^FDЁлка_5E^FS^XZ".encode()
            )[1:-1]
        )
    )
    assert out.texts == ["Ёлка^"]
    assert out.image.getextrema()[0] == 0  # something was drawn
