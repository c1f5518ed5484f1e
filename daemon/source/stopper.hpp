// An interruptible sleep for source threads: waits end early when stop() is called, so a source
// stops at once even in the middle of a long backoff.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fabdns::source_detail {

class Stopper {
  public:
    // Sleeps up to `d`; returns false when stop() was called (before or during the wait).
    template <class Rep, class Period>
    bool sleep_for(std::chrono::duration<Rep, Period> d) {
        std::unique_lock lock(mutex_);
        return !cv_.wait_for(lock, d, [this] { return stopped_; });
    }
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
        }
        cv_.notify_all();
    }
    bool stopped() const {
        std::lock_guard lock(mutex_);
        return stopped_;
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool stopped_ = false;
};

}  // namespace fabdns::source_detail
