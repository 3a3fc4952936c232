"""The peers' timing, one way for all: warm-up calls, then the median of the timed ones."""
import time


def median_ms(fn, runs, warmup=2):
    """Milliseconds of the median of `runs` timed calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000


def training_step_ms(loss_fn, opt, runs, warmup=2):
    """median_ms of one training step: loss_fn()'s loss back-propagated and opt stepped."""

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_ms(step, runs, warmup)
