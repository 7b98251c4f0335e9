// sample_ring_test.cpp — the daemon's per-channel raw-sample ring (the waveform snapshot stored
// with a raised alert): contents after wrap-around and after blocks larger than the ring, compared
// with a straightforward model (a deque keeping the last `capacity` samples).
#include <deque>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "../../gateway/daemon/src/daemon_impl.hpp"

namespace {

using vibgate::daemon::SampleRing;

TEST(SampleRing, MatchesTheLastCapacitySamplesForAnyBlockSizes) {
  std::mt19937 rng(7);
  for (std::size_t cap : {1u, 2u, 7u, 256u, 1000u}) {
    SampleRing ring;
    ring.reset(cap);
    std::deque<float> model;
    float next = 0.0f;
    for (int round = 0; round < 200; ++round) {
      // Block sizes around and above the capacity: empty, partial, exact, larger than the ring.
      std::uniform_int_distribution<std::size_t> len(0, 2 * cap + 3);
      std::vector<float> block(len(rng));
      for (float& x : block) x = next++;
      ring.push(block);
      for (float x : block) {
        model.push_back(x);
        if (model.size() > cap) model.pop_front();
      }
      ASSERT_EQ(ring.size(), model.size()) << "cap " << cap << " round " << round;
      for (std::size_t n : {std::size_t{0}, model.size() / 2, model.size(), model.size() + 5}) {
        const auto got = ring.last(n);
        const std::size_t want_n = std::min(n, model.size());
        ASSERT_EQ(got.size(), want_n);
        for (std::size_t k = 0; k < want_n; ++k)
          ASSERT_EQ(got[k], model[model.size() - want_n + k]) << "cap " << cap << " n " << n;
      }
    }
  }
}

TEST(SampleRing, ZeroCapacityKeepsNothing) {
  SampleRing ring;
  ring.reset(0);
  ring.push(std::vector<float>(10, 1.0f));
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_TRUE(ring.last(5).empty());
}

}  // namespace
