#include "shared/util/malloc_tuning.h"

#include <malloc.h>

namespace rs {

void TuneMallocForStreams() {
  constexpr int kMmapThreshold = 32 << 20;   // bytes; fixed, so glibc stops moving it
  constexpr int kTrimThreshold = 128 << 20;  // free bytes kept at the heap's top
  ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

}  // namespace rs
