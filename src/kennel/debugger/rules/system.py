"""Profiler rules: where a training job's time goes, from the hook's step timings
(``framework.jsonl``) and the system monitor's samples (``system.jsonl``).

SageMaker's profiler rules are written for GPU instances; most kennel machines have
none, so each rule says what it means without one. Common ground:

- **Data-loading share**: of a host's train steps (its first two left out: worker
  start and lazy initialisation are not the loop's pace), the time spent waiting for
  the next batch over the steps' total time, ``sum(data) / sum(total)``.
- **Script CPU**: a sample's ``(proc_cpu + proc_cpu_wait) / cpus``: the share of the
  instance's cores the training script's processes used or were ready to use (waiting
  for a core the machine's other work held), in %. 100% on a 2-core instance is both
  busy. Counting the wait keeps a script that gets little CPU on a busy machine from
  reading as one that needs little; without ``proc_cpu_wait`` (not Linux), use alone.
  Its mean over a window weighs each sample by the time it covers (CPU seconds over
  wall seconds), since the monitor's last sample covers only part of an interval.
- **Training window**: a host's system samples whose interval lies for the most part
  between its first step's start and its last step's end, so the script's start-up
  (imports, reading the dataset) and what follows the loop do not count. Without step
  timings, every sample.

Thresholds are percentages (50 = 50%), except LoadBalancing's, a fraction as in
SageMaker.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from kennel.debugger._trial import Trial
from kennel.debugger.rules._base import REGISTRY, Finding, Parameters, Rule, snake_case

WARMUP_STEPS = 2
"""Steps at the start of each host left out of data-loading shares."""
ROBUST_SIGMA = 1.4826
"""Median absolute deviation to standard deviation, for normally distributed data."""


# Views shared by the rules ----------------------------------------------------------------


@dataclass(frozen=True)
class _Host:
    """One host's train steps and the system samples of its training window."""

    name: str
    steps: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    seconds: list[float]
    """How long each sample's interval was: the time since the sample before it."""

    @property
    def loop_steps(self) -> list[dict[str, Any]]:
        return self.steps[WARMUP_STEPS:]

    def data_share(self) -> float:
        """Data-loading share of the step time after warm-up, in %."""
        steps = self.loop_steps
        total = sum(s["total"] for s in steps)
        return 100.0 * sum(s["data"] for s in steps) / total if total > 0 else 0.0

    def _script_cpu(self) -> list[tuple[float, float, float]]:
        """(CPU the script used, CPU it waited for, both in % of the instance's cores,
        seconds the sample covers) of each sample."""
        values = []
        for sample, seconds in zip(self.samples, self.seconds, strict=True):
            used, cpus = _number(sample.get("proc_cpu")), _number(sample.get("cpus"))
            cores = cpus if cpus and cpus > 0 else len(sample.get("cpu") or ()) or 1
            waited = _number(sample.get("proc_cpu_wait")) or 0.0
            if used is not None:
                values.append((used / cores, waited / cores, seconds))
        return values

    def script_cpu(self) -> list[float]:
        """The script CPU of each sample that covers a whole interval, in %.

        CPU time is counted in clock ticks (10 ms on Linux): over a partial interval
        (the monitor's last sample) a single sample's value can be far off.
        """
        values = self._script_cpu()
        usual = statistics.median(s for _, _, s in values) if values else 0.0
        return [u + w for u, w, s in values if s >= usual / 2]

    def script_cpu_mean(self, *, waited_only: bool = False) -> float | None:
        """The script CPU over the window, in %: CPU seconds over wall seconds (only
        those it waited for a core, with ``waited_only``)."""
        values = self._script_cpu()
        seconds = sum(s for _, _, s in values)
        if seconds <= 0:
            return None
        return sum((w if waited_only else u + w) * s for u, w, s in values) / seconds

    def gpu(self, key: str = "gpu") -> list[list[float]]:
        """Per sample, the utilisation (or memory, ``gpu_mem_pct``) of each GPU, in %."""
        return [
            [float(v) for v in sample[key] if _number(v) is not None]
            for sample in self.samples
            if isinstance(sample.get(key), list) and sample[key]
        ]

    def describe_cpu(self) -> str:
        cpus = {s.get("cpus") for s in self.samples if s.get("cpus")}
        cores = f" of {cpus.pop()} core(s)" if len(cpus) == 1 else ""
        both = self.script_cpu_mean() or 0.0
        waited = self.script_cpu_mean(waited_only=True) or 0.0
        line = f"script CPU {both:.0f}%{cores}"
        if waited >= 1:
            line += f" ({both - waited:.0f}% used, {waited:.0f}% waiting for a core)"
        return f"{line} over {len(self._script_cpu())} samples"


