// CSV for the built-in operators and the stream engine (operators/PROTOCOL.md, "CSV"): RFC 4180 line parsing and
// formatting, and resolution of column arguments ("0,3", "0-2", "OBJECTID,Sign_Type") to 0-based
// indexes against the job's csv_header. Pure functions and value types; nothing here throws or
// keeps state, so any thread may call anything.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs {

// The UTF-8 byte order mark some exporters put before the header line.
inline constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Splits one CSV line into fields (RFC 4180): commas separate fields; a field that starts with
// '"' is quoted, may contain commas, and "" inside it is one '"'. One trailing "\n", "\r\n" or
// "\r" is ignored. Malformed input is accepted leniently, never rejected: a quote inside an
// unquoted field is literal, text after a closing quote is appended, an unterminated quoted
// field runs to the end of the line. "" is one empty field; "a," is two fields.
// `fields` is resized to the field count and its strings are reused, so a caller parsing many
// lines with the same vector does not allocate once the strings have grown.
void ParseCsvLine(std::string_view line, std::vector<std::string>* fields);
std::vector<std::string> ParseCsvLine(std::string_view line);
// Field `n` (0-based) of a CSV line, as ParseCsvLine would give it; empty when the line has fewer
// fields. Without quotes in the line the result points into `line`; otherwise into `scratch`.
std::string_view CsvField(std::string_view line, size_t n, std::string* scratch);

// True when the field must be quoted: it contains ',', '"', CR or LF, or starts or ends with a
// space or tab.
bool CsvNeedsQuotes(std::string_view field);
// Appends `field` to `out`, quoted (with its quotes doubled) when CsvNeedsQuotes.
void AppendCsvField(std::string_view field, std::string* out);
// Joins fields with commas, quoting as needed. ParseCsvLine(FormatCsvLine(f)) == f for any
// non-empty list of fields (an empty list formats as an empty line, which is one empty field).
std::string FormatCsvLine(const std::vector<std::string>& fields);

// The header's column names: BOM removed, then parsed as a CSV line.
std::vector<std::string> ParseCsvHeader(std::string_view header);
// True when `value` is the header line itself (ignoring a BOM and a trailing CR/LF on either).
bool IsCsvHeaderLine(std::string_view value, std::string_view header);

// One item of a column argument.
struct ColumnItem {
  enum class Kind { kIndex, kRange, kName };
  Kind kind = Kind::kIndex;
  size_t first = 0;  // kIndex, kRange
  size_t last = 0;   // kRange (inclusive)
  std::string name;  // kName
};

// A parsed column argument: a comma-separated list (itself read as a CSV line, so a name with a
// comma can be quoted) of 0-based indexes "3", inclusive ranges "0-2" and header names.
struct ColumnSpec {
  std::string text;  // as given, for messages
  std::vector<ColumnItem> items;
  bool has_names() const;
};

// Largest column index accepted, and the most columns one argument may select.
inline constexpr size_t kMaxColumnIndex = 1u << 20;
inline constexpr size_t kMaxSelectedColumns = 1u << 16;

// Syntax only (run at startup): InvalidArgument for an empty argument or item, a descending
// range, or an index above kMaxColumnIndex.
Result<ColumnSpec> ParseColumnSpec(std::string_view text);

// Indexes in the order given (ranges expanded, duplicates kept). Names are looked up in the
// header (`nullopt`: the job has none): InvalidArgument for an unknown name or a name without a
// header. The first header column of a repeated name wins.
Result<std::vector<size_t>> ResolveColumns(const ColumnSpec& spec,
                                           const std::optional<std::string>& csv_header);

}  // namespace rs
