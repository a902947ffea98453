// When an in-process write (HydfsService::Create/Append, data in memory) that failed is tried
// again, and which failures count as passing. Pure: no clock, no IO. Used on the hydfs loop.
//
// The problem: a write can fail for reasons that pass within seconds (a replica died, the ring
// moved and the new successors hold no copy yet) and, worse, can fail after some replicas
// committed it (the commit reached fewer than the write quorum). A caller that then writes the
// same bytes again under a new append id gets them twice once repair spreads the first copy.
//
// The choice: the service retries the write itself under the SAME append id (gen, client, seq).
// Replicas that already list the id answer the open "ready" without data and their commit is a
// no-op (Store::CommitAppend/CommitCreate are idempotent), the others store it, so the append
// appears at most once whatever the attempts did. Only transient failures are retried, at most
// `max_attempts` attempts in all, and none is started once `window` has passed since the first.
//
//   attempt 1: head -> open A B C -> A,B ready -> commit: A ok, B dies   => "1 committed"
//   (backoff)  attempt 2: head (same id kept) -> repair onto the new successor D -> open A (listed,
//              ready at once) D -> commit A (no-op) D                    => ok, one copy of the id
#pragma once

#include <chrono>
#include <optional>

#include "shared/status.h"

namespace rs::hydfs {

struct WriteRetryPolicy {
  int max_attempts = 3;                        // attempts in all, the first included
  std::chrono::milliseconds window{8000};      // no attempt starts later than this after the first
  std::chrono::milliseconds backoff{250};      // before attempt 2; doubled for each further one
  std::chrono::milliseconds max_backoff{2000};

  // The wait before the next attempt, or nullopt to give up. `attempts`: attempts made so far
  // (>= 1); `elapsed`: since the first started; `transient`: the last failure may pass.
  std::optional<std::chrono::milliseconds> Next(int attempts, std::chrono::milliseconds elapsed,
                                                bool transient) const {
    if (!transient || attempts >= max_attempts) return std::nullopt;
    auto wait = backoff;
    for (int i = 1; i < attempts && wait < max_backoff; ++i) wait *= 2;
    wait = std::min(wait, max_backoff);
    if (elapsed + wait > window) return std::nullopt;
    return wait;
  }
};

// Whether one replica's refusal or loss during a write may pass. Timeout and Unavailable: the
// replica is down or slow. NotFound: for an append, a replica new to the file (the ring moved and
// repair has not reached it yet) or a write it dropped; a retry re-reads the file state and
// repairs first, and a file that is really gone then fails definitively at the head. Everything
// else (AlreadyExists, FailedPrecondition, InvalidArgument, IOError such as a full disk or quota,
// Corruption) is definitive. For a create, NotFound only arises for a write the replica dropped.
inline bool TransientWriteError(StatusCode code) {
  return code == StatusCode::kTimeout || code == StatusCode::kUnavailable ||
         code == StatusCode::kNotFound;
}

}  // namespace rs::hydfs
