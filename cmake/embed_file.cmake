file(READ ${IN} content)
file(WRITE ${OUT} "#include <string_view>\nnamespace trainsim::embedded {\nstd::string_view ${SYM}() {\n  static const char kText[] = R\"TSEMBED(${content})TSEMBED\";\n  return std::string_view(kText, sizeof(kText) - 1);\n}\n}  // namespace trainsim::embedded\n")
