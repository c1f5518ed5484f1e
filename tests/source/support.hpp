// Test support for the source tests: temporary directories, child processes (the Python
// stand-ins) that are always cleaned up, run-time test certificates, and a collector that waits
// for updates from a Source with generous bounds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/globalservice.hpp"
#include "source/hub_source.hpp"
#include "source/source.hpp"

namespace fabdns::testing {

using namespace std::chrono_literals;

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }
    std::string operator/(const std::string &name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

void write_file(const std::string &path, const std::string &content);
// Writes to a temporary name in the same directory and renames it over `path`, as editors do.
void replace_file(const std::string &path, const std::string &content);
std::string read_file(const std::string &path);

// A child process killed (SIGTERM, then SIGKILL) and reaped on destruction. It also dies with the
// test process (PR_SET_PDEATHSIG), so a crashing test leaves no stand-in behind.
class Child {
  public:
    explicit Child(const std::vector<std::string> &argv);
    ~Child();
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;

    // The first stdout line starting with `prefix`, waiting up to `timeout`; throws on timeout or
    // when the child exits first.
    std::string wait_for_line(const std::string &prefix, std::chrono::milliseconds timeout);
    void kill();
    bool running() const { return pid_ > 0; }

  private:
    int pid_ = -1;
    int out_fd_ = -1;
    std::string buffer_;
};

// Runs a command, throws with its output when it fails.
void run_command(const std::vector<std::string> &argv);

// Certificates made with the openssl command line at run time:
//   ca.crt/ca.key               the test CA
//   server.crt/server.key       signed by the CA, SAN IP:127.0.0.1 and DNS:localhost
//   client.crt/client.key       signed by the CA, clientAuth
//   other-ca.crt                an unrelated CA
//   other-server.crt/.key       signed by the unrelated CA, same SAN
//   other-client.crt/.key       signed by the unrelated CA
//   wrong-name-server.crt/.key  signed by the CA, but only for DNS:elsewhere.invalid
struct Certs {
    explicit Certs(const std::string &dir);
    std::string dir;
    std::string file(const std::string &name) const { return dir + "/" + name; }

    // HubSource options for a hub stand-in serving with these certificates (mutual TLS with
    // client.crt), polling every `interval`.
    HubOptions hub_options(const std::string &url, const std::string &cluster,
                           const std::string &snapshot, std::chrono::milliseconds interval) const;
};

// A GlobalService object as JSON (hub and Kubernetes answers), one endpoint per address.
nlohmann::json service_json(const std::string &name, const std::string &ns,
                            const std::vector<std::string> &addresses,
                            const std::string &cluster = "beijing");
// The same as a YAML manifest document (without the leading "---").
std::string service_yaml(const std::string &name, const std::string &ns,
                         const std::vector<std::string> &addresses,
                         const std::string &cluster = "beijing");

// Collects the sets a Source delivers.
class Collector {
  public:
    Source::Update callback();

    // Waits until pred(latest set) holds for a set delivered since the call began or the latest
    // one; true when it did within `timeout`.
    bool wait_for(const std::function<bool(const std::vector<GlobalService> &)> &pred,
                  std::chrono::milliseconds timeout = 5s);
    // Waits until at least n sets were delivered in total.
    bool wait_for_count(size_t n, std::chrono::milliseconds timeout = 5s);

    size_t count() const;
    bool saw_empty() const;  // some delivered set was empty
    std::vector<GlobalService> latest() const;
    ServiceSet latest_set() const;  // the latest set as delivered (its shared services)

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::vector<GlobalService>> sets_;
    ServiceSet latest_set_;
};

// Queries on a delivered set.
bool has_service(const std::vector<GlobalService> &set, const std::string &key);
const GlobalService *find_service(const std::vector<GlobalService> &set, const std::string &key);
std::string first_address(const std::vector<GlobalService> &set, const std::string &key);
std::vector<std::string> keys(const std::vector<GlobalService> &set);

// Polls cond every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()> &cond, std::chrono::milliseconds timeout = 5s);

// A plain-HTTP request to a stand-in's control port; returns the parsed JSON answer.
nlohmann::json control(int port, const std::string &path_and_query, const std::string &body = "");

std::string python();                          // the Python 3 interpreter
std::string standin(const std::string &name);  // path of tests/standins/<name>

}  // namespace fabdns::testing