def _hosts(trial: Trial) -> list[_Host]:
    return [_host(trial, name) for name in sorted(trial.hosts)]


def _host(trial: Trial, name: str) -> _Host:
    steps = [s for s in trial.steps(name) if _is_step(s)]
    samples = sorted(
        (s for s in trial.system(name) if _number(s.get("t")) is not None),
        key=lambda s: float(s["t"]),
    )
    times = [float(s["t"]) for s in samples]
    seconds = [b - a for a, b in zip(times, times[1:], strict=False)]
    usual = statistics.median(seconds) if seconds else 1.0
    seconds.insert(0, usual)  # the first sample's interval began before anything was read
    spans = [
        (s["start"], s["start"] + s["total"]) for s in steps if _number(s.get("start")) is not None
    ]
    if spans:
        begin = min(a for a, _ in spans)
        end = max(b for _, b in spans)
        # A sample covers (t - interval, t]: keep it when most of that is training.
        kept = [i for i, t in enumerate(times) if begin + usual / 2 <= t <= end + usual / 2]
        samples = [samples[i] for i in kept]
        seconds = [seconds[i] for i in kept]
    return _Host(name, steps, samples, seconds)


def _is_step(record: dict[str, Any]) -> bool:
    return all(_number(record.get(k)) is not None for k in ("data", "forward", "total"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _finding(fired: list[str], quiet: list[str], unknown: list[str]) -> Finding:
    """One host firing fires the rule; it is quiet when some host could be judged."""
    if fired:
        return Finding(True, "; ".join(fired))
    if quiet:
        return Finding(False, "; ".join(quiet + unknown))
    return Finding(None, "; ".join(unknown) or "no data yet")


def _too_few_steps(host: _Host, min_steps: int) -> str | None:
    if len(host.loop_steps) < min_steps:
        return f"{host.name}: {len(host.loop_steps)} step timings after warm-up (needs {min_steps})"
    return None


class _PerHost(Rule):
    """A rule judged on each host alone; ``_finding`` combines the verdicts."""

    def evaluate(self, trial: Trial) -> Finding:
        verdicts: dict[bool | None, list[str]] = {True: [], False: [], None: []}
        for host in _hosts(trial):
            verdict, line = self.judge(host)
            verdicts[verdict].append(line)
        return _finding(verdicts[True], verdicts[False], verdicts[None])

    def judge(self, host: _Host) -> tuple[bool | None, str]:
        """(fired, or None for no verdict yet; what was seen) for one host."""
        raise NotImplementedError


# The rules ---------------------------------------------------------------------------


class IOBottleneck(_PerHost):
    """The script waits on data that is not being computed: I/O (disk, network, a
    remote store) is the limit.

    Per host: the data-loading share is above ``threshold`` while the script's CPU
    (its mean over the training window) is below ``cpu_threshold``. A busy CPU with the
    same share is CPUBottleneck's case. At least ``min_steps`` step timings after
    warm-up, else no verdict; no verdict either when the share is high but there are
    no system samples to tell waiting from computing. A loader busy on one thread
    keeps one core of the instance's busy: on 4 or more cores that is below the
    default ``cpu_threshold`` (lower it, and CPUBottleneck's ``script_cpu_threshold``,
    to ``100 / cpus`` or so for such a job).
    """

    name = "IOBottleneck"
    kind = "profiler"
    summary = "Steps wait for data while the CPU idles: reading the data is the limit."
    advice = (
        "Read the data ahead of the loop: more DataLoader workers with prefetching, "
        "local copies or caches of remote data, larger files read sequentially "
        "(shards, RecordIO) instead of many small ones."
    )

    class Params(Parameters):
        threshold: float = Field(default=50.0, ge=0, le=100)
        cpu_threshold: float = Field(default=50.0, ge=0, le=100)
        min_steps: int = Field(default=10, ge=1)

    params: Params

    def judge(self, host: _Host) -> tuple[bool | None, str]:
        p = self.params
        if short := _too_few_steps(host, p.min_steps):
            return None, short
        share = host.data_share()
        line = f"{host.name}: data loading {share:.0f}% of step time"
        if share <= p.threshold:
            return False, f"{line} over {len(host.loop_steps)} steps"
        cpu = host.script_cpu_mean()
        if cpu is None:
            return None, f"{line}, no system samples to tell I/O from CPU"
        line = f"{line} over {len(host.loop_steps)} steps, {host.describe_cpu()}"
        return cpu < p.cpu_threshold, line


class CPUBottleneck(_PerHost):
    """The CPU is the limit, while the accelerator or the training itself waits on it.

    With a GPU (per host with GPU samples): in more than ``threshold`` % of the training
    window's samples, the instance's CPU (mean over its cores) is above
    ``cpu_threshold`` while the GPUs' mean utilisation is below ``gpu_threshold``
    (SageMaker's semantics); at least ``min_samples`` samples.

    Without one: the data-loading share is above ``data_threshold`` while the
    script's CPU (its mean over the training window) is at or above
    ``script_cpu_threshold``: the CPU time goes to preparing batches, not to training
    (say, a data loader doing heavy Python work per batch). At least ``min_steps``
    step timings after warm-up. A low CPU with the same share is IOBottleneck's case.
    """

    name = "CPUBottleneck"
    kind = "profiler"
    summary = "The CPU is busy preparing data while training waits for it."
    advice = (
        "Make batches cheaper or prepare them in parallel: more DataLoader workers, "
        "vectorised transforms instead of per-sample Python, preprocessing once before "
        "training (and caching the result), or an instance with more cores."
    )

    class Params(Parameters):
        threshold: float = Field(default=50.0, ge=0, le=100)
        cpu_threshold: float = Field(default=90.0, ge=0, le=100)
        gpu_threshold: float = Field(default=10.0, ge=0, le=100)
        data_threshold: float = Field(default=50.0, ge=0, le=100)
        script_cpu_threshold: float = Field(default=50.0, ge=0, le=100)
        min_steps: int = Field(default=10, ge=1)
        min_samples: int = Field(default=10, ge=1)

    params: Params

    def judge(self, host: _Host) -> tuple[bool | None, str]:
        return self._with_gpu(host) if host.gpu() else self._without_gpu(host)

    def _with_gpu(self, host: _Host) -> tuple[bool | None, str]:
        p = self.params
        pairs = [
            (statistics.fmean(s["cpu"]), statistics.fmean(s["gpu"]))
            for s in host.samples
            if s.get("cpu") and s.get("gpu")
        ]
        if len(pairs) < p.min_samples:
            return None, f"{host.name}: {len(pairs)} GPU samples (needs {p.min_samples})"
        bound = sum(cpu > p.cpu_threshold and gpu < p.gpu_threshold for cpu, gpu in pairs)
        share = 100.0 * bound / len(pairs)
        line = (
            f"{host.name}: CPU above {p.cpu_threshold:g}% with the GPU below "
            f"{p.gpu_threshold:g}% in {bound} of {len(pairs)} samples ({share:.0f}%)"
        )
        return share > p.threshold, line

    def _without_gpu(self, host: _Host) -> tuple[bool | None, str]:
        p = self.params
        if short := _too_few_steps(host, p.min_steps):
            return None, short
        share = host.data_share()
        line = f"{host.name}: data loading {share:.0f}% of step time"
        if share <= p.data_threshold:
            return False, f"{line} over {len(host.loop_steps)} steps"
        cpu = host.script_cpu_mean()
        if cpu is None:
            return None, f"{line}, no system samples to tell CPU from I/O"
        line = f"{line} over {len(host.loop_steps)} steps, {host.describe_cpu()}"
        return cpu >= p.script_cpu_threshold, line


class LowGPUUtilization(Rule):
    """The GPUs idle or swing between busy and idle (SageMaker's semantics, simplified).

    Per host and GPU, over the training window's samples (at least ``min_samples``):
    fires when the 95th percentile of utilisation is below ``threshold_p95`` (the GPU
    is never busy: underused), or when it is above it while the 5th percentile is
    below ``threshold_p5`` (it fluctuates: the GPU waits for something at times). No
    verdict without GPU samples: nothing to say on a CPU-only job.
    """

    name = "LowGPUUtilization"
    kind = "profiler"
    summary = "GPUs idle most of the time, or swing between busy and idle."
    advice = (
        "Underused: a larger batch, or a smaller (cheaper) GPU instance. Fluctuating: "
        "find what the GPU waits for (data loading: CPUBottleneck, IOBottleneck; "
        "synchronisation between workers: LoadBalancing)."
    )

    class Params(Parameters):
        threshold_p95: float = Field(default=70.0, ge=0, le=100)
        threshold_p5: float = Field(default=10.0, ge=0, le=100)
        min_samples: int = Field(default=10, ge=1)

    params: Params

    def evaluate(self, trial: Trial) -> Finding:
        if not trial.has_gpu:
            return Finding(None, "no GPU on this job's instances")
        p = self.params
        fired: list[str] = []
        quiet: list[str] = []
        unknown: list[str] = []
        for host in _hosts(trial):
            samples = host.gpu()
            if len(samples) < p.min_samples:
                unknown.append(f"{host.name}: {len(samples)} GPU samples (needs {p.min_samples})")
                continue
            for index in range(max(len(s) for s in samples)):
                util = [s[index] for s in samples if index < len(s)]
                p95, p5 = _percentile(util, 95), _percentile(util, 5)
                line = f"{host.name} GPU {index}: utilisation p95 {p95:.0f}%, p5 {p5:.0f}%"
                if p95 < p.threshold_p95:
                    fired.append(f"{line}: underused (p95 below {p.threshold_p95:g}%)")
                elif p5 < p.threshold_p5:
                    fired.append(f"{line}: fluctuates (p5 below {p.threshold_p5:g}%)")
                else:
                    quiet.append(line)
        return _finding(fired, quiet, unknown)


class StepOutlier(_PerHost):
    """Steps far slower than the host's usual step: stalls, periodic slow batches.

    Per host, over the step durations (``total``) after the first ``skip_steps``
    (at least ``min_steps`` of them): a step is an outlier when it takes longer than
    both ``median + stddev * sigma`` (sigma: the median absolute deviation scaled to a
    standard deviation, so the outliers do not hide themselves) and ``min_ratio`` times
    the median (so the ordinary jitter of a very regular loop does not count). Fires
    when a host has more than ``n_outliers`` outliers and they cost at least
    ``time_pct`` % of its step time (their excess over the median): over a long run,
    a few hiccups of a millisecond loop (garbage collection, the scheduler) always add
    up to some outliers, but not to time worth looking for.
    """

    name = "StepOutlier"
    kind = "profiler"
    summary = "Some steps take far longer than the usual step."
    advice = (
        "Look at what the slow steps have in common: a data shard or a worker that is "
        "slow at times, garbage collection, checkpoints or logging inside the loop, "
        "another job sharing the machine."
    )

    class Params(Parameters):
        stddev: float = Field(default=3.0, gt=0)
        min_ratio: float = Field(default=2.0, ge=1)
        n_outliers: int = Field(default=5, ge=0)
        time_pct: float = Field(default=5.0, ge=0, le=100)
        skip_steps: int = Field(default=5, ge=0)
        min_steps: int = Field(default=20, ge=2)

    params: Params

    def judge(self, host: _Host) -> tuple[bool | None, str]:
        p = self.params
        steps = host.steps[p.skip_steps :]
        if len(steps) < p.min_steps:
            return None, f"{host.name}: {len(steps)} steps (needs {p.min_steps})"
        durations = [_own_time(s) for s in steps]
        median = statistics.median(durations)
        sigma = ROBUST_SIGMA * statistics.median(abs(d - median) for d in durations)
        limit = max(median + p.stddev * sigma, p.min_ratio * median)
        outliers = [s for s in steps if _own_time(s) > limit]
        cost = 100.0 * sum(_own_time(s) - median for s in outliers) / sum(durations)
        line = (
            f"{host.name}: {len(outliers)} of {len(steps)} steps took longer than "
            f"{limit:.3g} s (median {median:.3g} s), {cost:.0f}% of the step time"
        )
        if outliers:
            worst = max(outliers, key=_own_time)
            ratio = _own_time(worst) / median if median > 0 else math.inf
            line += (
                f"; the slowest, step {worst.get('step', '?')}, took "
                f"{_own_time(worst):.3g} s ({ratio:.1f}x the median)"
            )
        return len(outliers) > p.n_outliers and cost >= p.time_pct, line


class BatchSize(_PerHost):
    """The batches are too small to keep the machine busy.

    Without a GPU: the 95th percentile of the script's CPU over the training window
    (at least ``min_samples`` samples) is below ``cpu_threshold_p95`` while the
    data-loading share is at most ``data_threshold`` (so the script is not waiting on
    data instead): even its busiest moments leave cores idle, as small batches give
    the math library too little to spread over the threads.

    With a GPU (SageMaker's semantics): additionally the 95th percentiles of GPU
    utilisation and GPU memory are below ``gpu_threshold_p95`` and
    ``gpu_memory_threshold_p95`` (means over the host's GPUs). Step timings are
    needed to rule out data loading. A machine busy with other work does not read as
    small batches where the monitor measures run-queue waits (Linux): the script's
    CPU counts the time it was ready to run.
    """

    name = "BatchSize"
    kind = "profiler"
    summary = "The compute never fills the instance: the batch size may be too small."
    advice = (
        "Raise the batch size (and scale the learning rate with it), or train on a "
        "smaller, cheaper instance."
    )

    class Params(Parameters):
        cpu_threshold_p95: float = Field(default=70.0, ge=0, le=100)
        gpu_threshold_p95: float = Field(default=70.0, ge=0, le=100)
        gpu_memory_threshold_p95: float = Field(default=70.0, ge=0, le=100)
        data_threshold: float = Field(default=50.0, ge=0, le=100)
        min_steps: int = Field(default=10, ge=1)
        min_samples: int = Field(default=10, ge=1)

    params: Params

    def judge(self, host: _Host) -> tuple[bool | None, str]:
        p = self.params
        if short := _too_few_steps(host, p.min_steps):
            return None, short
        cpu = host.script_cpu()
        if len(cpu) < p.min_samples:
            return None, f"{host.name}: {len(cpu)} system samples (needs {p.min_samples})"
        share = host.data_share()
        cpu_p95 = _percentile(cpu, 95)
        line = f"{host.name}: script CPU p95 {cpu_p95:.0f}%, data loading {share:.0f}% of step time"
        small = cpu_p95 < p.cpu_threshold_p95 and share <= p.data_threshold
        gpu, memory = host.gpu(), host.gpu("gpu_mem_pct")
        if gpu:
            gpu_p95 = _percentile([statistics.fmean(g) for g in gpu], 95)
            memory_p95 = _percentile([statistics.fmean(m) for m in memory], 95) if memory else 0.0
            line += f", GPU p95 {gpu_p95:.0f}%, GPU memory p95 {memory_p95:.0f}%"
            small = (
                small and gpu_p95 < p.gpu_threshold_p95 and memory_p95 < p.gpu_memory_threshold_p95
            )
        return small, line


class LoadBalancing(Rule):
    """The instances of a multi-instance job do unequal work, so the fast ones wait.

    Across hosts: the median per-step time to load and compute a batch
    (``data + forward``; backward is left out, since under DDP it includes waiting
    for the other hosts, which evens it out) and the mean script CPU over the
    training window. Fires when for either the spread between the largest and the
    smallest host, ``(max - min) / max``, is above ``threshold`` (a fraction, as in
    SageMaker), unless the difference is negligible: under 5% of the median step
    time, or 10 points of CPU. No verdict with one host.
    """

    name = "LoadBalancing"
    kind = "profiler"
    summary = "Instances of a distributed job do unequal work per step."
    advice = (
        "Give each instance the same share: shard the data evenly (equal sizes, "
        "drop_last), keep the per-instance batch equal, and check that no instance "
        "does extra work (rank 0 logging or evaluating inside the loop)."
    )

    class Params(Parameters):
        threshold: float = Field(default=0.5, ge=0, le=1)
        min_steps: int = Field(default=10, ge=1)
        min_samples: int = Field(default=5, ge=1)

    params: Params

    def evaluate(self, trial: Trial) -> Finding:
        hosts = _hosts(trial)
        if len(hosts) < 2:
            return Finding(None, "one instance: nothing to balance" if hosts else "no data yet")
        p = self.params
        work: dict[str, float] = {}
        totals: list[float] = []
        cpu: dict[str, float] = {}
        for host in hosts:
            steps = host.loop_steps
            if len(steps) >= p.min_steps:
                work[host.name] = statistics.median(s["data"] + s["forward"] for s in steps)
                totals.append(statistics.median(s["total"] for s in steps))
            mean = host.script_cpu_mean()
            if mean is not None and len(host.script_cpu()) >= p.min_samples:
                cpu[host.name] = mean
        checks = []
        if len(work) >= 2:
            floor = 0.05 * statistics.median(totals)
            checks.append(self._spread("data + forward per step", work, " s", floor))
        if len(cpu) >= 2:
            checks.append(self._spread("script CPU", cpu, "%", 10.0))
        if not checks:
            return Finding(
                None,
                f"fewer than two hosts with {p.min_steps} step timings or "
                f"{p.min_samples} system samples",
            )
        fired = [line for verdict, line in checks if verdict]
        return Finding(bool(fired), "; ".join(fired or [line for _, line in checks]))

    def _spread(
        self, what: str, by_host: dict[str, float], unit: str, negligible: float
    ) -> tuple[bool, str]:
        high = max(by_host, key=by_host.__getitem__)
        low = min(by_host, key=by_host.__getitem__)
        top, bottom = by_host[high], by_host[low]
        spread = (top - bottom) / top if top > 0 else 0.0
        line = (
            f"{what}: {high} {top:.3g}{unit}, {low} {bottom:.3g}{unit} "
            f"(spread {spread:.2f} across {len(by_host)} hosts)"
        )
        return spread > self.params.threshold and top - bottom >= negligible, line


class ProfilerReport(Rule):
    """Every other profiler rule with its default parameters, at once (SageMaker's
    default profiler rule). Fires when any of them fires; the details say which and
    why, and which could not tell yet. ``skip``: rule names (comma-separated, either
    spelling) to leave out.
    """

    name = "ProfilerReport"
    kind = "profiler"
    summary = "All profiler rules at once: where the training time goes."
    advice = "See the advice of each rule that fired."

    class Params(Parameters):
        skip: str = ""

        @field_validator("skip")
        @classmethod
        def _known_rules(cls, value: str) -> str:
            names = [n.strip() for n in value.split(",") if n.strip()]
            known = {r.name for r in _profiler_rules()}
            unknown = [n for n in names if _canonical(n) not in known]
            if unknown:
                raise ValueError(
                    f"no profiler rule {', '.join(unknown)}; they are: {', '.join(sorted(known))}"
                )
            return ",".join(_canonical(n) for n in names)

    params: Params

    def evaluate(self, trial: Trial) -> Finding:
        skip = set(filter(None, self.params.skip.split(",")))
        fired: list[str] = []
        quiet: list[str] = []
        unknown: list[str] = []
        for rule_cls in _profiler_rules():
            if rule_cls.name in skip:
                continue
            try:
                finding = rule_cls().evaluate(trial)
            except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the rest
                unknown.append(f"{rule_cls.name} failed ({type(exc).__name__}: {exc})")
                continue
            if finding.issue:
                fired.append(f"{rule_cls.name}: {finding.details}")
            elif finding.issue is False:
                quiet.append(rule_cls.name)
            else:
                unknown.append(f"{rule_cls.name} ({finding.details})")
        if not fired and not quiet:  # the engine says "not enough data" itself
            return Finding(None, "; ".join(unknown) or "every profiler rule is skipped")
        parts = []
        if fired:
            parts.append(f"{len(fired)} rule(s) found issues. " + ". ".join(fired))
        if quiet:
            parts.append(f"No issues: {', '.join(quiet)}")
        if unknown:
            parts.append(f"Not enough data: {'; '.join(unknown)}")
        return Finding(bool(fired), ". ".join(parts))


def _profiler_rules() -> Iterable[type[Rule]]:
    """The registered profiler rules but the report, in registration order, once each."""
    return [
        cls
        for cls in dict.fromkeys(REGISTRY.values())
        if cls.kind == "profiler" and cls is not ProfilerReport
    ]


def _canonical(name: str) -> str:
    for cls in _profiler_rules():
        if name in (cls.name, snake_case(cls.name)):
            return cls.name
    return name


def _own_time(step: dict[str, Any]) -> float:
    """A step's duration less the debugger hook's saving, which is periodic by design (every
    ``save_interval`` steps) and would otherwise read as outliers of the user's own loop."""
    return float(step["total"]) - float(_number(step.get("hook")) or 0.0)
