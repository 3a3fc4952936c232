// A persistent thread pool: workers are created once and reused by every kernel, so a
// parallel region costs a wake-up, not a thread start. The calling thread takes part in
// the work. Calls from inside a running region (nested) run serially on the caller.
#pragma once

#include <functional>

namespace saekit {

// Number of threads kernels use (the caller plus workers). Default: hardware cores.
int pool_threads();
void set_pool_threads(int n);

// Run fn(task) for every task in [0, n_tasks), spread over the pool; returns when all are
// done. Tasks are handed out dynamically (an atomic counter), so uneven tasks balance.
void parallel_for(int n_tasks, const std::function<void(int)>& fn);

// Split [0, n) into contiguous chunks, at most one per thread and at least `min_chunk`
// items each, and run fn(begin, end) on each chunk in parallel.
void parallel_range(long n, long min_chunk, const std::function<void(long, long)>& fn);

// Split [0, n) into chunks of `chunk` items handed out dynamically (for uneven work, such as
// latents that were selected different numbers of times).
void parallel_chunks(long n, long chunk, const std::function<void(long, long)>& fn);

}  // namespace saekit
