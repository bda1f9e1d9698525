"""Statistics, timing loop and flags shared by torch_bench.py and torch_decode_bench.py: the Python twin of
dev.sparsa.cuda.LaunchTiming, with the same definitions, so that the PyTorch rows and Sparsa's rows of one run
can be put side by side. Importing this module does not import torch (the tests run without it)."""
import argparse
import statistics
import sys
import time

FLUSH_MIB = 256


def summary(samples):
    """(min, median, max) of the samples; the median of an even count is the mean of the two middle values.
    Raises ValueError when there are none or one is not finite."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("no samples")
    if any(x != x or x in (float("inf"), float("-inf")) for x in xs):
        raise ValueError("sample is not finite")
    return min(xs), statistics.median(xs), max(xs)


def spread_percent(medians):
    """100 * (max - min) / min over the repeats' medians (two repeats: |m1 - m2| / min(m1, m2)).
    Raises ValueError when there is none or one is not a positive finite number."""
    ms = [float(m) for m in medians]
    if not ms:
        raise ValueError("no medians")
    if any(not (0 < m < float("inf")) for m in ms):
        raise ValueError("median is not a positive finite number")
    return 100.0 * (max(ms) - min(ms)) / min(ms)


def spread_line(key, medians, fmt):
    """'spread KEY m1/m2 S%': the summary line of one row, as LaunchTiming.spreadLine prints it."""
    return f"spread {key} {'/'.join(fmt % m for m in medians)} {spread_percent(medians):.2f}%"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr ('PROG: message; usage: ...'), exit status 2."""

    def error(self, message):
        usage = " ".join(self.format_usage().split())
        sys.stderr.write(f"{self.prog}: {message}; {usage}\n")
        sys.exit(2)


def _positive_int(minimum):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants an integer, got '{s}'")
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {v}")
        return v
    return parse


def _ints(minimum):
    one = _positive_int(minimum)

    def parse(s):
        return [one(x) for x in s.split(",")]
    return parse


def _seconds(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants a number of seconds, got '{s}'")
    if not (0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got '{s}'")
    return v


def _switch(s):
    if s not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"wants on or off, got '{s}'")
    return s == "on"


def add_timing_flags(p, iters):
    """The timing flags both harnesses share with the Java side (same names, defaults and meaning)."""
    p.add_argument("--iters", type=_positive_int(1), default=iters)
    p.add_argument("--warmup", type=_positive_int(0), default=5)
    p.add_argument("--warmup-s", dest="warmup_s", type=_seconds, default=0.5)
    p.add_argument("--repeats", type=_positive_int(1), default=2)
    p.add_argument("--l2-flush", dest="l2_flush", type=_switch, default=True)


ints = _ints
positive_int = _positive_int


def settings_comment(a, what):
    flush = f"on ({FLUSH_MIB} MiB memset before each {what})" if a.l2_flush else "off"
    return (f"# iters {a.iters}, warm-up >= {a.warmup} {what}s and >= {a.warmup_s:.2f} s per row, "
            f"L2 flush {flush}, repeats {a.repeats}")


class Timer:
    """The timing loop of LaunchTiming.time: a warm-up of at least --warmup calls and --warmup-s seconds, then
    --iters calls each between its own CUDA events and waited for; with --l2-flush on, a memset of a 256 MiB
    buffer before every call (warm-up included), outside the events."""

    def __init__(self, torch, a):
        self.torch, self.a = torch, a
        self.flush = torch.empty(FLUSH_MIB << 20, dtype=torch.uint8, device="cuda") if a.l2_flush else None
        self.flushes = 0

    def _flush(self):
        if self.flush is not None:
            self.flushes += 1
            self.flush.fill_(self.flushes & 0xFF)

    def time(self, fn):
        torch, a = self.torch, self.a
        until = time.perf_counter() + a.warmup_s
        i = 0
        while i < a.warmup or time.perf_counter() < until:
            self._flush()
            fn()
            torch.cuda.synchronize()
            i += 1
        ts = []
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(a.iters):
            self._flush()
            s.record()
            fn()
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e))
        return summary(ts)
