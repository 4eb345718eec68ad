// Attributes (lamina/ops.hpp) and their C ABI form (attributes.hpp).
#include "attributes.hpp"

#include <lamina/error.hpp>

#include <algorithm>
#include <string>

namespace lamina {

void Attributes::Ints::assign(const int64_t* values, size_t n) {
  if (n > kMaxInts)
    throw Error("an op attribute holds at most " + std::to_string(kMaxInts) + " integers, got " +
                std::to_string(n));
  std::copy(values, values + n, values_);
  size_ = n;
}

// Each set() builds its item in place (no temporary copies): ops set attributes on every call.
Attributes::Item& Attributes::slot(const std::string& name, int type) {
  Item* items = data();
  for (size_t k = 0; k < size_; ++k)
    if (items[k].name == name) {
      Item& i = items[k];
      i.type = type;
      i.ints.assign(nullptr, 0);
      i.real = 0.0;
      i.text.clear();
      return i;
    }
  if (size_ == kInline) {  // from here on every item lives in overflow_
    overflow_.reserve(2 * kInline);
    for (Item& i : inline_) overflow_.push_back(std::move(i));
  }
  Item* item;
  if (size_ < kInline) {
    item = &inline_[size_];
    *item = Item{};
  } else {
    item = &overflow_.emplace_back();
  }
  ++size_;
  item->name = name;
  item->type = type;
  return *item;
}
Attributes& Attributes::set(const std::string& name, int64_t value) {
  slot(name, LAMINA_ATTR_INT).ints.assign(&value, 1);
  return *this;
}
Attributes& Attributes::set(const std::string& name, double value) {
  slot(name, LAMINA_ATTR_FLOAT).real = value;
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::vector<int64_t>& values) {
  if (values.size() > kMaxInts) throw Error("attribute '" + name + "' has more than 8 values");
  slot(name, LAMINA_ATTR_INTS).ints.assign(values.data(), values.size());
  return *this;
}
Attributes& Attributes::set(const std::string& name, std::initializer_list<int64_t> values) {
  if (values.size() > kMaxInts) throw Error("attribute '" + name + "' has more than 8 values");
  slot(name, LAMINA_ATTR_INTS).ints.assign(values.begin(), values.size());
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::string& value) {
  slot(name, LAMINA_ATTR_STRING).text = value;
  return *this;
}
const Attributes::Item* Attributes::find(const std::string& name) const {
  for (const Item& i : *this)
    if (i.name == name) return &i;
  return nullptr;
}
int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  auto* i = find(name);
  if (!i) return fallback;
  if (i->type == LAMINA_ATTR_FLOAT) return int64_t(i->real);
  return i->ints.empty() ? fallback : i->ints[0];
}
double Attributes::get_float(const std::string& name, double fallback) const {
  auto* i = find(name);
  if (!i) return fallback;
  if (i->type == LAMINA_ATTR_FLOAT) return i->real;
  return i->ints.empty() ? fallback : double(i->ints[0]);
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> fallback) const {
  auto* i = find(name);
  return i ? i->ints.to_vector() : fallback;
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  auto* i = find(name);
  return i && i->type == LAMINA_ATTR_STRING ? i->text : fallback;
}

size_t to_c_attrs(const Attributes& a, const char* extra_name, int64_t extra_value, lamina_attr* out) {
  size_t k = 0;
  for (const auto& i : a) {
    if (extra_name && i.name == extra_name) continue;  // the core's value wins
    lamina_attr& c = out[k++];
    c = lamina_attr{};
    c.name = i.name.c_str();
    c.type = i.type;
    c.count = int32_t(i.ints.size());
    for (size_t j = 0; j < i.ints.size() && j < LAMINA_MAX_DIMS; ++j) c.ints[j] = i.ints[j];
    c.real = i.real;
    c.text = i.text.c_str();
  }
  if (extra_name) {
    lamina_attr& c = out[k++];
    c = lamina_attr{};
    c.name = extra_name;
    c.type = LAMINA_ATTR_INT;
    c.count = 1;
    c.ints[0] = extra_value;
  }
  return k;
}

}  // namespace lamina
