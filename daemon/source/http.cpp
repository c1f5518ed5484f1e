// libcurl behind HttpClient: a multi handle per client so that curl_multi_wakeup() can interrupt
// a transfer from another thread, and one reused easy handle so TLS sessions and connections
// survive between polls.
#include "source/http.hpp"

#include <curl/curl.h>

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>

namespace fabdns::source_detail {

namespace {

constexpr size_t kErrorBodyLimit = 64 * 1024;

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            throw std::runtime_error("curl_global_init failed");
        }
    });
}

struct Transfer {
    const HttpRequest *request;
    HttpResponse *response;
    CURL *easy;
    bool too_large = false;
    bool aborted = false;
    bool reported = false;  // on_response was called
    size_t received = 0;
};

size_t on_header(char *data, size_t size, size_t count, void *user) {
    auto *t = static_cast<Transfer *>(user);
    size_t n = size * count;
    bool blank = (n == 2 && data[0] == '\r' && data[1] == '\n') || (n == 1 && data[0] == '\n');
    if (blank && !t->reported && t->request->on_response) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200) {  // 1xx interim answers are followed by the real one
            t->reported = true;
            t->request->on_response(status);
        }
    }
    return n;
}

size_t on_write(char *data, size_t size, size_t count, void *user) {
    auto *t = static_cast<Transfer *>(user);
    size_t n = size * count;
    t->received += n;
    if (t->request->max_body != 0 && t->received > t->request->max_body) {
        t->too_large = true;
        return 0;  // aborts with CURLE_WRITE_ERROR
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    bool success = status >= 200 && status < 300;
    if (success && t->request->on_data) {
        if (!t->request->on_data(std::string_view(data, n))) {
            t->aborted = true;
            return 0;
        }
        return n;
    }
    if (!success && t->response->body.size() >= kErrorBodyLimit) return n;  // keep the head only
    std::string &body = t->response->body;
    if (success && body.empty()) {
        // An announced length (already checked against max_body by curl), else the expected
        // one, is reserved at once: growing by doubling would hold up to twice the answer while
        // it arrives.
        curl_off_t length = -1;
        if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
            length <= 0)
            length = static_cast<curl_off_t>(t->request->expected_body);
        if (length > 0 && t->request->max_body != 0 &&
            static_cast<uint64_t>(length) <= t->request->max_body)
            body.reserve(static_cast<size_t>(length));
    }
    body.append(data, n);
    return n;
}

HttpFailure classify(CURLcode code) {
    switch (code) {
        case CURLE_OK:
            return HttpFailure::None;
        case CURLE_OPERATION_TIMEDOUT:
            return HttpFailure::Timeout;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return HttpFailure::Connect;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_USE_SSL_FAILED:
            return HttpFailure::Tls;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_NOT_BUILT_IN:
        case CURLE_UNKNOWN_OPTION:
            return HttpFailure::Setup;
        default:
            return HttpFailure::Transfer;
    }
}

void set_blob(CURL *easy, CURLoption option, const std::string &pem) {
    curl_blob blob{};
    blob.data = const_cast<char *>(pem.data());
    blob.len = pem.size();
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(easy, option, &blob);
}

}  // namespace

const char *to_string(HttpFailure failure) {
    switch (failure) {
        case HttpFailure::None:
            return "none";
        case HttpFailure::Cancelled:
            return "cancelled";
        case HttpFailure::TooLarge:
            return "too-large";
        case HttpFailure::Aborted:
            return "aborted";
        case HttpFailure::Tls:
            return "tls";
        case HttpFailure::Timeout:
            return "timeout";
        case HttpFailure::Connect:
            return "connect";
        case HttpFailure::Transfer:
            return "transfer";
        case HttpFailure::Setup:
            return "setup";
    }
    return "unknown";
}

HttpClient::HttpClient() {
    global_init();
    multi_ = curl_multi_init();
    easy_ = curl_easy_init();
    if (multi_ == nullptr || easy_ == nullptr) throw std::runtime_error("libcurl: out of memory");
}

