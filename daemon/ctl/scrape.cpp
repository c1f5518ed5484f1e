// /metrics scraping (libcurl) and Prometheus text parsing for `fabdnsctl stats`.
#include "ctl/scrape.hpp"

#include <curl/curl.h>

#include <cmath>
#include <cstdlib>
#include <mutex>

namespace fabdns::ctl {

double Sample::number() const {
    if (value == "+Inf") return INFINITY;
    if (value == "-Inf") return -INFINITY;
    char *end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) return NAN;
    return v;
}

std::string Sample::series() const {
    std::string out = name;
    if (labels.empty()) return out;
    out += '{';
    bool first = true;
    for (const auto &[k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k + "=\"";
        for (char c : v) {
            if (c == '\\' || c == '"') out += '\\';
            if (c == '\n') {
                out += "\\n";
                continue;
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

namespace {

bool name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

void skip_blanks(std::string_view s, size_t &i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
}

std::optional<std::string> read_ident(std::string_view s, size_t &i) {
    size_t start = i;
    while (i < s.size() && name_char(s[i], i == start)) i++;
    if (i == start) return std::nullopt;
    return std::string(s.substr(start, i - start));
}

std::optional<Sample> parse_line(std::string_view line) {
    Sample out;
    size_t i = 0;
    skip_blanks(line, i);
    auto name = read_ident(line, i);
    if (!name) return std::nullopt;
    out.name = *name;
    skip_blanks(line, i);
    if (i < line.size() && line[i] == '{') {
        i++;
        for (;;) {
            skip_blanks(line, i);
            if (i < line.size() && line[i] == '}') {
                i++;
                break;
            }
            auto key = read_ident(line, i);
            skip_blanks(line, i);
            if (!key || i >= line.size() || line[i] != '=') return std::nullopt;
            i++;
            skip_blanks(line, i);
            if (i >= line.size() || line[i] != '"') return std::nullopt;
            i++;
            std::string value;
            bool closed = false;
            while (i < line.size()) {
                char c = line[i++];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c == '\\' && i < line.size()) {
                    char e = line[i++];
                    value += e == 'n' ? '\n' : e;
                    continue;
                }
                value += c;
            }
            if (!closed) return std::nullopt;
            out.labels[*key] = std::move(value);
            skip_blanks(line, i);
            if (i < line.size() && line[i] == ',') i++;
        }
    }
    skip_blanks(line, i);
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') i++;
    out.value = std::string(line.substr(start, i - start));
    if (out.value.empty()) return std::nullopt;
    return out;  // an optional timestamp after the value is ignored
}

size_t on_body(char *data, size_t size, size_t n, void *user) {
    auto *body = static_cast<std::string *>(user);
    constexpr size_t kMaxBody = size_t{16} << 20;
    if (body->size() + size * n > kMaxBody) return 0;  // aborts the transfer
    body->append(data, size * n);
    return size * n;
}

}  // namespace

std::vector<Sample> parse_metrics(std::string_view text) {
    std::vector<Sample> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == '#') continue;
        if (auto s = parse_line(line)) out.push_back(std::move(*s));
    }
    return out;
}

std::string metrics_url(const SocketAddr &listen) {
    SocketAddr to = listen;
    if (to.ip.is_unspecified()) {
        to.ip = to.ip.is_v4() ? IpAddr::v4(127, 0, 0, 1) : *IpAddr::parse("::1");
    }
    return "http://" + to.to_string() + "/metrics";
}

HttpResult http_get(const std::string &url, std::chrono::milliseconds timeout) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    HttpResult r;
    CURL *easy = curl_easy_init();
    if (!easy) {
        r.error = "libcurl: out of memory";
        return r;
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    CURLcode rc = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    if (rc != CURLE_OK) {
        r.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        return r;
    }
    if (status != 200) {
        r.error = "HTTP " + std::to_string(status);
        return r;
    }
    r.ok = true;
    return r;
}

ScrapeResult scrape(const std::string &url, std::chrono::milliseconds timeout) {
    ScrapeResult r;
    HttpResult h = http_get(url, timeout);
    r.ok = h.ok;
    r.error = std::move(h.error);
    if (r.ok) r.samples = parse_metrics(h.body);
    return r;
}

std::string explain_url(const std::string &metrics_url, std::string_view name,
                        std::string_view type) {
    std::string base = metrics_url;
    constexpr std::string_view kMetrics = "/metrics";
    if (base.ends_with(kMetrics)) base.resize(base.size() - kMetrics.size());
    char *escaped = curl_easy_escape(nullptr, name.data(), static_cast<int>(name.size()));
    std::string url = base + "/explain?name=" + (escaped ? escaped : "");
    curl_free(escaped);
    return url + "&type=" + std::string(type);
}

}  // namespace fabdns::ctl
