// The report page of report.h: a single HTML file with its stylesheet inline, no script, nothing fetched.
#include <bitnet/error.h>
#include <bitnet/report.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bitnet::report {

namespace {
constexpr const char* kStyle =
    "body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:1180px;margin:24px auto;padding:0 16px}"
    "h1{font-size:22px;margin-bottom:2px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}"
    "h3{font-size:15px}p.sub{color:#666;margin-top:0}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;"
    "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
    "figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}figcaption{font-size:12px;color:#555;"
    "max-width:720px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}"
    "dt{color:#666}dd{margin:0}";
}  // namespace

HtmlPage::HtmlPage(std::string title, std::string subtitle) : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void HtmlPage::heading(const std::string& text, int level) {
  level = std::clamp(level, 2, 4);
  body_ += fmt::format("<h{0}>{1}</h{0}>\n", level, html_escape(text));
}

void HtmlPage::paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlPage::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  body_ += "<table><tr>";
  for (const auto& h : header) body_ += "<th>" + html_escape(h) + "</th>";
  body_ += "</tr>\n";
  for (const auto& r : rows) {
    body_ += "<tr>";
    for (const auto& c : r) body_ += "<td>" + html_escape(c) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void HtmlPage::chart(const std::string& svg, const std::string& caption, const std::string& id) {
  ++charts_;
  body_ += fmt::format("<figure id=\"{}\">{}", html_escape(id.empty() ? fmt::format("chart-{}", charts_) : id), svg);
  if (!caption.empty()) body_ += "<figcaption>" + html_escape(caption) + "</figcaption>";
  body_ += "</figure>\n";
}

void HtmlPage::definition_list(const std::vector<std::pair<std::string, std::string>>& items) {
  body_ += "<dl>";
  for (const auto& [k, v] : items) body_ += "<dt>" + html_escape(k) + "</dt><dd>" + html_escape(v) + "</dd>";
  body_ += "</dl>\n";
}

std::string HtmlPage::html() const {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>"
      "<meta name=\"viewport\" content=\"width=device-width\"><style>{1}</style></head>\n<body>\n<h1>{0}</h1>\n{2}{3}"
      "</body></html>\n",
      html_escape(title_), kStyle, subtitle_.empty() ? "" : "<p class=\"sub\">" + html_escape(subtitle_) + "</p>\n", body_);
}

void HtmlPage::write(const std::string& path) const {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << html();
    if (!f.flush()) fail("[report] cannot write '{}'", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("[report] cannot write '{}': {}", path, ec.message());
  }
}

}  // namespace bitnet::report
