// The source factory: maps source.kind and its settings onto a concrete Source.
#include "source/source.hpp"

#include <stdexcept>

#include "source/file_source.hpp"
#include "source/hub_source.hpp"
#include "source/kube_source.hpp"

namespace fabdns {

Source::~Source() = default;

std::unique_ptr<Source> make_source(const Config::Source &cfg) {
    switch (cfg.kind) {
        case SourceKind::File: {
            FileOptions o;
            o.path = cfg.file.path;
            return std::make_unique<FileSource>(std::move(o));
        }
        case SourceKind::Hub:
            return std::make_unique<HubSource>(HubOptions::from_config(cfg.hub));
        case SourceKind::Kubernetes:
            return std::make_unique<KubernetesSource>(KubeOptions::from_config(cfg.kubernetes));
    }
    throw std::invalid_argument("unknown source kind");
}

}  // namespace fabdns
