// File: models/catalog.h
// The model catalog: named architectures (GPT-3 175B, Llama 3 8B/70B/405B, the Megatron-LM
// SC'21 GPT family, ...) kept as data in models/data/models.json and embedded in the binary.
// Every entry names its source. Names are matched case-insensitively, against the canonical
// name and its aliases ("llama3-8b" == "Llama-3.1-8B").
//
//   Result<ModelSpec> m = find_model("llama3-70b");
//   if (!m.ok()) ...  // the error lists the known names
//
// Invariant: every catalog ModelSpec has all fields filled (head_dim included) and is
// structurally valid (hidden, heads, kv_heads, ffn_hidden, vocab > 0; kv_heads divides heads).
// Thread-safety: the catalog is parsed once on first use (function-local static), then immutable.
#pragma once
#include <string>
#include <vector>

#include "models/spec.h"
#include "sim/status.h"

namespace trainsim {

struct CatalogModel {
  ModelSpec spec;
  std::vector<std::string> aliases;
  int seq_len = 0;        // sequence length the source trained with (informative)
  std::string source;     // where the figures come from
};

// All entries, in file order. Aborts (SIM_CHECK) if the embedded data is malformed: a bug.
const std::vector<CatalogModel>& model_catalog();
// Case-insensitive lookup by name or alias; the error lists the known names and, when one is
// close, suggests it.
Result<ModelSpec> find_model(const std::string& name);
// The canonical names, in file order.
std::vector<std::string> model_names();

}  // namespace trainsim
