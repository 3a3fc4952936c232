#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace saekit {
namespace {

class Pool {
 public:
  Pool() { resize(default_threads()); }
  ~Pool() { stop_workers(); }

  static int default_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
  }

  int threads() const { return n_threads_; }

  void resize(int n) {
    n = std::max(1, std::min(n, 256));
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    if (n == n_threads_) return;
    stop_workers();
    n_threads_ = n;
    stopping_ = false;
    // New workers start at the current generation: jobs that ran before they existed are
    // not theirs to take part in (or to count themselves out of).
    const long start = generation_;
    for (int i = 1; i < n; i++) workers_.emplace_back([this, start] { worker_loop(start); });
  }

  void run(int n_tasks, const std::function<void(int)>& fn) {
    if (n_tasks <= 0) return;
    // Serial when there is one task, one thread, or we are already inside a region.
    if (n_tasks == 1 || n_threads_ == 1 || in_region_) {
      for (int t = 0; t < n_tasks; t++) fn(t);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      n_tasks_ = n_tasks;
      next_task_.store(0);
      pending_workers_ = static_cast<int>(workers_.size());
      generation_++;
    }
    wake_.notify_all();
    in_region_ = true;
    drain();
    in_region_ = false;
    // Wait until every worker has left this job, so `fn` may be destroyed afterwards.
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_workers_ == 0; });
    job_ = nullptr;
  }

 private:
  void drain() {
    const std::function<void(int)>& fn = *job_;
    for (int t = next_task_.fetch_add(1); t < n_tasks_; t = next_task_.fetch_add(1)) fn(t);
  }

  void worker_loop(long seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      in_region_ = true;
      drain();
      in_region_ = false;
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_workers_ == 0) done_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int n_threads_ = 0;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_task_{0};
  int pending_workers_ = 0;
  long generation_ = 0;
  bool stopping_ = false;
  static thread_local bool in_region_;
};

thread_local bool Pool::in_region_ = false;

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

int pool_threads() { return pool().threads(); }
void set_pool_threads(int n) { pool().resize(n); }
void parallel_for(int n_tasks, const std::function<void(int)>& fn) { pool().run(n_tasks, fn); }

void parallel_range(long n, long min_chunk, const std::function<void(long, long)>& fn) {
  if (n <= 0) return;
  long chunks = std::min<long>(pool_threads(), std::max<long>(1, n / std::max<long>(1, min_chunk)));
  long per = (n + chunks - 1) / chunks;
  parallel_for(static_cast<int>(chunks), [&](int c) {
    long b = c * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

void parallel_chunks(long n, long chunk, const std::function<void(long, long)>& fn) {
  if (n <= 0) return;
  chunk = std::max<long>(1, chunk);
  long tasks = (n + chunk - 1) / chunk;
  parallel_for(static_cast<int>(tasks), [&](int t) {
    long b = t * chunk;
    fn(b, std::min(n, b + chunk));
  });
}

}  // namespace saekit
