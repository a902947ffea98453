#include "shared/util/csv.h"

#include <charconv>

namespace rs {
namespace {

std::string_view StripLineEnd(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string_view StripBom(std::string_view s) {
  if (s.substr(0, kUtf8Bom.size()) == kUtf8Bom) s.remove_prefix(kUtf8Bom.size());
  return s;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A whole-string decimal number; nullopt for anything else (signs, spaces, overflow).
std::optional<size_t> ParseIndex(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  size_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return kMaxColumnIndex + 1;
  return v;
}

}  // namespace

void ParseCsvLine(std::string_view line, std::vector<std::string>* fields) {
  line = StripLineEnd(line);
  size_t n = 0;
  auto next_field = [&]() -> std::string& {
    if (n == fields->size()) fields->emplace_back();
    std::string& f = (*fields)[n++];
    f.clear();
    return f;
  };
  size_t i = 0;
  const size_t size = line.size();
  while (true) {
    std::string& field = next_field();
    if (i < size && line[i] == '"') {
      ++i;
      while (i < size) {
        char c = line[i];
        if (c == '"') {
          if (i + 1 < size && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;  // the closing quote
          break;
        }
        // Copy the run up to the next quote in one go.
        size_t q = line.find('"', i);
        if (q == std::string_view::npos) q = size;
        field.append(line.data() + i, q - i);
        i = q;
      }
      // Lenient: anything between the closing quote and the next comma is kept.
    }
    size_t comma = line.find(',', i);
    if (comma == std::string_view::npos) {
      field.append(line.data() + i, size - i);
      break;
    }
    field.append(line.data() + i, comma - i);
    i = comma + 1;
  }
  fields->resize(n);
}

std::string_view CsvField(std::string_view line, size_t n, std::string* scratch) {
  line = StripLineEnd(line);
  if (line.find('"') != std::string_view::npos) {
    thread_local std::vector<std::string> fields;
    ParseCsvLine(line, &fields);
    if (n >= fields.size()) return {};
    *scratch = fields[n];
    return *scratch;
  }
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
  }
  size_t end = line.find(',', start);
  return line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::vector<std::string> ParseCsvLine(std::string_view line) {
  std::vector<std::string> fields;
  ParseCsvLine(line, &fields);
  return fields;
}

bool CsvNeedsQuotes(std::string_view field) {
  if (field.empty()) return false;
  if (field.front() == ' ' || field.front() == '\t' || field.back() == ' ' ||
      field.back() == '\t') {
    return true;
  }
  return field.find_first_of(",\"\r\n") != std::string_view::npos;
}

void AppendCsvField(std::string_view field, std::string* out) {
  if (!CsvNeedsQuotes(field)) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string FormatCsvLine(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendCsvField(fields[i], &out);
  }
  return out;
}

std::vector<std::string> ParseCsvHeader(std::string_view header) {
  return ParseCsvLine(StripBom(header));
}

bool IsCsvHeaderLine(std::string_view value, std::string_view header) {
  return StripLineEnd(StripBom(value)) == StripLineEnd(StripBom(header));
}

bool ColumnSpec::has_names() const {
  for (const auto& item : items) {
    if (item.kind == ColumnItem::Kind::kName) return true;
  }
  return false;
}

Result<ColumnSpec> ParseColumnSpec(std::string_view text) {
  ColumnSpec spec;
  spec.text = std::string(text);
  if (TrimSpaces(text).empty()) return Status::InvalidArgument("empty column argument");
  for (const std::string& raw : ParseCsvLine(text)) {
    std::string_view item = TrimSpaces(raw);
    if (item.empty()) {
      return Status::InvalidArgument("empty column in '" + spec.text + "'");
    }
    ColumnItem c;
    if (auto index = ParseIndex(item)) {
      if (*index > kMaxColumnIndex) {
        return Status::InvalidArgument("column index " + std::string(item) + " is too large");
      }
      c.kind = ColumnItem::Kind::kIndex;
      c.first = *index;
    } else if (size_t dash = item.find('-'); dash != std::string_view::npos &&
                                             ParseIndex(TrimSpaces(item.substr(0, dash))) &&
                                             ParseIndex(TrimSpaces(item.substr(dash + 1)))) {
      c.kind = ColumnItem::Kind::kRange;
      c.first = *ParseIndex(TrimSpaces(item.substr(0, dash)));
      c.last = *ParseIndex(TrimSpaces(item.substr(dash + 1)));
      if (c.first > kMaxColumnIndex || c.last > kMaxColumnIndex) {
        return Status::InvalidArgument("column range " + std::string(item) + " is too large");
      }
      if (c.first > c.last) {
        return Status::InvalidArgument("column range " + std::string(item) +
                                       " is descending (ranges are inclusive: low-high)");
      }
    } else if (item.find_first_not_of("0123456789- ") == std::string_view::npos) {
      return Status::InvalidArgument("bad column range '" + std::string(item) +
                                     "' (expected N or LOW-HIGH, 0-based)");
    } else {
      c.kind = ColumnItem::Kind::kName;
      c.name = raw;  // names are matched as written; spaces may be part of them
    }
    spec.items.push_back(std::move(c));
  }
  return spec;
}

Result<std::vector<size_t>> ResolveColumns(const ColumnSpec& spec,
                                           const std::optional<std::string>& csv_header) {
  std::vector<size_t> out;
  std::vector<std::string> names;
  if (csv_header) names = ParseCsvHeader(*csv_header);
  for (const auto& item : spec.items) {
    switch (item.kind) {
      case ColumnItem::Kind::kIndex:
        out.push_back(item.first);
        break;
      case ColumnItem::Kind::kRange:
        if (item.last - item.first + 1 > kMaxSelectedColumns - out.size()) {
          return Status::InvalidArgument("too many columns in '" + spec.text + "'");
        }
        for (size_t i = item.first; i <= item.last; ++i) out.push_back(i);
        break;
      case ColumnItem::Kind::kName: {
        if (!csv_header) {
          return Status::InvalidArgument("column '" + item.name +
                                         "' is a name but the job has no CSV header; use a "
                                         "0-based column index");
        }
        size_t found = names.size();
        for (size_t i = 0; i < names.size() && found == names.size(); ++i) {
          if (names[i] == item.name) found = i;
        }
        // A name typed with stray spaces still matches a header without them, and vice versa.
        for (size_t i = 0; i < names.size() && found == names.size(); ++i) {
          if (TrimSpaces(names[i]) == TrimSpaces(item.name)) found = i;
        }
        if (found == names.size()) {
          std::string known;
          for (size_t i = 0; i < names.size() && known.size() < 300; ++i) {
            if (i > 0) known += ", ";
            known += names[i];
          }
          if (known.size() >= 300) known += ", ...";
          return Status::InvalidArgument("unknown column '" + item.name +
                                         "'; the CSV header has: " + known);
        }
        out.push_back(found);
        break;
      }
    }
    if (out.size() > kMaxSelectedColumns) {
      return Status::InvalidArgument("too many columns in '" + spec.text + "'");
    }
  }
  return out;
}

}  // namespace rs