HttpClient::~HttpClient() {
    curl_easy_cleanup(static_cast<CURL *>(easy_));
    curl_multi_cleanup(static_cast<CURLM *>(multi_));
}

void HttpClient::cancel() {
    cancelled_.store(true);
    curl_multi_wakeup(static_cast<CURLM *>(multi_));
}

HttpResponse HttpClient::perform(const HttpRequest &request) {
    HttpResponse response;
    if (cancelled_.load()) {
        response.failure = HttpFailure::Cancelled;
        response.error = "cancelled";
        return response;
    }
    auto *easy = static_cast<CURL *>(easy_);
    auto *multi = static_cast<CURLM *>(multi_);
    curl_easy_reset(easy);  // keeps the connection and TLS session caches

    Transfer transfer{&request, &response, easy};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist *headers = nullptr;
    for (const auto &h : request.headers) headers = curl_slist_append(headers, h.c_str());

    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, request.https_only ? "https" : "http,https");
    if (request.http1_only)
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
    if (request.on_response) {
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
    }
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // gzip etc. when the server offers it
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);  // finds dead peers on long watches
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    if (request.max_body != 0) {
        // Refuses early when Content-Length already says too much; on_write checks the rest.
        curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                         static_cast<curl_off_t>(request.max_body));
    }

    const TlsSettings &tls = request.tls;
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, tls.insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, tls.insecure_skip_verify ? 0L : 2L);
    if (!tls.ca_pem.empty() || !tls.ca_file.empty()) {
        // Only the configured CA, never the system store as well.
        curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
        if (!tls.ca_pem.empty()) {
            set_blob(easy, CURLOPT_CAINFO_BLOB, tls.ca_pem);
        } else {
            curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca_file.c_str());
        }
    }
    if (!tls.cert_pem.empty()) {
        set_blob(easy, CURLOPT_SSLCERT_BLOB, tls.cert_pem);
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (!tls.cert_file.empty()) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.cert_file.c_str());
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (!tls.key_pem.empty()) {
        set_blob(easy, CURLOPT_SSLKEY_BLOB, tls.key_pem);
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (!tls.key_file.empty()) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.key_file.c_str());
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    }

    CURLcode result = CURLE_OK;
    bool was_cancelled = false;
    if (CURLMcode mc = curl_multi_add_handle(multi, easy); mc != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        std::snprintf(errbuf, sizeof(errbuf), "%s", curl_multi_strerror(mc));
    } else {
        int running = 1;
        while (running > 0) {
            if (cancelled_.load()) {
                was_cancelled = true;
                break;
            }
            if (curl_multi_perform(multi, &running) != CURLM_OK) break;
            if (running == 0) break;
            curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
        }
        int left = 0;
        while (CURLMsg *msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) result = msg->data.result;
        }
        curl_multi_remove_handle(multi, easy);
    }
    curl_slist_free_all(headers);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);

    if (was_cancelled) {
        response.failure = HttpFailure::Cancelled;
        response.error = "cancelled";
    } else if (transfer.too_large || result == CURLE_FILESIZE_EXCEEDED) {
        response.failure = HttpFailure::TooLarge;
        response.error = "answer larger than " + std::to_string(request.max_body) + " bytes";
    } else if (transfer.aborted) {
        response.failure = HttpFailure::Aborted;
        response.error = "aborted by the reader";
    } else if (result != CURLE_OK) {
        response.failure = classify(result);
        response.error = errbuf[0] != 0 ? std::string(errbuf) : curl_easy_strerror(result);
        // With TLS 1.3 a server refusing our certificate says so in an alert that arrives as a
        // read error after the handshake: report it as the TLS problem it is.
        if (response.failure == HttpFailure::Transfer &&
            (result == CURLE_RECV_ERROR || result == CURLE_SEND_ERROR) &&
            (response.error.find("alert") != std::string::npos ||
             response.error.find("SSL") != std::string::npos)) {
            response.failure = HttpFailure::Tls;
        }
    }
    return response;
}

}  // namespace fabdns::source_detail
