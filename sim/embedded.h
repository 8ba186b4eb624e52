// File: sim/embedded.h
// Accessors for data files compiled into the binary (see cmake/embed.cmake). Each returns the
// exact bytes of the file; the owning folder parses them. Thread-safe (immutable data).
#pragma once
#include <string_view>

namespace trainsim::embedded {
std::string_view topologies_gpus();      // topologies/data/gpus.json
std::string_view models_catalog();       // models/data/models.json
std::string_view calibrate_defaults();   // calibrate/data/defaults.json
std::string_view scenario_quickstart();  // scenarios/quickstart.json
}  // namespace trainsim::embedded
