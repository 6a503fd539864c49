// File knob codecs on their own: text <-> value, and what restore may write.
#include "knobs/file_codec.h"

#include <gtest/gtest.h>

#include "knobs/knob_defs.h"

namespace specact::knobs {
namespace {

KnobDef def_with(Codec c) {
  KnobDef d;
  d.codec = c;
  if (c == Codec::CpuMax) {
    d.unlimited = 200000;  // 2 CPUs
    d.info.domain = {1000, 200000, KnobScale::Log, {}};
  }
  if (c == Codec::BracketEnum)
    d.info.domain = {0, 3, KnobScale::Enum, {"none", "voluntary", "full", "lazy"}};
  return d;
}

TEST(FileCodec, IntRoundTripsAndRefusesGarbage) {
  KnobDef d = def_with(Codec::Int);
  EXPECT_EQ(normalize(Codec::Int, " 42\n"), "42");
  EXPECT_EQ(decode(d, "42"), 42);
  EXPECT_EQ(decode(d, "-7"), -7);
  EXPECT_EQ(decode(d, "4x"), std::nullopt);
  EXPECT_EQ(decode(d, ""), std::nullopt);
  EXPECT_EQ(encode(d, 42), "42");
  EXPECT_TRUE(plausible_value(d, "-7"));
  EXPECT_FALSE(plausible_value(d, "7 8"));
  EXPECT_FALSE(plausible_value(d, "123456789012345678901"));  // longer than any int64
}

TEST(FileCodec, CpuMaxIsPer100msAndMaxIsTheTopOfTheRange) {
  KnobDef d = def_with(Codec::CpuMax);
  EXPECT_EQ(normalize(Codec::CpuMax, "max   100000\n"), "max 100000");
  EXPECT_EQ(decode(d, "max 100000"), 200000);
  EXPECT_EQ(decode(d, "50000 100000"), 50000);
  EXPECT_EQ(decode(d, "25000 50000"), 50000);     // another period, scaled
  EXPECT_EQ(decode(d, "50000"), 50000);           // no period: the default 100 ms
  EXPECT_EQ(decode(d, "900000 100000"), 200000);  // above unlimited: capped
  EXPECT_EQ(decode(d, "50000 0"), std::nullopt);
  EXPECT_EQ(encode(d, 50000), "50000 100000");
  EXPECT_EQ(encode(d, 200000), "max 100000");
  EXPECT_TRUE(plausible_value(d, "max 100000"));
  EXPECT_TRUE(plausible_value(d, "25000 50000"));
  EXPECT_FALSE(plausible_value(d, "max; rm"));
}

TEST(FileCodec, BracketEnumTakesTheBracketedWord) {
  KnobDef d = def_with(Codec::BracketEnum);
  EXPECT_EQ(normalize(Codec::BracketEnum, "none voluntary (full) lazy\n"), "full");
  EXPECT_EQ(normalize(Codec::BracketEnum, "lazy"), "lazy");
  EXPECT_EQ(decode(d, "full"), 2);
  EXPECT_EQ(decode(d, "turbo"), std::nullopt);
  EXPECT_EQ(encode(d, 3), "lazy");
  EXPECT_TRUE(plausible_value(d, "voluntary"));
  EXPECT_FALSE(plausible_value(d, "/etc/passwd"));
}

TEST(FileCodec, NamesRoundTrip) {
  for (Codec c : {Codec::Int, Codec::CpuMax, Codec::BracketEnum})
    EXPECT_EQ(codec_from_string(to_string(c)), c);
  EXPECT_EQ(codec_from_string("json"), std::nullopt);
}

}  // namespace
}  // namespace specact::knobs
