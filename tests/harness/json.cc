#include "tests/harness/json.h"

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace rs::harness {

// Builds a Json tree from nlohmann's SAX events. Floats arrive with their literal text; integers
// as values, whose decimal text is their literal.
class JsonBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  Result<Json> Take() {
    if (!error_.empty()) return Status::Corruption(error_);
    return std::move(root_);
  }

  bool null() override { return Add(Json::Type::kNull) != nullptr; }
  bool boolean(bool val) override {
    Json* j = Add(Json::Type::kBool);
    if (j != nullptr) j->bool_ = val;
    return j != nullptr;
  }
  bool number_integer(number_integer_t val) override { return Number(std::to_string(val)); }
  bool number_unsigned(number_unsigned_t val) override { return Number(std::to_string(val)); }
  bool number_float(number_float_t, const string_t& s) override { return Number(s); }
  bool string(string_t& val) override {
    Json* j = Add(Json::Type::kString);
    if (j != nullptr) j->text_ = std::move(val);
    return j != nullptr;
  }
  bool binary(binary_t&) override { return Fail("binary value"); }
  bool start_object(std::size_t) override { return Open(Json::Type::kObject); }
  bool key(string_t& val) override {
    key_ = std::move(val);
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(Json::Type::kArray); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    return Fail(ex.what());
  }

 private:
  static constexpr size_t kMaxDepth = 64;

  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = "json: " + what;
    return false;
  }

  // Places a new value of `type` in the open container (or as the root); nullptr past kMaxDepth.
  Json* Add(Json::Type type) {
    if (open_.size() > kMaxDepth) {
      Fail("nesting too deep");
      return nullptr;
    }
    Json* slot = &root_;
    if (!open_.empty()) {
      Json* parent = open_.back();
      if (parent->type_ == Json::Type::kArray) {
        parent->array_.emplace_back();
        slot = &parent->array_.back();
      } else {
        slot = &parent->object_[key_];
        *slot = Json();  // a repeated key: the last one wins
      }
    }
    slot->type_ = type;
    return slot;
  }
  bool Number(const std::string& literal) {
    Json* j = Add(Json::Type::kNumber);
    if (j != nullptr) j->text_ = literal;
    return j != nullptr;
  }
  // A container stays open while its members are added; the elements of an open array are not
  // reallocated under it because only its last element can be open.
  bool Open(Json::Type type) {
    Json* j = Add(type);
    if (j != nullptr) open_.push_back(j);
    return j != nullptr;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  Json root_;
  std::vector<Json*> open_;
  std::string key_;
  std::string error_;
};

namespace {
const Json& Null() {
  static const Json null;
  return null;
}
}  // namespace

Result<Json> Json::Parse(std::string_view text) {
  JsonBuilder builder;
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception& e) {  // only allocation failures: the builder never throws
    return Status::Corruption(std::string("json: ") + e.what());
  }
  Result<Json> out = builder.Take();
  if (ok || !out.ok()) return out;
  return Status::Corruption("json: malformed document");
}

uint64_t Json::Uint() const {
  if (type_ != Type::kNumber) return 0;
  if (text_.find_first_of(".eE") != std::string::npos) {  // a float: its integer part
    double d = std::strtod(text_.c_str(), nullptr);
    return d >= 0 && d < 18446744073709551616.0 ? static_cast<uint64_t>(d) : 0;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), v);
  if (ec != std::errc()) return 0;
  return v;
}

double Json::Double() const {
  if (type_ != Type::kNumber) return 0;
  return std::strtod(text_.c_str(), nullptr);
}

std::string Json::Str() const {
  switch (type_) {
    case Type::kString:
    case Type::kNumber:
      return text_;
    case Type::kBool:
      return bool_ ? "true" : "false";
    default:
      return "";
  }
}

const Json& Json::operator[](std::string_view key) const {
  if (type_ != Type::kObject) return Null();
  auto it = object_.find(key);
  return it == object_.end() ? Null() : it->second;
}

bool Json::Has(std::string_view key) const {
  return type_ == Type::kObject && object_.find(key) != object_.end();
}

const Json& Json::operator[](size_t index) const {
  if (type_ != Type::kArray || index >= array_.size()) return Null();
  return array_[index];
}

size_t Json::size() const {
  if (type_ == Type::kArray) return array_.size();
  if (type_ == Type::kObject) return object_.size();
  return 0;
}

}  // namespace rs::harness
