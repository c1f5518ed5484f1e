// Random and mutated frames through the datapath: answered right or passed untouched.
//
// Every frame the XDP program (and on a sample the TC program) answers must be a well-formed
// reply to its own query that matches the answer map and the resolver; every other frame must
// be passed byte for byte unchanged. Seeded and reproducible: FABDNS_RANDOM_SEED and
// FABDNS_RANDOM_FRAMES override the defaults.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "compiler/compiler.hpp"
#include "dns_message.hpp"
#include "loaded_datapath.hpp"
#include "resolver/respond.hpp"
#include "root.hpp"
#include "services_gen.hpp"

namespace fabdns::test {
namespace {

constexpr uint64_t kDefaultSeed = 0xfab0d25;
constexpr size_t kDefaultFrames = 120000;
constexpr size_t kTcEvery = 10;
constexpr size_t kMaxReported = 20;

uint64_t env_number(const char *name, uint64_t fallback) {
    const char *v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

std::string hex(const Bytes &b, size_t max = 96) {
    static const char d[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < b.size() && i < max; i++) {
        s += d[b[i] >> 4];
        s += d[b[i] & 0xf];
    }
    if (b.size() > max) s += "...";
    return s;
}

using Rng = std::mt19937_64;

// Where a frame's headers say its DNS message is (the kernel's own reading of them; only used
// on frames the kernel answered, so the headers are known to be consistent).
struct Located {
    bool ok = false;
    bool v6 = false;
    Bytes dst;  // destination address
    uint16_t dport = 0;
    size_t dns_off = 0, dns_len = 0;
};

Located locate(const Bytes &in) {
    Located l;
    size_t off = 12;
    if (in.size() < off + 2) return l;
    uint16_t proto = (in[off] << 8) | in[off + 1];
    if (proto == 0x8100) {
        off += 4;
        if (in.size() < off + 2) return l;
        proto = (in[off] << 8) | in[off + 1];
    }
    off += 2;
    size_t udp_off;
    if (proto == 0x0800) {
        if (in.size() < off + 20) return l;
        udp_off = off + (in[off] & 0xf) * 4;
        l.dst.assign(in.begin() + off + 16, in.begin() + off + 20);
    } else if (proto == 0x86DD) {
        if (in.size() < off + 40) return l;
        l.v6 = true;
        udp_off = off + 40;
        l.dst.assign(in.begin() + off + 24, in.begin() + off + 40);
    } else {
        return l;
    }
    if (in.size() < udp_off + 8) return l;
    const size_t udp_len = (in[udp_off + 4] << 8) | in[udp_off + 5];
    l.dport = static_cast<uint16_t>((in[udp_off + 2] << 8) | in[udp_off + 3]);
    if (udp_len < 8 || udp_off + udp_len > in.size()) return l;
    l.dns_off = udp_off + 8;
    l.dns_len = udp_len - 8;
    l.ok = true;
    return l;
}

// The query mutations, each named for the report.
enum Mut {
    kFlipByte,
    kFlipBit,
    kTruncateDns,
    kExtendDns,
    kCounts,
    kLabelLength,
    kFlags,
    kEdnsField,
    kQtypeClass,
    kCase,
    kBadNameByte,
    kPointer,
    kExtraRecord,
    kFrameByte,
    kTruncateFrame,
    kPadFrame,
    kIpHeader,
    kUdpHeader,
    kAddress,
    kVlan,
    kEthertype,
    kMutCount
};
const char *const kMutNames[kMutCount] = {
    "flip-byte",    "flip-bit",   "truncate-dns",   "extend-dns", "counts",        "label-length",
    "flags",        "edns-field", "qtype-qclass",   "case",       "bad-name-byte", "pointer",
    "extra-record", "frame-byte", "truncate-frame", "pad-frame",  "ip-header",     "udp-header",
    "address",      "vlan",       "ethertype"};

struct Env {
    std::unique_ptr<Engine> engine;
    std::unique_ptr<LoadedDatapath> dp;
    std::vector<maps::KernelAnswer> kernel;
    std::vector<QueryName> names;
};

class RandomFrameTest : public ::testing::Test {
  public:
    static void TearDownTestSuite() { env_.reset(); }

  protected:
    void SetUp() override {
        FABDNS_REQUIRE_ROOT();
        if (env_) return;
        auto env = std::make_unique<Env>();
        auto services = generate_services({.seed = 77, .services = 200});
        env->engine = std::make_unique<Engine>(gen_engine_options(17));
        env->engine->set_services(services);
        env->dp = std::make_unique<LoadedDatapath>("random", 16384);
        MapCompiler compiler(env->dp->answers());
        compiler.sync(*env->engine);
        env->kernel = kernel_answers(*env->engine);
        env->names = query_names(services, env->engine->options().zones);
        env_ = std::move(env);
    }

    static inline std::unique_ptr<Env> env_;
};

// A valid query for a random name: mostly names the kernel holds, some misses and pod names.
struct Built {
    Bytes dns;
    FrameOpts f;
};

Built valid_query(const Env &env, Rng &rng) {
    QueryOpts q;
    const size_t r = rng() % 10;
    if (r < 7) {
        const auto &k = env.kernel[rng() % env.kernel.size()];
        q.name = k.name;
        q.qtype = k.qtype;
    } else {
        q.name = env.names[rng() % env.names.size()].name;
        q.qtype = (rng() & 1) ? 1 : 28;
    }
    if (rng() % 2) q.name = mix_case(q.name, rng);
    q.id = static_cast<uint16_t>(rng());
    q.rd = rng() & 1;
    q.cd = (rng() % 4) == 0;
    if (rng() % 3) {
        static const uint16_t sizes[] = {0, 100, 511, 512, 513, 1000, 1232, 1233, 4096, 65535};
        q.edns = true;
        q.edns_size = sizes[rng() % std::size(sizes)];
        q.do_bit = rng() & 1;
        switch (rng() % 4) {
            case 0:  // client cookie
                q.edns_options = {0, 10, 0, 8};
                for (int i = 0; i < 8; i++) q.edns_options.push_back(static_cast<uint8_t>(rng()));
                break;
            case 1: {  // padding of random length (RFC 7830)
                const uint8_t n = static_cast<uint8_t>(rng() % 40);
                q.edns_options = {0, 12, 0, n};
                q.edns_options.resize(4 + n, 0);
                break;
            }
            default:
                break;
        }
    }
    Built b;
    b.dns = dns_query(q);
    b.f = (rng() & 1) ? frame_v6() : frame_v4();
    b.f.vlan = (rng() % 8) == 0;
    b.f.sport = static_cast<uint16_t>(rng());
    if (!b.f.v6 && rng() % 16 == 0) b.f.ip_options = {1, 1, 1, 0};
    return b;
}

// Offsets of the question name's length bytes.
std::vector<size_t> label_offsets(const Bytes &dns) {
    std::vector<size_t> out;
    size_t p = 12;
    while (p < dns.size() && dns[p] != 0 && dns[p] < 64) {
        out.push_back(p);
        p += dns[p] + 1;
    }
    return out;
}

size_t question_end(const Bytes &dns) {
    auto labels = label_offsets(dns);
    size_t p = labels.empty() ? 12 : labels.back() + dns[labels.back()] + 1;
    return p + 5;
}

// Applies one DNS-level mutation; the frame is rebuilt around it afterwards so that the L2-L4
// lengths stay consistent and the kernel's DNS checks are what decides.
void mutate_dns(Bytes &d, Mut m, Rng &rng) {
    auto any = [&](size_t n) { return n ? static_cast<size_t>(rng() % n) : 0; };
    switch (m) {
        case kFlipByte:
            if (!d.empty()) d[any(d.size())] = static_cast<uint8_t>(rng());
            break;
        case kFlipBit:
            if (!d.empty()) d[any(d.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
        case kTruncateDns:
            d.resize(any(d.size()));
            break;
        case kExtendDns:
            for (size_t n = 1 + any(64); n > 0; n--) d.push_back(static_cast<uint8_t>(rng()));
            break;
        case kCounts: {
            static const uint16_t values[] = {0, 1, 2, 3, 0xffff};
            const size_t at = 4 + 2 * any(4);
            const uint16_t v =
                (rng() & 1) ? values[any(std::size(values))] : static_cast<uint16_t>(rng());
            if (d.size() >= 12) {
                d[at] = v >> 8;
                d[at + 1] = v & 0xff;
            }
            break;
        }
        case kLabelLength: {
            auto labels = label_offsets(d);
            if (labels.empty()) break;
            const size_t at = labels[any(labels.size())];
            d[at] = (rng() & 1) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(d[at] ^ 1);
            break;
        }
        case kFlags:
            if (d.size() >= 4) {
                if (rng() & 1) {
                    d[2] = static_cast<uint8_t>(rng());
                    d[3] = static_cast<uint8_t>(rng());
                } else {
                    d[2 + any(2)] ^= static_cast<uint8_t>(1u << (rng() % 8));
                }
            }
            break;
        case kEdnsField: {
            const size_t opt = question_end(d);
            if (d.size() < 12) break;
            if (d.size() < opt + 11) {
                // No OPT yet: add one with random payload, version and flags.
                d.insert(d.end(), {0, 0, 41, static_cast<uint8_t>(rng()),
                                   static_cast<uint8_t>(rng()), 0, static_cast<uint8_t>(rng() % 2),
                                   static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), 0, 0});
                d[10] = 0;
                d[11] = 1;
                break;
            }
            switch (rng() % 9) {
                case 0:  // payload
                    d[opt + 3] = static_cast<uint8_t>(rng());
                    d[opt + 4] = static_cast<uint8_t>(rng());
                    break;
                case 1:  // extended rcode
                    d[opt + 5] = static_cast<uint8_t>(rng());
                    break;
                case 2:  // version
                    d[opt + 6] = static_cast<uint8_t>(rng() % 3);
                    break;
                case 3:  // DO and Z
                    d[opt + 7] = static_cast<uint8_t>(rng());
                    d[opt + 8] = static_cast<uint8_t>(rng());
                    break;
                case 4:  // RDLENGTH
                    d[opt + 10] = static_cast<uint8_t>(d[opt + 10] + 1 + any(8));
                    break;
                case 5:  // owner no longer the root
                    d[opt] = 1;
                    d.insert(d.begin() + static_cast<long>(opt) + 1, {'a', 0});
                    break;
                case 6:  // type
                    d[opt + 2] = static_cast<uint8_t>(rng());
                    break;
                case 7: {  // many empty options, sometimes more than the kernel walks
                    const size_t n = 1 + any(24);
                    for (size_t i = 0; i < n; i++) d.insert(d.end(), {0, 65001 & 0xff, 0, 0});
                    const size_t rdlen = ((d[opt + 9] << 8) | d[opt + 10]) + 4 * n;
                    d[opt + 9] = static_cast<uint8_t>(rdlen >> 8);
                    d[opt + 10] = static_cast<uint8_t>(rdlen);
                    break;
                }
                default: {  // an option whose length overruns the record
                    d.insert(d.end(), {0, 10, 0, static_cast<uint8_t>(9 + any(20))});
                    const size_t rdlen = ((d[opt + 9] << 8) | d[opt + 10]) + 4;
                    d[opt + 9] = static_cast<uint8_t>(rdlen >> 8);
                    d[opt + 10] = static_cast<uint8_t>(rdlen);
                    break;
                }
            }
            break;
        }
        case kQtypeClass: {
            const size_t q = question_end(d) - 4;
            if (q + 4 > d.size()) break;
            static const uint16_t types[] = {1, 28, 5, 16, 255, 0, 65535};
            static const uint16_t classes[] = {1, 3, 255, 254, 0};
            const uint16_t v =
                (rng() & 1) ? types[any(std::size(types))] : classes[any(std::size(classes))];
            const size_t at = (rng() & 1) ? q : q + 2;
            d[at] = v >> 8;
            d[at + 1] = v & 0xff;
            break;
        }
        case kCase:
            for (size_t p : label_offsets(d))
                for (size_t i = p + 1; i <= p + d[p] && i < d.size(); i++)
                    if (std::isalpha(d[i]) && (rng() & 1)) d[i] ^= 0x20;
            break;
        case kBadNameByte: {
            auto labels = label_offsets(d);
            if (labels.empty()) break;
            const size_t p = labels[any(labels.size())];
            static const uint8_t bad[] = {'.', 0, 0x80, 0xc1, '\\', ' ', 'A', 0x7f};
            if (d[p] > 0 && p + d[p] < d.size()) d[p + 1 + any(d[p])] = bad[any(std::size(bad))];
            break;
        }
        case kPointer: {
            auto labels = label_offsets(d);
            if (labels.empty()) break;
            const size_t p = labels[any(labels.size())];
            if (p + 1 < d.size()) {
                d[p] = static_cast<uint8_t>(0xc0 | (rng() & 0x3f));
                d[p + 1] = (rng() & 1) ? 12 : static_cast<uint8_t>(rng());
            }
            break;
        }
        case kExtraRecord: {
            // A non-OPT additional record (TSIG-like), or a second OPT.
            const bool opt = rng() & 1;
            d.insert(d.end(), {0, 0, static_cast<uint8_t>(opt ? 41 : 250), 0, 1, 0, 0, 0, 0, 0, 0});
            if (d.size() >= 12) d[11] = static_cast<uint8_t>(d[11] + 1);
            break;
        }
        default:
            break;
    }
}

// Applies one frame-level mutation to a built frame (lengths and checksums not fixed up).
void mutate_frame(Bytes &b, bool v6, bool vlan, Mut m, Rng &rng) {
    auto any = [&](size_t n) { return n ? static_cast<size_t>(rng() % n) : 0; };
    const size_t ip = 14 + (vlan ? 4 : 0);
    switch (m) {
        case kFrameByte:
            if (!b.empty()) b[any(b.size())] = static_cast<uint8_t>(rng());
            break;
        case kTruncateFrame:
            b.resize(any(b.size()));
            break;
        case kPadFrame:
            // Trailing bytes after the IP datagram, as Ethernet padding leaves them.
            for (size_t n = 1 + any(40); n > 0; n--) b.push_back(static_cast<uint8_t>(rng()));
            break;
        case kIpHeader:
            if (b.size() < ip + 40) break;
            if (v6) {
                switch (rng() % 3) {
                    case 0: {  // next header: extension headers and others
                        static const uint8_t nh[] = {0, 43, 44, 60, 51, 50, 135, 6, 58};
                        b[ip + 6] = nh[any(std::size(nh))];
                        break;
                    }
                    case 1:  // payload length
                        b[ip + 4 + any(2)] = static_cast<uint8_t>(rng());
                        break;
                    default:  // version
                        b[ip] = static_cast<uint8_t>((rng() & 0xf0) | (b[ip] & 0x0f));
                        break;
                }
            } else {
                switch (rng() % 5) {
                    case 0:  // version / IHL
                        b[ip] = static_cast<uint8_t>(rng());
                        break;
                    case 1:  // total length
                        b[ip + 2 + any(2)] = static_cast<uint8_t>(rng());
                        break;
                    case 2: {  // fragment bits and offset
                        static const uint16_t frag[] = {0x2000, 0x0001, 0x4000, 0x8000, 0x1fff};
                        const uint16_t v = frag[any(std::size(frag))];
                        b[ip + 6] = v >> 8;
                        b[ip + 7] = v & 0xff;
                        break;
                    }
                    case 3:  // protocol
                        b[ip + 9] = static_cast<uint8_t>((rng() & 1) ? 6 : rng());
                        break;
                    default:  // TTL and TOS: not checked, so a hit must still be right
                        b[ip + 8] = static_cast<uint8_t>(rng());
                        b[ip + 1] = static_cast<uint8_t>(rng());
                        break;
                }
            }
            break;
        case kUdpHeader: {
            const size_t udp = ip + (v6 ? 40 : (b.size() > ip ? (b[ip] & 0xf) * 4 : 20));
            if (b.size() < udp + 8) break;
            switch (rng() % 3) {
                case 0:  // length
                    b[udp + 4 + any(2)] = static_cast<uint8_t>(rng());
                    break;
                case 1:  // checksum: not the kernel's business, a hit must still be right
                    b[udp + 6] = static_cast<uint8_t>(rng());
                    b[udp + 7] = static_cast<uint8_t>(rng());
                    break;
                default:  // destination port
                    b[udp + 3] ^= static_cast<uint8_t>(1 + any(255));
                    break;
            }
            break;
        }
        case kAddress: {
            const size_t dst = v6 ? ip + 24 : ip + 16, len = v6 ? 16 : 4;
            if (b.size() >= dst + len) b[dst + any(len)] ^= static_cast<uint8_t>(1 + any(255));
            break;
        }
        case kEthertype:
            if (b.size() >= 14) {
                static const uint16_t types[] = {0x88a8, 0x8100, 0x0806, 0x86DD, 0x0800};
                const uint16_t t = types[any(std::size(types))];
                b[12] = t >> 8;
                b[13] = t & 0xff;
            }
            break;
        case kVlan:
            // An earlier truncation may have left less than a tagged header.
            if (b.size() >= 18) {
                if (vlan) {
                    b.erase(b.begin() + 12, b.begin() + 16);  // untagged again
                } else {
                    // QinQ: an outer tag the kernel does not look into.
                    b.insert(b.begin() + 12, {0x88, 0xa8, 0, 5});
                }
            }
            break;
        default:
            break;
    }
}

struct Counts {
    size_t frames = 0, runner_refused = 0, answered = 0, passed = 0, garbage = 0, pristine = 0;
    size_t resolver_identical = 0;
    size_t failures = 0;
    size_t tc_runs = 0, tc_refused = 0, tc_answered = 0, tc_passed = 0, tc_failures = 0;
    std::map<std::string, std::pair<size_t, size_t>> by_mutation;  // answered, passed
    std::vector<std::string> problems;

    void fail(const std::string &what, const Bytes &in) {
        failures++;
        if (problems.size() < kMaxReported) problems.push_back(what + "\n    frame " + hex(in));
    }
};

// Checks a reply frame the kernel produced for `in`. Returns an empty string when it is right.
std::string check_answer(const Env &env, const Bytes &in, const Bytes &out, bool &identical) {
    auto rep = parse_reply(in, out);
    if (!rep.ok) return "bad reply frame: " + rep.error;
    const Located l = locate(in);
    if (!l.ok) return "answered a frame whose headers do not locate a DNS message";
    const Bytes v4dst = {10, 0, 0, 1};
    const Bytes v6dst = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (l.dst != (l.v6 ? v6dst : v4dst) || l.dport != 53)
        return "answered a query to an address or port not in answer_for";
    const Bytes query(in.begin() + static_cast<long>(l.dns_off),
                      in.begin() + static_cast<long>(l.dns_off + l.dns_len));
    const Message qm = parse_message(query), rm = parse_message(rep.dns);
    if (!rm.ok) return "reply does not parse: " + rm.error;
    if (!qm.ok) return "answered a query that does not parse: " + qm.error;
    if (rm.id != qm.id) return "ID not echoed";
    if (rm.question != qm.question) return "question not echoed byte for byte";
    if ((rm.flags & 0x8000) == 0) return "QR not set";

    // The answer must be what the map holds for the lowercased name and type.
    const std::string name = dotted_lower(qm.qname);
    auto v = env.dp->answers().lookup(maps::make_key(name, qm.qtype));
    if (!v) return "answered " + name + " type " + std::to_string(qm.qtype) + " not in the map";
    const auto held = maps::from_map(maps::make_key(name, qm.qtype), *v);
    if (held.name != name) return "map entry for another name answered (" + held.name + ")";
    if (held.kind == FABDNS_ANSWER_NODATA &&
        (rm.authority.size() != 1 || rm.authority[0].type != DNS_TYPE_SOA))
        return "NODATA without the zone's SOA in authority";
    if (rm.answer.size() != held.addrs.size()) return "record count differs from the map";
    const size_t alen = qm.qtype == 1 ? 4 : 16;
    for (size_t i = 0; i < rm.answer.size(); i++) {
        const Rr &r = rm.answer[i];
        const Bytes want(held.addrs[i].begin(), held.addrs[i].begin() + static_cast<long>(alen));
        if (r.owner != qm.qname || r.type != qm.qtype || r.klass != 1 || r.ttl != held.ttl ||
            r.rdata != want)
            return "answer record " + std::to_string(i) + " differs from the map";
    }
    const size_t limit = qm.opt ? std::clamp<size_t>(qm.opt->payload, 512, 1232) : 512;
    if (rep.dns.size() > limit)
        return "reply of " + std::to_string(rep.dns.size()) + " bytes over the client's limit";

    // And the same as the resolver's reply to the same message.
    const fabdns::Reply user = respond(*env.engine, query, dns::Transport::Udp);
    if (user.action != fabdns::Reply::Action::Reply) return "the resolver would not answer";
    auto diff = semantic_diff(rm, parse_message(user.bytes));
    if (!diff.empty()) {
        std::string s = "kernel and resolver disagree:";
        for (const auto &line : diff) s += "\n    " + line;
        return s;
    }
    identical = rep.dns == user.bytes;
    if (held.kind == FABDNS_ANSWER_NODATA && !identical)
        return "NODATA not byte-identical to the resolver's";
    return {};
}

TEST_F(RandomFrameTest, EveryFrameIsAnsweredRightOrPassedUntouched) {
    const Env &env = *env_;
    const uint64_t seed = env_number("FABDNS_RANDOM_SEED", kDefaultSeed);
    const size_t frames = env_number("FABDNS_RANDOM_FRAMES", kDefaultFrames);
    Rng rng(seed);
    Counts c;
    const auto stats_before = env.dp->dp().maps().stats();

    for (size_t i = 0; i < frames; i++) {
        if (i % 20000 == 0) env_->dp->refresh();
        Bytes in;
        std::string mlabel;
        const size_t kind = rng() % 100;
        if (kind < 8) {
            // Pure garbage, sometimes behind valid headers to port 53.
            Bytes junk(rng() % 700);
            for (auto &b : junk) b = static_cast<uint8_t>(rng());
            if (rng() & 1) {
                in = frame((rng() & 1) ? frame_v6() : frame_v4(), junk);
                mlabel = "garbage-dns";
            } else {
                in = junk;
                mlabel = "garbage-frame";
            }
            c.garbage++;
        } else {
            Built b = valid_query(env, rng);
            if (kind < 15) {
                mlabel = "none";
                c.pristine++;
            } else {
                // One to three mutations, DNS-level ones first (frame rebuilt around them).
                const size_t n = 1 + rng() % 3;
                std::vector<Mut> muts;
                for (size_t k = 0; k < n; k++) muts.push_back(static_cast<Mut>(rng() % kMutCount));
                std::sort(muts.begin(), muts.end());
                for (Mut m : muts) {
                    if (!mlabel.empty()) mlabel += "+";
                    mlabel += kMutNames[m];
                    if (m < kFrameByte) mutate_dns(b.dns, m, rng);
                }
                in = frame(b.f, b.dns);
                for (Mut m : muts)
                    if (m >= kFrameByte) mutate_frame(in, b.f.v6, b.f.vlan, m, rng);
            }
            if (in.empty()) in = frame(b.f, b.dns);
        }
        c.frames++;
        auto &bym = c.by_mutation[mlabel.substr(0, mlabel.find('+'))];

        loader::TestRun x;
        try {
            x = loader::test_run(env.dp->xdp_fd(), in);
        } catch (const loader::Error &) {
            // The XDP test runner refuses frames shorter than an Ethernet header.
            c.runner_refused++;
            if (in.size() >= 14)
                c.fail("XDP test run refused a frame of " + std::to_string(in.size()) + " bytes",
                       in);
            continue;
        }
        if (x.verdict == XDP_TX) {
            c.answered++;
            bym.first++;
            bool identical = false;
            std::string why = check_answer(env, in, x.out, identical);
            if (!why.empty()) c.fail("[" + mlabel + "] " + why, in);
            if (identical) c.resolver_identical++;
        } else if (x.verdict == XDP_PASS) {
            c.passed++;
            bym.second++;
            if (x.out != in) c.fail("[" + mlabel + "] passed frame was modified", in);
        } else {
            c.fail("[" + mlabel + "] XDP verdict " + std::to_string(x.verdict), in);
        }

        if (i % kTcEvery == 0) {
            c.tc_runs++;
            loader::TestRun t;
            try {
                t = loader::test_run(env.dp->tc_fd(), in);
            } catch (const loader::Error &) {
                // The skb test runner refuses frames shorter than their L2+L3 headers.
                c.tc_refused++;
                continue;
            }
            if (t.verdict == TC_ACT_REDIRECT) {
                c.tc_answered++;
                bool identical = false;
                std::string why = check_answer(env, in, t.out, identical);
                if (!why.empty()) {
                    c.tc_failures++;
                    c.fail("[" + mlabel + "] TC: " + why, in);
                }
                if (x.verdict != XDP_TX || t.out != x.out) {
                    c.tc_failures++;
                    c.fail("[" + mlabel + "] TC answered differently from XDP", in);
                }
            } else if (t.verdict == TC_ACT_OK) {
                c.tc_passed++;
                if (t.out != in) {
                    c.tc_failures++;
                    c.fail("[" + mlabel + "] TC passed frame was modified", in);
                }
                if (x.verdict == XDP_TX) {
                    c.tc_failures++;
                    c.fail("[" + mlabel + "] TC passed what XDP answered", in);
                }
            } else {
                c.tc_failures++;
                c.fail("[" + mlabel + "] TC verdict " + std::to_string(t.verdict), in);
            }
        }
    }

    const auto stats_after = env.dp->dp().maps().stats();
    std::ostringstream r;
    r << "seed " << seed << ": frames " << c.frames << " (garbage " << c.garbage << ", unmutated "
      << c.pristine << "), refused by the test runner " << c.runner_refused << "\nXDP: answered "
      << c.answered << " (byte-identical to the resolver " << c.resolver_identical
      << "), passed unchanged " << c.passed << "\nTC sample: runs " << c.tc_runs << ", refused "
      << c.tc_refused << ", answered " << c.tc_answered << ", passed " << c.tc_passed
      << "\nverdict reasons (XDP+TC):";
    for (size_t s = 0; s < FABDNS_STAT_MAX; s++)
        if (stats_after[s] != stats_before[s])
            r << " " << maps::kStatNames[s] << "=" << stats_after[s] - stats_before[s];
    r << "\nfirst mutation -> answered/passed:";
    for (const auto &[m, ap] : c.by_mutation) r << " " << m << " " << ap.first << "/" << ap.second;
    r << "\nfailures " << c.failures << "\n";
    for (const auto &p : c.problems) r << "  " << p << "\n";
    std::cout << r.str();

    RecordProperty("seed", std::to_string(seed));
    RecordProperty("frames", static_cast<int>(c.frames));
    RecordProperty("answered", static_cast<int>(c.answered));
    RecordProperty("passed", static_cast<int>(c.passed));

    EXPECT_EQ(c.failures, 0u) << r.str();
    EXPECT_GE(c.frames, 100000u);
    EXPECT_GT(c.answered, frames / 20) << "too few frames reach the answering code";
    EXPECT_GT(c.tc_answered, 0u);
}

}  // namespace
}  // namespace fabdns::test
