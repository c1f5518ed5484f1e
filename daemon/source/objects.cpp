// Shared object hygiene for the sources.
#include "source/objects.hpp"

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/log.hpp"

namespace fabdns::source_detail {

void default_type_meta(nlohmann::json &obj) {
    if (!obj.is_object()) return;
    if (!obj.contains("apiVersion")) obj["apiVersion"] = kApiVersion;
    if (!obj.contains("kind")) obj["kind"] = kKind;
}

namespace {
bool non_empty_string(const nlohmann::json &obj, const char *field) {
    auto it = obj.find(field);
    return it != obj.end() && it->is_string() && !it->get_ref<const std::string &>().empty();
}
}  // namespace

std::string structural_problem(const nlohmann::json &obj) {
    if (!obj.is_object()) return "not an object";
    auto meta = obj.find("metadata");
    if (meta == obj.end() || !meta->is_object()) return "no metadata";
    if (!non_empty_string(*meta, "name")) return "no metadata.name";
    if (!non_empty_string(*meta, "namespace")) return "no metadata.namespace";
    auto spec = obj.find("spec");
    if (spec == obj.end() || !spec->is_object()) return "no spec";
    return "";
}

std::string object_key(const nlohmann::json &obj) {
    if (!obj.is_object()) return "";
    auto meta = obj.find("metadata");
    if (meta == obj.end() || !meta->is_object()) return "";
    auto name = meta->find("name");
    auto ns = meta->find("namespace");
    if (name == meta->end() || ns == meta->end() || !name->is_string() || !ns->is_string()) {
        return "";
    }
    return ns->get<std::string>() + "/" + name->get<std::string>();
}

void dedupe(std::vector<GlobalService> &services, const std::string &label) {
    std::unordered_map<std::string, size_t> index;  // key -> position in `out`
    std::vector<GlobalService> out;
    out.reserve(services.size());
    for (auto &svc : services) {
        auto key = svc.key();
        auto [it, inserted] = index.emplace(key, out.size());
        if (inserted) {
            out.push_back(std::move(svc));
        } else {
            log::warn(label + ": " + key + " appears more than once; the last one is used");
            out[it->second] = std::move(svc);
        }
    }
    services = std::move(out);
}

void log_rejections(const std::vector<Rejection> &rejected, const std::string &label) {
    constexpr size_t kMaxLines = 20;
    for (size_t i = 0; i < rejected.size() && i < kMaxLines; ++i) {
        log::warn(label + ": rejected " + rejected[i].object + ": " + rejected[i].reason);
    }
    if (rejected.size() > kMaxLines) {
        log::warn(label + ": " + std::to_string(rejected.size() - kMaxLines) +
                  " more object(s) rejected");
    }
}

}  // namespace fabdns::source_detail
