// Tests for ecq/narrow_decode_table.hpp: entry layout, validation, and that a
// decoder stepping with narrow entries reads exactly the core format.
#include <ecq/narrow_decode_table.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include <ecq/frequency_table.hpp>
#include <ecq/interleaved_rans.hpp>
#include <ecq/symbol_table.hpp>

namespace {

// Random normalised frequencies over `alphabet` symbols summing to 2^scale_bits, each <= max_freq.
std::vector<std::uint32_t> random_freqs(std::uint32_t alphabet, int scale_bits, std::uint32_t max_freq,
                                        std::mt19937& rng) {
  const std::uint32_t total = 1u << scale_bits;
  std::vector<std::uint32_t> f(alphabet, 0);
  std::uint32_t left = total;
  // Everyone gets 1, then units go to random symbols below the cap.
  for (std::uint32_t s = 0; s < alphabet && left > 0; ++s, --left) f[s] = 1;
  std::uniform_int_distribution<std::uint32_t> pick(0, alphabet - 1);
  while (left > 0) {
    const std::uint32_t s = pick(rng);
    if (f[s] < max_freq) {
      ++f[s];
      --left;
    }
  }
  return f;
}

std::uint32_t payload_of(std::uint32_t s) { return (s * 2654435761u) >> 16; }

TEST(NarrowDecodeTable, EntryFieldsRoundTrip) {
  for (std::uint32_t freq : {1u, 2u, 17u, 255u})
    for (std::uint32_t off : {0u, freq - 1})
      for (std::uint32_t payload : {0u, 0x1234u, 0xffffu}) {
        const std::uint32_t e = ecq::narrow_entry::pack(off, freq, payload);
        EXPECT_EQ(ecq::narrow_entry::offset(e), off);
        EXPECT_EQ(ecq::narrow_entry::freq(e), freq);
        EXPECT_EQ(ecq::narrow_entry::payload(e), payload);
        EXPECT_EQ(e & 0xffu, payload & 0xffu);  // payload bytes 0 and 2 of the entry (documented layout)
        EXPECT_EQ((e >> 16) & 0xffu, payload >> 8);
      }
}

TEST(NarrowDecodeTable, SlotsMatchTheCoreTable) {
  std::mt19937 rng(7);
  for (int scale_bits : {10, 11, 12}) {
    const auto freqs = random_freqs(200, scale_bits, 255, rng);
    std::vector<std::uint32_t> narrow(std::size_t(1) << scale_bits);
    ASSERT_EQ(ecq::build_narrow_decode_table(freqs.data(), 200, scale_bits, payload_of, narrow.data()),
              ecq::status::ok);
    std::uint32_t slot = 0;
    for (std::uint32_t s = 0; s < 200; ++s)
      for (std::uint32_t k = 0; k < freqs[s]; ++k, ++slot) {
        const std::uint32_t e = narrow[slot];
        ASSERT_EQ(ecq::narrow_entry::freq(e), freqs[s]) << "slot " << slot;
        ASSERT_EQ(ecq::narrow_entry::offset(e), k);
        ASSERT_EQ(ecq::narrow_entry::payload(e), payload_of(s) & 0xffffu);
      }
    EXPECT_EQ(slot, 1u << scale_bits);
  }
}

// Decodes an interleaved_encode stream lane by lane with narrow_advance and
// compares every symbol (via the payload) with the core decoder's output.
template <int S>
void check_stream_equivalence(std::mt19937& rng) {
  using params = ecq::rans32x16<S>;
  const std::uint32_t alphabet = 256;
  const auto freqs = random_freqs(alphabet, S, 255, rng);
  ecq::encode_table<params> enc;
  ASSERT_EQ(enc.build(freqs.data(), alphabet), ecq::status::ok);
  // Symbols drawn from the frequencies, so the stream is realistic.
  std::vector<std::uint32_t> cdf(freqs.size() + 1, 0);
  for (std::size_t s = 0; s < freqs.size(); ++s) cdf[s + 1] = cdf[s] + freqs[s];
  std::uniform_int_distribution<std::uint32_t> slot(0, (1u << S) - 1);
  const std::size_t n = 32 * 300;
  std::vector<std::uint8_t> symbols(n);
  for (auto& v : symbols) {
    const std::uint32_t u = slot(rng);
    std::uint32_t s = 0;
    while (cdf[s + 1] <= u) ++s;
    v = std::uint8_t(s);
  }
  ecq::status st;
  const auto words = ecq::interleaved_encode<params, 32>(symbols.data(), n, enc, &st);
  ASSERT_EQ(st, ecq::status::ok);

  std::vector<std::uint32_t> narrow(std::size_t(1) << S);
  ASSERT_EQ(ecq::build_narrow_decode_table(freqs.data(), alphabet, S, [](std::uint32_t s) { return s; },
                                           narrow.data()),
            ecq::status::ok);
  std::uint32_t x[32];
  for (int j = 0; j < 32; ++j) x[j] = ecq::rans_load_state<params>(words.data() + 2 * j);
  std::size_t p = 64;
  for (std::size_t round = 0; round < n / 32; ++round)
    for (int j = 0; j < 32; ++j) {
      const std::uint32_t e = narrow[x[j] & params::slot_mask];
      ASSERT_EQ(ecq::narrow_entry::payload(e), symbols[round * 32 + std::size_t(j)]) << "round " << round;
      x[j] = ecq::narrow_advance<params>(x[j], e);
      if (x[j] < params::lower_bound) x[j] = (x[j] << 16) | words[p++];
    }
  EXPECT_EQ(p, words.size());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(x[j], params::lower_bound);
}

TEST(NarrowDecodeTable, DecodesTheCoreFormat) {
  std::mt19937 rng(11);
  check_stream_equivalence<10>(rng);
  check_stream_equivalence<11>(rng);
  check_stream_equivalence<12>(rng);
}

TEST(NarrowDecodeTable, RejectsWhatItCannotHold) {
  std::vector<std::uint32_t> freqs(16, 64);  // sum 1024 = 2^10
  std::vector<std::uint32_t> out(1024, 0xdeadbeef);
  ASSERT_EQ(ecq::build_narrow_decode_table(freqs.data(), 16, 10, payload_of, out.data()), ecq::status::ok);

  freqs.assign(4, 256);  // a frequency of 256 does not fit the byte field
  out.assign(1024, 0xdeadbeef);
  EXPECT_EQ(ecq::build_narrow_decode_table(freqs.data(), 4, 10, payload_of, out.data()),
            ecq::status::unsupported_parameters);
  EXPECT_EQ(out[0], 0xdeadbeefu) << "nothing is written on error";

  freqs.assign(16, 63);  // sums to 1008: not a normalised table
  EXPECT_EQ(ecq::build_narrow_decode_table(freqs.data(), 16, 10, payload_of, out.data()), ecq::status::corrupt_table);

  freqs.assign(16, 64);
  EXPECT_EQ(ecq::build_narrow_decode_table(freqs.data(), 16, 10, [](std::uint32_t) { return 0x10000u; }, out.data()),
            ecq::status::invalid_argument);
}

TEST(NarrowDecodeTable, ChoosesTheLargestScaleThatFits) {
  // One symbol at 20%: 0.2 * 2^10 = 205 fits a byte, 0.2 * 2^11 = 410 does not.
  std::vector<std::uint64_t> counts(100, 8);
  counts[0] = 200;  // 200 / (200 + 99 * 8) = 20.2%
  std::vector<std::uint32_t> freqs(100);
  EXPECT_EQ(ecq::choose_narrow_scale_bits(counts.data(), 100, 10, 12, freqs.data()), 10);
  std::uint64_t sum = 0;
  for (std::uint32_t f : freqs) {
    EXPECT_LE(f, ecq::narrow_entry::max_frequency);
    sum += f;
  }
  EXPECT_EQ(sum, 1024u);

  // Flat counts fit the widest table.
  counts.assign(256, 5);
  freqs.assign(256, 0);
  EXPECT_EQ(ecq::choose_narrow_scale_bits(counts.data(), 256, 10, 12, freqs.data()), 12);

  // A symbol at 50% fits no table of 2^10 or more slots.
  counts.assign(4, 1);
  counts[0] = 3;
  freqs.assign(4, 0);
  EXPECT_EQ(ecq::choose_narrow_scale_bits(counts.data(), 4, 10, 12, freqs.data()), 0);
}

}  // namespace
