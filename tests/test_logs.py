"""The progress bar: its rate and ETA leave out every call that traced (the first, and a shorter
one at an epoch's end) and the input pipeline's start; the text log takes any file name."""

import io
import os

import pytest
import tqdm.std

from replication.logs import ProgressBar, StepRate, TextLog


def test_the_rate_leaves_out_every_call_that_traced():
    rate = StepRate(smoothing=0.5)
    assert rate.per_second is None
    rate.add(5, 60.0, traced=True)  # the first call: a minute of tracing
    assert rate.per_second is None
    rate.add(5, 2.0, traced=False)
    assert rate.per_second == 2.5
    rate.add(2, 30.0, traced=True)  # the epoch's last, shorter call traces again
    assert rate.per_second == 2.5
    rate.add(5, 1.0, traced=False)  # moving averages (weight 0.5): steps 2.5 -> 3.75, seconds 1.0 -> 1.0
    assert rate.per_second == 3.75


def fake_clock(monkeypatch):
    """One clock for the bar's timing and tqdm's elapsed time."""
    clock = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    return clock


def test_rate_and_eta_start_after_the_first_call_and_leave_out_a_retrace(monkeypatch):
    clock = fake_clock(monkeypatch)
    out = io.StringIO()
    bar = ProgressBar(epoch=3, epochs=200, total=100, stream=out, clock=lambda: clock[0])
    clock[0] += 60.0  # the first call: a minute of tracing and compiling
    bar.update(1, traced=True)
    for done in range(2, 10):
        clock[0] += 0.5  # then two steps a second
        bar.update(done, {"D_X": 0.25, "G": 0.5})
    clock[0] += 30.0  # a call of another length traces again
    bar.update(10, {"D_X": 0.25, "G": 0.5}, traced=True)
    bar.close()
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("epoch 3/200:  10%")
    # 2 step/s, so 90 steps (45 s) to go; counting the retrace, it would be 9 steps in 34 s
    assert "10/100 [00:34<00:45,  2.00step/s, D_X 0.250 G 0.500]" in last


def test_before_a_call_that_did_not_trace_the_rate_is_unknown(monkeypatch):
    clock = fake_clock(monkeypatch)
    out = io.StringIO()
    bar = ProgressBar(epoch=1, epochs=2, total=10, stream=out, clock=lambda: clock[0])
    bar.update(5, traced=True)
    clock[0] += 30.0
    bar.update(10, traced=True)  # the epoch's last call traced: nothing to time
    bar.close()
    assert "10/10 [00:30<?, ?step/s]" in out.getvalue().split("\r")[-1]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_rate_follows_the_recent_steps(monkeypatch):
    clock = fake_clock(monkeypatch)
    out = Terminal()
    bar = ProgressBar(epoch=1, epochs=1, total=1000, stream=out, clock=lambda: clock[0])
    bar.update(1)
    for done in range(2, 12):  # 10 slow steps, 1 s each (the pipeline warming up)
        clock[0] += 1.0
        bar.update(done)
    for done in range(12, 112):  # then 100 at 4 step/s
        clock[0] += 0.25
        bar.update(done)
    rate = bar.bar.format_dict["rate"]
    bar.close()
    assert 3.9 < rate <= 4.0  # the average since the first call would be 110 / 35 s = 3.1 step/s


def test_the_text_log_shows_file_names_that_are_not_utf8_as_their_bytes(tmp_path, capsys):
    log = TextLog(tmp_path / "run.log")
    name = os.fsdecode(b"caf\xe9\xff.png")  # as os.listdir gives it: lone surrogates for the two bytes
    log(f"left out 1 images that failed to decode: trainA/{name}")
    assert capsys.readouterr().out == "left out 1 images that failed to decode: trainA/caf\\xe9\\xff.png\n"
    assert (tmp_path / "run.log").read_text(encoding="utf-8").endswith(" trainA/caf\\xe9\\xff.png\n")
