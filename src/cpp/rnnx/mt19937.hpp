// The Mersenne Twister MT19937 with NumPy's legacy seeding (numpy.random.seed(int)) and
// legacy uniform doubles (RandomState.random_sample), so that C++ code can replay the
// draws that the course's code makes through NumPy's global RNG and then hand the final
// state back to NumPy (RandomState.set_state) bit for bit.
#pragma once

#include <array>
#include <cstdint>

namespace rnnx {

class LegacyMT19937 {
 public:
  static constexpr int N = 624, M = 397;
  std::array<std::uint32_t, N> key{};
  int pos = N;

  // numpy.random.seed(s) for an int 0 <= s < 2**32.
  void seed(std::uint32_t s) {
    for (int i = 0; i < N; ++i) {
      key[i] = s;
      s = 1812433253u * (s ^ (s >> 30)) + std::uint32_t(i + 1);
    }
    pos = N;
  }

  std::uint32_t next_u32() {
    if (pos == N) twist();
    std::uint32_t y = key[pos++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
  }

  // RandomState.random_sample(): 53 random bits from two 32-bit draws, in [0, 1).
  double next_double() {
    const std::uint32_t a = next_u32() >> 5, b = next_u32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

 private:
  static std::uint32_t mix(std::uint32_t hi, std::uint32_t lo, std::uint32_t far) {
    const std::uint32_t y = (hi & 0x80000000u) | (lo & 0x7fffffffu);
    return far ^ (y >> 1) ^ ((0u - (y & 1u)) & 0x9908b0dfu);
  }
  void twist() {
    int i = 0;
    for (; i < N - M; ++i) key[i] = mix(key[i], key[i + 1], key[i + M]);
    for (; i < N - 1; ++i) key[i] = mix(key[i], key[i + 1], key[i + M - N]);
    key[N - 1] = mix(key[N - 1], key[0], key[M - 1]);
    pos = 0;
  }
};

}  // namespace rnnx
