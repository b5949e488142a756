"""The progress bar: its rate and ETA leave out the first call (tracing, XLA compilation)."""

import io

import tqdm.std

from replication.logs import ProgressBar


def test_rate_and_eta_start_after_the_first_call(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    out = io.StringIO()
    bar = ProgressBar(epoch=3, epochs=200, total=100, stream=out)
    clock[0] += 60.0  # the first call: a minute of tracing and compiling
    bar.update(1)
    for done in range(2, 11):
        clock[0] += 0.5  # then two steps a second
        bar.update(done, {"D_X": 0.25, "G": 0.5})
    bar.close()
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("epoch 3/200:  10%")
    # 9 steps in 4.5 s since the first call: 2 step/s and 90 steps (45 s) to go; counted from the
    # start, it would be 10 steps in 64.5 s and an ETA of almost 10 minutes
    assert "10/100 [00:04<00:45,  2.00step/s, D_X 0.250 G 0.500]" in last


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_rate_follows_the_recent_steps(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    out = Terminal()
    bar = ProgressBar(epoch=1, epochs=1, total=1000, stream=out)
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
