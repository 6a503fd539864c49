// KnobInfo to JSON and back (what specactctl reads from ListKnobs), and enum
// names to values.
#include "common/knob_info.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace specact {
namespace {

KnobInfo policy_knob() {
  KnobInfo k;
  k.name = "task.policy";
  k.family = "task";
  k.unit = "enum";
  k.description = "scheduling policy";
  k.domain = {0, 2, KnobScale::Enum, {"other", "batch", "idle"}};
  k.available = true;
  k.current = 1;
  return k;
}

TEST(KnobInfoJson, RoundTrip) {
  KnobInfo slice;
  slice.name = "task.slice_us";
  slice.family = "task";
  slice.unit = "us";
  slice.domain = {100, 100000, KnobScale::Log, {}};
  slice.available = false;
  slice.unavailable_reason = "no target";
  slice.default_value = 2800;
  for (const KnobInfo& k : {policy_knob(), slice}) {
    KnobInfo back = knob_info_from_json(knob_info_to_json(k));
    EXPECT_EQ(back.name, k.name);
    EXPECT_EQ(back.family, k.family);
    EXPECT_EQ(back.unit, k.unit);
    EXPECT_EQ(back.description, k.description);
    EXPECT_EQ(back.domain.min, k.domain.min);
    EXPECT_EQ(back.domain.max, k.domain.max);
    EXPECT_EQ(back.domain.scale, k.domain.scale);
    EXPECT_EQ(back.domain.enum_values, k.domain.enum_values);
    EXPECT_EQ(back.available, k.available);
    EXPECT_EQ(back.unavailable_reason, k.unavailable_reason);
    EXPECT_EQ(back.current, k.current);
    EXPECT_EQ(back.default_value, k.default_value);
  }
}

TEST(KnobInfoJson, MalformedFieldsKeepDefaults) {
  // A catalogue from a daemon is not trusted: wrong types never throw.
  nlohmann::json j = {{"name", 5},         {"min", "x"},      {"max", 3.5},
                      {"scale", "cubic"},  {"values", "abc"}, {"available", "yes"},
                      {"current", nullptr}};
  KnobInfo k = knob_info_from_json(j);
  EXPECT_EQ(k.name, "");
  EXPECT_EQ(k.domain.min, 0);
  EXPECT_EQ(k.domain.max, 0);
  EXPECT_EQ(k.domain.scale, KnobScale::Linear);
  EXPECT_TRUE(k.domain.enum_values.empty());
  EXPECT_FALSE(k.available);
  EXPECT_FALSE(k.current);
  EXPECT_EQ(knob_info_from_json(nlohmann::json::array()).name, "");
}

TEST(KnobInfoJson, ScaleNames) {
  for (KnobScale s : {KnobScale::Linear, KnobScale::Log, KnobScale::Enum})
    EXPECT_EQ(knob_scale_from_string(to_string(s)), s);
  EXPECT_FALSE(knob_scale_from_string("Log"));
}

TEST(KnobValues, EnumNamesAndIndices) {
  const KnobInfo k = policy_knob();
  EXPECT_EQ(enum_value_index(k.domain, "other"), 0);
  EXPECT_EQ(enum_value_index(k.domain, "idle"), 2);
  EXPECT_FALSE(enum_value_index(k.domain, "fifo"));
  EXPECT_FALSE(enum_value_index(k.domain, ""));
  EXPECT_EQ(format_knob_value(k, 1), "batch");
  EXPECT_EQ(format_knob_value(k, 3), "3");  // outside the names: the number
  KnobInfo slice;
  slice.domain = {100, 100000, KnobScale::Log, {}};
  EXPECT_FALSE(enum_value_index(slice.domain, "batch"));
  EXPECT_EQ(format_knob_value(slice, 250), "250");
}

}  // namespace
}  // namespace specact
